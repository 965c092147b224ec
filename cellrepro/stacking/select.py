"""Selecting the in-focus slices of a z-stack (spheroid paper, Eq. 9-10) and checking stacks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .blur import blur_map


class StackError(ValueError):
    """A z-stack or a parameter the stacking functions cannot use; the message says what was expected."""


def check_stack(stack: np.ndarray, k: int | None = None, name: str = "stack") -> np.ndarray:
    """Validate a (Z, H, W) stack (and ``k``); return it as float64.

    Raises:
        StackError: not 3-D, fewer than 2 slices, not numeric, NaN/inf values, or ``k``
            outside 1..Z.
    """
    arr = np.asarray(stack)
    if arr.dtype.kind not in "uif":
        raise StackError(f"{name}: slices must be numeric, found dtype {arr.dtype}")
    if arr.ndim != 3:
        raise StackError(f"{name}: expected a z-stack of shape (Z, H, W), found shape {arr.shape}")
    if arr.shape[0] < 2:
        raise StackError(f"{name}: a z-stack needs at least 2 slices, found {arr.shape[0]}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise StackError(f"{name}: slices contain NaN or infinite values")
    if k is not None and not 1 <= k <= arr.shape[0]:
        raise StackError(f"k must be between 1 and the number of slices ({arr.shape[0]}), got k={k}")
    return arr.astype(np.float64)


def grey_stack(stack: np.ndarray, name: str = "stack") -> np.ndarray:
    """A z-stack with colour slices converted to grey, ready for :func:`check_stack`.

    (Z, H, W) passes through; (Z, H, W, 3) RGB and (Z, H, W, 4) RGBA slices become (Z, H, W) by
    luminance (``skimage.color.rgb2gray``, after ``rgba2rgb`` on a white background). One colour
    image (H, W, 3) is not a z-stack and is refused, rather than read as H slices of W x 3 pixels.

    >>> grey_stack(np.ones((2, 5, 6, 3))).shape
    (2, 5, 6)
    >>> grey_stack(np.ones((40, 50, 3)))
    Traceback (most recent call last):
    ...
    cellrepro.stacking.select.StackError: stack: one colour image of 40 x 50 pixels (shape (40, 50, 3)), not a z-stack; give a multi-page TIFF (Z, H, W) or a folder of slice images
    """
    arr = np.asarray(stack)
    if arr.ndim == 3 and arr.shape[-1] in (3, 4) and arr.shape[0] > 4:
        raise StackError(f"{name}: one colour image of {arr.shape[0]} x {arr.shape[1]} pixels (shape {arr.shape}), "
                         "not a z-stack; give a multi-page TIFF (Z, H, W) or a folder of slice images")
    if arr.ndim == 4 and arr.shape[-1] in (3, 4):
        from skimage.color import rgb2gray, rgba2rgb

        return np.stack([rgb2gray(rgba2rgb(s) if s.shape[-1] == 4 else s) for s in arr])
    return arr


def slice_scores(maps: np.ndarray) -> np.ndarray:
    """Eq. 9: the sum of each slice's blur map with pixel values on the 0-255 scale.

    The maps of a stack are put on one 0-255 scale together (min and max over the stack), so
    the sums compare slices.
    """
    lo, hi = float(maps.min()), float(maps.max())
    scaled = (maps - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(maps)
    return scaled.reshape(len(maps), -1).sum(1)


@dataclass
class Selection:
    """Top-k slices: ``indices`` (best first), Eq. 9 ``scores`` of every slice, and the blur maps."""

    indices: np.ndarray
    scores: np.ndarray
    maps: np.ndarray


def select_slices(stack: np.ndarray, k: int, maps: np.ndarray | None = None, **blur_kwargs) -> Selection:
    """Eq. 10: the ``k`` slices with the highest in-focus scores.

    Args:
        stack: (Z, H, W) slices.
        k: how many to keep (1..Z).
        maps: precomputed blur maps (Z, H, W); computed with
            ``blur_map(stack, normalize="stack")`` otherwise (see its docstring for why).
        blur_kwargs: passed to :func:`cellrepro.stacking.blur_map` (gradient, stride, device...).
    """
    arr = check_stack(stack, k)
    if maps is None:
        blur_kwargs.setdefault("normalize", "stack")
        maps = blur_map(arr, **blur_kwargs)
    scores = slice_scores(np.asarray(maps))
    order = np.argsort(-scores, kind="stable")
    return Selection(order[:k], scores, np.asarray(maps))
