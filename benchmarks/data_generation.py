"""Seconds to generate (and write) the book-profile size of each synthetic data family.

    python benchmarks/data_generation.py [--write DIR]

The data issue asks for under a minute per family on 2 CPU cores. The baseline printed beside
each family is the same generator at a quarter of the items, run in this process, so the ratio
shows the cost grows linearly with the number of items.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from cellrepro import data
from cellrepro.publish.record import machine_device


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", help="also write each set in its on-disk format under this folder")
    args = parser.parse_args()
    out = args.write or tempfile.mkdtemp(prefix="cellrepro-bench-")
    print(f"device: {machine_device()}")
    print(f"{'family':<22}{'book-profile size':<44}{'generate s':>11}{'write s':>9}{'quarter s':>11}{'ratio':>7}")
    for name, fam in data.FAMILIES.items():
        params = fam.params(seed=0)
        main_key = "n_labeled" if "n_labeled" in params else "n"
        gen_s, result = timed(fam.generate, **params)
        write_s, _ = timed(fam.save, f"{out}/{name}", result)
        quarter = fam.params(n=max(1, params[main_key] // 4), size=params["size"], seed=0)
        q_s, _ = timed(fam.generate, **quarter)
        size = ", ".join(f"{k}={v}" for k, v in params.items() if k != "seed")
        print(f"{name:<22}{size:<44}{gen_s:>11.1f}{write_s:>9.1f}{q_s:>11.1f}{gen_s / q_s:>7.1f}")


if __name__ == "__main__":
    main()
