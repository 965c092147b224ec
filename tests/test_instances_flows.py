"""Cellpose-style flows (cellrepro.instances.flows): known answers on hand-made masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.draw import disk, ellipse

from cellrepro.instances import flows_to_masks, masks_to_flows
from cellrepro.instances.flows import fill_holes_and_remove_small, flow_errors, instance_centres
from instance_helpers import best_ious


def drawn(shape, *shapes) -> np.ndarray:
    """Label image from (label, kind, args) entries, drawn in order (later ones on top); args are
    skimage.draw's: ``(centre, radius)`` for a disk, ``(r, c, r_radius, c_radius[, rotation])``."""
    masks = np.zeros(shape, np.int32)
    for label, kind, args in shapes:
        if kind == "disk":
            rr, cc = disk(*args, shape=shape)
        else:
            rr, cc = ellipse(*args[:4], shape=shape, rotation=args[4] if len(args) > 4 else 0.0)
        masks[rr, cc] = label
    return masks


def round_trip(masks: np.ndarray, **kw) -> np.ndarray:
    return flows_to_masks(masks_to_flows(masks), (masks > 0).astype(np.float32), 0.5, **kw)


def test_disc_flows_point_to_centre_with_unit_length():
    masks = drawn((41, 41), (1, "disk", ((20, 20), 15)))
    flows = masks_to_flows(masks)
    assert flows.shape == (2, 41, 41) and flows.dtype == np.float32
    yy, xx = np.nonzero(masks)
    to_centre = np.stack((20 - yy, 20 - xx)).astype(float)
    dist = np.hypot(*to_centre)
    away = dist >= 2  # the centre pixel's own gradient is zero by symmetry, its direction noise
    cos = (flows[:, yy, xx] * to_centre).sum(0)[away] / dist[away]
    assert cos.min() > 0.95  # every pixel flows towards the centre
    norm = np.hypot(*flows[:, yy, xx])[away]
    np.testing.assert_allclose(norm, 1.0, atol=1e-5)
    assert not flows[:, masks == 0].any()
    # exact signs on the axes: right of the centre points left, above it points down
    np.testing.assert_allclose(flows[:, 20, 30], [0, -1], atol=1e-6)
    np.testing.assert_allclose(flows[:, 10, 20], [1, 0], atol=1e-6)


def test_centre_is_the_pixel_closest_to_the_median_for_any_labels():
    masks = np.zeros((20, 20), np.int32)
    masks[2:7, 2:7] = 12  # median (4, 4)
    masks[10:13, 5:16] = 3  # median (11, 10)
    ids, centres = instance_centres(masks)
    assert ids.tolist() == [3, 12]
    assert centres.tolist() == [[11, 10], [4, 4]]


def test_touching_cells_do_not_share_heat():
    masks = np.zeros((20, 30), np.int32)
    masks[2:18, 2:15] = 7
    masks[2:18, 15:28] = 3
    flows = masks_to_flows(masks)
    # along the shared border each side flows back into its own cell
    assert (flows[1, 4:16, 14] < 0).all() and (flows[1, 4:16, 15] > 0).all()
    # each cell's field is the one it has alone
    alone = masks_to_flows(np.where(masks == 7, 7, 0))
    np.testing.assert_allclose(flows[:, masks == 7], alone[:, masks == 7], atol=1e-6)


@pytest.mark.parametrize("labels", [(1, 2, 3, 4, 5), (3, 7, 12, 40, 41)])
def test_round_trip_recovers_discs_and_ellipses_touching(labels):
    a, b, c, d, e = labels
    masks = drawn((96, 96),
                  (a, "disk", ((24, 24), 14)),
                  (b, "disk", ((24, 51), 14)),  # touches a along a chord
                  (c, "ellipse", (64, 30, 10, 22)),
                  (d, "ellipse", (66, 60, 18, 9, 0.6)),  # rotated, touches c
                  (e, "disk", ((24, 70), 7)))  # touches b
    assert len(np.unique(masks)) == 6
    out = round_trip(masks)
    assert out.dtype == np.int32 and out.max() == 5
    ious = best_ious(masks, out)
    assert min(ious.values()) > 0.9, ious
    assert sorted(np.unique(out).tolist()) == list(range(6))  # relabelled 1..N


def test_round_trip_many_touching_cells_on_a_grid():
    masks = np.zeros((80, 80), np.int32)
    for k, (y, x) in enumerate(np.ndindex(4, 4)):
        masks[4 + 18 * y:4 + 18 * (y + 1), 4 + 18 * x:4 + 18 * (x + 1)] = 5 * k + 2
    out = round_trip(masks)
    assert out.max() == 16
    assert min(best_ious(masks, out).values()) > 0.9


def test_torch_input_gives_the_same_masks():
    masks = drawn((48, 48), (2, "disk", ((20, 20), 9)), (9, "disk", ((30, 34), 8)))
    flows = masks_to_flows(masks)
    prob = (masks > 0).astype(np.float32)
    np.testing.assert_array_equal(flows_to_masks(torch.from_numpy(flows), torch.from_numpy(prob), 0.5),
                                  flows_to_masks(flows, prob, 0.5))


def test_empty_image_gives_empty_flows_and_masks():
    empty = np.zeros((16, 24), np.int32)
    flows = masks_to_flows(empty)
    assert flows.shape == (2, 16, 24) and not flows.any()
    out = flows_to_masks(flows, np.zeros((16, 24)))
    assert out.shape == (16, 24) and out.dtype == np.int32 and not out.any()


def test_small_and_huge_masks_are_dropped_as_cellpose_does():
    masks = drawn((64, 64), (1, "disk", ((32, 32), 24)), (2, "disk", ((58, 58), 3)))  # 45 % and 29 px
    big, small = masks == 1, masks == 2
    out = round_trip(masks)  # max_size_fraction=0.4 drops the big one
    assert out.max() == 1 and not out[big].any() and (out[small] == 1).all()
    out = round_trip(masks, max_size_fraction=1.0, min_size=30)
    assert out.max() == 1 and not out[small].any() and best_ious(big.astype(int), out)[1] > 0.9
    assert round_trip(masks, max_size_fraction=1.0).max() == 2


def test_holes_are_filled_around_an_instance_inside_another():
    masks = drawn((40, 40), (4, "disk", ((20, 20), 15)))
    masks[12:29, 12:29] = 0  # a hole in instance 4 ...
    masks[16:25, 16:25] = 9  # ... holding instance 9, with a background gap around it
    masks[0:3, 0:3] = 2  # 9 px: dropped
    out = fill_holes_and_remove_small(masks, min_size=15)
    assert out.max() == 2 and not out[0:3, 0:3].any()
    inner = np.zeros_like(masks, bool)
    inner[16:25, 16:25] = True
    assert (out[inner] == 2).all()
    assert (out[(masks == 4) | ((masks == 0) & (np.hypot(*np.indices(masks.shape) - 20) < 10))] == 1).all()


def test_flow_error_check_drops_a_blob_whose_flows_are_not_a_cell_s():
    masks = drawn((64, 64), (1, "disk", ((20, 20), 12)))
    flows = masks_to_flows(masks)
    flows[1, 40:60, 36:56] = 1.0  # a square of pixels all flowing right: they pile up on its edge
    prob = (masks > 0) | np.pad(np.ones((20, 20), bool), ((40, 4), (36, 8)))
    assert flows_to_masks(flows, prob, 0.5).max() == 2  # off by default: the square is a "cell"
    out = flows_to_masks(flows, prob, 0.5, flow_threshold=0.4)
    assert out.max() == 1 and best_ious(masks, out)[1] > 0.9
    errors = flow_errors(flows_to_masks(flows, prob, 0.5), flows)
    assert errors.min() < 0.05 and errors.max() > 0.4


@pytest.mark.parametrize("bad, name", [
    (np.zeros((4, 4), np.float32), "masks"),
    (np.zeros((2, 4, 4), np.int32), "masks"),
    (-np.ones((4, 4), np.int32), "masks"),
])
def test_masks_to_flows_rejects_bad_masks(bad, name):
    with pytest.raises(ValueError, match=name):
        masks_to_flows(bad)


@pytest.mark.parametrize("flows, prob, name", [
    (np.zeros((3, 8, 8)), np.zeros((8, 8)), "flows"),
    (np.zeros((8, 8)), np.zeros((8, 8)), "flows"),
    (np.array([["a"] * 8] * 8 * 2).reshape(2, 8, 8), np.zeros((8, 8)), "flows"),
    (np.zeros((2, 8, 8)), np.zeros((8, 9)), "cellprob"),
    (np.zeros((2, 8, 8)), np.zeros((1, 8, 8)), "cellprob"),
    (np.zeros((2, 8, 8), np.complex64), np.zeros((8, 8)), "flows"),
])
def test_flows_to_masks_rejects_bad_input(flows, prob, name):
    with pytest.raises(ValueError, match=name):
        flows_to_masks(flows, prob)
