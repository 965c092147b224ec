"""Training checkpoints: atomic writes, newest-valid lookup, RNG states that load with weights_only.

A checkpoint is a plain dict of tensors and Python primitives, so that
``torch.load(path, weights_only=True)`` can read it: NumPy's RNG state is stored with its
key array as a tensor, and the training history as a dict of lists. Files are named
``step-0000100.ckpt`` and written to a temporary name first, then renamed, so a run killed
while writing leaves the previous checkpoint intact.
"""

from __future__ import annotations

import logging
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import atomic_path

log = logging.getLogger(__name__)

_NAME = re.compile(r"^step-(\d{7,})\.ckpt$")


def capture_rng() -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's (CPU and CUDA) generators, ready for ``torch.save``."""
    return portable_rng(raw_rng())


def raw_rng() -> dict[str, Any]:
    """The generators' states as the libraries return them: cheap to take (a training loop
    takes one per epoch); :func:`portable_rng` makes one storable. CUDA's is taken once CUDA
    is in use (``torch.cuda.is_available`` can cost a millisecond per call)."""
    state: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def portable_rng(raw: dict[str, Any]) -> dict[str, Any]:
    """A :func:`raw_rng` state as tensors and Python primitives (loads with ``weights_only=True``)."""
    name, keys, pos, has_gauss, cached = raw["numpy"]
    state = dict(raw)
    state["python"] = _tuples_to_lists(raw["python"])
    state["numpy"] = {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached": float(cached)}
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    random.setstate(_lists_to_tuples(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples_to_lists(obj: Any) -> Any:
    return [_tuples_to_lists(o) for o in obj] if isinstance(obj, (tuple, list)) else obj


def _lists_to_tuples(obj: Any) -> Any:
    return tuple(_lists_to_tuples(o) for o in obj) if isinstance(obj, list) else obj


def checkpoint_path(folder: str | os.PathLike, step: int) -> Path:
    return Path(folder) / f"step-{step:07d}.ckpt"


def save(folder: str | os.PathLike, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``state`` atomically as the checkpoint of ``step``; keep the ``keep`` newest."""
    path = checkpoint_path(folder, step)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    for old in list_checkpoints(folder)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    log.info("checkpoint written: %s", path)
    return path


def list_checkpoints(folder: str | os.PathLike) -> list[Path]:
    """Complete checkpoints in ``folder``, oldest first (temporary files are ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def load_latest(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The newest checkpoint in ``folder`` that loads, or None when there is none.

    Loaded with ``weights_only=True`` onto the CPU; a file that does not load (truncated by
    something other than this module) is skipped with a warning and the next older one used.
    """
    for path in reversed(list_checkpoints(folder)):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises several types for a damaged file
            log.warning("skipping unreadable checkpoint %s (%s)", path, err)
            continue
        state["path"] = str(path)
        return state
    return None
