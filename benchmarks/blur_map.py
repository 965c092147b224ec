"""HiFST blur maps: the current implementation against the previous one (131bf27), same process.

    python benchmarks/blur_map.py [--size 512] [--device cpu]
    python benchmarks/blur_map.py --device cuda --size 1024 --stack 15

The previous implementation computed every coefficient of the M x M DCT of every patch, masked
the high-frequency half with a boolean index, concatenated the scales and ran ``torch.topk``
over all 2,660 values per pixel; with ``normalize="stack"`` it moved each slice's layers to the
host and back. The current one computes only the high-frequency coefficients, along memory-
contiguous windows, selects per scale (NumPy's in-place introselect on CPU threads) and keeps a
stack's layers on the device. Both must give the same map (checked here to 1e-12 relative;
``tests/test_stacking.py`` checks the layers against a patch-by-patch evaluation and the map
against the authors' reference). Targets of issue 13: 512 x 512 <= 10 s on 2 CPU cores;
a 15 x 1024 x 1024 stack <= 2 s on one H100.
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from cellrepro.publish.record import machine_device
from cellrepro.stacking import blur


def previous_sorted_layers(gradient: torch.Tensor, scales: Sequence[int] = blur.SCALES, stride: int = 1,
                  max_values: int = 2 ** 25) -> torch.Tensor:
    """The implementation before this benchmark's change (commit 131bf27), kept as its baseline.

    The 2-D DCT of the M x M patch around every pixel is computed separably on strided views
    (no patch copies): a 1-D DCT of every row window, then of every column window of those,
    i.e. M^2 + M^3 multiply-adds per pixel instead of 2 M^3 for ``D @ P @ D.T``.

    Args:
        gradient: (B, 1, H, W) gradient magnitudes.
        stride: evaluate every ``stride``-th row and column.
        max_values: bound on the coefficients held at once (memory ~ 4 or 8 bytes each).

    Returns:
        (B, K, H', W') layers, K = ``sum(scales) + 1``, H' = ceil(H / stride).
    """
    scales = sorted(int(m) for m in scales)
    if any(m % 2 == 0 or m < 3 for m in scales):
        raise ValueError(f"scales must be odd and >= 3, got {scales}")
    b, _, h, w = gradient.shape
    k = sum(scales) + 1
    pad = max(scales) // 2
    padded = F.pad(gradient, (pad, pad, pad, pad))[:, 0]  # zeros, as MATLAB's padarray
    rows = list(range(0, h, stride))
    cols = torch.arange(0, w, stride, device=gradient.device)
    block = max(1, max_values // (b * len(cols) * max(scales) ** 2))
    mats = {m: (torch.as_tensor(blur._dct_and_mask(m)[0], dtype=gradient.dtype, device=gradient.device),
                torch.as_tensor(blur._dct_and_mask(m)[1], device=gradient.device)) for m in scales}
    out = torch.empty((b, k, len(rows), len(cols)), dtype=gradient.dtype, device=gradient.device)
    for start in range(0, len(rows), block):
        sel = rows[start:start + block]
        coefs = []
        for m in scales:
            r = m // 2
            dct, high = mats[m]
            region = padded[:, sel[0] + pad - r:sel[-1] + pad + r + 1, pad - r:pad + w + r]
            across = region.unfold(-1, m, 1)[:, :, cols] @ dct.T  # (B, rows_in, W', v): 1-D DCT along x
            both = across.unfold(1, m, stride) @ dct.T  # (B, rows_out, W', v, u): then along y
            coefs.append(both.reshape(b, len(sel), len(cols), m * m)[..., high].abs())  # u + v >= m - 1
        smallest = torch.topk(torch.cat(coefs, -1), k, dim=-1, largest=False, sorted=True).values
        out[:, :, start:start + len(sel)] = smallest.permute(0, 3, 1, 2)
    return out


@contextmanager
def previous_implementation():
    """Run ``blur.blur_map`` with the previous layers, moved to the host as the old stack path did."""
    current = blur.sorted_layers

    def layers(gradient, scales=blur.SCALES, stride=1):
        out = previous_sorted_layers(gradient, scales, stride)
        return out.cpu() if gradient.device.type != "cpu" else out

    blur.sorted_layers = layers
    try:
        yield
    finally:
        blur.sorted_layers = current


def timed(fn, device: str) -> tuple[float, np.ndarray]:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--stack", type=int, default=0, help="time a stack of this many slices (normalize='stack')")
    args = parser.parse_args()
    from skimage import data

    image = np.resize(data.camera(), (args.size, args.size)).astype(np.float64) / 255
    if args.stack:
        image = np.stack([np.roll(image, 7 * z, axis=1) for z in range(args.stack)])
    kwargs = {"device": args.device, "normalize": "stack" if args.stack else "slice"}
    what = f"{args.stack} x " if args.stack else ""
    print(f"machine: {machine_device()}; blur_map of {what}{args.size} x {args.size} on {args.device}, "
          f"stride 1, float64, {torch.get_num_threads()} CPU threads")
    blur.blur_map(image[..., :64, :64], **kwargs)  # warm-up (CUDA context, kernels)
    t_new, new = timed(lambda: blur.blur_map(image, **kwargs), args.device)
    with previous_implementation():
        t_old, old = timed(lambda: blur.blur_map(image, **kwargs), args.device)
    assert np.allclose(new, old, rtol=1e-12, atol=1e-12 * np.abs(old).max()), "the two implementations disagree"
    print(f"previous implementation  {t_old:8.2f} s")
    print(f"current implementation   {t_new:8.2f} s   ratio {t_old / t_new:.2f}x   (mean map {new.mean():.4f})")


if __name__ == "__main__":
    main()
