"""The ``cellrepro route`` and ``cellrepro predict`` subcommands (registered by :mod:`cellrepro.cli`):
a saved multimodal :class:`~.pipeline.Pipeline` applied to a folder of a user's own images.

    cellrepro route images/ --pipeline ckpt/ --out routes.csv
    cellrepro predict images/ --pipeline ckpt/ --out predictions/ --device auto
    cellrepro eval --gt labels/ --pred predictions/ --format cellseg

``route`` loads no model (the paper's Sec. 2.6: cluster first); ``predict`` routes every image
first, checks that each branch met has a model (before anything is written), then loads only
those models and writes ``<stem>_label.tiff`` per image, the CellSeg challenge's naming, which
``cellrepro eval --format cellseg`` pairs with ground truth. Every file is written atomically.
The commands yield the lines they show; the CLI prints them. Nothing here is imported by
``cellrepro --help`` except this module, which imports no heavy package at the top.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, Iterator

IMAGES_HELP = ("folder of images (.png, .tif, .jpg, ...): (H, W, 3) RGB, or (H, W) grey, which is repeated into "
               "three channels as the challenge's grey images are; 8-bit used as is, other depths stretched to 8 bit")
PIPELINE_HELP = "a pipeline folder written by cellrepro.chapters.multimodal.pipeline.Pipeline.save"
FEATURES = ("h_mean", "s_mean", "v_mean", "h_std", "s_std", "v_std")
"""Column names of :func:`.routing.hsv_features`' six numbers, in its order."""


def _images(folder: str) -> list[Path]:
    from ...data.files import list_images

    return list_images(Path(folder), "images to segment")


def _read(path: Path):
    from ...data.files import read_image
    from .pipeline import as_rgb

    return as_rgb(read_image(path), path)


def _count(rows: list[dict], key: str) -> str:
    from collections import Counter

    return ", ".join(f"{k} {n}" for k, n in sorted(Counter(r[key] for r in rows).items()))


def route_lines(args: argparse.Namespace) -> Iterator[str]:
    """``cellrepro route``: branch and HSV features of every image, no model loaded."""
    import pandas as pd
    from ...engine.progress import bar as progress_bar

    from ..._io import atomic_write_text
    from .pipeline import Pipeline

    files = _images(args.images)
    pipeline = Pipeline.load(args.pipeline, branches=[])
    rows = []
    for path in progress_bar(files, desc="route", unit="image", disable=None):
        branch, features = pipeline.route_with_features(_read(path))
        rows.append({"image": path.name, "branch": branch, **dict(zip(FEATURES, features.tolist()))})
    atomic_write_text(args.out, pd.DataFrame(rows).to_csv(index=False))
    yield f"{len(rows)} images routed: {_count(rows, 'branch')}"
    yield f"written: {args.out}"
    return 0


def _device(name: str) -> str:
    import torch

    from ... import CellreproError

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise CellreproError("--device cuda: no CUDA device is available here (use --device cpu or auto)")
    return name


def predict_lines(args: argparse.Namespace) -> Iterator[str]:
    """``cellrepro predict``: route every image, load the needed branch models, write label TIFFs."""
    import numpy as np
    import pandas as pd
    from ...engine.progress import bar as progress_bar

    from ... import CellreproError
    from ..._io import atomic_write_text
    from ...data.files import write_image
    from .pipeline import Pipeline
    from .routing import count_instances

    files = _images(args.images)
    stems = [p.stem for p in files]
    twins = sorted({s for s in stems if stems.count(s) > 1})
    if twins:
        raise CellreproError(f"{args.images}: images share a name stem, so their <stem>_label.tiff would clash: {twins}")
    pipeline = Pipeline.load(args.pipeline, branches=[], device=_device(args.device))
    branches = {p: pipeline.route(_read(p)) for p in progress_bar(files, desc="route", unit="image", disable=None)}
    missing = sorted(set(branches.values()) - set(pipeline.branches))
    if missing:
        which = "; ".join(f"{b}: {', '.join(p.name for p in files if branches[p] == b)[:200]}" for b in missing)
        raise CellreproError(f"{args.pipeline}: no model for branch(es) {missing} (images {which}); "
                             f"the pipeline has models for {pipeline.branches}")
    out = Path(args.out)
    rows = []
    for path in progress_bar(files, desc="predict", unit="image", disable=None):
        labels, branch, used = pipeline.predict(_read(path), branches[path])
        dtype = np.uint16 if labels.max(initial=0) <= np.iinfo(np.uint16).max else np.int32
        write_image(out / f"{path.stem}_label.tiff", labels.astype(dtype))
        rows.append({"image": path.name, "branch": branch, "used_general": used, "n_instances": count_instances(labels)})
    atomic_write_text(out / "routes.csv", pd.DataFrame(rows).to_csv(index=False))
    yield f"{len(rows)} images segmented: {_count(rows, 'branch')}"
    yield f"general model used for {sum(r['used_general'] for r in rows)}; models loaded: {', '.join(sorted(pipeline.models))}"
    yield f"written: {out}/<stem>_label.tiff and {out / 'routes.csv'}"
    return 0


def add_parsers(sub: argparse._SubParsersAction, handler: Callable) -> None:
    """Add ``route`` and ``predict`` to the ``cellrepro`` command's subparsers; ``handler`` turns a
    line generator into the command's function (the CLI's, which prints)."""
    p = sub.add_parser("route", help="route images to the multimodal pipeline's branches (K-Means; no model loaded)",
                       description="Route every image of DIR with a saved pipeline's K-Means routers (multimodal "
                                   "paper Sec. 2.2, 2.4); write image, branch and the six HSV features per image.")
    p.add_argument("images", metavar="DIR", help=IMAGES_HELP)
    p.add_argument("--pipeline", required=True, metavar="CKPT_DIR", help=PIPELINE_HELP)
    p.add_argument("--out", required=True, help="CSV to write (image, branch, h/s/v means and standard deviations)")
    p.set_defaults(func=handler(route_lines))

    p = sub.add_parser("predict", help="segment images with a saved multimodal pipeline (route, then its models)",
                       description="Route every image of DIR, load only the branch models needed (Sec. 2.6), "
                                   "segment (with the general-model fallback for phase contrast and DIC, Sec. 2.3) "
                                   "and write OUT/<stem>_label.tiff and OUT/routes.csv.")
    p.add_argument("images", metavar="DIR", help=IMAGES_HELP)
    p.add_argument("--pipeline", required=True, metavar="CKPT_DIR", help=PIPELINE_HELP)
    p.add_argument("--out", required=True, help="output folder for <stem>_label.tiff (CellSeg naming) and routes.csv")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where the models run (default auto: cuda when available, else cpu)")
    p.set_defaults(func=handler(predict_lines))
