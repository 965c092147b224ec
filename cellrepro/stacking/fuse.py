"""Focus stacking (spheroid paper, Eq. 11): align the slices, then fuse their Laplacian pyramids.

The paper's "FocusStack" is SIFT features, kNN matching, then Gaussian and Laplacian
pyramids. Alignment here uses OpenCV (SIFT, Lowe's ratio test, RANSAC homography) on the CPU;
kornia's GPU matchers need learned weights this project cannot download, and DIC z-stacks move
little between planes, so the CPU path costs little next to the blur maps. A slice with too
few good matches, or whose warp does not raise its correlation with the reference, stays
where it is. Fusion picks, at every pyramid level and pixel, the coefficient of the slice
with the highest local energy (the Laplacian squared, Gaussian-smoothed), and averages the
coarsest level; pyramids use kornia's ``pyrdown``/``pyrup``.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from .select import check_stack

log = logging.getLogger(__name__)


def align(slices: np.ndarray, reference: int = 0, min_matches: int = 12, ratio: float = 0.75) -> np.ndarray:
    """Warp every slice onto ``slices[reference]`` with a RANSAC homography from SIFT matches."""
    import cv2

    arr = check_stack(slices)
    lo, hi = arr.min(), arr.max()
    as8 = np.clip((arr - lo) / (hi - lo + 1e-12) * 255, 0, 255).astype(np.uint8)
    sift = cv2.SIFT_create()
    kp_ref, des_ref = sift.detectAndCompute(as8[reference], None)
    out = arr.copy()
    matcher = cv2.BFMatcher()
    for z in range(len(arr)):
        if z == reference:
            continue
        kp, des = sift.detectAndCompute(as8[z], None)
        good = []
        if des is not None and des_ref is not None and len(des) >= 2 and len(des_ref) >= 2:
            good = [m for m, n in matcher.knnMatch(des, des_ref, k=2) if m.distance < ratio * n.distance]
        if len(good) < min_matches:
            log.warning("slice %d: %d good matches (< %d), left unaligned", z, len(good), min_matches)
            continue
        src = np.float32([kp[m.queryIdx].pt for m in good]).reshape(-1, 1, 2)
        dst = np.float32([kp_ref[m.trainIdx].pt for m in good]).reshape(-1, 1, 2)
        hom, inliers = cv2.findHomography(src, dst, cv2.RANSAC, 3.0)
        if hom is None or inliers.sum() < min_matches:
            log.warning("slice %d: no consistent homography, left unaligned", z)
            continue
        warped = cv2.warpPerspective(arr[z], hom, arr.shape[2:0:-1], flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT)
        if _ncc(warped, arr[reference]) > _ncc(arr[z], arr[reference]):  # keep a warp only if it helps
            out[z] = warped
        else:
            log.info("slice %d: the homography does not improve the match, left unaligned", z)
    return out


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (np.sqrt((a * a).sum() * (b * b).sum()) + 1e-12))


def fuse(slices: np.ndarray, levels: int | None = None, energy_sigma: float = 1.0, sources: bool = False
         ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Laplacian-pyramid fusion by maximum local focus of aligned (Z, H, W) slices.

    With ``sources``, also the (H, W) index of the slice each pixel's finest band was taken from
    (which slice the fusion trusted for the pixel's detail)."""
    from kornia.filters import gaussian_blur2d
    from kornia.geometry.transform import pyrdown, pyrup

    arr = check_stack(slices)
    x = torch.as_tensor(arr)[:, None]  # (Z, 1, H, W)
    levels = levels or max(1, int(np.log2(min(arr.shape[1:]))) - 3)
    gauss = [x]
    for _ in range(levels):
        gauss.append(pyrdown(gauss[-1]))
    lap = [g - pyrup(nxt)[..., :g.shape[-2], :g.shape[-1]] for g, nxt in zip(gauss[:-1], gauss[1:])]
    fused = gauss[-1].mean(0, keepdim=True)  # coarsest level: average
    for band in reversed(lap):
        energy = gaussian_blur2d(band ** 2, (5, 5), (energy_sigma, energy_sigma), border_type="reflect")
        pick = energy.argmax(0, keepdim=True)
        chosen = torch.gather(band, 0, pick)
        fused = pyrup(fused)[..., :band.shape[-2], :band.shape[-1]] + chosen
    image = fused[0, 0].numpy()
    return (image, pick[0, 0].numpy()) if sources else image


def focus_stack(slices: np.ndarray, align_slices: bool = True, reference: int = 0, **fuse_kwargs) -> np.ndarray:
    """Eq. 11: align (optionally) and fuse slices into one image."""
    arr = check_stack(slices)
    if align_slices:
        arr = align(arr, reference)
    return fuse(arr, **fuse_kwargs)
