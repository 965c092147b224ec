"""Temporal ensembling of pseudo labels and the MMCS loss (Hu et al., Sec. 3.2 Eq. 1 and Sec. 4.5).

Temporal ensembling (Laine & Aila, "Temporal ensembling for semi-supervised learning", ICLR 2017)
keeps, for every unlabelled image, an exponential moving average ``Z`` of the network's past
predictions and trains the network towards it. MMCS uses it for pseudo labels: ``Z`` starts as the
predictions of the phase-1 (labelled-only) model, and every N epochs the current network's
predictions are accumulated into it (Sec. 4.5, "every 100 epochs"); the unlabelled loss compares the
current prediction with ``Z``. Laine & Aila start ``Z`` at zero and divide by ``1 - alpha^t`` to undo
that start; MMCS starts from real predictions, so no correction is needed (or applied). The paper
gives no ``alpha``; Laine & Aila's 0.6 is the default here.

What is averaged, for a Cellpose-style network: the flows in the network's output units and the cell
probability ``sigmoid(logit)`` (not the logit: averaging probabilities is Laine & Aila's choice, and
keeps ``Z`` a valid soft target). :func:`ensemble_loss` is the Cellpose loss with these soft targets
(flow MSE, BCE-with-logits against the probability), "MSE, BCEWithLogits" as the paper's Table 10.

The total loss is Eq. 1, ``(1 - w) L(theta, L) + w L(theta, U)`` (:func:`weighted_loss`).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ..losses.flows import FLOW_WEIGHT

ALPHA = 0.6
"""Ensemble momentum of Laine & Aila (2017); the MMCS paper does not give one."""


def ensemble_update(ensemble: torch.Tensor, prediction: torch.Tensor, alpha: float = ALPHA) -> torch.Tensor:
    """One temporal-ensembling step, ``Z <- alpha Z + (1 - alpha) z`` (a new tensor).

    Example (from Z = 1, three predictions of 0 with alpha 0.5 give 0.5, 0.25, 0.125):

    >>> z = torch.ones(1)
    >>> for _ in range(3):
    ...     z = ensemble_update(z, torch.zeros(1), 0.5)
    ...     print(float(z))
    0.5
    0.25
    0.125
    """
    if not 0.0 <= alpha < 1.0:
        raise ValueError(f"alpha must be in [0, 1), got {alpha}")
    if ensemble.shape != prediction.shape:
        raise ValueError(f"prediction shape {tuple(prediction.shape)} differs from the ensemble's {tuple(ensemble.shape)}")
    return alpha * ensemble + (1.0 - alpha) * prediction.to(ensemble)


def as_soft_target(output: torch.Tensor) -> torch.Tensor:
    """A Cellpose-style output (..., 3, H, W) = (dy, dx, logit) as (dy, dx, probability)."""
    if output.shape[-3] != 3:
        raise ValueError(f"output must have 3 channels (dy, dx, logit) at dim -3, got shape {tuple(output.shape)}")
    return torch.cat((output[..., :2, :, :], torch.sigmoid(output[..., 2:, :, :])), -3)


class TemporalEnsemble:
    """Per-image ensembles ``Z_i`` of (dy, dx, probability) maps, refreshed by :meth:`update`.

    Args:
        initial: one (3, H, W) network *output* (dy, dx, logit) per unlabelled image, e.g. from the
            phase-1 model; converted with :func:`as_soft_target`.
        alpha: the ensemble momentum.

    ``updates`` counts the refreshes; ``targets`` is the list of current ``Z_i`` (same order).
    """

    def __init__(self, initial: Sequence[torch.Tensor], alpha: float = ALPHA):
        if not initial:
            raise ValueError("initial is empty: temporal ensembling needs at least one unlabelled image")
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"alpha must be in [0, 1), got {alpha}")
        self.alpha = float(alpha)
        self.targets = [as_soft_target(o.detach().float()) for o in initial]
        self.updates = 0

    def __len__(self) -> int:
        return len(self.targets)

    def update(self, outputs: Sequence[torch.Tensor]) -> None:
        """Accumulate the current network's outputs (one per image, same order) into the ensembles."""
        if len(outputs) != len(self.targets):
            raise ValueError(f"got {len(outputs)} outputs for {len(self.targets)} ensembles")
        self.targets = [ensemble_update(z, as_soft_target(o.detach().float()), self.alpha)
                        for z, o in zip(self.targets, outputs)]
        self.updates += 1


def ensemble_loss(output: torch.Tensor, target: torch.Tensor, flow_weight: float = FLOW_WEIGHT) -> torch.Tensor:
    """The unlabelled term: Cellpose's loss against a soft ensemble target.

    Args:
        output: (B, 3, H, W) network output (dy, dx in output units, logit).
        target: (B, 3, H, W) ensemble (dy, dx in output units, probability in [0, 1]).

    Returns:
        ``flow_weight * mean((output[:, :2] - target[:, :2])**2) + mean(BCEWithLogits(output[:, 2], target[:, 2]))``.

    Example (a property: the BCE against a soft target p is smallest at logit(p), where it is the
    entropy of p; for p = 1/2 and zero flows that is log 2):

    >>> t = torch.zeros(1, 3, 4, 4); t[:, 2] = 0.5
    >>> round(float(ensemble_loss(torch.zeros(1, 3, 4, 4), t)), 6)
    0.693147
    """
    if output.ndim != 4 or output.shape[1] != 3 or target.shape != output.shape:
        raise ValueError(f"output and target must both be (B, 3, H, W); got {tuple(output.shape)} and {tuple(target.shape)}")
    target = target.to(output.dtype)
    flow = F.mse_loss(output[:, :2], target[:, :2])
    cellprob = F.binary_cross_entropy_with_logits(output[:, 2], target[:, 2])
    return flow_weight * flow + cellprob


def weighted_loss(labelled: torch.Tensor, unlabelled: torch.Tensor, w: float) -> torch.Tensor:
    """Eq. 1 of the MMCS paper: ``(1 - w) L(theta, L) + w L(theta, U)``.

    Example (w = 0 is supervised training; w = 0.4, the paper's best on its own data):

    >>> [round(float(weighted_loss(torch.tensor(2.0), torch.tensor(1.0), w)), 6) for w in (0.0, 0.4)]
    [2.0, 1.6]
    """
    if not 0.0 <= w <= 1.0:
        raise ValueError(f"w must be in [0, 1], got {w}")
    return (1.0 - w) * labelled + w * unlabelled


__all__ = ["ALPHA", "TemporalEnsemble", "as_soft_target", "ensemble_loss", "ensemble_update", "weighted_loss"]
