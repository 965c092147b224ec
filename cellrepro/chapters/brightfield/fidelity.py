"""How close translated brightfield is to real brightfield (brightfield thesis, Sec. 5.6; claim C10).

The thesis follows its pix2pix with FID on Inception-v3 features (2048-d) and shows no value. Inception
weights cannot be downloaded here, so FID is computed on the features of a network trained in the same
run on the seed's real annotated fields: the encoder of a 1-head SE-U-Net segmenting cytoplasm
(:func:`feature_net`), its levels global-average-pooled and concatenated (:func:`features`), over
random crops of each image. The Frechet distance itself is MONAI's (``FIDMetric``). Its absolute values
are not comparable with Inception FIDs, only between translators scored with the same network.

:func:`kid` gives the kernel distance on the same features (unbiased, for a registered rule on small
samples). Paired pixel scores against the real planes of the same fields (:func:`pixel_scores`): L1 and SSIM
(scikit-image, data range from the real plane) per plane, averaged. The real planes carry noise and
uneven light that no translator can know, so neither score reaches its ideal even for the exact optics.

:func:`two_sample_test` asks instead whether a small classifier can tell translated crops from real
ones at the same positions (a classifier two-sample test): a design referee found the segmentation
features above nearly blind to texture, which is what a translator gets wrong when every translator
draws the same cells.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ...data.types import Field
from ...nets.seunet import SEUNet
from . import train as bt


def feature_net(fields: Sequence[Field], settings: bt.Settings, seed: int) -> SEUNet:
    """A 1-head (cytoplasm) SE-U-Net trained on real annotated ``fields``; its encoder is the feature map."""
    return bt.train_seunet(fields, ("cytoplasm",), settings, seed)


@torch.no_grad()
def features(net: SEUNet, fields: Sequence[Field], crop: int, per_field: int, seed: int) -> torch.Tensor:
    """(len(fields) * per_field, sum(widths)) features: ``per_field`` random ``crop`` px crops of each field's
    two planes (standardised as for segmentation), each level of the encoder averaged over space."""
    rng = np.random.default_rng([seed, 11])
    net = net.cpu().eval()
    out = []
    for f in fields:
        x = bt.field_input(f)
        h, w = x.shape[-2:]
        if min(h, w) < crop:
            raise ValueError(f"field {f.name!r} ({h} x {w}) is smaller than the feature crop {crop}")
        tops, lefts = rng.integers(0, h - crop + 1, per_field), rng.integers(0, w - crop + 1, per_field)
        batch = torch.stack([x[:, t:t + crop, s:s + crop] for t, s in zip(tops, lefts)])
        out.append(torch.cat([level.mean((2, 3)) for level in net.encode(batch)], 1))
    return torch.cat(out)


def frechet(generated: torch.Tensor, real: torch.Tensor) -> float:
    """MONAI's Frechet distance between two (n, d) feature sets (FID with our feature network).

    >>> g = torch.randn(400, 3, generator=torch.Generator().manual_seed(0))
    >>> frechet(g, g) < 1e-6, round(frechet(g + 2.0, g), 3)   # a shift of 2 in 3 dimensions: 3 * 2 ** 2
    (True, 12.0)
    """
    from monai.metrics import FIDMetric

    return float(FIDMetric()(generated.double(), real.double()))


def kid(generated: torch.Tensor, real: torch.Tensor, subsets: int = 20, subset_size: int | None = None,
        seed: int = 0) -> dict[str, float]:
    """Kernel distance between two (n, d) feature sets (KID with our feature network): the unbiased
    squared MMD under the cubic polynomial kernel ``(x . y / d + 1) ** 3`` (scikit-learn's
    ``polynomial_kernel``), averaged over ``subsets`` random subsets of ``subset_size`` features
    per set (default: half of the smaller set, so that subsets differ), with the SD over subsets.

    Unlike the Frechet distance, whose plug-in estimate is biased upwards by an amount that grows
    as the sample shrinks relative to the dimension (issue 31: 240 crops x 120 dimensions), its
    estimate is unbiased: two samples of one distribution give values around 0, negative ones
    included.

    >>> g = torch.randn(400, 3, generator=torch.Generator().manual_seed(0))
    >>> h = torch.randn(400, 3, generator=torch.Generator().manual_seed(1))
    >>> abs(kid(g, h)["kid"]) < 0.05, kid(g + 2.0, h)["kid"] > 1.0
    (True, True)
    """
    from sklearn.metrics.pairwise import polynomial_kernel

    x, y = (np.asarray(t.detach().cpu().double() if hasattr(t, "detach") else t, float) for t in (generated, real))
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"generated and real must be (n, d) feature sets of one d, got {x.shape} and {y.shape}")
    m = min(len(x), len(y)) // 2 if subset_size is None else int(subset_size)
    if not 2 <= m <= min(len(x), len(y)):
        raise ValueError(f"subset_size must be in 2..{min(len(x), len(y))} (the smaller set), got {m}")
    rng = np.random.default_rng(seed)
    kernel = dict(degree=3, gamma=1.0 / x.shape[1], coef0=1.0)
    values = []
    for _ in range(subsets):
        a, b = x[rng.choice(len(x), m, replace=False)], y[rng.choice(len(y), m, replace=False)]
        kxx, kyy, kxy = (polynomial_kernel(u, v, **kernel) for u, v in ((a, a), (b, b), (a, b)))
        off = lambda k: (k.sum() - np.trace(k)) / (m * (m - 1))  # noqa: E731
        values.append(off(kxx) + off(kyy) - 2 * kxy.mean())
    return {"kid": float(np.mean(values)), "kid_sd": float(np.std(values, ddof=1)) if subsets > 1 else float("nan")}


def pixel_scores(translated: Sequence[Field], real: Sequence[Field]) -> dict[str, float]:
    """Mean over fields and planes of L1 and SSIM between translated and real planes of the same fields."""
    from skimage.metrics import structural_similarity

    if len(translated) != len(real):
        raise ValueError(f"{len(translated)} translated fields for {len(real)} real ones")
    l1, ssim = [], []
    for t, r in zip(translated, real):
        for key in ("bf_low", "bf_high"):
            a, b = np.asarray(getattr(t, key), np.float32), np.asarray(getattr(r, key), np.float32)
            if a.shape != b.shape:
                raise ValueError(f"field {r.name!r}: translated {key} {a.shape} differs from the real {b.shape}")
            l1.append(float(np.abs(a - b).mean()))
            ssim.append(float(structural_similarity(a, b, data_range=float(b.max() - b.min()))))
    return {"l1": float(np.mean(l1)), "ssim": float(np.mean(ssim))}


def _paired_crops(real: Sequence[Field], translated: Sequence[Field], crop: int, per_field: int,
                  rng: np.random.Generator, standardise: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(2 n, 2, crop, crop) crops of both planes, the real and the translated field at the same positions."""
    xs = []
    for r, t in zip(real, translated):
        h, w = np.shape(r.bf_low)
        if min(h, w) < crop:
            raise ValueError(f"field {r.name!r} ({h} x {w}) is smaller than the crop {crop}")
        tops, lefts = rng.integers(0, h - crop + 1, per_field), rng.integers(0, w - crop + 1, per_field)
        for f in (r, t):
            planes = np.stack([np.asarray(f.bf_low, np.float32), np.asarray(f.bf_high, np.float32)])
            xs.append(np.stack([planes[:, y:y + crop, x:x + crop] for y, x in zip(tops, lefts)]))
    x = torch.from_numpy(np.concatenate(xs))
    if standardise == "crop":
        x = (x - x.mean((1, 2, 3), keepdim=True)) / x.std((1, 2, 3), keepdim=True).clamp_min(1e-6)
    y = torch.tensor(np.concatenate([np.full(per_field, float(i % 2)) for i in range(2 * len(real))]), dtype=torch.float32)
    return x, y


def two_sample_test(real: Sequence[Field], translated: Sequence[Field], crop: int = 32, per_field: int = 16,
                    steps: int = 300, seed: int = 0, standardise: str = "crop") -> dict[str, float]:
    """Classifier two-sample test (Lopez-Paz and Oquab, ICLR 2017): can a small CNN tell the
    ``translated`` fields' planes from the ``real`` ones?

    ``per_field`` crops of both planes are cut from each real field and from its translation at the
    same positions (the cells are the same; only how they look can differ), standardised per crop by
    default (``standardise="crop"``: texture and contrast, not the light level; ``"none"`` keeps the
    intensities). A three-layer CNN (8-16-16 channels, global average pooling, about 4k weights; our
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
    x_fit, y_fit = _paired_crops(real[:half], translated[:half], crop, per_field, rng, standardise)
    x_out, y_out = _paired_crops(real[half:], translated[half:], crop, per_field, rng, standardise)
    gen = torch.Generator().manual_seed(seed)
    with one_thread():
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
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


TRANSLATORS = ("pix2pix", "autoencoder (MSE)", "mask -> brightfield", "exact optics", "mean planes")
"""The arms of C10: the thesis's pix2pix, its two failed alternatives, and two controls (the family's own
optics from the phase image, an upper bound; the training pairs' mean planes everywhere, untrained)."""


def mean_planes(pairs: Sequence[Field], fields: Sequence[Field]) -> list[Field]:
    """``fields`` with both planes replaced by the pixel-wise mean planes of ``pairs`` (same size)."""
    from dataclasses import replace

    low = np.mean([np.asarray(f.bf_low, np.float32) for f in pairs], 0)
    high = np.mean([np.asarray(f.bf_high, np.float32) for f in pairs], 0)
    return [replace(f, bf_low=low.copy(), bf_high=high.copy()) for f in fields]


def seed_run(seed: int, pairs: Sequence[Field], annotated: Sequence[Field], tests: Sequence[Field],
             gan, seg: bt.Settings, crop: int = 64, per_field: int = 8) -> tuple[list[dict], dict[str, list[Field]]]:
    """Every translator of :data:`TRANSLATORS` for one seed, scored on the real ``tests``.

    ``pairs``: unannotated (phase, brightfield) pairs (pix2pix, autoencoder); ``annotated``: the seed's
    annotated fields (mask -> brightfield trains on them; the feature network too). Returns one row per
    translator (``seed``, ``translator``, ``l1``, ``ssim``, ``fid``, ``kid`` with ``kid_sd`` over its
    subsets, and for the trained ones ``loss_drop``, :func:`.pix2pix.loss_drop`) and the translated
    test fields.
    """
    from dataclasses import replace as dc_replace

    from . import pix2pix, synthesis

    trained = {"pix2pix": pix2pix.train(pairs, gan, seed),
               "autoencoder (MSE)": pix2pix.train(pairs, dc_replace(gan, adversarial=False), seed),
               "mask -> brightfield": pix2pix.train(annotated, dc_replace(gan, source="mask"), seed)}
    out = {name: tr(tests, seed=seed) for name, tr in trained.items()}
    out["exact optics"] = synthesis.translate_exact(tests, seed)
    out["mean planes"] = mean_planes(pairs, tests)
    net = feature_net(annotated, seg, seed)
    real = features(net, tests, crop, per_field, seed)
    rows = []
    for name, fields in out.items():
        generated = features(net, fields, crop, per_field, seed)
        rows.append({"seed": seed, "translator": name, **pixel_scores(fields, tests), "fid": frechet(generated, real),
                     **kid(generated, real, seed=seed),
                     "loss_drop": pix2pix.loss_drop(trained[name]) if name in trained else float("nan")})
    return rows, out


__all__ = ["TRANSLATORS", "feature_net", "features", "frechet", "kid", "mean_planes", "pixel_scores", "seed_run",
           "two_sample_test"]
