"""SBS-Stacking of many z-stacks: finding them in a folder, checking them all first, stacking with a progress bar.

A user's folder of a few hundred stacks is the normal case (the spheroid paper stacks 426 of
them). :func:`find_stacks` accepts one stack (a multi-page file, or a folder of slice images)
or a folder of stacks (multi-page files, or sub-folders of slice images). :func:`stack_all`
reads and checks every stack before it writes anything: a bad stack (unreadable, too few
slices, slices of different shapes, NaN, fewer slices than ``k``) stops the run with the names
of all bad stacks, or, with ``skip_bad``, is reported by name and left out; never silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ..engine.progress import bar as progress_bar

from .select import StackError, check_stack, grey_stack


def read_stack(path: str | Path) -> np.ndarray:
    """One z-stack as (Z, H, W): a multi-page image file or a folder of slice images (sorted by name).

    Colour slices become grey (:func:`grey_stack`). Raises ``DataError`` (unreadable file) or
    :class:`StackError` (slices of different shapes, one colour image).
    """
    return read_stack_and_type(path)[0]


def read_stack_and_type(path: str | Path) -> tuple[np.ndarray, np.dtype]:
    """:func:`read_stack` and the data type of the file's pixels (before any grey conversion)."""
    from ..data.files import list_images, read_image

    p = Path(path)
    if p.is_dir():
        slices = [read_image(f) for f in list_images(p, "one image per slice")]
        shapes = {s.shape for s in slices}
        if len(shapes) > 1:
            raise StackError(f"{p}: slices of different shapes {sorted(shapes)}")
        raw = np.stack(slices)
    else:
        raw = read_image(p)
    return grey_stack(raw, name=str(p)), raw.dtype


def as_type(image: np.ndarray, dtype: np.dtype | str, grey: np.ndarray | None = None) -> np.ndarray:
    """The stacked ``image`` in ``dtype`` (the input's, so a 16-bit stack gives a 16-bit image).

    Integer types are rounded and clipped to their range. Where colour slices of an integer type
    became grey values in [0, 1] (``grey``, the stack the image was made from, is floating point),
    those are scaled back to the type's range first.

    >>> as_type(np.array([[0.4, 70000.0]]), "uint16")
    array([[    0, 65535]], dtype=uint16)
    >>> as_type(np.array([[0.5]]), "uint8", grey=np.zeros((2, 1, 1)))
    array([[128]], dtype=uint8)
    """
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.integer):
        return image.astype(dtype)
    info = np.iinfo(dtype)
    if grey is not None and np.issubdtype(grey.dtype, np.floating):
        image = image * float(info.max)
    return np.clip(np.rint(image), info.min, info.max).astype(dtype)


def _is_multipage(path: Path) -> bool:
    from ..data.files import read_image

    arr = read_image(path)
    colour = arr.ndim == 3 and arr.shape[-1] in (3, 4) and arr.shape[0] > 4
    return (arr.ndim == 3 and not colour) or arr.ndim == 4


def find_stacks(path: str | Path) -> list[Path]:
    """The stacks at ``path``: ``[path]`` for one stack, its members for a folder of stacks.

    A folder is a folder of stacks when it holds sub-folders of images, or image files with
    several planes each (judged by the first); a folder of single-plane images is one stack.

    Raises:
        StackError: the path does not exist, or a folder mixes image files and image folders.
    """
    from ..data.files import IMAGE_EXTS

    p = Path(path)
    if not p.exists():
        raise StackError(f"{p}: not found (expected a z-stack file, a folder of slices or a folder of stacks)")
    if p.is_file():
        return [p]
    visible = sorted(q for q in p.iterdir() if not q.name.startswith("."))
    files = [q for q in visible if q.is_file() and q.suffix.lower() in IMAGE_EXTS]
    folders = [q for q in visible if q.is_dir() and any(f.suffix.lower() in IMAGE_EXTS for f in q.iterdir())]
    if files and folders:
        raise StackError(f"{p}: holds both image files ({len(files)}) and folders of images ({len(folders)}); "
                         "point at one stack, or at a folder that holds only stacks")
    if folders:
        return folders
    if files and _is_multipage(files[0]):
        return files
    return [p]


@dataclass
class BatchResult:
    """What :func:`stack_all` did: outputs and selections per stack, and the stacks left out with why."""

    written: dict[str, Path] = field(default_factory=dict)
    selected: dict[str, list[int]] = field(default_factory=dict)
    scores: dict[str, list[float]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def as_json(self, k: int) -> dict[str, Any]:
        return {"k": k, "stacks": {name: {"selected": self.selected[name], "scores": self.scores[name],
                                          "output": str(self.written[name])} for name in self.written},
                "skipped": self.skipped}


def check_all(stacks: list[Path], k: int, progress: bool = True) -> dict[str, str]:
    """Read and check every stack; ``{name: reason}`` for the ones that cannot be stacked with ``k``."""
    from ..data.types import DataError

    bad = {}
    for path in progress_bar(stacks, desc="checking stacks", unit="stack", disable=not progress or len(stacks) < 2):
        try:
            check_stack(read_stack(path), k, name=str(path))
        except (StackError, DataError) as err:
            bad[str(path)] = str(err)
    return bad


def stack_all(stacks: list[Path], k: int, out: Path, skip_bad: bool = False, progress: bool = True,
              dtype: str = "input", **sbs_kwargs: Any) -> BatchResult:
    """SBS-Stacking (Algorithm 1) of every stack into ``out/<name>.tif``, best slices first in the result.

    Each image is written in its stack's data type (``dtype="input"``, see :func:`as_type`) or in
    the type ``dtype`` names (e.g. ``"float32"``: the fused values unrounded).

    Every stack is read and checked before anything is written. Output files are written
    atomically, so an interrupted run leaves whole images only.

    Raises:
        StackError: some stacks cannot be stacked and ``skip_bad`` is false (all are named).
    """
    from ..data.files import write_image
    from . import sbs_stack

    names: dict[str, str] = {}
    taken: dict[str, Path] = {}
    for path in stacks:
        stem = path.stem if path.is_file() else path.name
        if stem in taken:
            raise StackError(f"{path} and {taken[stem]} would both be written as {stem}.tif; rename one")
        taken[stem], names[str(path)] = path, stem
    bad = check_all(stacks, k, progress)
    if bad and not skip_bad:
        listed = "\n".join(f"  {name}: {why}" for name, why in list(bad.items())[:20])
        more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
        raise StackError(f"{len(bad)} of {len(stacks)} stacks cannot be stacked with k={k}; nothing was written:\n"
                         f"{listed}{more}\n(--skip-bad stacks the others and lists these)")
    result = BatchResult(skipped=bad)
    todo = [p for p in stacks if str(p) not in bad]
    bar = progress_bar(todo, desc="SBS-Stacking", unit="stack", disable=not progress)
    for path in bar:
        arr, raw_type = read_stack_and_type(path)
        res = sbs_stack(arr, k=k, progress=progress and len(todo) == 1, **sbs_kwargs)
        target = out / f"{names[str(path)]}.tif"
        write_image(target, as_type(res.image, raw_type if dtype == "input" else dtype, grey=arr))
        result.written[str(path)] = target
        result.selected[str(path)] = sorted(res.indices.tolist())
        result.scores[str(path)] = res.scores.tolist()
    return result
