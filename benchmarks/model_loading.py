"""Route first, then load one model (multimodal paper Sec. 2.6, claim C13) vs loading every model.

    python benchmarks/model_loading.py [--size 256] [--widths book paper] [--repeat 5] [--device cpu|cuda]

The measurement is :func:`cellrepro.chapters.multimodal.loading.load_times`, which the chapter's
Table 4 section also runs, on its trained pipeline. Here a
:class:`cellrepro.chapters.multimodal.pipeline.Pipeline` of untrained nets (weights do not change
loading or network time) is saved to a temporary folder once per width setting, with routers fitted
on 2 synthetic images per modality and six models: Cellpose for phase contrast, DIC, large-cell
brightfield and the general phase-contrast + DIC model, a VGG U-Net for small-cell brightfield, a
CDNet for fluorescence. Then, for one held-out image of each modality, in this process, alternating:

* ``load all``: ``Pipeline.load(folder)`` (every model), then ``predict(image)``;
* ``route, load one``: ``Pipeline.load(folder, branches=[])`` (routers only), then ``predict(image)``,
  which routes and loads its branch's model (and the general model only if the fallback fires).

Each timing is the median of ``--repeat`` runs; the ratio is ``load all / route, load one``. The model
files are read from the page cache after the first run on both sides (the paper's ~9 s per image
also counts importing packages in a fresh docker container, which neither side does here).

Widths: ``book`` is :class:`~cellrepro.chapters.multimodal.train.Settings`' defaults (Cellpose
(8, 16, 32), VGG U-Net width divisor 16, CDNet (8, 8, 16, 32, 64, 8)); ``paper`` is our pick of
paper-like sizes: Cellpose (32, 64, 128, 256) (Cellpose's own), VGG U-Net divisor 1 (the full
VGG16-BN encoder, the paper's 18.6 M parameters), CDNet (64, 64, 128, 256, 512, 64) (VGG16's channel
widths; the paper does not give CDNet's size).

Measured once on 2 CPU cores shared with a training job (``OMP_NUM_THREADS=1 python
benchmarks/model_loading.py --size 128 --repeat 3 --device cpu``; per-image medians, then the
median of the four ratios; a phase-contrast or DIC image whose untrained model found < 10 cells
also loads the general model, which costs it much of its gain):

* book widths (0.6 M parameters, 2.7 MB): load all + predict 0.42-0.67 s, route + load one + predict
  0.10-0.31 s; ratio 3.8 (1.8 with the fallback, 3.5-4.4 without);
* paper widths (53.0 M parameters, 203 MB): 0.80-1.07 s vs 0.32-0.64 s; ratio 2.1 (1.6-1.7 with the
  fallback, 2.5-2.8 without).

Loading is cheap here because models are built on PyTorch's meta device (no random initialisation)
and the state dicts come from the page cache; building the paper-size VGG U-Net the ordinary way
costs 0.3-0.5 s alone.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch

from cellrepro.chapters.multimodal import routing, train
from cellrepro.chapters.multimodal.loading import load_times
from cellrepro.chapters.multimodal.pipeline import GENERAL, Pipeline
from cellrepro.data.synthetic.multimodal import make_image
from cellrepro.data.types import MODALITIES
from cellrepro.publish.record import machine_device

WIDTHS = {
    "book": train.Settings(),
    "paper": train.Settings(cellpose_features=(32, 64, 128, 256), vgg_width=1,
                            cdnet_features=(64, 64, 128, 256, 512, 64)),
}


def build_pipeline(settings: train.Settings, size: int) -> Pipeline:
    fit = [make_image(f"fit-{m}-{i}", np.random.default_rng([1, j, i]), size, m)
           for j, m in enumerate(MODALITIES) for i in range(2)]
    modality = routing.fit_modality_router(fit, [im.modality for im in fit], n_init=3)
    split = routing.fit_brightfield_split([im for im in fit if im.modality == "brightfield"], n_init=3)
    kinds = {**routing.BRANCH_MODELS, GENERAL: "cellpose"}
    torch.manual_seed(0)
    return Pipeline(modality, split, {b: (k, train.build(k, settings)) for b, k in kinds.items()}, settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--widths", nargs="+", choices=sorted(WIDTHS), default=["book", "paper"], help="model sizes")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per side and image (median kept)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the models run")
    args = parser.parse_args()
    print(f"device: {machine_device() if args.device == 'cuda' else 'cpu'}; torch threads {torch.get_num_threads()}")
    tests = [make_image(f"test-{m}", np.random.default_rng([2, j]), args.size, m) for j, m in enumerate(MODALITIES)]
    for name in args.widths:
        pipe = build_pipeline(WIDTHS[name], args.size)
        with tempfile.TemporaryDirectory() as tmp:
            folder = pipe.save(Path(tmp) / "pipeline")
            mb = sum(p.stat().st_size for p in folder.iterdir()) / 2 ** 20
            params = sum(p.numel() for _, m in pipe.models.values() for p in m.parameters()) / 1e6
            print(f"\n{name} widths: {len(pipe.models)} models, {params:.1f} M parameters, {mb:.1f} MB on disk")
            times = load_times(folder, tests, args.repeat, args.device)
            ratios = []
            for _, t in times.groupby("image"):
                b, o = t["load_all_s"].median(), t["load_one_s"].median()
                ratios.append(b / o)
                last = t.iloc[-1]
                print(f"  {last['modality']:<15} -> {last['branch']:<30} general {str(last['used_general']):<5} "
                      f"loaded {last['n_loaded']}: load all {b:.3f} s, route + load one {o:.3f} s, ratio {b / o:.2f}")
            print(f"  median ratio (load all / route, load one): {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
