"""Seeds side by side (``cellrepro.engine.parallel.map_units``) against the seeds one after the other.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/parallel_seeds.py [--seeds 2] [--steps 100]

The same work three ways in one process, on the same fields: the brightfield overlap section's arm
(a 2-head SE-U-Net, widths 8-64, batch 4 of 96 px crops, ``--steps`` updates, then prediction on 4
held-out 256 px fields) for each of ``--seeds`` seeds,

1. one after the other with torch's default thread count (how the notebooks ran before),
2. one after the other with one thread each,
3. through ``map_units``: one worker process per core, one thread each.

Prints seconds and the ratios to (1), and checks that (2) and (3) give the same AP (each unit runs
single-threaded either way).
"""

from __future__ import annotations

import argparse
import functools
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()

    from cellrepro.chapters.brightfield import heads
    from cellrepro.chapters.brightfield import overlap_loss as ol
    from cellrepro.chapters.brightfield import train as bt
    from cellrepro.engine.parallel import one_thread, workers_for

    settings = bt.Settings(steps=args.steps, batch=4, crop=96, features=(8, 16, 32, 64), device="cpu", progress=False)
    tests = heads.held_out_fields(4, 256)
    train = functools.partial(heads.fields, n=6, size=256)
    seeds = list(range(args.seeds))

    def serial() -> list[float]:
        return [float(ol.seed_run(s, train(s), tests, settings, [ol.NONE], weak=None)[0]["ap"][0]) for s in seeds]

    timings, aps = {}, {}
    start = time.perf_counter()
    aps["default threads"] = serial()
    timings[f"serial, {torch.get_num_threads()} threads"] = time.perf_counter() - start
    start = time.perf_counter()
    with one_thread():
        aps["one thread"] = serial()
    timings["serial, 1 thread"] = time.perf_counter() - start
    start = time.perf_counter()
    rows, _, _ = ol.run_seeds(seeds, train, tests, settings, [ol.NONE], weak=None)
    aps["map_units"] = rows["ap"].tolist()
    timings[f"map_units, {workers_for(len(seeds))} workers x 1 thread"] = time.perf_counter() - start
    base = next(iter(timings.values()))
    for name, seconds in timings.items():
        print(f"{name:>36}: {seconds:7.1f} s  ({base / seconds:.2f}x the first)")
    print("same AP, serial 1 thread and map_units:", aps["one thread"] == aps["map_units"], aps)


if __name__ == "__main__":
    main()
