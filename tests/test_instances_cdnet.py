"""CDNet targets and decoding (cellrepro.instances.cdnet): known answers on hand-drawn instances."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi
from skimage.draw import disk
from skimage.feature import peak_local_max

from cellrepro.instances.cdnet import (DIRECTION_VECTORS, cdnet_decode, cdnet_targets, decode_outputs,
                                       direction_classes, direction_difference, point_map, refine_mask,
                                       stack_targets, three_class_mask)
from instance_helpers import best_ious


def two_squares(side: int = 9) -> np.ndarray:
    """Two touching side x side squares labelled 3 (left) and 8 (right), a 2-pixel margin around."""
    m = np.zeros((side + 4, 2 * side + 4), np.int32)
    m[2:2 + side, 2:2 + side] = 3
    m[2:2 + side, 2 + side:2 + 2 * side] = 8
    return m


def tessellation(seed: int, n: int = 5, spacing: int = 12) -> np.ndarray:
    """n x n touching convex cells (Voronoi cells of a jittered grid), labels 7, 14, ..., a 3-pixel margin."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(np.arange(n), np.arange(n), indexing="ij"), -1).reshape(-1, 2)
    pts = grid * spacing + spacing // 2 + 4 + rng.integers(-2, 3, grid.shape)
    size = n * spacing + 8
    sites = np.zeros((size, size), np.int32)
    sites[pts[:, 0], pts[:, 1]] = np.arange(1, len(pts) + 1) * 7
    _, (iy, ix) = ndi.distance_transform_edt(sites == 0, return_indices=True)
    cells = sites[iy, ix]
    cells[:3], cells[-3:], cells[:, :3], cells[:, -3:] = 0, 0, 0, 0
    return cells


def one_hot(classes: np.ndarray, n: int) -> np.ndarray:
    return np.eye(n, dtype=np.float32)[classes].transpose(2, 0, 1)


def perfect(labels: np.ndarray, **kw) -> np.ndarray:
    """Decoding of 'predictions' made from the targets themselves."""
    t = cdnet_targets(labels)
    return cdnet_decode(one_hot(t["mask"], 3), one_hot(t["direction"], 9), t["point"], **kw)


def test_direction_classes_point_to_the_centre_at_known_pixels():
    m = two_squares()  # left square rows/cols 2..10, centre (6, 6); right one cols 11..19, centre (6, 15)
    d = direction_classes(m)
    # class k: the centre lies at (k - 1) * 45 degrees, counter-clockwise from +x, up the screen at 90
    known = {(6, 2): 1, (10, 2): 2, (10, 6): 3, (10, 10): 4, (6, 10): 5, (2, 10): 6, (2, 6): 7, (2, 2): 8,
             (6, 11): 1, (6, 19): 5, (0, 0): 0, (12, 21): 0}
    assert {p: int(d[p]) for p in known} == known
    assert d[6, 6] == 1  # the centre pixel itself, by convention


def test_direction_class_is_within_22_5_degrees_of_the_true_direction():
    m = np.zeros((41, 41), np.int32)
    m[disk((20, 20), 15, shape=m.shape)] = 1
    d = direction_classes(m)
    ys, xs = np.nonzero((m > 0) & ((np.indices(m.shape) - 20) ** 2).sum(0).astype(bool))
    to_centre = np.stack([20 - ys, 20 - xs], 1) / np.hypot(20 - ys, 20 - xs)[:, None]
    cos = (DIRECTION_VECTORS[d[ys, xs]] * to_centre).sum(1)
    assert cos.min() >= np.cos(np.radians(22.5)) - 1e-9
    assert (d[m == 0] == 0).all()


def test_three_class_mask_marks_the_shared_edge_as_boundary_on_both_sides():
    m = two_squares()
    mask = three_class_mask(m)
    assert (mask[2:11, 10] == 2).all() and (mask[2:11, 11] == 2).all()  # the shared edge
    assert (mask[3:10, 3:10] == 1).all() and np.count_nonzero((mask == 1) & (m == 3)) == 49
    assert (mask[m == 0] == 0).all() and (mask[2, 2:20] == 2).all()  # outer ring, background untouched


def test_point_map_is_a_unit_gaussian_at_each_centre():
    m = two_squares()
    p = point_map(m, sigma=2.0)
    assert p[6, 6] == pytest.approx(1.0) and p[6, 15] == pytest.approx(1.0)
    assert p[6, 8] == pytest.approx(np.exp(-0.5), rel=1e-6)  # 2 pixels = one sigma away
    assert sorted(map(tuple, peak_local_max(p, threshold_abs=0.5).tolist())) == [(6, 6), (6, 15)]
    assert point_map(m, sigma=4.0)[6, 10] == pytest.approx(np.exp(-0.5), rel=1e-6)


def test_direction_difference_is_high_at_the_shared_edge_ring_and_centre_only():
    m = two_squares()
    dd = direction_difference(direction_classes(m))
    assert dd[6, 10] == 1.0 and dd[6, 11] == 1.0  # opposite directions across the shared edge
    assert dd[4, 4] == 0.0 and (dd[m == 0] == 0).all()
    ring = m.astype(bool) & ~ndi.binary_erosion(m == 3) & (m == 3)
    near_centre = np.zeros_like(ring)
    near_centre[5:8, 5:8] = True  # directions converge around the centre (6, 6)
    assert ((dd > 0) & (m == 3)).sum() == (ring | near_centre & (dd > 0)).sum()
    assert (dd[ring] > 0).all()


def test_round_trip_two_touching_squares_exactly():
    m = two_squares()
    out = perfect(m)
    assert out.max() == 2 and min(best_ious(m, out).values()) == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_round_trip_recovers_every_touching_cell(seed):
    cells = tessellation(seed)  # 25 convex cells, all touching their neighbours, straight and slanted edges
    out = perfect(cells)
    ious = best_ious(cells, out)
    assert len(ious) == 25 and out.max() == 25
    assert min(ious.values()) > 0.9


def test_round_trip_touching_discs_any_labels():
    m = np.zeros((60, 60), np.int32)
    for label, (centre, r) in zip((5, 9, 2, 40, 11), [((15, 15), 9), ((15, 31), 9), ((30, 22), 10),
                                                     ((45, 40), 8), ((32, 40), 7)]):
        m[disk(centre, r, shape=m.shape)] = label
    for seeds in (True, False):
        out = perfect(m, point_seeds=seeds)
        assert out.max() == 5 and min(best_ious(m, out).values()) > 0.9


def test_the_direction_difference_alone_separates_touching_cells():
    m = two_squares(15)  # large enough for the shared edge to lie outside both centre regions
    t = cdnet_targets(m)
    merged_mask = one_hot(three_class_mask(m > 0), 3)  # a mask that missed the shared edge
    out = cdnet_decode(merged_mask, t["direction"], t["point"], point_seeds=False)
    assert out.max() == 2 and min(best_ious(m, out).values()) > 0.9
    no_direction = np.zeros_like(t["direction"])  # control: no direction information, no point seeds
    assert cdnet_decode(merged_mask, no_direction, t["point"], point_seeds=False).max() == 1
    assert refine_mask(merged_mask, t["direction"], t["point"])[9, 16] == 2  # the edge became boundary


def test_point_peaks_split_an_interior_that_holds_two_centres():
    m = two_squares()
    t = cdnet_targets(m)
    merged_mask = one_hot(three_class_mask(m > 0), 3)
    no_direction = np.zeros_like(t["direction"])
    out = cdnet_decode(merged_mask, no_direction, t["point"], point_seeds=True)
    assert out.max() == 2 and min(best_ious(m, out).values()) > 0.9
    assert cdnet_decode(merged_mask, no_direction, t["point"], point_seeds=False).max() == 1


def test_targets_of_an_empty_image_and_its_decoding_are_empty():
    t = cdnet_targets(np.zeros((8, 8), np.int32))
    assert not t["mask"].any() and not t["direction"].any() and not t["point"].any()
    assert not perfect(np.zeros((8, 8), np.int32)).any()


def test_decode_outputs_of_a_batch_of_logits():
    cells = [two_squares(), np.fliplr(two_squares()).copy()]
    mask, direction, point = stack_targets(cells)
    assert mask.shape == (2, 13, 22) and direction.dtype == torch.int64 and point.shape == (2, 1, 13, 22)
    outputs = {"mask": 10.0 * torch.nn.functional.one_hot(mask, 3).permute(0, 3, 1, 2).float(),
               "direction": 10.0 * torch.nn.functional.one_hot(direction, 9).permute(0, 3, 1, 2).float(),
               "point": point}
    out = decode_outputs(outputs)
    assert [o.dtype for o in out] == [np.int32, np.int32]
    assert all(min(best_ious(c, o).values()) == 1.0 for c, o in zip(cells, out))


def test_bad_input_names_the_parameter():
    good = cdnet_targets(two_squares())
    probs, point = one_hot(good["mask"], 3), good["point"]
    with pytest.raises(ValueError, match="2-D label image"):
        cdnet_targets(np.zeros((2, 4, 4), np.int32))
    with pytest.raises(ValueError, match="integer labels"):
        direction_classes(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="non-negative"):
        three_class_mask(-np.ones((4, 4), np.int32))
    with pytest.raises(ValueError, match="sigma"):
        point_map(two_squares(), sigma=0)
    with pytest.raises(ValueError, match=r"direction classes must lie in 0..8"):
        direction_difference(np.full((3, 3), 9))
    with pytest.raises(ValueError, match=r"mask_probs must have shape \(3, H, W\)"):
        cdnet_decode(probs[:2], good["direction"], point)
    with pytest.raises(ValueError, match="softmax"):
        cdnet_decode(probs * 5 - 2, good["direction"], point)
    with pytest.raises(ValueError, match="direction must be"):
        cdnet_decode(probs, good["direction"].astype(float), point)
    with pytest.raises(ValueError, match="direction and point must cover"):
        cdnet_decode(probs, good["direction"], point[:-1])
    with pytest.raises(ValueError, match="point_threshold"):
        cdnet_decode(probs, good["direction"], point, point_threshold=0)
    with pytest.raises(ValueError, match="missing"):
        decode_outputs({"mask": torch.zeros(1, 3, 4, 4)})
