"""How close translated brightfield is to real brightfield (brightfield thesis, Sec. 5.6; claim C10).

The thesis says its pix2pix gave brightfield "indistinguishable" from real and follows it with FID on
Inception-v3 features, showing no value. Inception weights cannot be downloaded here, and an earlier
version of this module computed FID and KID on the encoder of a segmentation net trained in the same
run instead; a design referee found those features nearly blind to texture (what a translator gets
wrong when every translator draws the same cells), and the plug-in FID biased on 240 crops in 120
dimensions. Realism is therefore asked of a classifier (:func:`two_sample_test`, a classifier
two-sample test): can a small CNN, trained on half of the fields, tell translated crops from real
ones at the same positions on the other half? Held-out accuracy 0.5 is "indistinguishable"; its
controls (:func:`seed_run`) show what it can tell apart.

:func:`pixel_scores` compares translated and real planes of the same fields: L1, SSIM, and
``structure``, a correlation that says whether a translator draws the field's cells at all. The real
planes carry noise and uneven light that no translator can know, so no score reaches its ideal, even
for the family's own optics.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ...data.types import Field


def _band(image: np.ndarray, sigma: float) -> np.ndarray:
    from scipy import ndimage as ndi

    return ndi.gaussian_filter(image, sigma) - ndi.gaussian_filter(image, 8 * sigma)


def pixel_scores(translated: Sequence[Field], real: Sequence[Field], background: Field | None = None,
                 smooth: float = 2.0) -> dict[str, float]:
    """Mean over fields and planes of L1 and SSIM between translated and real planes of the same
    fields, and ``structure``: Pearson's correlation of the two planes minus the ``background`` planes
    (the training pairs' mean, :func:`mean_planes`: the illumination and background every field
    shares), band-passed (a Gaussian blur of SD ``smooth`` px minus one of 8 x ``smooth``: the pixel
    noise no translator can predict and each field's uneven light removed): whether the translator
    draws this field's cells where and as the real planes show them (0 for a translator that ignores
    its input; NaN without ``background``)."""
    from skimage.metrics import structural_similarity

    if len(translated) != len(real):
        raise ValueError(f"{len(translated)} translated fields for {len(real)} real ones")
    l1, ssim, structure = [], [], []
    for t, r in zip(translated, real):
        for key in ("bf_low", "bf_high"):
            a, b = np.asarray(getattr(t, key), np.float32), np.asarray(getattr(r, key), np.float32)
            if a.shape != b.shape:
                raise ValueError(f"field {r.name!r}: translated {key} {a.shape} differs from the real {b.shape}")
            l1.append(float(np.abs(a - b).mean()))
            ssim.append(float(structural_similarity(a, b, data_range=float(b.max() - b.min()))))
            if background is None:
                continue
            base = np.asarray(getattr(background, key), np.float32)
            sa, sb = (_band(v - base, smooth).ravel() for v in (a, b))
            structure.append(float(np.corrcoef(sa, sb)[0, 1]) if sa.std() > 1e-6 and sb.std() > 1e-6 else 0.0)
    return {"l1": float(np.mean(l1)), "ssim": float(np.mean(ssim)), "structure": float(np.mean(structure)) if structure else float("nan")}


def _paired_crops(real: Sequence[Field], translated: Sequence[Field], crop: int, per_field: int,
                  rng: np.random.Generator, standardise: str, smooth: float = 0.0, condition: bool = False
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(2 n, c, crop, crop) crops of both planes, the real and the translated field at the same positions,
    each plane first smoothed by a Gaussian of SD ``smooth`` px (0: none); with ``condition``, the
    field's own phase image (unsmoothed) as a first channel, standardised on its own."""
    from scipy import ndimage as ndi

    xs = []
    for r, t in zip(real, translated):
        h, w = np.shape(r.bf_low)
        if min(h, w) < crop:
            raise ValueError(f"field {r.name!r} ({h} x {w}) is smaller than the crop {crop}")
        tops, lefts = rng.integers(0, h - crop + 1, per_field), rng.integers(0, w - crop + 1, per_field)
        for f in (r, t):
            planes = np.stack([np.asarray(f.bf_low, np.float32), np.asarray(f.bf_high, np.float32)])
            planes = np.stack([ndi.gaussian_filter(p, smooth) for p in planes]) if smooth > 0 else planes
            if condition:
                planes = np.concatenate([np.asarray(f.phase, np.float32)[None], planes])
            xs.append(np.stack([planes[:, y:y + crop, x:x + crop] for y, x in zip(tops, lefts)]))
    x = torch.from_numpy(np.concatenate(xs))
    if standardise == "crop":
        scale = lambda v: (v - v.mean((1, 2, 3), keepdim=True)) / v.std((1, 2, 3), keepdim=True).clamp_min(1e-6)  # noqa: E731
        x = torch.cat([scale(x[:, :1]), scale(x[:, 1:])], 1) if condition else scale(x)
    y = torch.tensor(np.concatenate([np.full(per_field, float(i % 2)) for i in range(2 * len(real))]), dtype=torch.float32)
    return x, y


def two_sample_test(real: Sequence[Field], translated: Sequence[Field], crop: int = 32, per_field: int = 16,
                    steps: int = 300, seed: int = 0, standardise: str = "crop", smooth: float = 0.0,
                    condition: bool = True) -> dict[str, float]:
    """Classifier two-sample test (Lopez-Paz and Oquab, ICLR 2017): can a small CNN tell the
    ``translated`` fields' planes from the ``real`` ones?

    ``per_field`` crops of both planes are cut from each real field and from its translation at the
    same positions (the cells are the same; only how they look can differ), standardised per crop by
    default (``standardise="crop"``: texture and contrast, not the light level; ``"none"`` keeps the
    intensities), both planes first smoothed by a Gaussian of SD ``smooth`` px (0: none). With
    ``condition`` (default) each crop carries its field's phase image as a first channel, as
    pix2pix's discriminator sees its input: planes that do not fit the phase image they were made
    from (no cells, cells elsewhere) are told apart even if they look like brightfield on their own.
    A three-layer CNN (8-16-16 channels, global average pooling, about 4k weights; our
    choice, small enough to train in seconds on a CPU) is trained with Adam on the crops of the first
    half of the fields and scored on the second half. Returns the held-out ``accuracy`` (0.5: the
    classifier cannot tell them apart, the thesis's "indistinguishable"), ``auc`` and the held-out
    crops ``n``. Deterministic for ``seed``.

    Written here rather than taken from a library: torchmetrics and scikit-learn have no two-sample
    classifier test for images, and the pairing of positions is specific to translation.
    """
    from sklearn.metrics import roc_auc_score
    from torch import nn

    from ...engine.parallel import one_thread

    if len(real) != len(translated) or len(real) < 2:
        raise ValueError(f"need two or more real fields and as many translated ones, got {len(real)} and {len(translated)}")
    if standardise not in ("crop", "none"):
        raise ValueError(f"standardise must be 'crop' or 'none', got {standardise!r}")
    rng = np.random.default_rng([seed, 23])
    half = len(real) // 2
    x_fit, y_fit = _paired_crops(real[:half], translated[:half], crop, per_field, rng, standardise, smooth, condition)
    x_out, y_out = _paired_crops(real[half:], translated[half:], crop, per_field, rng, standardise, smooth, condition)
    gen = torch.Generator().manual_seed(seed)
    with one_thread():
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Conv2d(x_fit.shape[1], 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                            nn.Linear(16, 1))
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        for _ in range(steps):
            idx = torch.randint(len(x_fit), (min(64, len(x_fit)),), generator=gen)
            flips = torch.rand(2, generator=gen) < 0.5
            xb = x_fit[idx].flip(-1) if flips[0] else x_fit[idx]
            xb = xb.flip(-2) if flips[1] else xb
            loss = nn.functional.binary_cross_entropy_with_logits(net(xb)[:, 0], y_fit[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            score = torch.sigmoid(net(x_out)[:, 0]).numpy()
    truth = y_out.numpy()
    return {"accuracy": float(((score >= 0.5) == (truth == 1)).mean()), "auc": float(roc_auc_score(truth, score)),
            "n": int(len(truth))}


TRANSLATORS = ("pix2pix", "autoencoder (MSE + BCE)", "mask -> brightfield", "pix2pix without its discriminator")
"""The trained arms of C10: the thesis's pix2pix, its two failed alternatives, and pix2pix's generator
trained on its L1 term alone (what the adversarial term adds; a design referee)."""
CONTROLS = ("exact optics", "exact optics, noise-free", "exact optics, planes swapped", "mean planes",
            "real, another draw")
"""The controls of the realism test: the family's own optics rendered from each test field's phase
image (noise and light drawn afresh: as real as a translator can be), the same without noise and
uneven light (what a pixel loss converges to), the same with the lower and higher planes swapped
(real noise and light, cells whose defocus contrast is inverted: a wrong appearance that needs no
tuning; halving the defocus contrast was told from real only 0.69 of the time in the calibration),
the training pairs' mean planes (no cells at all) and real fields of another draw (an A/A test:
about 0.5)."""
SMOOTH = 1.0
"""Gaussian SD in px applied to real and translated planes before the realism test (registered
with brightfield-C10, chosen on the calibration seeds 0 and 1, which the book's run leaves out). At
0, the per-pixel noise no generator without a noise input draws decides it: every trained translator
was told from real at 0.98-1.0 in the calibration (seed 1, 3000 updates). 0 and 2 px are reported
beside."""
SWEEP = (0.0, 2.0)
"""The other smoothings pix2pix and the autoencoder are tested at (``accuracy_s0``, ``accuracy_s2``)."""
SWEPT = ("pix2pix", "autoencoder (MSE + BCE)")
"""The arms tested at every smoothing of :data:`SWEEP` and with dropout off (the claim's two)."""


def mean_planes(pairs: Sequence[Field], fields: Sequence[Field]) -> list[Field]:
    """``fields`` with both planes replaced by the pixel-wise mean planes of ``pairs`` (same size)."""
    from dataclasses import replace

    low = np.mean([np.asarray(f.bf_low, np.float32) for f in pairs], 0)
    high = np.mean([np.asarray(f.bf_high, np.float32) for f in pairs], 0)
    return [replace(f, bf_low=low.copy(), bf_high=high.copy()) for f in fields]


def seed_run(seed: int, pairs: Sequence[Field], annotated: Sequence[Field], tests: Sequence[Field],
             others: Sequence[Field], gan, per_field: int = 16, smooth: float = SMOOTH
             ) -> tuple[list[dict], dict[str, list[Field]]]:
    """The translators of :data:`TRANSLATORS` and the controls of :data:`CONTROLS` for one seed, scored
    on the real ``tests``.

    ``pairs``: unannotated (phase, brightfield) pairs (pix2pix, the autoencoder and the L1 generator
    train on them, through :func:`.synthetic_data.translator`'s cache); ``annotated``: the seed's
    annotated fields (mask -> brightfield trains on them); ``others``: as many real fields as
    ``tests`` of another draw (the A/A control); ``gan``: :class:`.pix2pix.Settings` of pix2pix (the
    others differ only in ``adversarial``, ``recon`` and ``source``). Returns one row per arm
    (``seed``, ``translator``; ``accuracy``, ``auc``: the realism test at ``smooth`` px; for the
    arms of :data:`SWEPT` ``accuracy_s0`` and ``accuracy_s2`` at the smoothings of :data:`SWEEP` and
    ``accuracy_deterministic`` (dropout off); for the trained ones ``loss_drop`` (:func:`.pix2pix.loss_drop`) and, with a
    discriminator, ``d_accuracy`` (:func:`.pix2pix.discriminator_accuracy`); :func:`pixel_scores`
    against the mean planes) and the translated test fields.
    """
    from dataclasses import replace as dc_replace

    from . import pix2pix, synthesis
    from .synthetic_data import translator

    if len(others) != len(tests):
        raise ValueError(f"others must be as many real fields as tests ({len(tests)}), got {len(others)}")
    trained = {"pix2pix": translator(pairs, gan, seed),
               "autoencoder (MSE + BCE)": translator(pairs, dc_replace(gan, adversarial=False), seed),
               "mask -> brightfield": translator(annotated, dc_replace(gan, source="mask"), seed),
               "pix2pix without its discriminator": translator(pairs, dc_replace(gan, adversarial=False, recon="l1"),
                                                               seed)}
    out = {name: tr(tests, seed=seed) for name, tr in trained.items()}
    out["exact optics"] = synthesis.translate_exact(tests, seed)
    out["exact optics, noise-free"] = synthesis.translate_exact(tests, seed, synthesis.Optics(noise=0, light=0))
    out["exact optics, planes swapped"] = [dc_replace(f, bf_low=f.bf_high, bf_high=f.bf_low) for f in out["exact optics"]]
    out["mean planes"] = mean_planes(pairs, tests)
    out["real, another draw"] = [dc_replace(o, name=t.name) for o, t in zip(others, tests)]
    rows = []
    for name, fields in out.items():
        test = two_sample_test(tests, fields, per_field=per_field, seed=seed, smooth=smooth)
        row = {"seed": seed, "translator": name, "accuracy": test["accuracy"], "auc": test["auc"],
               **pixel_scores(fields, tests, out["mean planes"][0])}
        if name in SWEPT:
            for other in SWEEP:
                row[f"accuracy_s{other:g}"] = two_sample_test(tests, fields, per_field=per_field, seed=seed,
                                                              smooth=other)["accuracy"]
            fixed = trained[name](tests, seed=seed, dropout=False)
            row["accuracy_deterministic"] = two_sample_test(tests, fixed, per_field=per_field, seed=seed,
                                                            smooth=smooth)["accuracy"]
        if name in trained:
            tr = trained[name]
            row["loss_drop"] = pix2pix.loss_drop(tr)
            if tr.disc is not None:
                row["d_accuracy"] = pix2pix.discriminator_accuracy(tr, tests, seed)
        rows.append(row)
    return rows, out


def _seed_job(item, n_pool: int, n_train: int, tests: Sequence[Field], others: Sequence[Field], gan,
              per_field: int, smooth: float):
    from .heads import fields as draw_fields
    from .synthetic_data import pool

    seed, keep = item
    size = np.shape(tests[0].bf_low)[0]
    rows, out = seed_run(seed, pool(seed, n_pool, size), draw_fields(seed, n_train, size), tests, others, gan,
                         per_field, smooth)
    return rows, out if keep else None


def run_seeds(seeds: Sequence[int], tests: Sequence[Field], others: Sequence[Field], gan, n_pool: int, n_train: int,
              per_field: int = 16, smooth: float = SMOOTH, workers: int | str = "auto"):
    """:func:`seed_run` for every seed (its ``n_pool`` pairs and ``n_train`` annotated fields drawn
    with the seed), the seeds spread over the CPU's cores (:func:`cellrepro.engine.parallel.map_units`).
    Returns the rows (one DataFrame), the first seed's translated test fields and the wall seconds
    per seed."""
    import functools
    import time

    import pandas as pd

    from ...engine.parallel import map_units

    if not seeds:
        raise ValueError("seeds is empty")
    start = time.perf_counter()
    job = functools.partial(_seed_job, n_pool=n_pool, n_train=n_train, tests=tests, others=others, gan=gan,
                            per_field=per_field, smooth=smooth)
    results = map_units(job, [(seed, i == 0) for i, seed in enumerate(seeds)], workers, gan.device)
    seconds = (time.perf_counter() - start) / len(seeds)
    return pd.DataFrame([row for rows, _ in results for row in rows]), results[0][1], seconds


__all__ = ["CONTROLS", "SMOOTH", "SWEEP", "SWEPT", "TRANSLATORS", "mean_planes", "pixel_scores", "run_seeds", "seed_run", "two_sample_test"]
