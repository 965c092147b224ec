"""Cross pseudo supervision between two CDNets: multimodal paper Sec. 2.5, Eq. 2-5, Fig. 4.

Chen et al., "Semi-Supervised Semantic Segmentation with Cross Pseudo Supervision", CVPR 2021, as
Wang et al. (NeurIPS 2022 CellSeg) train their fluorescence CDNets: two networks ``f1`` and ``f2``,
initialised differently, see the same images.

* Eq. 2: each net's supervised loss on labelled images, ``L_l^(i)`` (here :func:`cdnet_loss`:
  CE + Dice on the mask, CE on the directions, MSE on the point map).
* Eq. 3-4: on unlabelled images (colour-augmented, the same view for both nets), each net's cross
  entropy against the one-hot argmax of the other's prediction, ``L_u^(1) = CE(y1, onehot(y2))``
  and ``L_u^(2) = CE(y2, onehot(y1))``. An argmax has no gradient: each term trains one net only.
* Eq. 5: ``L^(i) = L_l^(i) + alpha L_u^(i)`` with ``alpha = 0.1``. Since ``L^(1)`` reaches only
  ``f1``'s weights and ``L^(2)`` only ``f2``'s, one backward of ``L^(1) + L^(2)`` with both
  optimizers stepped is the same as two separate updates.

Our choices, which the paper leaves open: the cross supervision is applied to every classification
head, mask (3 classes) and directions (9 classes), with weights ``heads``. The point map is a
regression with no one-hot pseudo label, so by default it takes no cross term (Eq. 3-4 are cross
entropies); ``point_weight > 0`` adds an MSE of each net's map to the other's (detached) one.
By default the cross terms use unlabelled images only, as the paper describes; ``on_labelled``
adds Chen et al.'s term on labelled images too (averaged on its own, as their ``L_cps^l``).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Mapping

import torch
import torch.nn.functional as F

from ..losses.cdnet import cdnet_loss

#: The multimodal paper's weight of the unlabelled term (Eq. 5).
CPS_ALPHA = 0.1
#: Classification heads that are cross-supervised, with their weights.
CPS_HEADS: Mapping[str, float] = {"mask": 1.0, "direction": 1.0}


def cross_pseudo_supervision(logits_a: torch.Tensor, logits_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L_u^(1), L_u^(2))`` of Eq. 3-4 for (B, C, H, W) logits: each net's mean pixel CE against
    the other's argmax. The pseudo labels carry no gradient, so ``L_u^(1)`` trains net A only.

    >>> a = torch.log(torch.tensor([[[[1.0, 9.0]], [[3.0, 1.0]]]]))  # pixel 1: p = (1/4, 3/4); pixel 2: (9/10, 1/10)
    >>> b = torch.log(torch.tensor([[[[4.0, 1.0]], [[1.0, 4.0]]]]))  # (4/5, 1/5) and (1/5, 4/5)
    >>> la, lb = cross_pseudo_supervision(a, b)
    >>> round(float(la), 5) == round(float((torch.log(torch.tensor(4.0)) + torch.log(torch.tensor(10.0))) / 2), 5)
    True
    """
    if logits_a.shape != logits_b.shape or logits_a.dim() < 2:
        raise ValueError(f"logits_a and logits_b must be (B, C, ...) logits of one shape, got "
                         f"{tuple(logits_a.shape)} and {tuple(logits_b.shape)}")
    pseudo_a = logits_a.detach().argmax(1)
    pseudo_b = logits_b.detach().argmax(1)
    return F.cross_entropy(logits_a, pseudo_b), F.cross_entropy(logits_b, pseudo_a)


def cps_loss(out_a: Mapping[str, torch.Tensor], out_b: Mapping[str, torch.Tensor],
             heads: Mapping[str, float] = CPS_HEADS, point_weight: float = 0.0) -> dict[str, torch.Tensor]:
    """Cross terms ``cps_<head> = weight * (L_u^(1) + L_u^(2))`` per head (and ``cps_point``), unweighted by alpha.

    Args:
        out_a, out_b: the two networks' outputs on the same images (``{head: (B, C, H, W)}``).
        heads: classification heads to cross-supervise and their weights.
        point_weight: weight of ``MSE(point_a, point_b.detach()) + MSE(point_b, point_a.detach())``.
    """
    terms: dict[str, torch.Tensor] = {}
    for head, weight in heads.items():
        if head not in out_a or head not in out_b:
            raise ValueError(f"heads names {head!r}, which the outputs lack (they hold {sorted(out_a)})")
        if weight:
            la, lb = cross_pseudo_supervision(out_a[head], out_b[head])
            terms[f"cps_{head}"] = weight * (la + lb)
    if point_weight:
        pa, pb = out_a["point"], out_b["point"]
        terms["cps_point"] = point_weight * (F.mse_loss(pa, pb.detach()) + F.mse_loss(pb, pa.detach()))
    return terms


def _rows(out: Mapping[str, torch.Tensor], rows: slice) -> dict[str, torch.Tensor]:
    return {k: v[rows] for k, v in out.items()}


def cps_step(alpha: float = CPS_ALPHA, supervised: Callable[..., Mapping[str, torch.Tensor]] = cdnet_loss,
             heads: Mapping[str, float] = CPS_HEADS, point_weight: float = 0.0, on_labelled: bool = False,
             augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
             models: tuple[str, str] = ("a", "b")) -> Callable[[Any, Any], dict[str, torch.Tensor]]:
    """A step function for :func:`cellrepro.engine.train.fit` that trains two networks by Eq. 5.

    Each batch is ``((image, mask, direction, point), (unlabelled_image,))``, as :class:`SemiBatches`
    yields them. Both networks see the labelled and the (augmented) unlabelled images in one
    forward pass each; the logged terms are ``a_<term>``, ``b_<term>`` (supervised, Eq. 2),
    ``cps_<head>`` (alpha times the cross terms, Eq. 3-4) and their sum ``loss``.

    Args:
        alpha: weight of the cross terms (0.1 in the paper).
        supervised: ``supervised(outputs, targets) -> {term: loss}``, e.g. ``functools.partial(cdnet_loss, ...)``.
        heads, point_weight: see :func:`cps_loss`.
        on_labelled: add the cross terms on the labelled images (Chen et al.), not only the unlabelled.
        augment: applied to the unlabelled images (the paper's colour augmentation), or None.
        models: the names of the two networks in ``fit``'s ``models``.

    Example::

        step = cps_step()
        fit({"a": CDNet(), "b": CDNet()}, {"a": adam(a.parameters()), "b": adam(b.parameters())},
            step, SemiBatches(TensorLoader(x, m, d, p, batch_size=4), TensorLoader(xu, batch_size=4)),
            max_steps=1000)
    """
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0 (the weight of the unlabelled term), got {alpha}")
    name_a, name_b = models

    def step(ctx, batch) -> dict[str, torch.Tensor]:
        try:
            (x, mask, direction, point), (xu, *_) = batch
        except (TypeError, ValueError):
            raise ValueError("a CPS batch must be ((image, mask, direction, point), (unlabelled_image,)), "
                             "as SemiBatches yields them") from None
        if augment is not None:
            xu = augment(xu)
        n = x.shape[0]
        images = torch.cat([x, xu.to(x.dtype)])
        out_a, out_b = ctx.models[name_a](images), ctx.models[name_b](images)
        targets = {"mask": mask, "direction": direction, "point": point}
        labelled, unlabelled = slice(0, n), slice(n, None)
        terms = {f"a_{k}": v for k, v in supervised(_rows(out_a, labelled), targets).items()}
        terms.update({f"b_{k}": v for k, v in supervised(_rows(out_b, labelled), targets).items()})
        cross = cps_loss(_rows(out_a, unlabelled), _rows(out_b, unlabelled), heads, point_weight)
        if on_labelled:
            for k, v in cps_loss(_rows(out_a, labelled), _rows(out_b, labelled), heads, point_weight).items():
                cross[k] = cross[k] + v
        terms.update({k: alpha * v for k, v in cross.items()})
        total = ctx.optimize(terms)
        return {**terms, "loss": total.detach()}

    return step


class SemiBatches:
    """Pairs of (labelled batch, unlabelled batch): one epoch is one pass over ``labelled``, the
    unlabelled loader restarted whenever it runs out (a fresh pass each epoch, so a resumed
    :func:`cellrepro.engine.train.fit` repeats the same pairs).

    >>> from cellrepro.engine.tensorloader import TensorLoader
    >>> pairs = SemiBatches(TensorLoader(torch.arange(4), batch_size=2, shuffle=False),
    ...                     TensorLoader(torch.arange(10, 13), batch_size=2, shuffle=False))
    >>> [(l[0].tolist(), u[0].tolist()) for l, u in pairs]
    [([0, 1], [10, 11]), ([2, 3], [12])]
    """

    def __init__(self, labelled: Iterable, unlabelled: Iterable):
        self.labelled, self.unlabelled = labelled, unlabelled

    def __len__(self) -> int:
        return len(self.labelled)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        unlabelled = iter(self.unlabelled)
        for batch in self.labelled:
            try:
                extra = next(unlabelled)
            except StopIteration:
                unlabelled = iter(self.unlabelled)
                try:
                    extra = next(unlabelled)
                except StopIteration:
                    raise ValueError("unlabelled yields no batch") from None
            yield batch, extra
