"""Atomic file writes: a file is either the old version or the complete new one.

Everything the package writes (records, executed notebooks, synthetic data) goes through
here: write to a temporary name in the destination folder, flush to disk, then
``os.replace`` onto the final name, which is atomic on POSIX and Windows.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    If the body raises, the temporary file is removed and ``path`` is untouched.
    ``suffix`` ends the temporary name, for writers that choose the format by extension
    (``.tif``, ``.png``, ``.czi``).

    Example (the target changes only when the body succeeds):
        >>> import pathlib, tempfile
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "result.json"
        >>> with atomic_path(out) as tmp:
        ...     _ = tmp.write_text("{}")
        >>> try:
        ...     with atomic_path(out) as tmp:
        ...         _ = tmp.write_text("half")
        ...         raise RuntimeError("the writer died")
        ... except RuntimeError:
        ...     pass
        >>> out.read_text(), [p.name for p in out.parent.iterdir()]
        ('{}', ['result.json'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, default_mode())  # mkstemp makes 0600 files; results are meant to be shared
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def default_mode() -> int:
    """The permissions a new file gets from ``open`` under the current umask (e.g. 0644)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def _jsonable(obj: Any) -> Any:
    """Turn NumPy scalars and paths into plain JSON values."""
    if hasattr(obj, "item"):  # NumPy / torch scalars
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
