"""Selective blurry-slice stacking (SBS-Stacking, spheroid paper Sec. 3.1, Algorithm 1).

    from cellrepro.stacking import sbs_stack
    result = sbs_stack(zstack, k=8)      # result.image, result.indices, result.scores

* :func:`blur_map` (``blur.py``): the HiFST blur map, exact at stride 1 (Eq. 1-8).
* :func:`select_slices` (``select.py``): per-slice in-focus scores and the top k (Eq. 9-10).
* :func:`focus_stack` (``fuse.py``): alignment and Laplacian-pyramid fusion (Eq. 11).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .blur import GRADIENTS, SCALES, blur_map, blur_maps
from .fuse import align, focus_stack, fuse
from .select import Selection, StackError, check_stack, grey_stack, select_slices, slice_scores


@dataclass
class SBSResult:
    """Algorithm 1's output: the stacked image, the selected slice indices (best first), the
    per-slice scores and the blur maps."""

    image: np.ndarray
    indices: np.ndarray
    scores: np.ndarray
    maps: np.ndarray


def sbs_stack(stack: np.ndarray, k: int = 8, align_slices: bool = True, **blur_kwargs) -> SBSResult:
    """Algorithm 1: blur maps of every slice, the top-k in-focus slices, focus-stacked.

    The selected slices are fused in their original z order, aligned to the best one.
    """
    sel = select_slices(stack, k, **blur_kwargs)
    keep = np.sort(sel.indices)
    arr = check_stack(stack)[keep]
    reference = int(np.flatnonzero(keep == sel.indices[0])[0])
    image = focus_stack(arr, align_slices=align_slices, reference=reference) if k > 1 else arr[0]
    return SBSResult(image, sel.indices, sel.scores, sel.maps)


__all__ = ["GRADIENTS", "SBSResult", "SCALES", "Selection", "StackError", "align", "blur_map", "blur_maps", "check_stack",
           "focus_stack", "fuse", "grey_stack", "sbs_stack", "select_slices", "slice_scores"]
