"""Overlap probability maps v0-v4 and the reweighted focal losses of the brightfield thesis
(cellrepro.chapters.brightfield.overlap, Sec. 4.3 / 5.4; cellrepro.losses.focal, Eq. 4.5 / 5.1).

The maps are checked on a hand-drawn pair of discs of radius 10 centred at (20, 22) and (20, 38) on a
41 x 61 canvas: they overlap in a lens spanning columns 28-32 of row 20 (tips at (14, 30) and
(26, 30)); each has a nucleus of radius 3 at its centre. The losses are checked against numbers
computed by hand from the equations on a 2 x 2 example whose probabilities are 0.5, 0.75, 0.25, 0.9.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from monai.losses.focal_loss import sigmoid_focal_loss

from cellrepro.chapters.brightfield.overlap import VERSIONS, field_overlap_map, overlap_map
from cellrepro.data.synthetic import brightfield
from cellrepro.data.types import Field
from cellrepro.losses.focal import (OverlapFocalLoss, focal_terms, label_reweighted_focal_loss,
                                    loss_reweighted_focal_loss, negative_reweighted_focal_loss)

H, W = 41, 61
YY, XX = np.mgrid[:H, :W]


def disc(cy, cx, r):
    return np.hypot(YY - cy, XX - cx) <= r


@pytest.fixture
def lens():
    masks = np.stack([disc(20, 22, 10), disc(20, 38, 10)])
    nuclei = np.zeros((H, W), np.int32)
    nuclei[disc(20, 22, 3)] = 1
    nuclei[disc(20, 38, 3)] = 2
    return masks, nuclei


# ---------------------------------------------------------------------------------------------- maps

@pytest.mark.parametrize("version", VERSIONS)
def test_every_map_is_float32_in_range_with_background_and_mirror_symmetry(lens, version):
    masks, nuclei = lens
    p = overlap_map(version, masks, nuclei)
    assert p.shape == (H, W) and p.dtype == np.float32
    assert p.min() >= 0 and p.max() <= 1
    outside = ~masks.any(0)
    assert (p[outside] == np.float32(0.1)).all()
    assert p[0, 0] == np.float32(0.1) and p[20, 11] == np.float32(0.1)       # just outside disc 1
    assert np.array_equal(p, p[:, ::-1])                                     # the scene mirrors at column 30
    swapped = overlap_map(version, masks[::-1], np.where(nuclei > 0, 3 - nuclei, 0))
    assert np.array_equal(p, swapped)                                        # the order of the cells is irrelevant
    assert (overlap_map(version, masks, nuclei, background=0.25)[outside] == np.float32(0.25)).all()
    assert overlap_map(int(version[1]), masks, nuclei).tolist() == p.tolist()


def test_v0_is_the_distance_from_the_own_nucleus_centre_relative_to_the_cell(lens):
    p = overlap_map("v0", *lens)
    assert p[20, 12] == pytest.approx(1.0)          # farthest pixel of cell 1: r = 10 = R
    assert p[20, 14] == pytest.approx(0.8)          # r = 8
    assert p[14, 22] == pytest.approx(0.6)          # r = 6, off the axis
    assert p[20, 26] == pytest.approx(0.4)          # r = 4, just outside the nucleus
    assert p[20, 22] == p[20, 24] == np.float32(0.1)  # nucleus pixels are set "very low"
    assert p[20, 29] == pytest.approx(0.9)          # lens: max(7 / 10, 9 / 10)
    assert p[20, 30] == pytest.approx(0.8)          # lens centre: 8 / 10 from both centres
    assert p[26, 30] == pytest.approx(1.0)          # lens tip: on both rims


def test_v0_uses_given_centres_and_falls_back_to_the_centroid(lens):
    masks, nuclei = lens
    by_centres = overlap_map("v0", masks, centres=[(20, 22), (20, 38)])
    assert by_centres[20, 14] == pytest.approx(0.8)
    assert by_centres[20, 22] == 0                  # no nuclei given: the centre is not lowered
    only_first = np.where(nuclei == 1, 1, 0)        # cell 2 has no nucleus: its centroid (20, 38) is used
    assert overlap_map("v0", masks, only_first)[20, 45] == pytest.approx(0.7)
    stack = np.stack([nuclei == 1, nuclei == 2])    # nuclei as an (N, H, W) stack
    assert np.array_equal(overlap_map("v0", masks, stack), overlap_map("v0", masks, nuclei))


def test_v1_lifts_the_boundary_limit_so_other_nuclei_lower_the_map(lens):
    v0, v1 = overlap_map("v0", *lens), overlap_map("v1", *lens)
    cells = lens[0].any(0)
    assert (v1[cells] <= v0[cells] + 1e-7).all()
    assert v1[20, 29] == pytest.approx(0.7)         # lens: min(7 / 10, 9 / 10), where v0 took the max
    assert v1[20, 14] == pytest.approx(0.8)         # far from the other nucleus: as v0
    # A disc (radius 8 at (20, 20)) beside a tall narrow cell (rows 10-30, cols 30-34, centre (20, 32),
    # R = hypot(10, 2)); they do not touch. At (20, 27), in the disc only, v0 sees only its own centre
    # (7 / 8); v1 also sees the rectangle's centre 5 px away, at 5 / R of that cell's extent.
    rect = np.zeros((H, W), bool)
    rect[10:31, 30:35] = True
    masks = np.stack([disc(20, 20, 8), rect])
    centres = [(20, 20), (20, 32)]
    assert overlap_map("v0", masks, centres=centres)[20, 27] == pytest.approx(7 / 8)
    assert overlap_map("v1", masks, centres=centres)[20, 27] == pytest.approx(5 / math.hypot(10, 2))


def test_v2_is_one_on_the_overlap_and_falls_linearly_with_the_distance_to_it(lens):
    masks, _ = lens
    overlap = masks.sum(0) >= 2
    assert overlap[20].nonzero()[0].tolist() == [28, 29, 30, 31, 32]
    p = overlap_map("v2", masks, scale=10)
    assert (p[overlap] == 1).all()
    assert p[20, 25] == pytest.approx(0.7) and p[20, 35] == pytest.approx(0.7)   # 3 px from the lens
    assert p[20, 20] == pytest.approx(0.2)                                       # 8 px
    assert p[20, 12] == 0                                                        # 16 px > scale: clipped
    q = overlap_map("v2", masks)                 # default scale: the farthest cell pixel, 16 px at (20, 12)
    assert q[20, 12] == 0 and q[20, 25] == pytest.approx(1 - 3 / 16)
    apart = np.stack([disc(20, 12, 8), disc(20, 45, 8)])
    r = overlap_map("v2", apart)
    assert (r[apart.any(0)] == 0).all() and (r[~apart.any(0)] == np.float32(0.1)).all()


def test_v3_merges_v1_and_v2_by_their_maximum(lens):
    v1, v2, v3 = (overlap_map(v, *lens) for v in ("v1", "v2", "v3"))
    assert np.array_equal(v3, np.maximum(v1, v2))
    assert (v3[lens[0].sum(0) >= 2] == 1).all()
    assert v3[20, 13] == pytest.approx(0.9)         # far from the lens the nuclei-based part wins (v2: 1/16)


def test_v4_rises_log_steeply_toward_the_other_cell_and_is_one_on_the_overlap(lens):
    masks, _ = lens
    p = overlap_map("v4", masks, scale=16)
    assert (p[masks.sum(0) >= 2] == 1).all()
    assert p[20, 25] == pytest.approx(1 - math.log(4) / math.log(17))   # 3 px from disc 2 (its rim at (20, 28))
    assert p[20, 20] == pytest.approx(1 - math.log(9) / math.log(17))   # 8 px
    row = p[20, 12:28].astype(float)                                     # d = 16, 15, ..., 1 toward disc 2
    d = np.arange(16, 0, -1)
    assert np.allclose(row, 1 - np.log1p(d) / np.log1p(16), atol=1e-6)
    assert (np.diff(row) > 0).all()                                      # rising toward the border-based region
    assert (row <= 1 - d / 16 + 1e-7).all()                              # never above the linear ramp ...
    assert row[-1] - row[-2] > 5 * (row[1] - row[0])                     # ... and far steeper next to the other cell
    assert np.array_equal(overlap_map("v4", masks), p)                   # default scale = the largest d2 = 16
    alone = overlap_map("v4", masks[:1])                                 # no other cell: nothing can overlap
    assert (alone[masks[0]] == 0).all()
    far = np.concatenate([masks, np.zeros((1, H, W), bool)])
    far[2, :4, 57:] = True                                               # a small cell in the corner, > 15 px away
    q, p10 = overlap_map("v4", far, scale=10), overlap_map("v4", masks, scale=10)
    assert (q[far[2]] == 0).all() and np.array_equal(q[masks[0]], p10[masks[0]])


def test_v4_read_inwards_falls_from_every_border_and_keeps_part_of_a_wide_overlap_positive(lens):
    from scipy import ndimage as ndi

    masks, _ = lens
    p = overlap_map("v4", masks, reading="interior")
    cells = masks.any(0)
    for mask in masks:                                                   # a cell's border pixels are 1 ...
        assert (p[mask & ~ndi.binary_erosion(mask)] == 1).all()
    centres = (20, 22), (20, 38)
    assert min(p[c] for c in centres) == 0                               # ... its deepest pixel 0 (default scale)
    row = p[20, 12:23].astype(float)                                     # from disc 1's rim to its centre
    assert (np.diff(row) <= 0).all() and row[0] - row[1] > row[-2] - row[-1]  # falling, steepest at the border
    lens_pixels = masks.sum(0) >= 2
    assert 0 < p[20, 30] < 1                                             # the middle of the lens is not all overlap
    label = lens_pixels * (1 - p)                                        # Eq. 4.5's y (1 - P)
    assert label.max() > 0.2 and (overlap_map("v4", masks)[lens_pixels] == 1).all()  # the other reading: all 0
    assert p[~cells].tolist() == [pytest.approx(0.1)] * int((~cells).sum())
    q = overlap_map("v4", masks[:1], reading="interior", scale=10)      # a lone cell has borders too
    assert q[20, 12] == 1 and q[20, 17] < q[20, 13]
    with pytest.raises(ValueError, match="reading"):
        overlap_map("v4", masks, reading="inside")


def test_maps_of_a_synthetic_field():
    field = brightfield.make_field("f", np.random.default_rng(5), 96, 0.9, (6, 8))
    count = field.amodal.sum(0)
    assert (count >= 2).any()
    for version in VERSIONS:
        p = field_overlap_map(field, version)
        assert p.shape == (96, 96) and 0 <= p.min() and p.max() <= 1
        assert (p[count == 0] == np.float32(0.1)).all()
        if version in ("v2", "v3", "v4"):
            assert (p[count >= 2] == 1).all()
        if version in ("v0", "v1"):
            assert (p[field.nuclei > 0] == np.float32(0.1)).all()
    with pytest.raises(ValueError, match="no amodal masks"):
        field_overlap_map(Field("pool", field.phase, field.bf_low, field.bf_high), "v4")


@pytest.mark.parametrize("kwargs, message", [
    (dict(version="v5"), "version"),
    (dict(version=True), "version"),
    (dict(masks=np.zeros((H, W), bool)), "masks"),
    (dict(masks=np.full((2, H, W), 2)), "masks"),
    (dict(nuclei=np.zeros((H, W + 1), np.int32)), "nuclei"),
    (dict(nuclei=np.full((H, W), 3, np.int32)), "nuclei"),
    (dict(nuclei=np.zeros((H, W))), "nuclei"),
    (dict(nuclei=None), "nuclei, centres"),
    (dict(nuclei=None, centres=[(1, 2)]), "centres"),
    (dict(background=1.5), "background"),
    (dict(version="v4", scale=0), "scale"),
])
def test_map_errors_name_the_bad_argument(lens, kwargs, message):
    args = dict(version="v0", masks=lens[0], nuclei=lens[1]) | kwargs
    with pytest.raises(ValueError, match=message):
        overlap_map(args.pop("version"), args.pop("masks"), args.pop("nuclei"), **args)


# -------------------------------------------------------------------------------------------- losses

A, G = 0.25, 2.0   # the defaults (Lin et al.)
LOGITS = torch.tensor([[0.0, math.log(3)], [-math.log(3), math.log(9)]], dtype=torch.float64)  # p .5 .75 .25 .9
Y = torch.tensor([[1.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
P = torch.tensor([[0.5, 0.2], [0.1, 0.1]], dtype=torch.float64)
ln = math.log


def test_eq_4_5_label_reweighting_by_hand():
    # y' = y (1 - P) = [[.5, .8], [0, 0]];  L = -a (1-p)^g y' ln p - (1-a) p^g (1-y') ln(1-p)
    terms = [
        -A * 0.5 ** 2 * 0.5 * ln(0.5) - (1 - A) * 0.5 ** 2 * 0.5 * ln(0.5),
        -A * 0.25 ** 2 * 0.8 * ln(0.75) - (1 - A) * 0.75 ** 2 * 0.2 * ln(0.25),
        -(1 - A) * 0.25 ** 2 * ln(0.75),
        -(1 - A) * 0.9 ** 2 * ln(0.1),
    ]
    assert float(label_reweighted_focal_loss(LOGITS, Y, P)) == pytest.approx(sum(terms) / 4, rel=1e-12)
    each = label_reweighted_focal_loss(LOGITS, Y, P, reduction="none")
    assert each.flatten().tolist() == pytest.approx(terms, rel=1e-12)


def test_eq_5_1_loss_reweighting_by_hand():
    # (1/N) sum P(i) L(y_i, p_i) with the hard labels
    terms = [
        0.5 * -A * 0.5 ** 2 * ln(0.5),
        0.2 * -A * 0.25 ** 2 * ln(0.75),
        0.1 * -(1 - A) * 0.25 ** 2 * ln(0.75),
        0.1 * -(1 - A) * 0.9 ** 2 * ln(0.1),
    ]
    assert float(loss_reweighted_focal_loss(LOGITS, Y, P)) == pytest.approx(sum(terms) / 4, rel=1e-12)
    assert float(loss_reweighted_focal_loss(LOGITS, Y, P, reduction="sum")) == pytest.approx(sum(terms), rel=1e-12)


def test_prose_reading_weights_the_negative_term_by_hand():
    # -a (1-p)^g y ln p - (1-a) p^g (1-y)(1-P) ln(1-p): positives keep their hard label
    terms = [
        -A * 0.5 ** 2 * ln(0.5),
        -A * 0.25 ** 2 * ln(0.75),
        -(1 - A) * 0.25 ** 2 * 0.9 * ln(0.75),
        -(1 - A) * 0.9 ** 2 * 0.9 * ln(0.1),
    ]
    each = negative_reweighted_focal_loss(LOGITS, Y, P, reduction="none")
    assert each.flatten().tolist() == pytest.approx(terms, rel=1e-12)
    assert float(OverlapFocalLoss("negative")(LOGITS, Y, P)) == pytest.approx(sum(terms) / 4, rel=1e-12)


def test_both_forms_reduce_to_the_plain_focal_loss():
    plain_terms = [-A * 0.5 ** 2 * ln(0.5), -A * 0.25 ** 2 * ln(0.75),
                   -(1 - A) * 0.25 ** 2 * ln(0.75), -(1 - A) * 0.9 ** 2 * ln(0.1)]
    plain = sum(plain_terms) / 4
    assert float(label_reweighted_focal_loss(LOGITS, Y, torch.zeros(2, 2))) == pytest.approx(plain, rel=1e-12)
    assert float(loss_reweighted_focal_loss(LOGITS, Y, torch.ones(2, 2))) == pytest.approx(plain, rel=1e-12)
    assert float(sigmoid_focal_loss(LOGITS, Y, gamma=G, alpha=A).mean()) == pytest.approx(plain, rel=1e-12)
    # gamma 0, alpha 0.5: half the binary cross-entropy
    bce = torch.nn.functional.binary_cross_entropy_with_logits(LOGITS, Y)
    half = label_reweighted_focal_loss(LOGITS, Y, torch.zeros(2, 2), gamma=0, alpha=0.5)
    assert float(half) == pytest.approx(float(bce) / 2)


def test_label_reweighting_acts_only_on_positive_pixels():
    logits, y = torch.randn(2, 1, 5, 5, generator=torch.Generator().manual_seed(0)), torch.zeros(2, 1, 5, 5)
    y[:, :, 1:3, 1:4] = 1
    prob = torch.rand(2, 1, 5, 5, generator=torch.Generator().manual_seed(1))
    reweighted = label_reweighted_focal_loss(logits, y, prob, reduction="none")
    plain = label_reweighted_focal_loss(logits, y, torch.zeros_like(prob), reduction="none")
    assert torch.equal(reweighted[y == 0], plain[y == 0])
    assert not torch.allclose(reweighted[y == 1], plain[y == 1])
    # P = 1 on the positives (as v2-v4 are on annotated overlaps) turns them into negatives
    erased = label_reweighted_focal_loss(logits, y, y, reduction="none")
    assert torch.allclose(erased, focal_terms(logits, torch.zeros_like(y)))


def test_monai_focal_loss_is_not_eq_4_5_on_soft_labels():
    logits, soft = torch.tensor([-2.0, 0.0, 3.0]), torch.full((3,), 0.5)
    ours = focal_terms(logits, soft)
    p = torch.sigmoid(logits)
    by_hand = -A * (1 - p) ** 2 * 0.5 * torch.log(p) - (1 - A) * p ** 2 * 0.5 * torch.log(1 - p)
    assert torch.allclose(ours, by_hand)
    assert not torch.allclose(sigmoid_focal_loss(logits, soft, gamma=G, alpha=A), ours, rtol=1e-2)
    hard = torch.tensor([1.0, 0.0, 1.0])
    assert torch.allclose(sigmoid_focal_loss(logits, hard, gamma=G, alpha=A), focal_terms(logits, hard))


@pytest.mark.parametrize("reweight", ["label", "loss"])
def test_multichannel_targets_and_a_broadcast_map(reweight):
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 3, 4, 4, generator=gen)
    target = (torch.rand(2, 3, 4, 4, generator=gen) > 0.6).float()
    prob = torch.rand(2, 1, 4, 4, generator=gen)
    loss = OverlapFocalLoss(reweight)
    per_channel = torch.stack([loss(logits[:, c:c + 1], target[:, c:c + 1], prob) for c in range(3)]).mean()
    assert torch.allclose(loss(logits, target, prob), per_channel)
    assert torch.allclose(loss(logits, target, prob[0, 0]), loss(logits, target, prob[0, 0].expand(2, 1, 4, 4)))


@pytest.mark.parametrize("reweight", ["label", "loss"])
@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_gradients_are_finite_even_for_saturated_logits(reweight, gamma):
    logits = torch.tensor([[-80.0, -5.0, 0.0], [0.0, 5.0, 80.0], [30.0, -30.0, 1.0]], requires_grad=True)
    target = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    prob = torch.tensor([[0.0, 1.0, 0.5], [1.0, 0.0, 0.1], [0.1, 0.9, 1.0]])
    value = OverlapFocalLoss(reweight, gamma=gamma)(logits, target, prob)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


@pytest.mark.parametrize("call, message", [
    (lambda: label_reweighted_focal_loss(LOGITS, Y[:1], P), "target"),
    (lambda: label_reweighted_focal_loss(LOGITS, Y * 2, P), "target"),
    (lambda: label_reweighted_focal_loss(LOGITS, Y, P + 1), "prob"),
    (lambda: label_reweighted_focal_loss(LOGITS, Y, torch.zeros(3)), "prob"),
    (lambda: label_reweighted_focal_loss(LOGITS, Y, torch.zeros(2, 2, 2)), "prob"),
    (lambda: loss_reweighted_focal_loss(LOGITS, Y, -P), "prob"),
    (lambda: loss_reweighted_focal_loss(LOGITS, Y * 0.5, P), "target"),
    (lambda: label_reweighted_focal_loss(LOGITS, Y, P, alpha=1.5), "alpha"),
    (lambda: label_reweighted_focal_loss(LOGITS, Y, P, gamma=-1), "gamma"),
    (lambda: label_reweighted_focal_loss(LOGITS, Y, P, reduction="avg"), "reduction"),
    (lambda: OverlapFocalLoss("pixel"), "reweight"),
])
def test_loss_errors_name_the_bad_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()
