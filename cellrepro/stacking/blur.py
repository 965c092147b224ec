"""HiFST blur maps (Golestaneh & Karam, CVPR 2017), as the spheroid paper's Eq. 1-8 use them.

The map follows the authors' public MATLAB code (``HiFST.m``) step by step:

1. a 3 x 3 Gaussian (sigma 0.5, replicate padding) on the image; for 8-bit input the result
   and the grey conversion (ITU-R BT.601 weights) are rounded to 8 bits, as MATLAB does;
2. the gradient magnitude: ``"sobel"`` (MATLAB's ``imgradient`` default, used by HiFST) or
   ``"roberts"`` (the 2 x 2 operators the spheroid paper writes in Eq. 3);
3. at every pixel, patches of sizes M in ``scales`` (7, 15, 31, 63) of the zero-padded
   gradient image; their orthonormal 2-D DCT-II; the absolute high-frequency coefficients
   (0-based ``u + v >= M - 1``) of all scales pooled and sorted; the ``sum(M) + 1`` smallest
   form the layers L_t (Eq. 4);
4. each layer min-max normalised over the image (Eq. 5), T = the per-pixel maximum (Eq. 7);
5. D = local entropy of min-max-normalised T (7 x 7, 256 bins, log2, symmetric padding)
   times min-max-normalised T (Eq. 6, 8);
6. the domain-transform recursive filter (sigma_s 15, sigma_r 0.25, 3 iterations) guided by
   the min-max-normalised grey image smoothed by a 3 x 3 Gaussian (sigma 1, zero padding).

Library pieces: kornia for the Gaussians and Sobel, SciPy for the DCT matrix, scikit-image
for the local entropy. The patch transforms are separable matrix products on strided views of
chunks of rows (bounded memory, CPU or GPU); ``stride > 1`` evaluates the layers every ``stride`` pixels
and interpolates T bilinearly (faster, no longer exact).
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from ..engine.progress import bar as progress_bar

SCALES = (7, 15, 31, 63)
GRADIENTS = ("sobel", "roberts")
_GREY = (0.298936021293775, 0.587043074451121, 0.114020904255103)  # MATLAB rgb2gray


def _round_half_up(x: torch.Tensor) -> torch.Tensor:
    """MATLAB's rounding of non-negative values (halves away from zero), then 8-bit saturation."""
    return torch.floor(x + 0.5).clamp(0, 255)


def prepare(image: np.ndarray, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu") -> torch.Tensor:
    """Step 1: smoothed grey image(s) as (B, 1, H, W).

    Accepts (H, W) grey, (H, W, 3) RGB, or a stack (Z, H, W) of grey slices. 8-bit input is
    rounded after each step like the original; other types stay in floating point.
    """
    from kornia.filters import gaussian_blur2d

    arr = np.asarray(image)
    eight_bit = arr.dtype == np.uint8
    rgb = arr.ndim == 3 and arr.shape[-1] == 3 and arr.shape[0] != 3
    if rgb:
        t = torch.as_tensor(arr, dtype=dtype, device=device).permute(2, 0, 1)[None]  # (1, 3, H, W)
    elif arr.ndim == 2:
        t = torch.as_tensor(arr, dtype=dtype, device=device)[None, None]
    elif arr.ndim == 3:
        t = torch.as_tensor(arr, dtype=dtype, device=device)[:, None]
    else:
        raise ValueError(f"expected (H, W), (H, W, 3) or (Z, H, W), got shape {arr.shape}")
    t = gaussian_blur2d(t, (3, 3), (0.5, 0.5), border_type="replicate")
    if eight_bit:
        t = _round_half_up(t)
    if rgb:
        w = torch.tensor(_GREY, dtype=dtype, device=device).view(1, 3, 1, 1)
        t = (t * w).sum(1, keepdim=True)
        if eight_bit:
            t = _round_half_up(t)
    return t


def gradient_magnitude(grey: torch.Tensor, operator: str = "sobel") -> torch.Tensor:
    """Step 2 (Eq. 3): (B, 1, H, W) gradient magnitude, replicate padding.

    ``"sobel"``: 3 x 3 Sobel (kornia, unnormalised), as MATLAB's ``imgradient``.
    ``"roberts"``: the paper's 2 x 2 kernels ``[[1, 0], [0, -1]]`` and ``[[0, 1], [-1, 0]]``
    (kornia has no Roberts operator), each anchored at the top-left pixel.
    """
    if operator == "sobel":
        from kornia.filters import spatial_gradient

        g = spatial_gradient(grey, mode="sobel", order=1, normalized=False)[:, :, :]
        return torch.hypot(g[:, :, 0], g[:, :, 1])
    if operator == "roberts":
        padded = F.pad(grey, (0, 1, 0, 1), mode="replicate")
        kx = torch.tensor([[1.0, 0.0], [0.0, -1.0]], dtype=grey.dtype, device=grey.device).view(1, 1, 2, 2)
        ky = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=grey.dtype, device=grey.device).view(1, 1, 2, 2)
        return torch.hypot(F.conv2d(padded, kx), F.conv2d(padded, ky))
    raise ValueError(f"unknown gradient operator '{operator}'; use one of {GRADIENTS}")


@functools.lru_cache(maxsize=None)
def _dct_and_mask(m: int) -> tuple[np.ndarray, np.ndarray]:
    from scipy.fft import dct

    matrix = dct(np.eye(m), type=2, norm="ortho", axis=0)  # row u: the u-th DCT-II basis vector
    u, v = np.mgrid[0:m, 0:m]
    return matrix, (u + v >= m - 1).ravel()


def _blocks(m: int, size: int) -> list[tuple[int, int]]:
    return [(v0, min(m, v0 + size)) for v0 in range(0, m, size)]


def _high_frequency(down: torch.Tensor, dct: torch.Tensor, stride: int, out: torch.Tensor, block: int = 8) -> None:
    """Write the high-frequency coefficients (``u + v >= m - 1``) of every patch into ``out``.

    ``down`` holds the 1-D DCTs of every column window, (B, u, rows_out, W + m - 1); the second
    1-D DCT runs along the rows, whose windows are contiguous in memory. For each block of
    ``u`` only the ``v`` its members need are computed (about half of the ``m^3`` products of the
    full transform), and the results go straight into their columns of ``out``
    (B, rows_out, W', m (m + 1) / 2), in the order ``u``, then ``v``.
    """
    m = dct.shape[0]
    off = 0
    for u0, u1 in _blocks(m, block):
        v0 = m - u1  # the smallest v needed in the block (by u = u1 - 1)
        both = down[:, u0:u1].unfold(-1, m, stride) @ dct[v0:].T  # (B, nb, rows_out, W', m - v0)
        for u in range(u0, u1):
            out[..., off:off + u + 1] = both[:, u - u0, ..., m - 1 - u - v0:]
            off += u + 1


def _smallest(values: torch.Tensor, k: int, ascending: bool) -> torch.Tensor:
    """The ``k`` smallest entries along the last axis (sorted if ``ascending``); overwrites ``values``.

    On a CPU NumPy's in-place introselect on threads is about 4x faster than ``torch.topk``
    here (it copies no (value, index) pairs; measured on 2 cores, 262,144 rows of 2,660 values:
    1.0 s against 4.3 s); on other devices ``torch.topk``.
    """
    if k >= values.shape[-1] and not ascending:
        return values
    if values.device.type != "cpu":
        return torch.topk(values, k, dim=-1, largest=False, sorted=ascending).values
    flat = values.reshape(-1, values.shape[-1]).numpy()
    workers = max(1, torch.get_num_threads())
    parts = np.array_split(np.arange(len(flat)), workers)

    def select(rows: np.ndarray) -> None:
        if len(rows):
            part = flat[rows[0]:rows[-1] + 1]
            if k < part.shape[-1]:
                part.partition(k - 1, axis=-1)
            if ascending:
                part[:, :k].sort(axis=-1)

    if workers == 1:
        select(parts[0])
    else:
        list(_threads(workers).map(select, parts))
    return values[..., :k]


@functools.lru_cache(maxsize=None)
def _threads(workers: int):
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(workers, thread_name_prefix="hifst-select")


def sorted_layers(gradient: torch.Tensor, scales: Sequence[int] = SCALES, stride: int = 1,
                  max_values: int | None = None) -> torch.Tensor:
    """Step 3 (Eq. 4): the ``sum(scales) + 1`` smallest high-frequency DCT magnitudes per pixel.

    The 2-D DCT of the M x M patch around every pixel is computed separably on strided views
    (no patch copies): a 1-D DCT of every column window, then, along the rows, only the
    coefficients that are high-frequency (``u + v >= M - 1``: ``M (M + 1) / 2`` of the ``M^2``),
    written straight into one buffer per scale and block of rows; each scale's ``K`` smallest
    are selected in place, and the ``K`` smallest of those, sorted, are the layers. Same values
    as the full transform followed by a mask (``tests/test_stacking.py`` checks them against a
    patch-by-patch evaluation), in about a quarter of the time on 2 CPU cores
    (``benchmarks/blur_map.py``).

    Args:
        gradient: (B, 1, H, W) gradient magnitudes.
        stride: evaluate every ``stride``-th row and column.
        max_values: bound on the coefficients held at once (memory ~ 4 or 8 bytes each); by
            default 2^22 on a CPU (blocks that stay in cache: 2^25 was 30 % slower on 2 cores)
            and 2^28 on other devices (fewer, larger kernels).

    Returns:
        (B, K, H', W') layers, K = ``sum(scales) + 1``, H' = ceil(H / stride).
    """
    scales = sorted(int(m) for m in scales)
    if any(m % 2 == 0 or m < 3 for m in scales):
        raise ValueError(f"scales must be odd and >= 3, got {scales}")
    b, _, h, w = gradient.shape
    k = sum(scales) + 1
    max_values = max_values or (2 ** 22 if gradient.device.type == "cpu" else 2 ** 28)
    pad = max(scales) // 2
    padded = F.pad(gradient, (pad, pad, pad, pad))[:, 0]  # zeros, as MATLAB's padarray
    rows = list(range(0, h, stride))
    n_cols = len(range(0, w, stride))
    block = max(1, max_values // (b * n_cols * max(scales) ** 2))
    # the 1-D DCTs down the columns are computed for many rows at once (``outer`` rows, about
    # 2^26 values): per block of ``block`` rows their m - 1 rows of overlap would cost more than
    # the second transform itself
    outer = max(block, (2 ** 26 // (b * (w + 2 * pad) * sum(scales))) // block * block)
    dcts = {m: torch.as_tensor(_dct_and_mask(m)[0], dtype=gradient.dtype, device=gradient.device) for m in scales}
    out = torch.empty((b, k, len(rows), n_cols), dtype=gradient.dtype, device=gradient.device)
    for first in range(0, len(rows), outer):
        span = rows[first:first + outer]
        down = {}
        for m in scales:
            r = m // 2
            region = padded[:, span[0] + pad - r:span[-1] + pad + r + 1, pad - r:pad + w + r]
            # (B, u, rows_out, W + 2r): 1-D DCT along y, rows of windows contiguous for the second transform
            down[m] = (region.unfold(1, m, stride) @ dcts[m].T).permute(0, 3, 1, 2).contiguous()
        for start in range(0, len(span), block):
            n = len(span[start:start + block])
            candidates = []
            for m in scales:
                high = torch.empty((b, n, n_cols, m * (m + 1) // 2), dtype=gradient.dtype, device=gradient.device)
                _high_frequency(down[m][:, :, start:start + n], dcts[m], stride, high)
                candidates.append(_smallest(high.abs_(), k, ascending=False))
            smallest = _smallest(torch.cat(candidates, -1), k, ascending=True)
            out[:, :, first + start:first + start + n] = smallest.permute(0, 3, 1, 2)
    return out


def _minmax(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    lo = x.amin(dim=dims, keepdim=True)
    hi = x.amax(dim=dims, keepdim=True)
    return torch.where(hi > lo, (x - lo) / (hi - lo), torch.zeros_like(x))


def local_entropy(image01: np.ndarray, size: int = 7) -> np.ndarray:
    """MATLAB ``entropyfilt`` of a [0, 1] image: 8-bit levels, ``size`` x ``size``, log2, symmetric padding."""
    from skimage.filters.rank import entropy

    levels = np.floor(np.clip(image01, 0, 1) * 255 + 0.5).astype(np.uint8)
    r = size // 2
    padded = np.pad(levels, r, mode="symmetric")
    return entropy(padded, np.ones((size, size), bool))[r:-r, r:-r].astype(np.float64)


def local_entropy_torch(image01: torch.Tensor, size: int = 7, max_values: int = 2 ** 27) -> torch.Tensor:
    """:func:`local_entropy` of (B, H, W) [0, 1] images on their device (for GPUs: no round trip).

    scikit-image's rank filter runs on the CPU only. Here each window's entropy in bits is
    ``log2(n) - sum_i log2(c_i) / n`` over its ``n = size^2`` pixels, ``c_i`` the number of
    pixels in the window at pixel i's level (each level with count c contributes c log2 c);
    the counts come from comparing every pair of window pixels, a block of rows at a time.
    """
    b, h, w = image01.shape
    r = size // 2
    levels = torch.floor(image01.clamp(0, 1) * 255 + 0.5).to(torch.uint8)
    rows = torch.as_tensor(np.pad(np.arange(h), r, mode="symmetric"), device=image01.device)
    cols = torch.as_tensor(np.pad(np.arange(w), r, mode="symmetric"), device=image01.device)
    padded = levels[:, rows][:, :, cols]
    n = size * size
    out = torch.empty((b, h, w), dtype=image01.dtype, device=image01.device)
    step = max(1, max_values // (b * w * n * n))
    for y0 in range(0, h, step):
        y1 = min(h, y0 + step)
        win = padded[:, y0:y1 + 2 * r].unfold(1, size, 1).unfold(2, size, 1).reshape(b, y1 - y0, w, n)
        counts = (win[..., :, None] == win[..., None, :]).sum(-1, dtype=torch.int32)
        out[:, y0:y1] = np.log2(n) - torch.log2(counts.to(image01.dtype)).sum(-1) / n
    return out


NORMALIZE = ("slice", "stack")


def blur_map(image: np.ndarray, gradient: str = "sobel", scales: Sequence[int] = SCALES, stride: int = 1,
             normalize: str = "slice", device: str | None = None, dtype: torch.dtype | None = None,
             progress: bool = False, return_parts: bool = False) -> np.ndarray | dict[str, np.ndarray]:
    """The HiFST blur map of an image or of every slice of a stack (higher = sharper).

    Args:
        image: (H, W) grey, (H, W, 3) RGB (uint8 follows the original's 8-bit rounding), or a
            (Z, H, W) stack of grey slices.
        gradient: ``"sobel"`` (HiFST) or ``"roberts"`` (spheroid paper, Eq. 3).
        scales: patch sizes M (odd).
        stride: 1 is exact; larger values trade accuracy for speed.
        normalize: ``"slice"``, the original: layers and T min-max normalised within each
            image, so maps show *where* an image is sharp but are not comparable between
            images; ``"stack"``: layers and T normalised jointly over the slices of a stack,
            so that summing a map (Eq. 9) ranks slices by sharpness. Measured on a sharp image
            blurred by increasing amounts, per-slice maps rank the sharpest slice *last*; the
            stack variant ranks them in order (see tests/test_stacking.py). Keeping the
            layers of a whole stack costs ``4 * Z * (sum(scales) + 1) * H * W`` bytes.
        device: ``"cuda"``, ``"cpu"``...; default CUDA when available.
        dtype: default float64, within 0.5/255 of the authors' 8-bit map of the test image
            after min-max normalisation (float32 is 1.6x faster on a CPU and within 1.6/255).
        return_parts: also return T and D.

    For both normalisations at the price of one (the layers are shared), see :func:`blur_maps`.

    Returns:
        The un-normalised final map (H, W) or (Z, H, W), float64; with ``return_parts`` a dict
        with ``map``, ``T`` and ``D``.
    """
    if normalize not in NORMALIZE:
        raise ValueError(f"normalize must be one of {NORMALIZE}, got '{normalize}'")
    parts = blur_maps(image, (normalize,), gradient, scales, stride, device, dtype, progress, return_parts=True)
    return parts[normalize] if return_parts else parts[normalize]["map"]


def blur_maps(image: np.ndarray, normalize: Sequence[str] = NORMALIZE, gradient: str = "sobel",
              scales: Sequence[int] = SCALES, stride: int = 1, device: str | None = None,
              dtype: torch.dtype | None = None, progress: bool = False,
              return_parts: bool = False) -> dict[str, np.ndarray] | dict[str, dict[str, np.ndarray]]:
    """:func:`blur_map` with several normalisations from one computation of the layers.

    Returns ``{normalisation: map}`` (with ``return_parts``, ``{normalisation: {"map", "T", "D"}}``);
    arguments as for :func:`blur_map`. The layers, the costly part, are computed once per slice.
    """
    from kornia.filters import gaussian_blur2d

    from .domain_transform import recursive_filter

    unknown = set(normalize) - set(NORMALIZE)
    if unknown or not normalize:
        raise ValueError(f"normalize must name some of {NORMALIZE}, got {tuple(normalize)}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = dtype or torch.float64
    arr = np.asarray(image)
    is_stack = arr.ndim == 3 and not (arr.shape[-1] == 3 and arr.shape[0] != 3)
    grey = prepare(arr, dtype, device)
    z_count = grey.shape[0]

    def t_from(normalised: torch.Tensor) -> torch.Tensor:  # Eq. 7, then back to full size
        t = normalised.amax(1, keepdim=True)
        return F.interpolate(t, size=grey.shape[-2:], mode="bilinear", align_corners=False) if stride > 1 else t

    t_slice, kept = [], []
    for z in progress_bar(range(z_count), desc="HiFST blur maps", unit="slice", disable=not progress):
        layers = sorted_layers(gradient_magnitude(grey[z:z + 1], gradient), scales, stride)
        if "slice" in normalize:  # Eq. 5 within the image, as HiFST
            t_slice.append(t_from(_minmax(layers, (2, 3))))
        if "stack" in normalize:
            kept.append(layers.to(torch.float32))  # (1, K, H', W'), on the device
    t_all = {}
    if t_slice:
        t_all["slice"] = torch.cat(t_slice)
    if kept:
        stacked = torch.cat(kept)
        lo, hi = stacked.amin((0, 2, 3), keepdim=True).to(dtype), stacked.amax((0, 2, 3), keepdim=True).to(dtype)
        t_all["stack"] = torch.cat([t_from(torch.where(hi > lo, (stacked[z:z + 1].to(dtype) - lo) / (hi - lo), 0.0))
                                    for z in range(z_count)])  # Eq. 5 over the whole stack, a slice at a time
        del stacked, kept
    guide = gaussian_blur2d(_minmax(grey, (2, 3)), (3, 3), (1.0, 1.0), border_type="constant")[:, 0]
    result = {}
    for norm in normalize:
        t_norm = _minmax(t_all[norm], (2, 3) if norm == "slice" else (0, 1, 2, 3))
        if t_norm.device.type == "cpu":
            d = torch.as_tensor(np.stack([local_entropy(t) * t for t in t_norm[:, 0].numpy()]), dtype=dtype)
        else:
            d = local_entropy_torch(t_norm[:, 0]) * t_norm[:, 0]
        out = recursive_filter(d, 15.0, 0.25, 3, guide).cpu().numpy().astype(np.float64)
        t_out = t_all[norm][:, 0].cpu().numpy()
        d = d.cpu().numpy().astype(np.float64)
        if not is_stack:
            out, t_out, d = out[0], t_out[0], d[0]
        result[norm] = {"map": out, "T": t_out, "D": d} if return_parts else out
    return result
