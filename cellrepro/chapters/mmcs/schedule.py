"""The MMCS learning-rate schedule (Hu et al., Sec. 4.1, 4.5 "Optimization", Table 10).

SGD at 0.1 (momentum 0.9, weight decay 1e-5); the rate rises linearly from zero over the first ten
epochs (Cellpose's ``np.linspace(0, lr, 10)``); it then stays at 0.1, unless an annealing schedule
starts at some epoch, from which it is halved every hundred epochs down to 0.0016 ("halving every
100 epochs over the last 1000 epochs"; 0.1 / 2^6 = 0.0016). As in Cellpose, the first halving falls
on the start epoch itself. The unit is whatever the caller steps the scheduler by: this project's
loops step it once per optimiser update, and the notebooks map the paper's epochs to updates in
proportion to the whole run.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

LR = 0.1
LR_MIN = 0.0016
MOMENTUM = 0.9
WEIGHT_DECAY = 1e-5


def lr_at(epoch: int, lr: float = LR, warmup: int = 10, decay_start: int | None = None, halve_every: int = 100,
          lr_min: float = LR_MIN) -> float:
    """The learning rate at ``epoch`` (0-based).

    Example (the paper's Table 6 schedule: warm-up over 10 epochs, halving from epoch 2000):

    >>> [round(lr_at(e, decay_start=2000), 6) for e in (0, 5, 9, 1999, 2000, 2099, 2100, 2499, 2500)]
    [0.0, 0.055556, 0.1, 0.1, 0.05, 0.05, 0.025, 0.003125, 0.0016]
    """
    if epoch < 0 or warmup < 0 or halve_every < 1 or not lr > 0 or not 0 <= lr_min <= lr:
        raise ValueError(f"need epoch >= 0, warmup >= 0, halve_every >= 1, lr > 0 and 0 <= lr_min <= lr; got "
                         f"{epoch}, {warmup}, {halve_every}, {lr}, {lr_min}")
    if epoch < warmup and warmup > 1:
        return lr * epoch / (warmup - 1)
    if decay_start is None or epoch < decay_start:
        return lr
    halvings = (epoch - decay_start) // halve_every + 1
    return max(lr * math.pow(0.5, halvings), lr_min)


def sgd(params, lr: float = LR) -> torch.optim.SGD:
    """The paper's optimiser: SGD, momentum 0.9, weight decay 1e-5."""
    return torch.optim.SGD(params, lr=lr, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)


def scheduler(optimizer: torch.optim.Optimizer, warmup: int = 10, decay_start: int | None = None,
              halve_every: int = 100, lr_min: float = LR_MIN) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` giving :func:`lr_at` (relative to the optimiser's initial rate), stepped once per update."""
    base = optimizer.param_groups[0]["lr"]
    factor: Callable[[int], float] = lambda e: lr_at(e, base, warmup, decay_start, halve_every, lr_min) / base
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


__all__ = ["LR", "LR_MIN", "MOMENTUM", "WEIGHT_DECAY", "lr_at", "scheduler", "sgd"]
