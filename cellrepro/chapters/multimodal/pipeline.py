"""The routed multimodal pipeline as one object and one saved folder (Wang et al., Sec. 2.1-2.6).

A :class:`Pipeline` holds what the paper's inference needs: the modality router (K-Means on HSV
statistics, Sec. 2.2), the brightfield split (K-Means on RGB statistics, Sec. 2.4), one model per
branch (Cellpose for phase contrast, DIC and large-cell brightfield, a VGG U-Net for small-cell
brightfield, CDNet for fluorescence; :data:`.routing.BRANCH_MODELS`) and the general phase-contrast
+ DIC Cellpose model of Sec. 2.3 under the branch name ``"general"``.

:meth:`Pipeline.predict` routes one image, segments it with its branch's model and, for phase
contrast and DIC (Sec. 2.3 says the fallback is for these two), segments it again with the general
model when fewer than ``min_cells`` instances were found (:func:`.routing.with_general_fallback`).

Sec. 2.6 (claim C13): "we do the clustering first, and then load the corresponding model, which
means we only need to load one model instead of four". :meth:`Pipeline.load` reads the routers and
no model (``branches=[]``), :meth:`Pipeline.route` needs none, and :meth:`Pipeline.load_model`
(called by :meth:`Pipeline.predict` when needed) loads one branch's model on demand and keeps it.
The general model is loaded only when the fallback fires.

On disk (:meth:`Pipeline.save`), our format: a folder with ``pipeline.json`` (format name and
version, both routers as centres + cluster names + feature kind + n_init / seed, the training
:class:`~.train.Settings`, ``min_cells``, branch -> model kind and file) and one
``<branch-slug>.pt`` state dict per model (``torch.save``; read with ``weights_only=True``). No
scikit-learn object is pickled. The folder is built under a temporary name and renamed when
complete, so a killed save leaves nothing :meth:`Pipeline.load` would accept. Loading builds each
model on PyTorch's meta device and assigns the saved tensors: no random initialisation to throw
away (for the paper-size VGG U-Net that alone is 0.3-0.5 s on 2 CPU cores).

Input images (:func:`as_rgb`, our choice): (H, W, 3) RGB or (H, W) grey, which is repeated into
three channels, as the challenge's grey images are stored. 8-bit images are used as they are (the
models are trained on ``image / 255``); other integer or float images are stretched linearly from
their 1st to 99th percentile (all channels together, so hue is kept) to 0-255, after the NeurIPS
CellSeg baseline's percentile normalisation (which stretches every image, per channel).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from ...data.types import DataError
from . import routing
from .evaluate import predict as predict_one
from .routing import MIN_CELLS, KMeansRouter
from .train import KINDS, Settings, build

log = logging.getLogger(__name__)

FORMAT = "cellrepro-multimodal-pipeline"
VERSION = 1
MANIFEST = "pipeline.json"
GENERAL = "general"
"""Branch name of the general phase-contrast + DIC Cellpose model (Sec. 2.3)."""
FALLBACK_BRANCHES = ("phase contrast", "dic")
"""Branches whose results the general model may replace (Sec. 2.3)."""


def as_rgb(image, name: Any = "image") -> np.ndarray:
    """(H, W, 3) uint8 of an (H, W, 3) RGB or (H, W) grey array (see the module docstring).

    Raises:
        DataError: naming ``name``, for any other shape, a boolean or non-numeric image, or NaN.

    >>> as_rgb(np.array([[0, 255]], np.uint8))[0].tolist()
    [[0, 0, 0], [255, 255, 255]]
    >>> wide = as_rgb(np.linspace(0, 1000, 101).reshape(1, 101)); wide[0, [0, 1, 50, 99, 100], 0].tolist()
    [0, 0, 128, 255, 255]
    >>> as_rgb(np.zeros((2, 2, 4)), "a.png")
    Traceback (most recent call last):
    ...
    cellrepro.data.types.DataError: a.png: expected an (H, W) grey or (H, W, 3) RGB image, got shape (2, 2, 4)
    """
    arr = np.asarray(getattr(image, "image", image))
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] != 3 or min(arr.shape[:2]) < 1:
        raise DataError(name, f"expected an (H, W) grey or (H, W, 3) RGB image, got shape {np.shape(image)}")
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind not in "iuf":
        raise DataError(name, f"expected integer or float pixels, got {arr.dtype}")
    if not np.isfinite(arr).all():
        raise DataError(name, "the image holds NaN or infinite values")
    lo, hi = np.percentile(arr, [1, 99])
    scaled = (arr.astype(np.float64) - lo) / (hi - lo) if hi > lo else np.zeros(arr.shape)
    log.info("%s: %s pixels stretched from [%g, %g] to 0-255", name, arr.dtype, lo, hi)
    return np.clip(np.round(scaled * 255), 0, 255).astype(np.uint8)


def slug(branch: str) -> str:
    """File-name form of a branch name.

    >>> slug("brightfield large/overlapping"), slug("phase contrast")
    ('brightfield-large-overlapping', 'phase-contrast')
    """
    return re.sub(r"[^0-9a-z]+", "-", branch.lower()).strip("-") or "model"


def settings_from_dict(d: dict[str, Any]) -> Settings:
    """:class:`~.train.Settings` from ``dataclasses.asdict`` output (lists back to tuples). Entries
    Settings no longer has are dropped with a warning; ones it has gained take their defaults."""
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        log.warning("settings entries unknown to this version's Settings, ignored: %s", unknown)
    return Settings(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in fields})


class Pipeline:
    """Routers + one model per branch; see the module docstring.

    Args:
        modality_router: the fitted 4-cluster HSV router (:func:`.routing.fit_modality_router`).
        brightfield_split: the fitted 2-cluster RGB router (:func:`.routing.fit_brightfield_split`),
            or None (brightfield images then keep the branch ``"brightfield"``).
        models: branch name -> ``(kind, model)``, kind one of :data:`.train.KINDS`; branch names are
            those :meth:`route` gives (keys of :data:`.routing.BRANCH_MODELS`) plus ``"general"``.
        settings: the :class:`~.train.Settings` the models were built with (rebuilds them on load).
        min_cells: the fallback's threshold (Sec. 2.3: 10).
        device: where models run (None: where their parameters are).

    A pipeline from :meth:`load` also knows the models in its folder that are not loaded yet
    (:attr:`branches`); ``models`` holds the loaded ones.
    """

    def __init__(self, modality_router: KMeansRouter, brightfield_split: KMeansRouter | None,
                 models: dict[str, tuple[str, torch.nn.Module]], settings: Settings, min_cells: int = MIN_CELLS,
                 device: str | torch.device | None = None):
        for name, router in (("modality_router", modality_router), ("brightfield_split", brightfield_split)):
            if router is None and name == "brightfield_split":
                continue
            if not isinstance(router, KMeansRouter) or router.centres is None:
                raise ValueError(f"{name} must be a fitted KMeansRouter, got {router!r}")
        if not isinstance(settings, Settings):
            raise ValueError(f"settings must be a train.Settings, got {type(settings).__name__}")
        if int(min_cells) < 0:
            raise ValueError(f"min_cells must be >= 0, got {min_cells}")
        for branch, entry in models.items():
            if not (isinstance(entry, tuple) and len(entry) == 2 and entry[0] in KINDS
                    and isinstance(entry[1], torch.nn.Module)):
                raise ValueError(f"models[{branch!r}] must be (kind, torch module) with kind in {KINDS}, got {entry!r}")
        self.modality_router, self.brightfield_split = modality_router, brightfield_split
        self.models = dict(models) if device is None else {b: (k, m.to(device)) for b, (k, m) in models.items()}
        self.settings, self.min_cells, self.device = settings, int(min_cells), device
        self._folder: Path | None = None
        self._files: dict[str, tuple[str, str]] = {}  # branch -> (kind, file) of models not yet loaded

    @property
    def branches(self) -> list[str]:
        """Branches with a model, loaded or in the pipeline's folder."""
        return sorted(set(self.models) | set(self._files))

    # ---- routing (no model needed) --------------------------------------------------------------

    def route_with_features(self, image) -> tuple[str, np.ndarray]:
        """``(branch, hsv features)`` of one image (as :func:`.routing.route`; grey made RGB)."""
        rgb = as_rgb(image)
        features = routing.hsv_features(rgb)
        branch = self.modality_router.predict_features(features[None])[0]
        if branch == "brightfield" and self.brightfield_split is not None:
            branch = f"brightfield {self.brightfield_split.predict([rgb])[0]}"
        return branch, features

    def route(self, image) -> str:
        """The branch of one image: its modality cluster, for brightfield with its size group."""
        return self.route_with_features(image)[0]

    # ---- models ------------------------------------------------------------------------------------

    def load_model(self, branch: str) -> tuple[str, torch.nn.Module]:
        """``(kind, model)`` of ``branch``, read from the pipeline's folder on first use, then kept."""
        if branch in self.models:
            return self.models[branch]
        if branch not in self._files:
            raise ValueError(f"no model for branch {branch!r}; the pipeline has models for {self.branches}")
        kind, file = self._files[branch]
        model = _read_model(self._folder / file, kind, self.settings)
        if self.device is not None:
            model.to(self.device)
        self.models[branch] = (kind, model)
        del self._files[branch]
        log.info("loaded the %s model of branch %r from %s", kind, branch, self._folder / file)
        return self.models[branch]

    def predict(self, image, branch: str | None = None) -> tuple[np.ndarray, str, bool]:
        """Segment one image: ``(labels, branch, used_general)``.

        Routes the image (unless ``branch`` is given), segments it with the branch's model
        (:func:`.evaluate.predict`) and, for phase contrast and DIC, with the general model when the
        first found fewer than ``min_cells`` instances and a general model exists.

        Raises:
            ValueError: the branch has no model (the message names the branches that have one).
        """
        rgb = as_rgb(image)
        branch = self.route(rgb) if branch is None else branch
        kind, model = self.load_model(branch)

        def specific(im):
            return predict_one(model, kind, im, self.device)

        if branch in FALLBACK_BRANCHES and GENERAL in self.branches:
            def general(im):
                g_kind, g_model = self.load_model(GENERAL)
                return predict_one(g_model, g_kind, im, self.device)

            labels, used = routing.with_general_fallback(rgb, specific, general, self.min_cells)
            return labels, branch, used
        return specific(rgb), branch, False

    # ---- saving and loading ------------------------------------------------------------------------

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the pipeline to ``folder`` (replaced atomically if it exists; see the module docstring)."""
        from ...data.files import atomic_dir

        for branch in list(self._files):  # a lazily loaded pipeline saves every model it knows
            self.load_model(branch)
        files = {branch: f"{slug(branch)}.pt" for branch in self.models}
        clash = [f for f in set(files.values()) if list(files.values()).count(f) > 1]
        if clash:
            raise ValueError(f"branch names {sorted(b for b, f in files.items() if f in clash)} share a file name")
        manifest = {
            "format": FORMAT, "version": VERSION,
            "modality_router": self.modality_router.to_dict(),
            "brightfield_split": None if self.brightfield_split is None else self.brightfield_split.to_dict(),
            "settings": dataclasses.asdict(self.settings), "min_cells": self.min_cells,
            "models": {b: {"kind": self.models[b][0], "file": files[b]} for b in sorted(self.models)},
        }
        with atomic_dir(folder) as tmp:
            for branch, (_, model) in self.models.items():
                torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp / files[branch])
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")  # last
        log.info("pipeline with %d models saved to %s", len(self.models), folder)
        return Path(folder)

    @classmethod
    def load(cls, folder: str | os.PathLike, branches: Iterable[str] | None = None,
             device: str | torch.device | None = None) -> "Pipeline":
        """Read a saved pipeline: its routers, and the models of ``branches`` now (all when None,
        none for ``[]``); the others are read by :meth:`load_model` when first needed.

        Raises:
            DataError: naming the path: the folder or ``pipeline.json`` missing or unreadable, another
                format or version, a model file missing, a state dict that does not fit its model;
                or a name in ``branches`` the pipeline has no model for.
        """
        folder = Path(folder)
        expected = f"a pipeline folder written by Pipeline.save ({MANIFEST} and one .pt per model)"
        if not folder.is_dir():
            raise DataError(folder, f"folder not found (expected {expected})")
        path = folder / MANIFEST
        if not path.is_file():
            raise DataError(path, f"not found (expected {expected})")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DataError(path, f"cannot be read as JSON ({err})") from err
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
            raise DataError(path, f"expected format {FORMAT!r}, found {found!r}")
        if manifest.get("version") != VERSION:
            raise DataError(path, f"format version {manifest.get('version')!r}; this cellrepro reads version {VERSION}")
        try:
            modality = KMeansRouter.from_dict(manifest["modality_router"])
            split = manifest["brightfield_split"]
            split = None if split is None else KMeansRouter.from_dict(split)
            settings = settings_from_dict(manifest["settings"])
            files = {b: (e["kind"], e["file"]) for b, e in manifest["models"].items()}
            pipe = cls(modality, split, {}, settings, manifest["min_cells"], device)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise DataError(path, f"incomplete or invalid entries ({type(err).__name__}: {err})") from err
        for branch, (kind, file) in files.items():
            if kind not in KINDS:
                raise DataError(path, f"branch {branch!r} has model kind {kind!r}; expected one of {KINDS}")
            if Path(file).name != file or not (folder / file).is_file():
                raise DataError(folder / file, f"model file of branch {branch!r} not found (listed in {path})")
        pipe._folder, pipe._files = folder, files
        wanted = pipe.branches if branches is None else list(branches)
        unknown = sorted(set(wanted) - set(files))
        if unknown:
            raise DataError(folder, f"no model for branch(es) {unknown}; it has models for {sorted(files)}")
        for branch in wanted:
            pipe.load_model(branch)
        return pipe


def _read_model(path: Path, kind: str, settings: Settings) -> torch.nn.Module:
    """A ``kind`` model at ``settings``' size with the state dict at ``path`` (on the CPU)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a damaged or foreign file
        raise DataError(path, f"cannot be read as a torch state dict ({type(err).__name__}: {err})") from err
    with torch.device("meta"):  # no random initialisation: the state dict replaces every weight
        model = build(kind, settings)
    try:
        model.load_state_dict(state, assign=True)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise DataError(path, f"does not fit a {kind} model at the pipeline's settings ({err})") from err
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):  # a tensor outside the state dict
        model = build(kind, settings)
        model.load_state_dict(state)
    return model.eval()


__all__ = ["FALLBACK_BRANCHES", "FORMAT", "GENERAL", "MANIFEST", "VERSION", "Pipeline", "as_rgb",
           "settings_from_dict", "slug"]
