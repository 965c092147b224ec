"""Reading a saved state dict for a model, with errors that name the file and the keys that do not fit.

Shared by the networks that take a ``weights`` path (:class:`~cellrepro.nets.vgg_unet.VGGUNet`,
:func:`~cellrepro.nets.maskrcnn.build_spheroid_maskrcnn`); each words its own message about
which keys do not fit, from :func:`mismatch`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict saved at ``path`` (``weights_only=True``; one wrapped as ``{"state_dict": ...}`` is unwrapped).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a torch file, or holds something other than a dict of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights: no file {path} (expected a state dict saved with torch.save)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip or weights-only errors: all mean "not a state dict we can read"
        raise ValueError(f"weights: {path} is not a torch state dict ({type(exc).__name__}: {exc})") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"weights: {path} must hold a dict of tensors (a state dict), got {type(state).__name__}")
    return state


def mismatch(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> tuple[list[str], list[str], list[str]]:
    """Sorted keys of ``own`` missing from ``state``, keys of ``state`` not in ``own``, and shared keys of another shape.

    >>> mismatch({"a": torch.zeros(2), "b": torch.zeros(1)}, {"a": torch.zeros(3), "c": torch.zeros(1)})
    (['b'], ['c'], ['a'])
    """
    shared = set(own) & set(state)
    return (sorted(set(own) - set(state)), sorted(set(state) - set(own)),
            sorted(k for k in shared if tuple(own[k].shape) != tuple(state[k].shape)))
