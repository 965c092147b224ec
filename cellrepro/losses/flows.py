"""The Cellpose training loss: flow regression plus cell-probability classification.

Stringer et al., "Cellpose: a generalist algorithm for cellular segmentation", Nat. Methods 2021
(Methods, "Training"), the loss of the Cellpose branches of the multimodal paper (Wang et al.,
Sec. 2.3-2.4: phase contrast, DIC and large-cell brightfield) and of the MMCS paper's CPnet.

For a network output ``y`` (B, 3, H, W) = (dy, dx, cell-probability logit) and targets from
:func:`flow_targets` (unit flows of :func:`cellrepro.instances.masks_to_flows` and the
foreground)::

    L = flow_weight * MSE(y[:, :2], flow_scale * flows) + BCEWithLogits(y[:, 2], foreground)

with both means over every pixel of the batch (background pixels carry zero flow targets and
count in the MSE, as in Cellpose).

Choice (documented here, used everywhere in cellrepro): **we follow Cellpose and scale the flow
targets by 5** (:data:`FLOW_SCALE`), so a trained network predicts ``5 x`` unit flows and the
MSE term weighs about as much as the BCE term; ``flow_weight = 0.5`` is Cellpose's
``loss /= 2``. Our :func:`~cellrepro.instances.flows_to_masks` expects *unscaled* flows, so
:func:`cellrepro.nets.cellpose.predict_instances` divides the network's flows by the same
``flow_scale`` before following them.

Written here because neither MONAI nor kornia has this loss; it is ``torch.nn.functional``'s
``mse_loss`` and ``binary_cross_entropy_with_logits`` composed.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cellrepro.instances.flows import masks_to_flows

#: Cellpose multiplies its flow targets by 5 for training (and divides predictions by 5 before
#: following them); cellrepro does the same.
FLOW_SCALE = 5.0

#: Cellpose halves the flow MSE (``loss /= 2``) before adding the BCE.
FLOW_WEIGHT = 0.5


def flow_targets(masks, device: str | torch.device = "cpu") -> torch.Tensor:
    """Training targets (dy, dx, foreground) of label images, unscaled.

    Args:
        masks: (H, W) or (B, H, W) integer labels, 0 background (NumPy or torch).
        device: torch device for the heat diffusion and the result.

    Returns:
        float32 (3, H, W) or (B, 3, H, W): unit flows (dy, dx) of
        :func:`~cellrepro.instances.masks_to_flows` and the foreground in {0, 1}.

    Example (a 5 x 5 square: the flow points to its centre, the foreground is its 25 pixels):

    >>> m = np.zeros((7, 7), np.int32); m[1:6, 1:6] = 1
    >>> t = flow_targets(m)
    >>> tuple(t.shape), int(t[2].sum()), [round(float(v), 6) + 0.0 for v in t[:, 3, 1]]
    ((3, 7, 7), 25, [0.0, 1.0, 1.0])
    """
    arr = masks.detach().cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)
    if arr.ndim not in (2, 3):
        raise ValueError(f"masks must have shape (H, W) or (B, H, W), got {arr.shape}")
    batch = arr if arr.ndim == 3 else arr[None]
    out = []
    for m in batch:
        flows = torch.from_numpy(masks_to_flows(m, device=device))
        fg = torch.from_numpy(np.asarray(m) > 0).to(torch.float32)[None]
        out.append(torch.cat((flows, fg)))
    stacked = torch.stack(out).to(device)
    return stacked if arr.ndim == 3 else stacked[0]


def _check(output: torch.Tensor, target: torch.Tensor, flow_scale: float, flow_weight: float) -> None:
    if output.ndim != 4 or output.shape[1] != 3:
        raise ValueError(f"output must have shape (B, 3, H, W) (dy, dx, logit), got {tuple(output.shape)}")
    if tuple(target.shape) != tuple(output.shape):
        raise ValueError(f"target must have the output's shape {tuple(output.shape)} (dy, dx, foreground), "
                         f"got {tuple(target.shape)}")
    if not flow_scale > 0:
        raise ValueError(f"flow_scale must be > 0, got {flow_scale}")
    if not flow_weight >= 0:
        raise ValueError(f"flow_weight must be >= 0, got {flow_weight}")


def cellpose_loss_terms(output: torch.Tensor, target: torch.Tensor, flow_scale: float = FLOW_SCALE,
                        flow_weight: float = FLOW_WEIGHT) -> dict[str, torch.Tensor]:
    """The two terms of the Cellpose loss, ``{"flow": ..., "cellprob": ...}`` (their sum is the loss).

    Args:
        output: (B, 3, H, W) network output: flows (dy, dx) in the scaled units, and the
            cell-probability logit.
        target: (B, 3, H, W) from :func:`flow_targets`: *unit* flows and foreground in {0, 1}
            (values > 0.5 count as foreground).
        flow_scale: the flow targets are multiplied by it (5 as Cellpose).
        flow_weight: weight of the flow MSE (0.5 as Cellpose).

    Returns:
        ``flow = flow_weight * mean((output[:, :2] - flow_scale * target[:, :2]) ** 2)`` and
        ``cellprob = mean(BCEWithLogits(output[:, 2], target[:, 2] > 0.5))``, scalars.

    Example (a property: with zero predictions, the flow term is
    ``flow_weight * flow_scale**2 * f / 2`` for a foreground fraction ``f``, since unit flows
    have ``dy**2 + dx**2 = 1`` on the foreground, and the BCE of a zero logit is ``log 2``):

    >>> m = np.zeros((1, 8, 8), np.int32); m[0, 2:6, 2:6] = 1      # f = 16 / 64
    >>> terms = cellpose_loss_terms(torch.zeros(1, 3, 8, 8), flow_targets(m))
    >>> round(float(terms["flow"]), 6), round(float(terms["cellprob"]), 6)   # 0.5 * 25 * 0.25 / 2, log 2
    (1.5625, 0.693147)
    """
    _check(output, target, flow_scale, flow_weight)
    flow = F.mse_loss(output[:, :2], flow_scale * target[:, :2].to(output.dtype))
    cellprob = F.binary_cross_entropy_with_logits(output[:, 2], (target[:, 2] > 0.5).to(output.dtype))
    return {"flow": flow_weight * flow, "cellprob": cellprob}


def cellpose_loss(output: torch.Tensor, target: torch.Tensor, flow_scale: float = FLOW_SCALE,
                  flow_weight: float = FLOW_WEIGHT) -> torch.Tensor:
    """The Cellpose loss, the sum of :func:`cellpose_loss_terms` (same arguments).

    Example (a perfect prediction: scaled flows and confident logits leave almost nothing):

    >>> m = np.zeros((1, 8, 8), np.int32); m[0, 2:6, 2:6] = 1
    >>> t = flow_targets(m)
    >>> perfect = torch.cat((5 * t[:, :2], 40 * (2 * t[:, 2:] - 1)), 1)
    >>> float(cellpose_loss(perfect, t)) < 1e-12
    True
    """
    terms = cellpose_loss_terms(output, target, flow_scale, flow_weight)
    return terms["flow"] + terms["cellprob"]


class CellposeLoss(nn.Module):
    """:func:`cellpose_loss` as a module (``flow_scale``, ``flow_weight`` fixed at construction)."""

    def __init__(self, flow_scale: float = FLOW_SCALE, flow_weight: float = FLOW_WEIGHT):
        super().__init__()
        if not flow_scale > 0:
            raise ValueError(f"flow_scale must be > 0, got {flow_scale}")
        if not flow_weight >= 0:
            raise ValueError(f"flow_weight must be >= 0, got {flow_weight}")
        self.flow_scale = float(flow_scale)
        self.flow_weight = float(flow_weight)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return cellpose_loss(output, target, self.flow_scale, self.flow_weight)
