"""A tiny routed multimodal pipeline (untrained nets, 64 x 64 images) for the pipeline and CLI tests."""

from __future__ import annotations

import numpy as np
import torch

from cellrepro.chapters.multimodal import routing, train
from cellrepro.chapters.multimodal.pipeline import GENERAL, Pipeline
from cellrepro.data.synthetic.multimodal import make_image
from cellrepro.data.types import MODALITIES

TINY = train.Settings(cellpose_features=(4, 8), vgg_width=32, cdnet_features=(4, 4, 8, 8, 16, 4), device="cpu")


def tiny_images(per_modality: int = 4, size: int = 64, seed: int = 3) -> list:
    """``per_modality`` labelled synthetic images of each modality (brightfield of both sizes)."""
    return [make_image(f"{m.replace(' ', '_')}_{i}", np.random.default_rng([seed, j, i]), size, m)
            for j, m in enumerate(MODALITIES) for i in range(per_modality)]


def tiny_pipeline(images, branches=None, min_cells: int = routing.MIN_CELLS) -> Pipeline:
    """Routers fitted on ``images``; a seeded untrained net for each of ``branches`` (default: every
    branch of BRANCH_MODELS and the general model)."""
    modality = routing.fit_modality_router(images, [im.modality for im in images], n_init=2)
    split = routing.fit_brightfield_split([im for im in images if im.modality == "brightfield"], n_init=2)
    kinds = {**routing.BRANCH_MODELS, GENERAL: "cellpose"}
    torch.manual_seed(0)
    models = {b: (kinds[b], train.build(kinds[b], TINY)) for b in (kinds if branches is None else branches)}
    return Pipeline(modality, split, models, TINY, min_cells)
