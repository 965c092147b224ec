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
    """Sum over one group's anchors of the local loss, with its gradient in closed form.

    ``anchors`` (m, D) are the foreground rows of ``group`` (n, D) at columns ``idx``; ``fg`` (n,)
    is 1 for foreground. With ``L = (anchors @ group.T - 1) / tau`` (<= 0 for unit vectors) and
    ``e = exp(L)`` with each anchor's own column zeroed, the per-anchor terms are

    * Hu: ``-(sum_p L_ip) / |P| + log(sum_k e_ik)``, gradient ``e_ik / sum_k e_ik - fg_k / |P|``;
    * literal: ``-(log sum_p e_ip - log sum_n e_in) / |P|``, gradient
      ``-(e_ik fg_k / pos_i - e_ik (1 - fg_k) / neg_i) / |P|``;

    (the anchor's own column has gradient 0 in both). Autograd would keep several (m, n)
    temporaries per group for the backward pass; here only the inputs are kept and ``e`` is
    recomputed once, so memory and time are a few (m, n) passes per group.
    """

    @staticmethod
    def _exp(anchors, group, idx, temperature):
        logits = (anchors @ group.T - 1.0) / temperature
        e = torch.exp(logits)
        rows = torch.arange(len(idx), device=idx.device)
        e[rows, idx] = 0.0
        return logits, e, rows

    @staticmethod
    def forward(ctx, anchors, group, fg, idx, n_pos, temperature, literal):
        logits, e, rows = _BlockContrast._exp(anchors, group, idx, temperature)
        if literal:
            pos = (e @ fg).clamp_min(1e-30)
            neg = (e @ (1.0 - fg)).clamp_min(1e-30)
            per_anchor = -(torch.log(pos) - torch.log(neg)) / n_pos
        else:
            pos_logits = logits @ fg - logits[rows, idx]
            per_anchor = -pos_logits / n_pos + torch.log(e.sum(-1).clamp_min(1e-30))
        ctx.save_for_backward(anchors, group, fg, idx)
        ctx.n_pos, ctx.temperature, ctx.literal = n_pos, temperature, literal
        return per_anchor.sum()

    @staticmethod
    def backward(ctx, grad):
        anchors, group, fg, idx = ctx.saved_tensors
        _, e, rows = _BlockContrast._exp(anchors, group, idx, ctx.temperature)
        if ctx.literal:
            pos = (e @ fg).clamp_min(1e-30)[:, None]
            neg = (e @ (1.0 - fg)).clamp_min(1e-30)[:, None]
            g = e * (fg / pos - (1.0 - fg) / neg)
            g.mul_(-1.0 / ctx.n_pos)
        else:
            g = e / e.sum(-1, keepdim=True).clamp_min(1e-30)
            g.sub_(fg / ctx.n_pos)
            g[rows, idx] = 0.0
        g.mul_(grad / ctx.temperature)
        return g @ group, g.T @ anchors, None, None, None, None, None


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

    Memory: only the (anchors x group) similarity rows of one block position are formed at a
    time, and the gradient is written in closed form (:class:`_BlockContrast`), so nothing of
    that size is kept between the forward and the backward pass.

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
        total = f.new_zeros(())
        count = 0
        for k in range(f.shape[0]):
            idx = fg[k].nonzero().squeeze(1)
            if idx.numel() < 2 or (form == "literal" and n_neg[k] == 0):  # a positive (and a negative)
                continue
            total = total + _BlockContrast.apply(f[k, idx], f[k], fg[k].float(), idx, float(n_fg[k] - 1),
                                                 temperature, form == "literal")
            count += idx.numel()
    if count == 0:
        return features.sum() * 0.0
    return total / count
