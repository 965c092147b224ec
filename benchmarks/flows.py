"""Masks <- Cellpose flows on a 1024 x 1024 image with ~1000 touching cells: cellrepro vs a baseline.

    python benchmarks/flows.py [--size 1024] [--cells 1000] [--device cpu|cuda]
                               [--baseline auto|cellpose|loop] [--sample 2000] [--repeat 3]
                               [--targets]

All in this process, on the same flows (``cellrepro.instances.masks_to_flows`` of Voronoi
cells of radius <= 20 px from ``skimage.segmentation.expand_labels``) and cell probability:

* ``cellrepro``: ``flows_to_masks`` (200 Euler steps, end-point clustering, holes filled,
  masks < 15 px dropped; flow-error check off).
* ``cellpose`` (``--baseline cellpose``, or ``auto`` when the package imports): the package's
  ``dynamics.resize_and_compute_masks`` on the same work: 5 x the flows (it divides by 5),
  200 steps, ``flow_threshold=0`` (check off), ``min_size=15``.
* ``loop`` (``--baseline loop``, or ``auto`` without cellpose): the same Euler integration
  written as a per-pixel Python loop with bilinear interpolation; too slow to finish, so it is
  timed on ``--sample`` pixels and extrapolated linearly to all foreground pixels (said so in the
  output), plus the clustering timed as cellrepro runs it.

``--targets`` also times masks -> flows (cellrepro vs cellpose's ``masks_to_flows_gpu``; slow)
and cellrepro's masks <- flows with the flow-error check on.
Both sides run on ``--device``; the ratio is baseline seconds / cellrepro seconds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from skimage.segmentation import expand_labels

from cellrepro.engine.hardware import timed
from cellrepro.instances import flows_to_masks, masks_to_flows
from cellrepro.instances.flows import cluster_end_points, follow_flows
from cellrepro.metrics import instance_scores
from cellrepro.publish.record import machine_device


def cells(size: int, n: int, radius: float = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    seeds = np.zeros((size, size), np.int32)
    seeds[rng.integers(0, size, n), rng.integers(0, size, n)] = np.arange(1, n + 1)
    labels = expand_labels(seeds, distance=radius)
    return np.unique(labels, return_inverse=True)[1].reshape(labels.shape).astype(np.int32)


def loop_end_point(flows: np.ndarray, y: float, x: float, niter: int) -> tuple[float, float]:
    """One pixel's Euler integration with bilinear interpolation, the textbook way."""
    _, h, w = flows.shape
    for _ in range(niter):
        y0, x0 = min(int(y), h - 2), min(int(x), w - 2)
        fy, fx = y - y0, x - x0
        d = (flows[:, y0, x0] * (1 - fy) * (1 - fx) + flows[:, y0 + 1, x0] * fy * (1 - fx)
             + flows[:, y0, x0 + 1] * (1 - fy) * fx + flows[:, y0 + 1, x0 + 1] * fy * fx)
        y, x = min(max(y + d[0], 0.0), h - 1.0), min(max(x + d[1], 0.0), w - 1.0)
    return y, x


def loop_seconds(flows: np.ndarray, fg: np.ndarray, sample: int, niter: int = 200) -> float:
    ys, xs = np.nonzero(fg)
    pick = np.random.default_rng(1).choice(len(ys), min(sample, len(ys)), replace=False)
    field = flows * fg
    t0 = time.perf_counter()
    ends = [loop_end_point(field, float(ys[i]), float(xs[i]), niter) for i in pick]
    per_pixel = (time.perf_counter() - t0) / len(pick)
    t0 = time.perf_counter()
    cluster_end_points(np.column_stack((ys, xs)), fg.shape)  # the clustering, as cellrepro runs it
    clustering = time.perf_counter() - t0
    start = torch.from_numpy(np.column_stack((ys[pick], xs[pick])).astype(np.float32))
    gap = np.abs(follow_flows(torch.from_numpy(field), start).numpy() - np.array(ends)).max()
    print(f"loop: {len(pick)} of {len(ys)} pixels integrated, {per_pixel * 1e3:.2f} ms per pixel; "
          f"largest distance to cellrepro's end points {gap:.2g} px")
    return per_pixel * len(ys) + clustering


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--baseline", choices=("auto", "cellpose", "loop"), default="auto")
    parser.add_argument("--sample", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of masks <- flows (median)")
    parser.add_argument("--targets", action="store_true", help="also time masks -> flows")
    args = parser.parse_args()
    baseline = args.baseline
    if baseline in ("auto", "cellpose"):
        try:
            from cellpose import dynamics
        except ImportError:
            if baseline == "cellpose":
                raise
            baseline = "loop"
        else:
            baseline = "cellpose"
    dev = torch.device(args.device)
    truth = cells(args.size, args.cells)
    flows = masks_to_flows(truth)
    fg = truth > 0
    prob = fg.astype(np.float32) * 2 - 1  # a logit: > 0 inside
    print(f"device: {machine_device()} ({args.device}); {args.size} x {args.size}, {truth.max()} cells, "
          f"{fg.sum()} foreground pixels; torch threads {torch.get_num_threads()}")
    flows_to_masks(flows[:, :64, :64], prob[:64, :64], device=dev)  # warm-up

    def theirs():
        return dynamics.resize_and_compute_masks(5 * flows, prob, niter=200, cellprob_threshold=0.0,
                                                 flow_threshold=0.0, min_size=15, device=dev)

    runs = {"ours": [], "theirs": []}  # interleaved, medians: the machine is shared
    for _ in range(args.repeat):
        ours, t = timed(lambda: flows_to_masks(flows, prob, device=dev), args.device)
        runs["ours"].append(t)
        if baseline == "cellpose":
            out, t = timed(theirs, args.device)
            runs["theirs"].append(t)
    t_ours = float(np.median(runs["ours"]))
    print(f"cellrepro flows_to_masks  {t_ours:8.2f} s   {ours.max()} masks, "
          f"F1@0.5 vs truth {instance_scores(truth, ours)['f1']:.4f}   (median of {args.repeat})")
    if baseline == "cellpose":
        t_base = float(np.median(runs["theirs"]))
        print(f"cellpose 4 compute_masks  {t_base:8.2f} s   {out.max()} masks, "
              f"F1@0.5 vs truth {instance_scores(truth, out.astype(np.int32))['f1']:.4f}   "
              f"ratio {t_base / t_ours:5.2f}x   (median of {args.repeat})")
    else:
        t_base = loop_seconds(flows, fg, args.sample)
        print(f"per-pixel loop            {t_base:8.0f} s   ratio {t_base / t_ours:7.0f}x   "
              f"(extrapolated from {args.sample} pixels)")
    if args.targets:
        _, t_m2f = timed(lambda: masks_to_flows(truth, device=dev), args.device)
        print(f"cellrepro masks_to_flows  {t_m2f:8.2f} s")
        checked, t_chk = timed(lambda: flows_to_masks(flows, prob, flow_threshold=0.4, device=dev), args.device)
        print(f"cellrepro flows_to_masks with the flow-error check (0.4)  {t_chk:8.2f} s   {checked.max()} masks")
        if baseline == "cellpose":
            (theirs, _), t_cp = timed(lambda: dynamics.masks_to_flows_gpu(truth, device=dev), args.device)
            cos = (theirs * flows).sum(0)[fg].mean()
            print(f"cellpose masks_to_flows   {t_cp:8.2f} s   ratio {t_cp / t_m2f:5.2f}x   "
                  f"mean cosine between the two fields {cos:.3f}")


if __name__ == "__main__":
    main()
