"""The training networks of every chapter, as their book profiles train them, for benchmarks/train_precision.py.

One :class:`Case` per network: its builder, its loss (the chapter's own, or a stated stand-in), its
optimisers and synthetic batches (random discs with the chapter's targets) at the batch size and
crop of the notebook's parameter cell. Kept apart from the timing code so each file does one job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from cellrepro.losses.flows import cellpose_loss
from cellrepro.nets.cellpose import CellposeNet


@dataclass
class Case:
    """One network of one chapter, trained as its book profile trains it.

    ``loss(model, batch)`` is forward + loss (autocast wraps it); ``step`` (default: one optimiser,
    zero_grad / loss / backward / step) may train several models (pix2pix: D, then G);
    ``optimizers(model)`` gives the chapter's optimisers and schedulers (stepped once per update);
    ``make_batches(n, seed)`` gives n fixed batches of synthetic data with the chapter's targets.
    """

    key: str
    chapter: str
    network: str
    source: str
    batch: int
    size: int
    loss_name: str
    build: Callable[[], nn.Module]
    make_batches: Callable[[int, int], list]
    loss: Callable[[nn.Module, object], torch.Tensor]
    optimizers: Callable[[nn.Module], tuple[list, list]]
    step: Callable | None = None
    quality_loss: Callable[[nn.Module, object], torch.Tensor] | None = None
    note: str = ""


def blob_labels(n: int, size: int, rng: np.random.Generator, radius: tuple[float, float] = (0.05, 0.11)
                ) -> np.ndarray:
    """(n, size, size) int32 instance labels: random discs (touching and overlapping; later ones on top)."""
    yy, xx = np.mgrid[:size, :size]
    out = np.zeros((n, size, size), np.int32)
    for b in range(n):
        count = max(3, int(rng.integers(size * size // 1800 + 2, size * size // 900 + 4)))
        for i in range(1, count + 1):
            r = rng.uniform(*radius) * size
            cy, cx = rng.uniform(0, size, 2)
            out[b][(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = i
    return out


def blob_images(labels: np.ndarray, channels: int, rng: np.random.Generator) -> torch.Tensor:
    """(n, channels, H, W) float32 images of ``labels``: per-cell brightness, blur, noise; channel 1 (if any)
    a nucleus-like inner disc."""
    from scipy.ndimage import binary_erosion, gaussian_filter

    imgs = np.empty((len(labels), channels) + labels.shape[1:], np.float32)
    for b, lab in enumerate(labels):
        level = rng.uniform(0.4, 1.0, lab.max() + 1)
        level[0] = 0.1
        cyto = level[lab]
        for c in range(channels):
            base = cyto if c != 1 else (binary_erosion(lab > 0, iterations=3) * 0.8 + 0.1)
            imgs[b, c] = gaussian_filter(base, 1.0) + rng.normal(0, 0.05, lab.shape)
    return torch.from_numpy(imgs)


def _cl(t):
    """``t`` in channels_last if it is a 4-D tensor (nested in tuples, lists and dicts too)."""
    if isinstance(t, torch.Tensor):
        return t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t
    if isinstance(t, (list, tuple)):
        return type(t)(_cl(v) for v in t)
    if isinstance(t, dict):
        return {k: _cl(v) for k, v in t.items()}
    return t


def _to(t, device):
    if isinstance(t, torch.Tensor):
        return t.to(device)
    if isinstance(t, (list, tuple)):
        return type(t)(_to(v, device) for v in t)
    if isinstance(t, dict):
        return {k: _to(v, device) for k, v in t.items()}
    return t


def _total(terms) -> torch.Tensor:
    if isinstance(terms, torch.Tensor):
        return terms
    return sum(v.float() for v in terms.values())


def _plain_step(case: Case, model: nn.Module, opts: list, batch, autocast) -> torch.Tensor:
    opts[0].zero_grad(set_to_none=True)
    with autocast():
        loss = case.loss(model, batch)
    loss.backward()
    opts[0].step()
    return loss.detach()


def chapter_cases(device: str, quick: bool = False) -> list[Case]:
    """The networks each chapter's book profile trains, at the notebooks' defaults (the book profile);
    ``quick``: batch 2 and 32 px (Mask R-CNN and U-Net++ 64 px), a smoke test of the code only."""
    import torch.nn.functional as F

    from cellrepro.chapters.brightfield import pix2pix
    from cellrepro.chapters.brightfield.train import TARGETS, bce_heads_loss
    from cellrepro.chapters.mmcs import architectures, schedule
    from cellrepro.chapters.spheroid.unetpp import SMALL_FEATURES, build_unetpp, unetpp_loss
    from cellrepro.engine.hardware import adam
    from cellrepro.instances.cdnet import stack_targets, three_class_mask
    from cellrepro.losses.cdnet import cdnet_loss
    from cellrepro.losses.flows import flow_targets
    from cellrepro.losses.segmentation import dice_ce, finetune_loss
    from cellrepro.nets import SplitUNet
    from cellrepro.nets.cdnet import CDNet
    from cellrepro.nets.maskrcnn import build_spheroid_maskrcnn, instance_targets
    from cellrepro.nets.seunet import THESIS_HEADS, SEUNet
    from cellrepro.nets.vgg_unet import VGGUNet
    from scipy.ndimage import binary_erosion, gaussian_filter
    from skimage.segmentation import find_boundaries

    def seeded(make):
        def build():
            torch.manual_seed(0)
            return make()
        return build

    def sb(batch: int, size: int, quick_size: int = 32) -> tuple[int, int]:
        return (min(batch, 2), quick_size) if quick else (batch, size)

    def data(channels: int, target: Callable[[np.ndarray], object], batch: int, size: int):
        def make(n: int, seed: int) -> list:
            rng = np.random.default_rng(seed)
            out = []
            for _ in range(n):
                lab = blob_labels(batch, size, rng)
                out.append(_to((blob_images(lab, channels, rng), target(lab)), device))
            return out
        return make

    def flows(lab):
        return flow_targets(lab)

    def three_class(lab):
        return torch.from_numpy(np.stack([three_class_mask(m) for m in lab]).astype(np.int64))[:, None]

    def foreground(lab):
        return torch.from_numpy((lab > 0).astype(np.float32))[:, None]

    def cdnet_t(lab):
        mask, direction, point = stack_targets(lab)
        return {"mask": mask, "direction": direction, "point": point}

    def brightfield_t(lab):
        maps = {}
        fg = lab > 0
        maps["cytoplasm"] = fg
        maps["nuclei"] = np.stack([binary_erosion(m, iterations=3) for m in fg])
        maps["overlap"] = np.zeros_like(fg)
        maps["border"] = np.stack([find_boundaries(m, mode="inner") & (m > 0) for m in lab])
        maps["background"] = ~fg
        return torch.from_numpy(np.stack([maps[k] for k in TARGETS], 1).astype(np.float32))

    def adam_opt(lr, **kw):
        return lambda m: ([adam(m.parameters(), lr=lr, **kw)], [])

    def mmcs_opt(m):
        opt = schedule.sgd(m.parameters(), 0.1)
        return [opt], [schedule.scheduler(opt, warmup=10)]

    def adamw_opt(lr, wd):
        return lambda m: ([torch.optim.AdamW(m.parameters(), lr=lr, weight_decay=wd)], [])

    cases: list[Case] = []
    # organoid: pipeline.md / ablation-*.md, fine-tuning stage (crop 64, finetune_batch 16, BCE + Dice)
    org_loss = finetune_loss("bce_dice")
    cases.append(Case(
        "organoid_unet", "organoid", "SplitUNet (BasicUNet 8-16-32-64-128-8)", "notebooks/organoid/pipeline.md: "
        "crop 64, finetune_batch 16, loss bce_dice", *sb(16, 64), "BCE + Dice (finetune_loss('bce_dice'))",
        seeded(lambda: SplitUNet(features=(8, 16, 32, 64, 128, 8))), data(1, foreground, *sb(16, 64)),
        lambda m, b: _total(org_loss(m(b[0]), b[1])), adam_opt(1e-3),
        note="fine-tuning stage; the contrastive pre-training stages train the same U-Net (batch 32 / 8)"))
    # multimodal: table4-pipeline.md (crop 96, batch 4, Adam 2e-3)
    cases.append(Case(
        "multimodal_cdnet", "multimodal", "CDNet (BasicUNet 8-8-16-32-64-8, 3 heads)",
        "notebooks/multimodal/table4-pipeline.md: crop 96, batch 4, cdnet_features", *sb(4, 96),
        "CDNet loss (mask CE + Dice, direction CE, point MSE)",
        seeded(lambda: CDNet(in_channels=3, features=(8, 8, 16, 32, 64, 8))), data(3, cdnet_t, *sb(4, 96)),
        lambda m, b: _total(cdnet_loss(m(b[0]), b[1])), adam_opt(2e-3)))
    cases.append(Case(
        "multimodal_cpnet", "multimodal", "Cellpose CPnet (8-16-32, 3 channels)",
        "notebooks/multimodal/table4-pipeline.md: crop 96, batch 4, cellpose_features", *sb(4, 96),
        "Cellpose loss (flows MSE + foreground BCE)",
        seeded(lambda: CellposeNet(in_channels=3, features=(8, 16, 32))), data(3, flows, *sb(4, 96)),
        lambda m, b: cellpose_loss(m(b[0]), b[1]), adam_opt(2e-3)))
    mm_dice = dice_ce()
    cases.append(Case(
        "multimodal_vgg_unet", "multimodal", "VGG16-BN U-Net (width / 16)",
        "notebooks/multimodal/table4-pipeline.md: crop 96, batch 4, vgg_width 16", *sb(4, 96),
        "Dice + CE (3 classes)", seeded(lambda: VGGUNet(in_channels=3, out_channels=3, width=16)),
        data(3, three_class, *sb(4, 96)), lambda m, b: mm_dice(m(b[0]).float(), b[1]), adam_opt(2e-3)))
    # mmcs: table1..8 (crop 96, batch 8, SGD 0.1 momentum 0.9, 10-update warm-up)
    for arch, net_name, feats in (("cpnet", "CPnet (8-16-32, 2 channels)", (8, 16, 32)),
                                  ("unet", "MONAI UNet (16-32-64), flows head", (16, 32, 64)),
                                  ("swinunetr", "SwinUNETR (feature_size 12), flows head", (8, 16, 32))):
        cases.append(Case(
            f"mmcs_{arch}", "mmcs", net_name,
            "notebooks/mmcs/table8-architectures.md" + (" (and tables 1-7)" if arch == "cpnet" else "")
            + ": crop 96, batch 8, SGD lr 0.1", *sb(8, 96, 64 if arch == "swinunetr" else 32), "Cellpose loss (flows MSE + foreground BCE)",
            seeded(lambda arch=arch, feats=feats: architectures.build(arch, "flows", 2, feats)),
            data(2, flows, *sb(8, 96, 64 if arch == "swinunetr" else 32)), lambda m, b: cellpose_loss(m(b[0]), b[1]), mmcs_opt,
            note="phase 2 adds 8 unlabelled crops per update" if arch == "cpnet" else ""))
    # brightfield: heads.md (crop 128, batch 4, 4 heads, AdamW 2e-3)
    bf_loss = bce_heads_loss(THESIS_HEADS)
    cases.append(Case(
        "brightfield_seunet", "brightfield", "SE-U-Net (8-16-32-64, 4 heads, instance norm)",
        "notebooks/brightfield/heads.md: crop 128, batch 4, features [8, 16, 32, 64]", *sb(4, 128),
        "sum of per-head BCE (Eq. 4.2)",
        seeded(lambda: SEUNet(2, THESIS_HEADS, (8, 16, 32, 64), norm="instance")), data(2, brightfield_t, *sb(4, 128)),
        lambda m, b: _total(bf_loss(m(b[0]), b[1])), adamw_opt(2e-3, 1e-5),
        note="overlap-loss.md and synthetic.md train 1-2 head SE-U-Nets at crop 96"))
    # brightfield: pix2pix.md (gan_crop 64, batch 4, gan_features 16-32-64-128), one D and one G update per step
    p2p = pix2pix.Settings(crop=64, batch=4, features=(16, 32, 64, 128))

    def p2p_build():
        torch.manual_seed(0)
        return nn.ModuleDict({"g": pix2pix.generator(p2p), "d": pix2pix.discriminator(p2p)})

    def p2p_opts(m):
        return [torch.optim.AdamW(m["d"].parameters(), lr=p2p.lr, betas=p2p.betas),
                torch.optim.AdamW(m["g"].parameters(), lr=p2p.lr, betas=p2p.betas)], []

    def p2p_target(lab):
        fg = (lab > 0).astype(np.float32)
        return torch.from_numpy(np.stack([gaussian_filter(fg, (0, 2, 2)) - 0.5, gaussian_filter(fg, (0, 1, 1)) - 0.5],
                                         1).astype(np.float32))

    def p2p_step(case, m, opts, batch, autocast):
        x, y = batch
        opt_d, opt_g = opts
        with autocast():
            fake = m["g"](x)
            d_terms = pix2pix.d_losses(m["d"], x, y, fake)
        opt_d.zero_grad(set_to_none=True)
        _total(d_terms).backward()
        opt_d.step()
        with autocast():
            g_terms = pix2pix.g_losses(m["d"], x, y, fake, p2p.l1_weight)
        opt_g.zero_grad(set_to_none=True)
        _total(g_terms).backward()
        opt_g.step()
        return g_terms["g_l1"].detach() / p2p.l1_weight

    cases.append(Case(
        "brightfield_pix2pix", "brightfield", "pix2pix: MONAI UNet generator (16-32-64-128) + PatchGAN D",
        "notebooks/brightfield/pix2pix.md: gan_crop 64, batch 4, gan_features", *sb(4, 64),
        "pix2pix D and G losses (GAN + 100 L1); the quality check compares G's L1",
        p2p_build, data(1, p2p_target, *sb(4, 64)), lambda m, b: F.l1_loss(m["g"](b[0]).float(), b[1]), p2p_opts,
        step=p2p_step, note="one step = one D update and one G update"))
    # spheroid: table1-backbones.md (64 px, batch 4, r18, fpn 64, rois 32, Adam 1e-3 wd 1e-4 fused)
    sph_classes = lambda lab: {int(i): 1 + int(i) % 3 for i in np.unique(lab) if i}  # noqa: E731

    def sph_data(n: int, seed: int) -> list:
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(n):
            lab = blob_labels(sph_batch, 64, rng, radius=(0.08, 0.2))
            x = blob_images(lab, 1, rng).clamp(0, 1)
            images = [x[i].to(device) for i in range(len(x))]
            targets = [_to(instance_targets(m, sph_classes(m)), device) for m in lab]
            classes = torch.stack([(t["masks"].long() * t["labels"][:, None, None]).amax(0) for t in targets])
            out.append((images, targets, classes))
        return out

    sph_batch = sb(4, 64)[0]
    sph_opt = adam_opt(1e-3, weight_decay=1e-4, fused=True)
    cases.append(Case(
        "spheroid_maskrcnn", "spheroid", "Mask R-CNN, ResNet-18 + 64-channel FPN, 32 RoIs",
        "notebooks/spheroid/table1-backbones.md: size 64, batch 4, r18, fpn_channels 64, rois 32", sph_batch, 64,
        "Mask R-CNN losses (RPN + box + mask), sum",
        seeded(lambda: build_spheroid_maskrcnn("r18", fpn_channels=64, rois=32)), sph_data,
        lambda m, b: _total(m(b[0], b[1])), sph_opt,
        note="the chapter trains it in fp32 on purpose (bf16 would round box coordinates); timed like the others"))
    cases.append(Case(
        "spheroid_unetpp", "spheroid", "U-Net++ (BasicUNetPlusPlus 8-8-16-32-64-8), 4 classes",
        "notebooks/spheroid/table1-backbones.md: size 64, batch 4, unetpp_small", sph_batch, 64, "per-pixel CE (unetpp_loss)",
        seeded(lambda: build_unetpp(features=SMALL_FEATURES)), sph_data,
        lambda m, b: unetpp_loss(m(torch.stack(b[0])), b[2]), sph_opt))
    return cases


