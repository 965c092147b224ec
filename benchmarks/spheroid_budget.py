"""The spheroid training sections' CPU budget: backbone cost and quality, and SSC's stability.

    python benchmarks/spheroid_budget.py [--steps 100] [--probe 110 160] [--device cpu]

Why the book profile of ``spheroid/table1-backbones``, ``table2-ablation`` and ``k-sweep`` trains
ResNet-18 rather than the paper's ResNet-50, and why SSC selects nothing there. On one seed's
synthetic stacks at the book settings (64-pixel slices of 15, k = 8, 64-channel FPN, 32 RoIs per
image, batch 4; 16 labelled and 8 held-out stacks), in this process:

* ResNet-18 and ResNet-50, Mask R-CNN and DSCMask R-CNN, ``--steps`` updates each: seconds per
  update, its ratio ResNet-50 / ResNet-18, and held-out mask mAP;
* SSC's first round (Mask R-CNN, ResNet-18) for each ``--probe`` number of updates, on 12 labelled
  stacks as in Table 2's book profile: the stability of 10 unlabelled sparse (4-slice) images
  across the checkpoints at E/3, 2E/3 and E, against the paper's threshold 0.8.
"""

from __future__ import annotations

import argparse
import time

import torch

from cellrepro import data
from cellrepro.chapters.spheroid import train as sph
from cellrepro.chapters.spheroid.ssc import TAU, checkpoint_epochs, select_reliable
from cellrepro.publish.record import machine_device


def backbones(scenes, steps: int, device: str) -> None:
    lab, test = scenes[:16], scenes[16:24]
    cost: dict[tuple[str, bool], float] = {}
    for dsc in (False, True):
        for bb in ("r18", "r50"):
            settings = sph.Settings(backbone=bb, rois=32, steps=steps, device=device)
            t = time.perf_counter()
            model, _ = sph.train_maskrcnn(lab, settings, 0, dsc)
            cost[bb, dsc] = (time.perf_counter() - t) / steps
            ap = sph.evaluate(model, test)["mask_AP"]
            name = "DSCMask R-CNN" if dsc else "Mask R-CNN"
            print(f"{name:14s} {bb}: {cost[bb, dsc]:.3f} s/update, mask mAP {ap:.3f} after {steps} updates", flush=True)
        print(f"{'':14s} r50 / r18 cost per update: {cost['r50', dsc] / cost['r18', dsc]:.2f}x", flush=True)


def stability_probe(scenes, probes: list[int], device: str) -> None:
    lab, unl = scenes[:12], scenes[12:22]
    for steps in probes:
        settings = sph.Settings(backbone="r18", rois=32, steps=steps, device=device)
        _, states = sph.train_maskrcnn(lab, settings, 0, checkpoint_steps=checkpoint_epochs(steps))
        probe = settings.model()
        per_checkpoint = []
        for state in states:
            probe.load_state_dict(state)
            per_checkpoint.append(sph.predict(probe.eval(), [u.sparse for u in unl]))
        keep, scores = select_reliable(per_checkpoint, TAU)
        print(f"SSC first round of {steps} updates: stabilities {scores.min():.2f}-{scores.max():.2f}, "
              f"{len(keep)} of {len(unl)} above {TAU}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--probe", type=int, nargs="*", default=[110, 160])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(f"machine: {machine_device()}; {torch.get_num_threads()} CPU threads; device {args.device}")
    stacks = data.load("dic-spheroid", n=24, size=64, slices=15, seed=0)
    scenes = sph.make_scenes(stacks, 8, 4, progress=False)
    backbones(scenes, args.steps, args.device)
    if args.probe:
        stability_probe(scenes, args.probe, args.device)


if __name__ == "__main__":
    main()
