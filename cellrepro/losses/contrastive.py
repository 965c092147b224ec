"""Contrastive losses of the organoid thesis (Sec. 3.4, Eq. 3.1-3.5).

* Global (Eq. 3.1): SimCLR's NT-Xent, i.e. MONAI's ``ContrastiveLoss`` (cosine similarity,
  temperature inside the exponent; the thesis prints it outside, a typo).
* Local (Eq. 3.2-3.5): supervised pixel contrast on decoder features, written here (MONAI has
  no pixel-level supervised contrastive loss). Two forms: Hu et al.'s (the method the thesis
  says it follows, the default) and Eq. 3.4 as the thesis prints it (an ablation).
"""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint

LOCAL_FORMS = ("hu", "literal")


def global_contrastive(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """Eq. 3.1: NT-Xent of two (B, D) views, each image's other view its only positive."""
    from monai.losses import ContrastiveLoss

    return ContrastiveLoss(temperature=temperature)(z1, z2)


def _blocks(features: torch.Tensor, labels: torch.Tensor, s: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(blocks, B * s * s, D) features and (blocks, B * s * s) labels: the pixels at one block
    position in every image of the batch form one group."""
    b, d, h, w = features.shape
    f = features.reshape(b, d, h // s, s, w // s, s).permute(2, 4, 0, 3, 5, 1).reshape(-1, b * s * s, d)
    y = labels.reshape(b, h // s, s, w // s, s).permute(1, 3, 0, 2, 4).reshape(-1, b * s * s)
    return f, y


def _chunk_loss(f: torch.Tensor, y: torch.Tensor, temperature: float, form: str) -> torch.Tensor:
    """Sum over the foreground anchors of one chunk of blocks, and their count (as a 2-vector).

    Only foreground rows of the similarity matrix are formed (background pixels are never
    anchors); the positive and negative sums are matrix-vector products of ``exp`` of that
    matrix with the label vector. Similarities are shifted by 1/tau (unit vectors: s <= 1) so
    every exponent is <= 0. The anchor set has a data-dependent size, so each block costs one
    ``nonzero`` (a host sync on a GPU); this is the price of never forming background rows.
    """
    f = f.float()
    fg = y > 0.5                                     # (blocks, n)
    n_fg = fg.sum(-1, keepdim=True)                  # positives of an anchor: the other fg pixels
    n_pos = (n_fg - 1).float()                       # (blocks, 1)
    n_neg = (~fg).sum(-1, keepdim=True).float()
    total = f.new_zeros(())
    count = f.new_zeros(())
    for k in range(f.shape[0]):
        idx = fg[k].nonzero().squeeze(1)
        if idx.numel() < 2:                           # an anchor needs a positive
            continue
        if form == "literal" and n_neg[k] == 0:       # Eq. 3.4 needs a negative in the denominator
            continue
        anchors = f[k, idx]                           # (m, D)
        logits = (anchors @ f[k].T - 1.0) / temperature   # (m, n), <= 0 for unit vectors
        e = torch.exp(logits)
        self_logit = ((anchors * anchors).sum(-1) - 1.0) / temperature
        self_e = torch.exp(self_logit)
        yk = fg[k].to(e.dtype)
        pos_e = e @ yk - self_e                       # sum over P(u, v): fg pixels except the anchor
        if form == "literal":
            neg_e = e @ (1.0 - yk)                    # sum over N(u, v)
            per_anchor = (torch.log(pos_e.clamp_min(1e-30)) - torch.log(neg_e.clamp_min(1e-30))) / n_pos[k]
        else:
            pos_logit = (logits @ yk - self_logit) / n_pos[k]   # mean over P of s_ip / tau (shifted)
            denominator = torch.log((e.sum(-1) - self_e).clamp_min(1e-30))  # all k != i
            per_anchor = pos_logit - denominator
        total = total - per_anchor.sum()
        count = count + idx.numel()
    return torch.stack([total, count])


def local_contrastive(features: torch.Tensor, labels: torch.Tensor, temperature: float = 0.07,
                      block_size: int = 16, form: str = "hu", chunk: int = 8) -> torch.Tensor:
    """Eq. 3.4-3.5: supervised contrast between pixels, within and between the images of a batch.

    Anchors are the organoid pixels (positive pairs of background pixels are filtered out, so
    background pixels are never anchors); the positives P(u, v) of an anchor are the other
    organoid pixels of its group and the negatives N(u, v) the background pixels. Pixels are
    grouped by block position: the feature maps are cut into ``block_size`` x ``block_size``
    blocks (Table 4.2: 16), and the pixels at the same block position in all images of the
    batch form one group, as in Hu et al.'s block-wise local contrast.

    ``form="hu"`` (default) is the supervised pixel contrast of Hu et al. (MICCAI 2021), the
    method the thesis says it follows::

        loss = -1/|Omega| sum_i 1/|P(i)| sum_{p in P(i)} log( exp(s_ip/tau) / sum_{k != i} exp(s_ik/tau) )

    ``form="literal"`` is Eq. 3.4 as printed (with |P(u, v)| for the thesis's "P(u, v)"): the
    positives summed inside the logarithm and left out of the denominator::

        loss = -1/|Omega| sum_i 1/|P(i)| log( sum_{p in P(i)} exp(s_ip/tau) / sum_{n in N(i)} exp(s_in/tau) )

    The two differ in kind: in Hu's form every anchor's positives are part of its denominator,
    so each anchor's term is >= 0 and the loss is bounded below by 0; the literal form is
    negative as soon as an anchor's positives outweigh its negatives, and keeps rewarding that.

    Example (features that already separate the classes perfectly):

    >>> import torch
    >>> f = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]).T.reshape(1, 2, 2, 2)
    >>> y = torch.tensor([[[1, 1], [0, 0]]])
    >>> hu = local_contrastive(f, y, temperature=1.0, block_size=2, form="hu")
    >>> literal = local_contrastive(f, y, temperature=1.0, block_size=2, form="literal")
    >>> bool(hu > 0), bool(literal < 0)
    (True, True)
    >>> round(float(literal), 4) == round(-(1.0 - 0.0) + torch.log(torch.tensor(2.0)).item(), 4)
    True

    Memory: only the (anchors x group) similarity rows are formed, one block at a time, and each
    chunk of ``chunk`` blocks is recomputed in the backward pass (activation checkpointing), so
    the peak is one chunk's rows, not all pairs of the batch.

    Args:
        features: (B, D, H, W) pixel embeddings (unit vectors, see ``LocalHead``).
        labels: (B, H, W) or (B, 1, H, W) binary masks (1 = organoid).
        temperature: tau (Table 4.2: 0.07).
        block_size: side of the blocks whose same positions are contrasted.
        form: ``"hu"`` or ``"literal"``.
        chunk: blocks per checkpointed chunk.

    Returns:
        The mean over all anchors (a scalar); zero with a gradient path when there is none.
    """
    if form not in LOCAL_FORMS:
        raise ValueError(f"unknown local loss form {form!r}; forms: {', '.join(LOCAL_FORMS)}")
    if labels.dim() == 4:
        labels = labels[:, 0]
    b, d, h, w = features.shape
    if labels.shape != (b, h, w):
        raise ValueError(f"labels {tuple(labels.shape)} do not match features {tuple(features.shape)}")
    s = block_size
    if h % s or w % s:
        raise ValueError(f"feature size {h}x{w} is not a multiple of the block size {s}")
    f, y = _blocks(features, labels.to(features.dtype), s)
    with torch.autocast(device_type=features.device.type, enabled=False):
        parts = []
        for i in range(0, f.shape[0], chunk):
            fi, yi = f[i:i + chunk], y[i:i + chunk].float()
            if features.requires_grad:
                parts.append(checkpoint(_chunk_loss, fi, yi, temperature, form, use_reentrant=False))
            else:
                parts.append(_chunk_loss(fi, yi, temperature, form))
        total, count = torch.stack(parts).sum(0)
    if count == 0:
        return features.sum() * 0.0
    return total / count
