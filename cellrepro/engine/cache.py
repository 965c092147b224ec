"""Shared work computed once: a content-addressed cache keyed by the inputs and the code.

What several arms or notebooks reuse (a pre-trained encoder per seed, a translator, the views of
a stack, a reference arm's test-set predictions) goes through :func:`shared`, a thin layer on
:class:`joblib.Memory`. joblib hashes the call's arguments and notices when the decorated
function's own source changes; it does not see the code that function calls. So the key here
also holds a hash of every source file of the ``cellrepro`` package: change any of the package's
code and the cached work is recomputed, never served from another version of the method.

The cache lives under ``$CELLREPRO_CACHE/shared`` (default ``~/.cache/cellrepro/shared``), beside
the synthetic data. ``CELLREPRO_NO_CACHE=1`` computes everything afresh (and stores nothing).

>>> import tempfile, os
>>> calls = []
>>> def square(x):
...     calls.append(x)
...     return x * x
>>> f = shared(square, location=tempfile.mkdtemp())
>>> f(3), f(3), calls
(9, 9, [3])
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
CACHE_ENV = "CELLREPRO_CACHE"
OFF_ENV = "CELLREPRO_NO_CACHE"


def location() -> Path:
    """Where shared work is cached: ``$CELLREPRO_CACHE/shared`` or ``~/.cache/cellrepro/shared``."""
    root = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "cellrepro")
    return Path(root) / "shared"


@functools.lru_cache(maxsize=1)
def package_hash() -> str:
    """SHA-256 (16 hex digits) of every ``.py`` file of the installed ``cellrepro`` package, by path."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def shared(func: F, *, location: str | os.PathLike | None = None, ignore: list[str] | None = None) -> F:
    """``func`` whose results are cached by (arguments, ``func``'s source, the package's code).

    The package's code is part of the folder (``<location>/<package_hash>``), joblib keys the rest.

    Args:
        func: a deterministic function of its arguments (seed included) whose result pickles.
        location: the cache folder (default :func:`location`).
        ignore: argument names that do not change the result (e.g. ``progress``).

    Returns:
        ``func`` wrapped by :meth:`joblib.Memory.cache` (``.clear()`` empties its cache); ``func``
        itself when ``$CELLREPRO_NO_CACHE`` is set.
    """
    import joblib

    if os.environ.get(OFF_ENV):
        return func
    folder = Path(location) if location is not None else globals()["location"]()
    memory = joblib.Memory(os.fspath(folder / package_hash()), verbose=0)
    return memory.cache(func, ignore=ignore)  # type: ignore[return-value]
