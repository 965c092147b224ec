"""Contrastive losses of the organoid thesis (Sec. 3.4, Eq. 3.1-3.5).

* Global (Eq. 3.1): SimCLR's NT-Xent, i.e. MONAI's ``ContrastiveLoss`` (cosine similarity,
  temperature inside the exponent; the thesis prints it outside, a typo).
* Local (Eq. 3.2-3.5): supervised pixel contrast on decoder features, written here (MONAI has
  no pixel-level supervised contrastive loss). Two forms: Hu et al.'s (the method the thesis
  says it follows, the default) and Eq. 3.4 as the thesis prints it (an ablation).
"""

from __future__ import annotations

import torch

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


class _BlockContrast(torch.autograd.Function):
    """Sum over the anchors of a chunk of groups of the local loss, with its gradient in closed form.

    ``f`` (g, n, D) holds g groups of n pixel features; ``fg`` (g, n) is 1 for foreground; ``anchor``
    (g, n) is 1 for the rows that are anchors (foreground pixels of groups that count); ``n_pos``
    (g,) is each group's number of positives per anchor (foreground pixels - 1). With
    ``L = (f @ f.T - 1) / tau`` (<= 0 for unit vectors) and ``e = exp(L)`` with the diagonal (each
    anchor's own column) zeroed, the per-anchor terms are

    * Hu: ``-(sum_p L_ip) / |P| + log(sum_k e_ik)``, gradient ``e_ik / sum_k e_ik - fg_k / |P|``;
    * literal: ``-(log sum_p e_ip - log sum_n e_in) / |P|``, gradient
      ``-(e_ik fg_k / pos_i - e_ik (1 - fg_k) / neg_i) / |P|``;

    (the anchor's own column has gradient 0 in both); as ``f`` is both the anchors and the group,
    the gradient of the (g, n, n) matrix ``G`` of these reaches ``f`` as ``(G + G.T) @ f``.
    Autograd would keep several (g, n, n) temporaries for the backward pass; here only the
    inputs are kept and ``e`` is recomputed once. All groups of a chunk go through one batched
    product (a loop over the groups cost more in overhead than in arithmetic at the book's sizes).
    """

    @staticmethod
    def _exp(f, temperature):
        logits = (f @ f.transpose(1, 2) - 1.0) / temperature
        e = torch.exp(logits)
        e.diagonal(dim1=1, dim2=2).zero_()
        return logits, e

    @staticmethod
    def forward(ctx, f, fg, anchor, n_pos, temperature, literal):
        logits, e = _BlockContrast._exp(f, temperature)
        n_pos_ = n_pos.clamp_min(1.0)[:, None]
        if literal:
            pos = torch.bmm(e, fg[..., None])[..., 0].clamp_min(1e-30)
            neg = torch.bmm(e, (1.0 - fg)[..., None])[..., 0].clamp_min(1e-30)
            per_anchor = -(torch.log(pos) - torch.log(neg)) / n_pos_
        else:
            pos_logits = torch.bmm(logits, fg[..., None])[..., 0] - logits.diagonal(dim1=1, dim2=2) * fg
            per_anchor = -pos_logits / n_pos_ + torch.log(e.sum(-1).clamp_min(1e-30))
        ctx.save_for_backward(f, fg, anchor, n_pos_)
        ctx.temperature, ctx.literal = temperature, literal
        return (per_anchor * anchor).sum()

    @staticmethod
    def backward(ctx, grad):
        f, fg, anchor, n_pos = ctx.saved_tensors
        _, e = _BlockContrast._exp(f, ctx.temperature)
        if ctx.literal:
            pos = torch.bmm(e, fg[..., None]).clamp_min(1e-30)
            neg = torch.bmm(e, (1.0 - fg)[..., None]).clamp_min(1e-30)
            g = e * (fg[:, None, :] / pos - (1.0 - fg)[:, None, :] / neg)
            g.mul_(-1.0 / n_pos[..., None])
        else:
            g = e / e.sum(-1, keepdim=True).clamp_min(1e-30)
            g.sub_(fg[:, None, :] / n_pos[..., None])
            g.diagonal(dim1=1, dim2=2).zero_()
        g.mul_(anchor[..., None] * (grad / ctx.temperature))
        return torch.bmm(g, f) + torch.bmm(g.transpose(1, 2), f), None, None, None, None, None


#: Elements of one chunk's (groups x pixels x pixels) similarity matrix (float32: 128 MB).
CHUNK_ELEMENTS = 2 ** 25


def local_floor(labels: torch.Tensor, block_size: int = 16) -> float:
    """The lowest value the Hu form of :func:`local_contrastive` can reach on these labels: with
    every organoid pixel's feature equal and every background pixel's opposite, an anchor's term is
    ``log |P|`` (its positives share the softmax), so the floor is the anchors' mean ``log |P|``.
    Features that separate nothing (all similarities equal) give about the mean ``log(n - 1)``.
    A stage's loss is judged by how much of the way from its start to this floor it went.

    >>> y = torch.tensor([[[1, 1, 1], [0, 0, 0], [0, 0, 0]]])
    >>> round(local_floor(y, block_size=3), 4) == round(float(torch.log(torch.tensor(2.0))), 4)
    True
    """
    if labels.dim() == 4:
        labels = labels[:, 0]
    b, h, w = labels.shape
    s = block_size
    y = labels.reshape(b, h // s, s, w // s, s).permute(1, 3, 0, 2, 4).reshape(-1, b * s * s) > 0.5
    n_fg = y.sum(-1).double()
    valid = n_fg >= 2
    if not valid.any():
        return float("nan")
    return float((n_fg[valid] * torch.log(n_fg[valid] - 1)).sum() / n_fg[valid].sum())


def local_contrastive(features: torch.Tensor, labels: torch.Tensor, temperature: float = 0.07,
                      block_size: int = 16, form: str = "hu") -> torch.Tensor:
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

    Memory: the similarity matrices of as many block positions as fit :data:`CHUNK_ELEMENTS` are
    formed at a time, and the gradient is written in closed form (:class:`_BlockContrast`), so
    nothing of that size is kept between the forward and the backward pass.

    Args:
        features: (B, D, H, W) pixel embeddings (unit vectors, see ``LocalHead``).
        labels: (B, H, W) or (B, 1, H, W) binary masks (1 = organoid).
        temperature: tau (Table 4.2: 0.07).
        block_size: side of the blocks whose same positions are contrasted.
        form: ``"hu"`` or ``"literal"``.

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
        f = f.float()
        fg = y > 0.5
        n_fg = fg.sum(-1)
        n_neg = (~fg).sum(-1)
        valid = n_fg >= 2
        if form == "literal":
            valid &= n_neg > 0  # a positive and a negative
        anchor = (fg & valid[:, None]).float()
        count = int(anchor.sum())
        total = f.new_zeros(())
        n = f.shape[1]
        per_chunk = max(1, CHUNK_ELEMENTS // (n * n))
        groups = valid.nonzero().squeeze(1)
        for i in range(0, len(groups), per_chunk):
            k = groups[i:i + per_chunk]
            total = total + _BlockContrast.apply(f[k], fg[k].float(), anchor[k], (n_fg[k] - 1).float(),
                                                 temperature, form == "literal")
    if count == 0:
        return features.sum() * 0.0
    return total / count
