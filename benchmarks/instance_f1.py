"""Instance F1 on a 10,000 x 10,000 label image: one-pass contingency vs per-instance-pair baselines.

    python benchmarks/instance_f1.py [--size 10000] [--cells 30000] [--sample 40]

All in this process, on the same synthetic label images (Voronoi cells of radius <= 25 px,
the prediction shifted by 3 px):

* ``cellrepro``: ``instance_scores`` (plain mode), which counts label pairs in one pass.
* ``bbox pairs``: for every ground-truth cell, each predicted label inside it is compared
  within the union of the two bounding boxes (scipy ``find_objects``), then the same matching.
* ``full-image pairs``: the textbook loop, ``gt == i`` and ``pred == j`` over the whole image
  for each overlapping pair; too slow to finish, so it is timed on ``--sample`` cells and
  extrapolated linearly to all of them (said so in the output).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage as ndi

from cellrepro.metrics import instance_scores, match
from cellrepro.metrics.instance import Overlaps, relabel
from cellrepro.publish.record import machine_device


def voronoi_cells(size: int, cells: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    seeds = np.zeros((size, size), np.int32)
    seeds[rng.integers(0, size, cells), rng.integers(0, size, cells)] = np.arange(1, cells + 1)
    dist, (iy, ix) = ndi.distance_transform_edt(seeds == 0, return_indices=True)
    labels = seeds[iy, ix]
    labels[dist > 25] = 0
    return relabel(labels)


def bbox_pairs(gt: np.ndarray, pred: np.ndarray) -> Overlaps:
    boxes_g, boxes_p = ndi.find_objects(gt), ndi.find_objects(pred)
    area_g = np.bincount(gt.ravel())[1:]
    area_p = np.bincount(pred.ravel())[1:]
    gi, pj, inter = [], [], []
    for i, box in enumerate(boxes_g, start=1):
        if box is None:
            continue
        for j in np.unique(pred[box][gt[box] == i]):
            if j == 0:
                continue
            pb = boxes_p[j - 1]
            union = tuple(slice(min(a.start, b.start), max(a.stop, b.stop)) for a, b in zip(box, pb))
            inter.append(np.count_nonzero((gt[union] == i) & (pred[union] == j)))
            gi.append(i - 1)
            pj.append(j - 1)
    return Overlaps(np.array(gi), np.array(pj), np.array(inter), area_g, area_p)


def full_image_pairs_seconds_per_cell(gt: np.ndarray, pred: np.ndarray, sample: int) -> float:
    t0 = time.perf_counter()
    for i in range(1, sample + 1):
        g = gt == i
        for j in np.unique(pred[g]):
            if j:
                p = pred == j
                _ = np.count_nonzero(g & p) / np.count_nonzero(g | p)
    return (time.perf_counter() - t0) / sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--cells", type=int, default=30000)
    parser.add_argument("--sample", type=int, default=40)
    args = parser.parse_args()
    gt = voronoi_cells(args.size, args.cells)
    pred = relabel(np.roll(gt, 3, axis=1))
    n = int(gt.max())
    print(f"device: {machine_device()}; {args.size} x {args.size} labels, {n} cells")

    t0 = time.perf_counter()
    ours = instance_scores(gt, pred)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, _, ious = match(bbox_pairs(gt, pred), 0.5)
    t_bbox = time.perf_counter() - t0
    assert len(ious) == ours["tp"], "baseline and cellrepro disagree"
    per_cell = full_image_pairs_seconds_per_cell(gt, pred, args.sample)
    t_full = per_cell * n

    print(f"cellrepro (one pass)      {t_ours:10.2f} s   TP {ours['tp']}  F1 {ours['f1']:.4f}")
    print(f"bbox pairs                {t_bbox:10.2f} s   ratio {t_bbox / t_ours:7.1f}x")
    print(f"full-image pairs          {t_full:10.0f} s   ratio {t_full / t_ours:7.0f}x"
          f"   (extrapolated from {args.sample} cells: {per_cell:.3f} s per cell)")


if __name__ == "__main__":
    main()
