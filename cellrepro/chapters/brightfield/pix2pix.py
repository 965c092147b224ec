"""pix2pix from phase contrast to the two brightfield planes (brightfield thesis, Sec. 4.4.2, 5.6; C6-C10).

The thesis translates its copy-pasted phase fields (:mod:`.synthesis`) to brightfield with pix2pix
(Isola et al. 2017): a U-Net generator ``G(x)`` and a PatchGAN discriminator ``D(x, y)`` on the input
and a real or generated output, trained with

    L_G = BCE(D(x, G(x)), 1) + lambda * |y - G(x)|_1,   lambda = 100   (Eq. 4.8)
    L_D = (BCE(D(x, y), 1) + BCE(D(x, G(x)), 0)) / 2

with AdamW at learning rate 2e-4 and betas (0.5, 0.999), and dropout 0.5 kept on at inference "to
output non-deterministic results". Parts: MONAI ``UNet`` (the generator; its dropout sits in every
convolution block, where Isola et al.'s is in the first decoder blocks only; instance norm, which is
what Isola et al.'s batch norm at batch size 1 amounts to, and which keeps inference independent of
running statistics), MONAI
``PatchDiscriminator`` (70x70-style, ``num_layers_d`` strided layers). The thesis's rejected
alternatives (C10) are here too: the same generator trained as an autoencoder without a
discriminator (``adversarial=False``) on "MSE + BCE" (the thesis does not say what its BCE compares;
here the output and the target, both squashed by a sigmoid, so that both terms are pixel
reconstruction losses minimised by the same image), and mask -> brightfield (``source="mask"``: the
generator sees the cell masks instead of the phase image).

The discriminator has 2 strided layers by default, a 34 px receptive field (:func:`receptive_field`):
with 3, its 70 px field covers a whole 64 px training crop, and it judges the crop as one image
rather than its patches (issue 31). :func:`discriminator_accuracy` scores the trained discriminator
on held-out pairs: whether the adversarial game was still being played when training stopped.

Images are standardised with statistics of the training pairs (:class:`Scaler`) and mapped back, so
that translated planes are on the scale of real ones. Training uses :func:`cellrepro.engine.train.fit` with two
optimisers, one update of D then one of G per batch of random crops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...data.crops import CropSampler
from ...data.types import Field
from ...engine.hardware import release, torch_device
from ...engine.streams import Streams
from ...engine.train import fit

SOURCES = ("phase", "mask")
RECONS = ("mse+bce", "l1")
L1_WEIGHT = 100.0


@dataclass(frozen=True)
class Settings:
    """pix2pix training.

    Attributes:
        steps, batch, crop: updates (of D and of G each), crops per update, crop side (a multiple of
            ``2 ** (len(features) - 1)``).
        lr, betas: AdamW's (the thesis: 2e-4, (0.5, 0.999)).
        features: generator widths per level.
        disc_channels, disc_layers: PatchDiscriminator's first width and strided layers.
        dropout: generator dropout, kept on at inference (the thesis: 0.5).
        l1_weight: lambda of the L1 term (100).
        adversarial: False trains the generator alone (no discriminator): with MSE + BCE (the
            autoencoder baseline of C10), or with ``recon="l1"`` on pix2pix's lambda-weighted L1 alone
            (what pix2pix is without its adversarial term).
        recon: the reconstruction loss without a discriminator: "mse+bce" or "l1".
        source: "phase" (the thesis's pix2pix) or "mask" (its failed mask -> brightfield variant).
    """

    steps: int = 300
    batch: int = 4
    crop: int = 64
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    features: tuple[int, ...] = (16, 32, 64, 128)
    disc_channels: int = 16
    disc_layers: int = 2
    dropout: float = 0.5
    l1_weight: float = L1_WEIGHT
    adversarial: bool = True
    recon: str = "mse+bce"
    source: str = "phase"
    device: str = "auto"
    progress: bool = True

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"Settings.source must be one of {SOURCES}, got {self.source!r}")
        if self.recon not in RECONS:
            raise ValueError(f"Settings.recon must be one of {RECONS}, got {self.recon!r}")
        for name in ("steps", "batch", "crop"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"Settings.{name} must be a positive integer, got {getattr(self, name)!r}")


def generator(settings: Settings) -> nn.Module:
    """MONAI ``UNet``: 1 channel in (phase, or the cell masks), 2 out (lower and higher plane)."""
    from monai.networks.nets import UNet

    return UNet(2, 1, 2, channels=settings.features, strides=(2,) * (len(settings.features) - 1),
                num_res_units=0, act=("LEAKYRELU", {"negative_slope": 0.2}), norm="INSTANCE", dropout=settings.dropout)


def discriminator(settings: Settings) -> nn.Module:
    """MONAI ``PatchDiscriminator`` on the input and the two planes (3 channels), one logit per patch,
    with instance norm (what Isola et al.'s batch norm at batch size 1 amounts to). MONAI's default,
    batch norm, would normalise the all-real and all-fake batches of :func:`d_losses` separately in
    training, hiding the contrast and noise level that tell them apart, and score with running
    statistics in eval mode: another network than the one that trained (a design referee)."""
    from monai.networks.nets import PatchDiscriminator

    return PatchDiscriminator(2, settings.disc_channels, 3, num_layers_d=settings.disc_layers, norm="INSTANCE")


@dataclass(frozen=True)
class Scaler:
    """Per-channel mean and SD of the training pairs: ``source`` (1 channel) and ``target`` (2)."""

    source: tuple[float, float]
    target: tuple[tuple[float, float], tuple[float, float]]

    @classmethod
    def fit(cls, fields: Sequence[Field], source: str = "phase") -> "Scaler":
        src = np.concatenate([_source(f, source).ravel() for f in fields])
        tgt = [np.concatenate([np.asarray(getattr(f, k)).ravel() for f in fields]) for k in ("bf_low", "bf_high")]
        return cls((float(src.mean()), max(float(src.std()), 1e-6)),
                   tuple((float(t.mean()), max(float(t.std()), 1e-6)) for t in tgt))

    def source_tensor(self, f: Field, source: str = "phase") -> torch.Tensor:
        return torch.from_numpy(((_source(f, source) - self.source[0]) / self.source[1]).astype(np.float32))[None]

    def target_tensor(self, f: Field) -> torch.Tensor:
        planes = [(np.asarray(getattr(f, k), np.float32) - m) / s for k, (m, s) in zip(("bf_low", "bf_high"), self.target)]
        return torch.from_numpy(np.stack(planes).astype(np.float32))

    def to_planes(self, out: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        y = out.detach().float().cpu().numpy()
        return tuple((y[i] * s + m).astype(np.float32) for i, (m, s) in enumerate(self.target))


def _source(f: Field, source: str) -> np.ndarray:
    if source == "mask":
        if f.amodal is None:
            raise ValueError(f"field {f.name!r} has no masks: mask -> brightfield needs annotated fields")
        return f.amodal.sum(0).astype(np.float32)  # cell count per pixel: overlaps visible
    if f.phase is None:
        raise ValueError(f"field {f.name!r} has no phase image")
    return np.asarray(f.phase, np.float32)


def d_losses(disc: nn.Module, x: torch.Tensor, y: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
    """The discriminator's terms, each halved: real pairs ``(x, y)`` toward 1, ``(x, fake)`` toward 0
    (``fake`` detached here, so no gradient reaches the generator)."""
    real = disc(torch.cat([x, y], 1))[-1].float()
    false = disc(torch.cat([x, fake.detach()], 1))[-1].float()
    return {"d_real": 0.5 * F.binary_cross_entropy_with_logits(real, torch.ones_like(real)),
            "d_fake": 0.5 * F.binary_cross_entropy_with_logits(false, torch.zeros_like(false))}


def g_losses(disc: nn.Module | None, x: torch.Tensor, y: torch.Tensor, fake: torch.Tensor,
             l1_weight: float = L1_WEIGHT, recon: str = "mse+bce") -> dict[str, torch.Tensor]:
    """The generator's terms: ``g_gan`` (fool D) and ``g_l1`` (lambda-weighted L1), Eq. 4.8; or, without
    a discriminator (the autoencoder baseline), ``mse`` and ``bce``: the binary cross-entropy between
    the sigmoids of the output and of the (standardised) target, which like the MSE is smallest where
    the output equals the target; or, with ``recon="l1"``, ``g_l1`` alone. Compute them after D's
    update: D's weights change in place when it steps."""
    if disc is None and recon == "l1":
        return {"g_l1": l1_weight * F.l1_loss(fake.float(), y)}
    if disc is None:
        fake = fake.float()
        return {"mse": F.mse_loss(fake, y), "bce": F.binary_cross_entropy_with_logits(fake, torch.sigmoid(y))}
    logits = disc(torch.cat([x, fake], 1))[-1].float()
    return {"g_gan": F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)),
            "g_l1": l1_weight * F.l1_loss(fake.float(), y)}


@dataclass
class Translator:
    """A trained generator with its :class:`Scaler` and settings; :meth:`__call__` translates fields."""

    gen: nn.Module
    scaler: Scaler
    settings: Settings
    history: object = None
    disc: nn.Module | None = None

    @torch.no_grad()
    def __call__(self, fields: Sequence[Field], seed: int = 0, dropout: bool = True) -> list[Field]:
        """``fields`` with ``bf_low``/``bf_high`` generated from their phase (or masks); dropout on, as the
        thesis runs it, with torch seeded by ``seed``; ``dropout=False`` translates deterministically
        (its noise is not the real planes' noise: a realism measure should agree both ways)."""
        from dataclasses import replace

        device = torch_device(self.settings.device)
        gen = self.gen.to(device).eval()
        for m in gen.modules():
            if isinstance(m, nn.Dropout):
                m.train(dropout)
        torch.manual_seed(seed)
        out = []
        try:
            for f in fields:
                x = self.scaler.source_tensor(f, self.settings.source)[None].to(device)
                low, high = self.scaler.to_planes(_padded(gen, x)[0])
                out.append(replace(f, bf_low=low, bf_high=high))
        finally:
            release(gen)
        return out


def _padded(gen: nn.Module, x: torch.Tensor, multiple: int = 16) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    y = gen(F.pad(x, (0, pw, 0, ph), mode="reflect") if ph or pw else x)
    return y[..., :h, :w]


def train(pairs: Sequence[Field], settings: Settings, seed: int) -> Translator:
    """Train pix2pix (or the MSE autoencoder) on ``pairs`` (fields with phase, or masks, and both planes)."""
    if not pairs:
        raise ValueError("pairs is empty: pix2pix needs (phase, brightfield) pairs to train on")
    scaler = Scaler.fit(pairs, settings.source)
    targets = [(scaler.target_tensor(f),) for f in pairs]
    sampler = CropSampler(None, pairs, settings.crop, flips=True,
                          to_tensor=lambda f: scaler.source_tensor(f, settings.source), targets=targets,
                          generator=Streams(seed).torch("crops"))  # the translators of a seed see the same crops
    torch.manual_seed(seed)
    gen = generator(settings)
    models = {"g": gen}
    optims = {"g": torch.optim.AdamW(gen.parameters(), lr=settings.lr, betas=settings.betas)}
    if settings.adversarial:
        models["d"] = discriminator(settings)
        optims["d"] = torch.optim.AdamW(models["d"].parameters(), lr=settings.lr, betas=settings.betas)

    def step(ctx, batch):
        x, y = sampler.to(ctx.device).sample(batch[0])
        fake = ctx.models["g"](x)
        d_terms = d_losses(ctx.models["d"], x, y, fake) if "d" in ctx.models else {}
        if d_terms:
            ctx.optimize(d_terms, "d")
        g_terms = g_losses(ctx.models.get("d"), x, y, fake, settings.l1_weight, settings.recon)
        ctx.optimize(g_terms, "g")
        return {**d_terms, **g_terms}

    history = fit(models, optims, step, sampler.loader(settings.batch), max_steps=settings.steps, seed=seed,
                  device=settings.device, progress=settings.progress,
                  desc="pix2pix" if settings.adversarial else "autoencoder")
    for m in models.values():
        release(m)
    return Translator(gen.eval(), scaler, settings, history, models["d"].eval() if "d" in models else None)


@torch.no_grad()
def discriminator_accuracy(translator: Translator, fields: Sequence[Field], seed: int = 0) -> float:
    """Held-out accuracy of a pix2pix translator's discriminator: the share of its patch logits that
    call the real planes of ``fields`` real (> 0) and their translations (dropout on, as trained)
    fake, real and fake weighted equally. About 0.5: the discriminator no longer tells them apart (the
    generator won, or the discriminator never learned); near 1: it tells every patch apart, and its
    gradient to the generator saturates. Either way the adversarial term has stopped shaping the
    generator: a treatment-engagement gate of claim C10."""
    if translator.disc is None:
        raise ValueError("this translator was trained without a discriminator (adversarial=False)")
    if not fields:
        raise ValueError("fields is empty: the discriminator needs held-out pairs to be scored on")
    device = torch_device(translator.settings.device)
    disc = translator.disc.to(device).eval()
    source = translator.settings.source
    hits = {"real": [], "fake": []}
    try:
        for f, t in zip(fields, translator(fields, seed=seed)):
            x = translator.scaler.source_tensor(f, source)[None].to(device)
            for key, planes in (("real", f), ("fake", t)):
                y = translator.scaler.target_tensor(planes)[None].to(device)
                logits = disc(torch.cat([x, y], 1))[-1].float()
                hits[key].append(((logits > 0) if key == "real" else (logits <= 0)).float().mean().item())
    finally:
        release(disc)
    return float(0.5 * (np.mean(hits["real"]) + np.mean(hits["fake"])))


def receptive_field(settings: Settings) -> int:
    """The side in pixels of the input patch one logit of :func:`discriminator` sees (its convolutions
    walked in order: ``r += (k - 1) * jump``, ``jump *= stride``). A PatchGAN whose field covers the
    whole training crop judges the crop as one image, not its patches (issue 31: 70 px on 64 px crops).

    >>> receptive_field(Settings(disc_layers=3)), receptive_field(Settings(disc_layers=2))
    (70, 34)
    """
    r, jump = 1, 1
    for m in discriminator(settings).modules():
        if isinstance(m, nn.Conv2d):
            r += (m.kernel_size[0] - 1) * jump
            jump *= m.stride[0]
    return r


def loss_drop(translator: Translator) -> float:
    """How far the generator's reconstruction term fell: 1 - (its mean over the last 10 % of the
    updates) / (over the first 10 %): ``g_l1`` for pix2pix, ``mse`` for the autoencoder. Near 0: the
    generator did not learn."""
    import pandas as pd

    rows = pd.DataFrame(translator.history if translator.history is not None else [])
    key = "g_l1" if "g_l1" in rows else "mse"
    if key not in rows or len(rows) < 10:
        return float("nan")
    tenth = max(len(rows) // 10, 1)
    values = rows[key].astype(float).to_numpy()
    return float(1 - values[-tenth:].mean() / values[:tenth].mean())


__all__ = ["L1_WEIGHT", "RECONS", "SOURCES", "Scaler", "Settings", "Translator", "d_losses", "discriminator",
           "discriminator_accuracy", "g_losses", "generator", "loss_drop", "receptive_field", "train"]
