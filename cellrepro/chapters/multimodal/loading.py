"""Route first, then load one model, against loading every model (Wang et al., Sec. 2.6; multimodal-C13).

The paper: "the main time consumption during inference comes from importing packages and loading models,
which takes about 9 seconds on average ... we do the clustering first, and then load the corresponding
model, which means we only need to load one model instead of four". It gives no measurement of the gain,
and its 9 s (an RTX 3090, a fresh docker container per image, package imports included) is specific to its
hardware and setup.

:func:`load_times` measures, for each image, in this process and alternating:

* ``load all``: :meth:`.pipeline.Pipeline.load` of the saved folder with every model, then ``predict``;
* ``route, load one``: ``Pipeline.load(folder, branches=[])`` (routers only), then ``predict``, which routes
  the image and loads its branch's model (and the general model only if the fallback fires).

Both sides read the model files from the page cache after a first, untimed warm-up run; neither imports
packages. :func:`ratio_per_repeat` gives one ratio per repeat (the summed ``load all`` times of the images
over the summed ``route, load one`` times), the units of the interval in the chapter; the benchmark
``benchmarks/model_loading.py`` prints per-image medians of the same measurement.
"""

from __future__ import annotations

import os
from typing import Sequence

import pandas as pd
import torch

from ...engine.hardware import timed
from .pipeline import Pipeline


def load_times(folder: str | os.PathLike, images: Sequence, repeat: int = 5,
               device: str | torch.device | None = None) -> pd.DataFrame:
    """One row per (repeat, image): ``repeat``, ``image`` (its index), ``modality`` (when the image has
    one), ``branch``, ``used_general``, ``n_loaded`` (models the lazy side loaded), ``load_all_s`` and
    ``load_one_s`` (seconds, load + predict). Each image is run once on both sides before timing."""
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    if not images:
        raise ValueError("images is empty: nothing to time")
    rows = []
    for i, image in enumerate(images):
        def all_models():
            return Pipeline.load(folder, device=device).predict(image)

        def one_model():
            lazy = Pipeline.load(folder, branches=[], device=device)
            return lazy.predict(image), len(lazy.models)

        all_models(), one_model()  # warm-up: page cache, allocator, kernels
        for r in range(repeat):
            t_all = timed(all_models, device)[1]
            ((_, branch, used), loaded), t_one = timed(one_model, device)
            rows.append({"repeat": r, "image": i, "modality": getattr(image, "modality", ""), "branch": branch,
                         "used_general": used, "n_loaded": loaded, "load_all_s": t_all, "load_one_s": t_one})
    return pd.DataFrame(rows)


def ratio_per_repeat(times: pd.DataFrame) -> pd.Series:
    """Per repeat: summed ``load_all_s`` over summed ``load_one_s`` of :func:`load_times`' rows.

    >>> t = pd.DataFrame({"repeat": [0, 0, 1, 1], "load_all_s": [1.0, 3.0, 2.0, 2.0],
    ...                   "load_one_s": [0.5, 1.5, 1.0, 3.0]})
    >>> ratio_per_repeat(t).tolist()
    [2.0, 1.0]
    """
    sums = times.groupby("repeat")[["load_all_s", "load_one_s"]].sum()
    return sums["load_all_s"] / sums["load_one_s"]


__all__ = ["load_times", "ratio_per_repeat"]
