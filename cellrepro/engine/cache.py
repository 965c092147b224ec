"""Shared work computed once: a content-addressed cache keyed by the inputs and the code.

What several arms or notebooks reuse (a pre-trained encoder per seed, a translator, the views of
a stack, a reference arm's test-set predictions) goes through :func:`shared`, a thin layer on
:class:`joblib.Memory`. joblib hashes the call's arguments; the folder holds a hash of the
function's own source and one of every source file of the ``cellrepro`` package (joblib would not
see the code the function calls): change either and the cached work is recomputed, never served
from another version of the method.

The cache lives under ``$CELLREPRO_CACHE/shared`` (default ``~/.cache/cellrepro/shared``), beside
the synthetic data. ``CELLREPRO_NO_CACHE=1`` computes everything afresh (and stores nothing).

A run served partly from the cache is fast, so its wall time says nothing about what another seed
would cost. Every result therefore carries the seconds its computation took (without the shared
work it called, which carries its own), and :func:`cold_seconds` adds up, once per result, what
the results this process used took to compute: the time the same work costs from an empty cache.
Work done outside shared functions is not in that sum; with ``CELLREPRO_NO_CACHE`` set, a result
recomputed inside another counts each time it is computed.

>>> import tempfile, os
>>> calls = []
>>> def square(x):
...     calls.append(x)
...     return x * x
>>> f = shared(square, location=tempfile.mkdtemp())
>>> f(3), f(3), calls
(9, 9, [3])
>>> cold_seconds() >= 0.0
True
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
import uuid
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


#: Seconds each shared result used by this process took to compute, by the result's identity.
_LEDGER: dict[str, float] = {}
#: One frame per shared computation in progress: time spent in the shared calls it makes, and their parts.
_FRAMES: list[dict] = []


def cold_seconds(reset: bool = False) -> float:
    """Seconds the shared results this process used took to compute, each counted once: what
    the same work costs from an empty cache, whether it was computed now or served from it.
    ``reset`` starts a new count after reading this one.

    >>> import tempfile
    >>> _ = cold_seconds(reset=True)
    >>> slow = shared(lambda x: time.sleep(0.05) or x, location=tempfile.mkdtemp())
    >>> slow(1), slow(1), 0.05 <= cold_seconds() < 1.0  # computed once, served once: counted once
    (1, 1, True)
    """
    total = float(sum(_LEDGER.values()))
    if reset:
        _LEDGER.clear()
    return total


def _timed(func: Callable) -> Callable:
    """``func`` returning (its value, the seconds of its own computation by result identity,
    including those of the shared results it used)."""

    @functools.wraps(func)
    def timed(*args, **kwargs):
        frame = {"nested": 0.0, "parts": {}}
        _FRAMES.append(frame)
        start = time.perf_counter()
        try:
            value = func(*args, **kwargs)
        finally:
            _FRAMES.pop()
        own = max(0.0, time.perf_counter() - start - frame["nested"])
        return value, {**frame["parts"], uuid.uuid4().hex: own}

    return timed


def shared(func: F, *, location: str | os.PathLike | None = None, ignore: list[str] | None = None) -> F:
    """``func`` whose results are cached by (arguments, ``func``'s source, the package's code).

    The package's code and ``func``'s own source are part of the folder
    (``<location>/<package_hash>/<source hash>``), joblib keys the arguments.

    Args:
        func: a deterministic function of its arguments (seed included) whose result pickles.
        location: the cache folder (default :func:`location`).
        ignore: argument names that do not change the result (e.g. ``progress``).

    Returns:
        ``func`` through :meth:`joblib.Memory.cache` (``.clear()`` empties its cache; with
        ``$CELLREPRO_NO_CACHE`` set, ``func`` computed every time); either way the seconds of its
        results count in :func:`cold_seconds`.
    """
    import joblib
    from joblib.func_inspect import get_func_code

    timed = _timed(func)
    if os.environ.get(OFF_ENV):
        cached = timed
    else:
        folder = Path(location) if location is not None else globals()["location"]()
        # joblib keys a function by the code object it is given: the timing wrapper's, the same for
        # every shared function. The wrapped function's own source goes into the folder instead.
        own = hashlib.sha256(get_func_code(func)[0].encode()).hexdigest()[:16]
        cached = joblib.Memory(os.fspath(folder / package_hash() / own), verbose=0).cache(timed, ignore=ignore)

    @functools.wraps(func)
    def call(*args, **kwargs):
        start = time.perf_counter()
        value, parts = cached(*args, **kwargs)
        if _FRAMES:  # inside another shared computation: its own time excludes this call's
            _FRAMES[-1]["nested"] += time.perf_counter() - start
            _FRAMES[-1]["parts"].update(parts)
        _LEDGER.update(parts)
        return value

    call.clear = getattr(cached, "clear", lambda warn=True: None)  # type: ignore[attr-defined]
    return call  # type: ignore[return-value]
