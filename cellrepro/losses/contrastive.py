"""Contrastive losses of the organoid thesis (Sec. 3.4, Eq. 3.1-3.5).

* Global (Eq. 3.1): SimCLR's NT-Xent, i.e. MONAI's ``ContrastiveLoss`` (cosine similarity,
  temperature inside the exponent; the thesis prints it outside, a typo).
* Local (Eq. 3.2-3.5): supervised pixel contrast on decoder features, written here (MONAI has
  no pixel-level supervised contrastive loss).
"""

from __future__ import annotations

import torch


def global_contrastive(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """Eq. 3.1: NT-Xent of two (B, D) views, each image's other view its only positive."""
    from monai.losses import ContrastiveLoss

    return ContrastiveLoss(temperature=temperature)(z1, z2)


def local_contrastive(features: torch.Tensor, labels: torch.Tensor, temperature: float = 0.07,
                      block_size: int = 16) -> torch.Tensor:
    """Eq. 3.4-3.5: supervised contrast between pixels, within and between the images of a batch.

    For every anchor pixel (u, v) in Omega, the organoid pixels, the positives P(u, v) are the
    other pixels with the same label and the negatives N(u, v) those with the other label;
    positive pairs of background pixels are filtered out (background pixels are never anchors):

        loss = -1/|Omega| sum_{(u,v) in Omega} 1/|P(u,v)| log( sum_P exp(h.h_p / tau) / sum_N exp(h.h_n / tau) )

    as Eq. 3.4 prints it, with |P(u, v)| for the thesis's "P(u, v)" and the denominator over the
    negatives only. To bound the number of pairs the feature maps are cut into
    ``block_size`` x ``block_size`` blocks (Table 4.2: 16) and pairs are formed between the
    pixels of the same block position in all images of the batch; the loss is the mean over
    blocks that have an anchor with at least one positive and one negative.

    Args:
        features: (B, D, H, W) pixel embeddings (unit vectors, see ``LocalHead``).
        labels: (B, H, W) or (B, 1, H, W) binary masks (1 = organoid).

    Returns:
        A scalar; zero (with a gradient path) when no block has an anchor.
    """
    if labels.dim() == 4:
        labels = labels[:, 0]
    b, d, h, w = features.shape
    if labels.shape != (b, h, w):
        raise ValueError(f"labels {tuple(labels.shape)} do not match features {tuple(features.shape)}")
    s = block_size
    if h % s or w % s:
        raise ValueError(f"feature size {h}x{w} is not a multiple of the block size {s}")
    # (blocks, B * s * s, D) and (blocks, B * s * s)
    f = features.reshape(b, d, h // s, s, w // s, s).permute(2, 4, 0, 3, 5, 1).reshape(-1, b * s * s, d)
    y = labels.reshape(b, h // s, s, w // s, s).permute(1, 3, 0, 2, 4).reshape(-1, b * s * s).bool()
    sim = torch.exp(f @ f.transpose(1, 2) / temperature)  # (blocks, n, n)
    n = sim.shape[-1]
    not_self = ~torch.eye(n, dtype=torch.bool, device=f.device)
    same = (y[:, :, None] == y[:, None, :]) & not_self
    other = y[:, :, None] != y[:, None, :]
    pos_sum = (sim * same).sum(-1)
    neg_sum = (sim * other).sum(-1)
    n_pos = same.sum(-1)
    anchor = y & (n_pos > 0) & other.any(-1)  # organoid anchors with a positive and a negative
    per_anchor = torch.log(pos_sum.clamp_min(1e-30) / neg_sum.clamp_min(1e-30)) / n_pos.clamp_min(1)
    per_anchor = torch.where(anchor, per_anchor, torch.zeros_like(per_anchor))
    count = anchor.sum(-1)
    valid = count > 0
    if not valid.any():
        return features.sum() * 0.0
    per_block = -per_anchor.sum(-1)[valid] / count[valid]
    return per_block.mean()
