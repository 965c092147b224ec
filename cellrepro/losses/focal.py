"""Focal losses reweighted by an overlap probability map (brightfield thesis, Eq. 4.5 and Eq. 5.1).

The thesis trains its overlap head with the binary focal loss of Lin et al. ("Focal Loss for Dense
Object Detection", 2017), reweighted by a per-pixel map ``P`` (:mod:`cellrepro.chapters.brightfield.overlap`)
in one of two ways. With ``p = sigmoid(logit)``:

* Eq. 4.5, *label reweighting*: the label becomes ``y' = y (1 - P)`` inside the focal loss,
  ``L(y', p) = -a (1 - p)^g y' log p - (1 - a) p^g (1 - y') log(1 - p)``, averaged over the pixels;
* Eq. 5.1, *loss reweighting*: ``(1 / N) sum_i P(i) L(y_i, p_i)`` with the hard labels.

``P = 0`` in Eq. 4.5, and ``P = 1`` in Eq. 5.1, leave Lin et al.'s loss. The thesis gives no
values for ``a`` (alpha) and ``g`` (gamma); the defaults are Lin et al.'s, 0.25 and 2.

Why Eq. 4.5 is written here in torch rather than with MONAI: ``y'`` is a soft label, and MONAI's
``sigmoid_focal_loss`` builds its modulating factor ``(1 - p_t)^g`` and its alpha factor from the
blended target (``p_t`` from ``2 y' - 1``, alpha ``y' a + (1 - y')(1 - a)``) and multiplies them
into one cross-entropy, where Eq. 4.5 keeps a positive and a negative term, each with its own
factor. The two agree only on hard labels (at ``y' = 0.5`` MONAI's factor is ``0.5^g`` whatever
``p`` is). Eq. 5.1 has hard labels, so it is MONAI's ``sigmoid_focal_loss`` times ``P``; MONAI's
``FocalLoss`` class itself cannot, because its ``weight`` is per class, not per pixel.

Where the thesis's prose and Eq. 4.5 part: the prose says the loss is multiplied by ``1 - P``
(after Caliva et al.) so that predictions where overlaps are likely are punished less, which would
weight the negative term; the equation instead moves mass from the positive to the negative term
on positive pixels only. We implement the equation. As a result the map matters only where
``y = 1``, and a map that is 1 on the annotated overlap (v2, v3, v4) makes every overlap label 0.

>>> import torch
>>> from monai.losses.focal_loss import sigmoid_focal_loss
>>> logits, y = torch.tensor([[-2.0, 0.5], [1.0, 3.0]]), torch.tensor([[0.0, 1.0], [0.0, 1.0]])
>>> plain = sigmoid_focal_loss(logits, y, gamma=2.0, alpha=0.25).mean()
>>> bool(torch.isclose(label_reweighted_focal_loss(logits, y, torch.zeros(2, 2)), plain))  # P = 0
True
>>> bool(torch.isclose(loss_reweighted_focal_loss(logits, y, torch.ones(2, 2)), plain))     # P = 1
True
>>> P = torch.full((2, 2), 0.5)   # gamma 0 and alpha 0.5: half the cross-entropy with the label y (1 - P)
>>> bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y * (1 - P))
>>> bool(torch.isclose(label_reweighted_focal_loss(logits, y, P, gamma=0.0, alpha=0.5), bce / 2))
True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

GAMMA = 2.0
ALPHA = 0.25
"""Lin et al.'s defaults (the thesis gives no values)."""

REWEIGHTS = ("label", "loss", "negative")
REDUCTIONS = ("mean", "sum", "none")


def focal_terms(logits: torch.Tensor, target: torch.Tensor, gamma: float = GAMMA, alpha: float = ALPHA,
                negative_weight: torch.Tensor | float = 1.0) -> torch.Tensor:
    """Element-wise ``L(t, p)`` of Eq. 4.5 for soft targets ``t`` in [0, 1], ``p = sigmoid(logits)``.

    ``-a (1 - p)^g t log p - w (1 - a) p^g (1 - t) log(1 - p)``, computed from ``logsigmoid`` so that
    large logits stay finite; ``w`` (``negative_weight``, default 1) scales the negative term only.
    Same shape as ``logits``; float32 (or float64 for float64 logits).
    """
    x = logits if logits.dtype == torch.float64 else logits.float()
    t = target.to(x.dtype)
    w = negative_weight.to(x.dtype) if isinstance(negative_weight, torch.Tensor) else negative_weight
    log_p, log_q = F.logsigmoid(x), F.logsigmoid(-x)
    positive = -alpha * torch.exp(gamma * log_q) * t * log_p
    negative = -(1 - alpha) * torch.exp(gamma * log_p) * (1 - t) * w * log_q
    return positive + negative


def label_reweighted_focal_loss(logits: torch.Tensor, target: torch.Tensor, prob: torch.Tensor, gamma: float = GAMMA,
                                alpha: float = ALPHA, reduction: str = "mean") -> torch.Tensor:
    """Eq. 4.5 of the brightfield thesis: the focal loss on the reweighted label ``y' = y (1 - P)``.

    Args:
        logits: (B, C, H, W), or any shape: raw scores (one sigmoid per element).
        target: same shape, labels in [0, 1].
        prob: the overlap probability map ``P`` in [0, 1], broadcastable to ``logits`` (e.g. (B, 1, H, W)).
        gamma, alpha: the focal loss's exponent (>= 0) and positive-class weight (in [0, 1]).
        reduction: "mean" (the thesis), "sum" or "none".
    """
    prob = _check(logits, target, prob, gamma, alpha, reduction, low=0.0, high=1.0)
    return _reduce(focal_terms(logits, target * (1 - prob), gamma, alpha), reduction)


def negative_reweighted_focal_loss(logits: torch.Tensor, target: torch.Tensor, prob: torch.Tensor,
                                   gamma: float = GAMMA, alpha: float = ALPHA, reduction: str = "mean") -> torch.Tensor:
    """The reading of Sec. 4.3's prose rather than of Eq. 4.5's symbols: the negative term weighted by
    ``1 - P``, ``-a (1 - p)^g y log p - (1 - a) p^g (1 - y) (1 - P) log(1 - p)``.

    The prose: "we recompute the loss by multiplying it by 1 - P. As a result, we degrade values where
    the confidence of the overlap region is high and continuously punish the model more for predicting
    high values in regions of low confidence". Predicting a high value is punished by the negative term
    only, so that term carries ``1 - P``; the positive term keeps the hard label (with the equation's
    ``y (1 - P)`` a map that is 1 on the overlap removes every positive label). Our reading, not the
    thesis's equation; arguments as :func:`label_reweighted_focal_loss`.

    >>> x, y = torch.tensor([0.3, -1.0]), torch.tensor([1.0, 0.0])
    >>> bool(torch.isclose(negative_reweighted_focal_loss(x, y, torch.zeros(2)),
    ...                    label_reweighted_focal_loss(x, y, torch.zeros(2))))   # P = 0: Lin et al.'s loss
    True
    >>> float(negative_reweighted_focal_loss(x, y, torch.ones(2), reduction="none")[1])   # a negative at P = 1
    0.0
    """
    prob = _check(logits, target, prob, gamma, alpha, reduction, low=0.0, high=1.0)
    return _reduce(focal_terms(logits, target, gamma, alpha, negative_weight=1 - prob), reduction)


def loss_reweighted_focal_loss(logits: torch.Tensor, target: torch.Tensor, prob: torch.Tensor, gamma: float = GAMMA,
                               alpha: float = ALPHA, reduction: str = "mean") -> torch.Tensor:
    """Eq. 5.1 of the brightfield thesis: the per-pixel focal loss weighted by ``P``, ``mean(P * L(y, p))``.

    The focal loss is MONAI's ``sigmoid_focal_loss`` (hard labels, so it equals Eq. 4.5's ``L``).
    Arguments as :func:`label_reweighted_focal_loss`, except that ``target`` must be 0/1 and ``prob``
    may be any non-negative weight (the thesis uses the map, in [0, 1]).
    """
    from monai.losses.focal_loss import sigmoid_focal_loss

    prob = _check(logits, target, prob, gamma, alpha, reduction, low=0.0, high=None)
    if not ((target == 0) | (target == 1)).all():
        raise ValueError("target: Eq. 5.1 takes hard 0/1 labels (MONAI's focal loss differs from Eq. 4.5 on soft ones)")
    x = logits if logits.dtype == torch.float64 else logits.float()
    terms = sigmoid_focal_loss(x, target.to(x.dtype), gamma=gamma, alpha=alpha)
    return _reduce(prob.to(x.dtype) * terms, reduction)


class OverlapFocalLoss(nn.Module):
    """The thesis's overlap loss as a module: ``reweight="label"`` is Eq. 4.5, ``"loss"`` is Eq. 5.1,
    ``"negative"`` the prose's reading of Eq. 4.5 (:func:`negative_reweighted_focal_loss`).

    ``forward(logits, target, prob)``; see :func:`label_reweighted_focal_loss`.

    >>> import torch
    >>> loss = OverlapFocalLoss("loss")
    >>> float(loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)))  # weight 0
    0.0
    """

    def __init__(self, reweight: str = "label", gamma: float = GAMMA, alpha: float = ALPHA, reduction: str = "mean"):
        super().__init__()
        if reweight not in REWEIGHTS:
            raise ValueError(f"reweight: expected one of {', '.join(REWEIGHTS)} (Eq. 4.5, Eq. 5.1, Eq. 4.5 as the "
                             f"prose reads), got {reweight!r}")
        self.reweight, self.gamma, self.alpha, self.reduction = reweight, gamma, alpha, reduction

    def forward(self, logits: torch.Tensor, target: torch.Tensor, prob: torch.Tensor) -> torch.Tensor:
        fn = {"label": label_reweighted_focal_loss, "loss": loss_reweighted_focal_loss,
              "negative": negative_reweighted_focal_loss}[self.reweight]
        return fn(logits, target, prob, gamma=self.gamma, alpha=self.alpha, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"reweight={self.reweight!r}, gamma={self.gamma}, alpha={self.alpha}, reduction={self.reduction!r}"


def _check(logits, target, prob, gamma, alpha, reduction, low: float, high: float | None) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor):
        raise ValueError(f"logits: expected a torch.Tensor, got {type(logits).__name__}")
    if not isinstance(target, torch.Tensor) or target.shape != logits.shape:
        shape = tuple(target.shape) if isinstance(target, torch.Tensor) else type(target).__name__
        raise ValueError(f"target: expected the shape of logits {tuple(logits.shape)}, got {shape}")
    if not (float(gamma) >= 0):
        raise ValueError(f"gamma: expected a number >= 0, got {gamma!r}")
    if not (0 <= float(alpha) <= 1):
        raise ValueError(f"alpha: expected a number in [0, 1], got {alpha!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    if ((target < 0) | (target > 1)).any():
        raise ValueError("target: expected labels in [0, 1]")
    prob = torch.as_tensor(prob, device=logits.device)
    if not prob.is_floating_point():
        prob = prob.float()
    try:
        torch.broadcast_shapes(prob.shape, logits.shape)
    except RuntimeError:
        raise ValueError(f"prob: shape {tuple(prob.shape)} does not broadcast to {tuple(logits.shape)}") from None
    if torch.broadcast_shapes(prob.shape, logits.shape) != logits.shape:
        raise ValueError(f"prob: shape {tuple(prob.shape)} would enlarge the logits' {tuple(logits.shape)}")
    bad = ~torch.isfinite(prob) | (prob < low)
    if high is not None:
        bad |= prob > high
    if bad.any():
        span = f"[{low:g}, {high:g}]" if high is not None else f">= {low:g}"
        raise ValueError(f"prob: expected finite values {span}")
    return prob


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values
