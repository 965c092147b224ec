"""Training history and non-finite checks that do not stall the GPU.

:func:`cellrepro.engine.train.fit` logs one row per optimizer update. Calling ``float()`` on a CUDA
tensor waits for the GPU to finish everything queued, so doing it for every logged value and
every NaN check each step keeps the GPU idle between steps. :class:`History` holds the values
as detached 0-d tensors and converts them together every ``every`` updates (one copy per
device), checking them for NaN/inf in the order they were produced, so the error names the
first bad step and term.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch

from .. import CellreproError


class NonFiniteLoss(CellreproError, FloatingPointError):
    """A loss term became NaN or infinite; the message names the step and the term."""


def check_finite(values: Mapping[str, Any], step: int) -> None:
    """Raise :class:`NonFiniteLoss` naming the step and the first non-finite term."""
    for name, value in values.items():
        v = float(value.detach().float().mean()) if isinstance(value, torch.Tensor) else float(value)
        if not math.isfinite(v):
            raise NonFiniteLoss(f"training stopped at step {step}: loss term '{name}' is {v}")


def _scalar(value: Any) -> Any:
    """A logged value as a detached 0-d float tensor (no host sync) or a Python float."""
    if not isinstance(value, torch.Tensor):
        return float(value)
    value = value.detach()
    if value.dim():
        return value.float().mean()
    return value if value.dtype == torch.float32 else value.float()


def _floats(values: list[Any]) -> list[float]:
    """Python floats of 0-d tensors and numbers: one device-to-host copy per device."""
    out: list[Any] = [v if not isinstance(v, torch.Tensor) else None for v in values]
    by_device: dict[torch.device, list[int]] = {}
    for i, v in enumerate(values):
        if isinstance(v, torch.Tensor):
            by_device.setdefault(v.device, []).append(i)
    for idx in by_device.values():
        for i, f in zip(idx, torch.stack([values[i] for i in idx]).tolist()):
            out[i] = f
    return out


class History:
    """History rows and non-finite checks, held as device tensors and turned into floats every
    ``every`` updates, so that training does not wait for the GPU after each step."""

    def __init__(self, every: int, rows: list[dict[str, Any]]):
        self.every, self.rows = every, rows
        self.watched: list[tuple[int, str, Any]] = []  # (step, term, value), in the order seen
        self.pending: list[tuple[dict[str, Any], dict[str, list[Any]], dict[str, Any]]] = []

    def watch(self, step: int, values: Mapping[str, Any]) -> dict[str, Any]:
        """Queue ``values`` for the non-finite check (run now when logging every update)."""
        scalars = {k: _scalar(v) for k, v in values.items()}
        self.watched += [(step, k, v) for k, v in scalars.items()]
        if self.every == 1:
            self._check(_floats([v for *_, v in self.watched]), step)
        return scalars

    def add(self, head: dict[str, Any], logged: dict[str, list[Any]], tail: dict[str, Any]) -> None:
        self.pending.append((head, logged, tail))

    def _check(self, floats: list[float], now: int) -> None:
        for (step, name, _), v in zip(self.watched, floats):
            if not math.isfinite(v):
                late = f" (found at step {now}: values are checked every {self.every} updates)" if now != step else ""
                raise NonFiniteLoss(f"training stopped at step {step}: loss term '{name}' is {v}{late}")
        self.watched = []

    def flush(self, now: int) -> dict[str, float]:
        """Check and convert everything queued; return the last row's logged means."""
        logged = [v for _, values, _ in self.pending for vs in values.values() for v in vs]
        floats = _floats([v for *_, v in self.watched] + logged)
        self._check(floats[:len(self.watched)], now)
        it, last = iter(floats[len(floats) - len(logged):]), {}
        for head, values, tail in self.pending:
            last = {k: sum(next(it) for _ in vs) / len(vs) for k, vs in values.items()}
            self.rows.append({**head, **last, **tail})
        self.pending = []
        return last
