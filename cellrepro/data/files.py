"""Reading and writing single image files, with errors that name the file.

TIFF through tifffile, PNG/JPEG/BMP through imageio, Zeiss CZI through pylibCZIrw (ZEISS's
own maintained reader *and writer*, LGPL, wheels for Linux, Windows and macOS: it is the
only maintained Python package that can also write CZI, so synthetic organoid sets are
written in the real format and read back by the same code path a user's files take).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from .._io import atomic_path, default_mode
from .types import DataError

IMAGE_EXTS = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp", ".czi")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read one image file as an array (TIFF pages stack on the first axis).

    Raises:
        DataError: missing, unreadable or truncated file, or an unsupported extension.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    ext = path.suffix.lower()
    try:
        if ext in (".tif", ".tiff"):
            import tifffile

            return tifffile.imread(path)
        if ext == ".czi":
            return _read_czi(path)
        if ext in (".png", ".jpg", ".jpeg", ".bmp"):
            import imageio.v3 as iio

            return np.asarray(iio.imread(path))
    except DataError:
        raise
    except Exception as err:  # each library raises its own types for damaged files
        raise DataError(path, f"cannot be read as an image ({type(err).__name__}: {err}); is it truncated?") from err
    raise DataError(path, f"unsupported image type '{ext}'; expected one of {', '.join(IMAGE_EXTS)}")


def _read_czi(path: Path) -> np.ndarray:
    from pylibCZIrw import czi as pyczi

    with pyczi.open_czi(str(path)) as doc:
        box = doc.total_bounding_box
        planes = []
        for c in range(*box.get("C", (0, 1))):
            planes.append(doc.read(plane={"C": c, "Z": box.get("Z", (0, 1))[0], "T": box.get("T", (0, 1))[0]}))
    data = np.stack(planes)  # (C, H, W, samples)
    data = data[..., 0] if data.shape[-1] == 1 else data
    return data[0] if data.shape[0] == 1 else data


def write_czi(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write a single-plane grey image (uint8 or uint16) as CZI, atomically."""
    from pylibCZIrw import czi as pyczi

    if image.ndim != 2 or image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"write_czi takes a 2-D uint8 or uint16 image, got {image.dtype} {image.shape}")
    with atomic_path(path, ".czi") as tmp:
        tmp.unlink()  # pylibCZIrw refuses to overwrite an existing file
        with pyczi.create_czi(str(tmp), exist_ok=True) as doc:
            doc.write(data=np.ascontiguousarray(image), plane={"C": 0, "T": 0, "Z": 0})


def write_image(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a TIFF or PNG atomically (the extension decides)."""
    path = Path(path)
    with atomic_path(path, path.suffix) as tmp:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            rgb = array.ndim == 3 and array.shape[-1] in (3, 4)
            tifffile.imwrite(tmp, array, photometric="rgb" if rgb else "minisblack")  # (Z, H, W) stays a stack
        else:
            import imageio.v3 as iio

            iio.imwrite(tmp, array, extension=path.suffix.lower())


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Build a folder under a temporary name and rename it onto ``path`` when complete.

    An interrupted generation leaves no half-written data set at ``path`` (an existing
    ``path`` is replaced only on success).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    os.chmod(tmp, default_mode() | 0o111)  # mkdtemp makes 0700 folders
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def check_labels(labels: np.ndarray, path: Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Instance labels must be an integer image (of ``shape``); returned as int32."""
    if labels.dtype.kind not in "iub":
        raise DataError(path, f"a label image must hold integers (instance ids), found {labels.dtype}")
    if labels.ndim == 3 and labels.shape[-1] in (3, 4) and shape is not None and labels.shape[:2] == tuple(shape):
        raise DataError(path, "a label image must have one channel, found an RGB(A) image")
    if shape is not None and labels.shape != tuple(shape):
        raise DataError(path, f"label shape {labels.shape} differs from its image's {tuple(shape)}")
    return labels.astype(np.int32)


def list_images(folder: Path, what: str = "images") -> list[Path]:
    """Image files directly in ``folder``, sorted; an error if the folder is missing or empty."""
    if not folder.is_dir():
        raise DataError(folder, f"folder not found (expected {what})")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS
                   and not p.name.startswith("."))
    if not files:
        raise DataError(folder, f"empty folder: expected {what} ({', '.join(IMAGE_EXTS)})")
    return files
