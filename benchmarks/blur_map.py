"""HiFST blur map at stride 1: cellrepro (PyTorch, separable DCTs on strided views) vs straightforward NumPy.

    python benchmarks/blur_map.py [--size 512] [--device cpu] [--stack 0]

Both evaluate the same definition on the same image in this process: the baseline loops over
pixels, takes each M x M patch, computes ``D @ P @ D.T``, keeps the high-frequency magnitudes,
sorts them; the rest of the pipeline (normalisation, entropy, domain-transform filter) is the
shared code. With ``--stack Z`` it also times a Z x size x size stack through ``blur_map``
(seconds per stack; on a GPU with ``--device cuda``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from cellrepro.record import machine_device
from cellrepro.stacking import blur


def numpy_layers(gradient: np.ndarray, scales=blur.SCALES) -> np.ndarray:
    """Eq. 4 the straightforward way: one pixel, one patch, one DCT at a time."""
    h, w = gradient.shape
    pad = max(scales) // 2
    padded = np.pad(gradient, pad)
    mats = {m: blur._dct_and_mask(m) for m in scales}
    k = sum(scales) + 1
    out = np.empty((k, h, w))
    for y in range(h):
        for x in range(w):
            values = []
            for m in scales:
                r = m // 2
                patch = padded[y + pad - r:y + pad + r + 1, x + pad - r:x + pad + r + 1]
                d, high = mats[m]
                values.append(np.abs(d @ patch @ d.T).ravel()[high])
            out[:, y, x] = np.sort(np.concatenate(values))[:k]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--stack", type=int, default=0, help="also time a stack of this many slices")
    args = parser.parse_args()
    from skimage import data

    image = np.resize(data.camera(), (args.size, args.size)).astype(np.float64) / 255
    print(f"device: {machine_device()}; blur_map on {args.device}, {args.size} x {args.size}, stride 1, float64")
    grad = blur.gradient_magnitude(blur.prepare(image)).numpy()[0, 0]
    t0 = time.perf_counter()
    ours = blur.sorted_layers(torch.as_tensor(grad, device=args.device)[None, None]).cpu().numpy()[0]
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    full = blur.blur_map(image, device=args.device)
    t_full = time.perf_counter() - t0
    t0 = time.perf_counter()
    base = numpy_layers(grad)
    t_base = time.perf_counter() - t0
    assert np.allclose(ours, base, rtol=1e-9, atol=1e-9), "the two evaluations disagree"
    print(f"DCT layers, cellrepro    {t_ours:8.1f} s")
    print(f"DCT layers, NumPy loop   {t_base:8.1f} s   ratio {t_base / t_ours:.1f}x")
    print(f"whole blur map           {t_full:8.1f} s   (mean {full.mean():.4f})")
    if args.stack:
        stack = np.stack([np.roll(image, 7 * z, axis=1) for z in range(args.stack)])
        t0 = time.perf_counter()
        blur.blur_map(stack, device=args.device, normalize="stack")
        print(f"stack {args.stack} x {args.size} x {args.size}: {time.perf_counter() - t0:.1f} s per stack")


if __name__ == "__main__":
    main()
