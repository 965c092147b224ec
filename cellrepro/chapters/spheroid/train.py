"""Training and evaluating the spheroid chapter's models: Mask R-CNN, DSCMask R-CNN, SSC, U-Net++.

The views of a stack (Sec. 3.1-3.3 of Nguyen et al. 2024), computed once by :func:`make_scenes`:

* ``weak``: SBS-Stacking of the ``k`` best slices (the labelled input, Sec. 3.2);
* ``strong``: focus stacking of all slices (DSC's strongly augmented view, same pixel grid);
* ``sparse``: SBS-Stacking of ``sparse_k`` < ``k`` slices (SSC's few-slice images, Sec. 3.3).

:func:`train_maskrcnn` trains Mask R-CNN on the weak views, with the consistency term of
Eq. 13-14 (``dsc=True``) or without; :func:`train_ssc` adds the SSC scheme: train saving K
checkpoints, score the stability of every unlabelled sparse image across them, keep those with
stability above 0.8, pseudo-label them with the last checkpoint and train again from scratch on
labelled + reliable (ST++'s re-training, which Sec. 3.3 follows). :func:`evaluate` gives Table 1's
COCO metrics on held-out stacks (their weak views: the paper evaluates on SBS-stacked images).

Every model trains on whole images with random flips (or, ``augment="paper"``, Sec. 4.2's
rotation, flip and crop), Adam as in Sec. 4.2 (lr 1e-3, weight
decay 1e-4, decay by 0.1), in fp32 (bf16 would round box coordinates to about a pixel). Adam is
torch's fused implementation on every device (on 2 CPU cores its step takes 7 ms instead of 50 ms
for the ResNet-18 model, a tenth of an update).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from ...engine.hardware import adam
from ...nets.maskrcnn import build_spheroid_maskrcnn, detect, instance_targets
from ...engine.train import fit, release, seed_everything
from . import instances_from_detections, table1_ap
from .views import Scene, make_scenes, rankings, shared_scenes, view_ssim
from .dsc import LAMBDA, TAU, dsc_step
from .ssc import TAU as SSC_TAU
from .ssc import checkpoint_epochs, pseudo_targets, select_reliable


def spread_ratio(values: Sequence[Sequence[float]], reference: Sequence[float],
                 confidence: float = 0.95) -> dict[str, float]:
    """Seed spread of some settings against a reference setting (claim spheroid-C9).

    ``values``: per setting (e.g. each small k), the per-seed results; ``reference``: the
    per-seed results at the reference (k = 8). Returns the ratio of the pooled standard deviation
    to the reference's (``mean``) with an F-distribution interval (``low``, ``high``; normal
    errors assumed) and ``n`` the seeds at the reference.
    """
    from scipy import stats

    groups = [np.asarray(v, float) for v in values]
    ref = np.asarray(reference, float)
    df1 = sum(len(g) - 1 for g in groups)
    df2 = len(ref) - 1
    if df1 < 1 or df2 < 1:
        return {"mean": float("nan"), "low": float("nan"), "high": float("nan"), "n": len(ref)}
    pooled = sum(((g - g.mean()) ** 2).sum() for g in groups) / df1
    var_ref = ref.var(ddof=1)
    if var_ref == 0:
        return {"mean": float("inf"), "low": float("nan"), "high": float("nan"), "n": len(ref)}
    f = pooled / var_ref
    a = (1 - confidence) / 2
    return {"mean": float(np.sqrt(f)), "low": float(np.sqrt(f / stats.f.ppf(1 - a, df1, df2))),
            "high": float(np.sqrt(f / stats.f.ppf(a, df1, df2))), "n": len(ref)}


@dataclass
class Settings:
    """Training settings. Defaults: the CPU-feasible reduced variant (ResNet-18, 64-channel FPN);
    the paper trains 100 epochs with Adam, lr 1e-3, weight decay 1e-4 (Sec. 4.2). ``rois``: RoIs
    sampled per image for the box and mask heads (He et al.: 512; on 2 CPU cores 32 instead of 64
    takes a third off an update, the mask head being most of its cost)."""

    backbone: str = "r18"
    fpn_channels: int = 64
    rois: int = 64
    steps: int = 300
    batch: int = 4
    lr: float = 1e-3
    weight_decay: float = 1e-4
    tau: float = TAU  # Eq. 13's pixel threshold (not given in the paper)
    lam: float = LAMBDA  # Eq. 14
    normalize: str = "all"  # Eq. 13's normalisation, see dsc.py
    score_threshold: float = 0.5
    ssc_tau: float = SSC_TAU
    ssc_checkpoints: int = 3
    ssc_aggregate: str = "mean"
    ssc_seed_offset: int = 10_000  # round 2 trains from seed + this; 0: from the baseline's own seed (see train_ssc)
    augment: str = "flip"  # see AUGMENTS
    dsc_from: int = 0  # updates before DSC's consistency term is switched on (a prefix shared with the baseline)
    device: str = "auto"

    def model(self):
        return build_spheroid_maskrcnn(self.backbone, fpn_channels=self.fpn_channels, rois=self.rois)


def _labelled(scenes: Sequence[Scene]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, int]]]:
    """The ``(weak, strong, labels, classes)`` training items of the labelled ``scenes``."""
    labelled = [(sc.weak, sc.strong, sc.labels, sc.classes) for sc in scenes if sc.labels is not None]
    if not labelled:
        raise ValueError("scenes has no labelled scene to train on")
    return labelled


def _optimizer(model: torch.nn.Module, settings: Settings):
    """Sec. 4.2's Adam (fused) and its "decay rate of 0.1", after 80 % of the updates."""
    opt = adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay, fused=True)
    return opt, torch.optim.lr_scheduler.MultiStepLR(opt, [int(0.8 * settings.steps)], gamma=0.1)


def _flip(x: torch.Tensor, dims: list[int]) -> torch.Tensor:
    return torch.flip(x, dims) if dims else x


#: Training augmentations: ``"flip"`` (random horizontal and vertical flips, what Table 1 and the
#: k sweep use) or ``"paper"`` (Sec. 4.2's rotation, flip and crop: a random multiple of
#: 90 degrees, the flips, and a random square window of 3/4 to all of the side).
AUGMENTS = ("flip", "paper")


class _Sampler:
    """Random batches of scenes (with replacement) with the same random augmentation on every view."""

    def __init__(self, items: list[tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, int]]], seed: int,
                 augment: str = "flip"):
        if augment not in AUGMENTS:
            raise ValueError(f"augment must be one of {AUGMENTS}, got {augment!r}")
        self.items = items
        self.augment = augment
        self.rng = np.random.default_rng(seed)

    def __iter__(self):  # fit's loader: a placeholder per step; draw() makes the batch on the device
        while True:
            yield 0

    def _paper(self, views: list[np.ndarray]) -> list[np.ndarray]:
        """Rotation, flips and crop, the same on every view (labels included)."""
        turns = int(self.rng.integers(0, 4))
        flips = [axis for axis, flip in zip((0, 1), self.rng.random(2) < 0.5) if flip]
        h, w = views[0].shape
        side = int(self.rng.integers((3 * min(h, w)) // 4, min(h, w) + 1))
        y, x = (int(self.rng.integers(0, n - side + 1)) for n in (h, w))
        out = []
        for v in views:
            v = np.rot90(v, turns)
            v = np.flip(v, flips) if flips else v
            out.append(np.ascontiguousarray(v[y:y + side, x:x + side]))
        return out

    def draw(self, n: int, device: torch.device) -> tuple[list, list, list]:
        weak, strong, targets = [], [], []
        for i in self.rng.integers(0, len(self.items), n):
            w, s, labels, classes = self.items[i]
            if self.augment == "paper":
                w, s, lab = self._paper([w, s, labels])
                weak.append(torch.from_numpy(w)[None].to(device))
                strong.append(torch.from_numpy(s)[None].to(device))
            else:  # the published runs' draws, kept bit for bit
                dims = [d for d, flip in zip((-2, -1), self.rng.random(2) < 0.5) if flip]
                lab = np.ascontiguousarray(np.flip(labels, [d + 2 for d in dims]) if dims else labels)
                weak.append(_flip(torch.from_numpy(w)[None], dims).to(device))
                strong.append(_flip(torch.from_numpy(s)[None], dims).to(device))
            targets.append({k: v.to(device) for k, v in instance_targets(lab, classes).items()})
        return weak, strong, targets


def train_maskrcnn(scenes: Sequence[Scene], settings: Settings, seed: int, dsc: bool = False,
                   pseudo: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, int]]] = (),
                   checkpoint_steps: Sequence[int] = (), progress: bool = False, desc: str = "mask r-cnn",
                   fork_at: int | None = None, start: dict[str, Any] | None = None):
    """Mask R-CNN (``dsc=False``) or DSCMask R-CNN (``dsc=True``: Eq. 14 with the consistency of
    the strong view on the weak view's detections) on the labelled ``scenes``' weak views, plus
    ``pseudo`` items ``(image, strong view, labels, classes)`` (SSC's re-training set).

    With ``settings.dsc_from`` = P > 0 the consistency term is switched on after P updates; before
    that a DSC run makes exactly the baseline's updates (same calls, same random numbers), so the
    two arms share a training prefix and differ only by Eq. 13-14 afterwards (common random
    numbers). ``fork_at`` = P saves the run's whole state after update P (weights, Adam's moments,
    the schedule, the batch sampler's and torch's generators, the history so far) as the
    returned model's ``fork`` attribute; ``start`` = that state resumes from it, skipping the P
    updates the two arms share (the DSC arm, from its baseline's fork: the same numbers as
    training it from step 0, at a fraction of the cost; ``tests/test_spheroid_train.py`` checks the
    weights are identical). ``checkpoint_steps`` count from the run's first update either way.

    Returns the model (CPU, eval mode) with ``train_history``, and the state dicts saved after
    each of ``checkpoint_steps`` (SSC's checkpoints).
    """
    import copy

    from ...engine import checkpoint as ckpt

    labelled = _labelled(scenes)
    if fork_at is not None and not 1 <= fork_at < settings.steps:
        raise ValueError(f"fork_at must be in 1..steps - 1 = {settings.steps - 1}, got {fork_at}")
    seed_everything(seed)
    model = settings.model()
    opt, sched = _optimizer(model, settings)
    sampler = _Sampler(labelled + list(pseudo), seed, settings.augment)
    saved: dict[int, dict[str, torch.Tensor]] = {}
    wanted = set(int(s) for s in checkpoint_steps)
    offset = 0
    if start is not None:
        if start["seed"] != seed or start["items"] != len(sampler.items) or start["steps"] != settings.steps:
            raise ValueError(f"start was forked from another run (seed {start['seed']}, {start['items']} items, "
                             f"{start['steps']} steps; here {seed}, {len(sampler.items)}, {settings.steps})")
        if any(w <= start["step"] for w in wanted) or (dsc and start["step"] > settings.dsc_from):
            raise ValueError(f"start is after update {start['step']}: checkpoints up to it are the forked run's, "
                             f"and a DSC run can start no later than dsc_from = {settings.dsc_from}")
        model.load_state_dict(start["model"])
        opt.load_state_dict(copy.deepcopy(start["optimizer"]))
        sched.load_state_dict(start["scheduler"])
        sampler.rng.bit_generator.state = copy.deepcopy(start["sampler"])
        offset = start["step"]
    fork: dict[str, Any] = {}

    def step(ctx, _):
        weak, strong, targets = sampler.draw(settings.batch, ctx.device)
        net = ctx.models["net"]
        done = offset + ctx.step + 1  # this update's number in the whole run
        activity: dict[str, float] = {}
        if dsc and done > settings.dsc_from:
            losses = dsc_step(net, weak, targets, strong, settings.tau, settings.lam, settings.normalize,
                              settings.score_threshold, stats=activity)
        else:
            losses = net(weak, targets)
        total = ctx.optimize(losses)
        if done in wanted:
            saved[done] = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        if done == fork_at:
            fork.update(step=done, seed=seed, items=len(sampler.items), steps=settings.steps,
                        model={k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
                        optimizer=copy.deepcopy(ctx.optimizers["net"].state_dict()),
                        scheduler=copy.deepcopy(sched.state_dict()), sampler=copy.deepcopy(sampler.rng.bit_generator.state),
                        rng=ckpt.capture_rng())
        return {**{k: v.detach() for k, v in losses.items()}, "loss": total.detach(), **activity}

    if start is not None:
        ckpt.restore_rng(start["rng"])
    history = fit({"net": model}, {"net": opt}, step, sampler, max_steps=settings.steps - offset,
                  schedulers={"net": sched}, clip_grad=10.0, seed=None if start is not None else seed,
                  device=settings.device, precision="32-true", progress=progress, desc=desc)
    if start is not None:
        history = pd.concat([start["history"], history.assign(step=history["step"] + offset)], ignore_index=True)
    release(model)
    model.train_history = history
    if fork:
        fork["history"] = history[history["step"] <= fork_at].copy()
        model.fork = fork
    return model.eval(), [saved[s] for s in sorted(saved)]


def predict(model, images: Sequence[np.ndarray]) -> list[dict[str, torch.Tensor]]:
    """Eval-mode detections of each (H, W) image (torchvision's output dicts, on the CPU)."""
    device = next(model.parameters()).device
    return [{k: v.cpu() for k, v in detect(model, torch.from_numpy(im)[None], device).items()} for im in images]


def train_ssc(scenes: Sequence[Scene], unlabelled: Sequence[Scene], settings: Settings, seed: int, dsc: bool = False,
              progress: bool = False, first_round: tuple[Any, list[dict[str, torch.Tensor]]] | None = None):
    """SSC (Sec. 3.3): train with K checkpoints, keep the unlabelled sparse images whose
    checkpoint predictions agree (stability > ``settings.ssc_tau``), pseudo-label them with the
    last checkpoint and train a new model on labelled + reliable.

    ``first_round``: the first round already trained, as :func:`train_maskrcnn` returns it with
    ``checkpoint_steps=checkpoint_epochs(settings.steps, settings.ssc_checkpoints)`` and the same
    ``scenes``, ``settings``, ``seed`` and ``dsc`` (it is the model of the same arm without SSC,
    which :func:`run_arms` trains once for both).

    Round 2 trains from ``seed + settings.ssc_seed_offset``. With an offset of 0 it starts from
    the first round's own seed: when no image is kept it *is* the first round (the same updates
    on the same batches), so SSC's effect over its baseline is exactly 0 rather than the
    difference between two seeds (issue 28; the default 10 000 is what the published Table 2 ran).

    Returns the re-trained model and a dict: ``stability`` (per unlabelled scene), ``reliable``
    (their indices) and ``first`` (the first-round model, for comparison).
    """
    steps = checkpoint_epochs(settings.steps, settings.ssc_checkpoints)
    if first_round is None:
        first_round = train_maskrcnn(scenes, settings, seed, dsc, checkpoint_steps=steps, progress=progress,
                                     desc="ssc, round 1")
    first, states = first_round
    if len(states) != len(steps):
        raise ValueError(f"first_round has {len(states)} checkpoints; SSC needs {len(steps)} (after updates {steps})")
    sparse = [u.sparse for u in unlabelled]
    per_checkpoint: list[list[dict[str, torch.Tensor]]] = []
    probe = settings.model()
    for state in states:
        probe.load_state_dict(state)
        per_checkpoint.append(predict(probe.eval(), sparse))
    keep, stability = select_reliable(per_checkpoint, settings.ssc_tau, settings.ssc_aggregate,
                                      score_threshold=settings.score_threshold)
    pseudo = []
    for i in keep:
        t = pseudo_targets(per_checkpoint[-1][i], settings.score_threshold)
        labels = np.zeros(sparse[i].shape, np.int32)
        classes = {}
        for j, (mask, cls) in enumerate(zip(t["masks"].numpy().astype(bool), t["labels"].tolist()), start=1):
            labels[mask] = j
            classes[j] = int(cls)
        pseudo.append((sparse[i], unlabelled[i].strong, labels, classes))
    if not pseudo and settings.ssc_seed_offset == 0:  # round 2 would repeat round 1 update for update (tested)
        model = first
    else:
        model, _ = train_maskrcnn(scenes, settings, seed + settings.ssc_seed_offset, dsc, pseudo=pseudo,
                                  progress=progress, desc="ssc, round 2")
    return model, {"stability": np.asarray(stability), "reliable": np.asarray(keep), "first": first}


def evaluate(model, scenes: Sequence[Scene], view: str = "weak", per_image: bool = False) -> dict[str, Any]:
    """Table 1's metrics (:func:`table1_ap`) on the ``view`` images of labelled held-out scenes;
    ``per_image`` adds ``mask_AP_images``, each scene's own mask mAP (a unit per stack)."""
    preds = predict(model, [getattr(sc, view) for sc in scenes])
    instances = [instances_from_detections(p) for p in preds]
    scores: dict[str, Any] = _scores(scenes, instances)
    if per_image:
        scores["mask_AP_images"] = [_scores([sc], [inst])["mask_AP"] for sc, inst in zip(scenes, instances)]
    return scores


def train_unetpp(scenes: Sequence[Scene], settings: Settings, seed: int, features: Sequence[int] | None = None,
                 progress: bool = False):
    """The U-Net++ baseline (Table 1's Ngo et al. rows) on the weak views: per-pixel softmax over
    background and the three classes, cross entropy, the same optimizer, schedule and augmentation
    as :func:`train_maskrcnn` (the paper's crops of a batch zero-padded at the bottom and right to
    the largest, labelled background, as torchvision's Mask R-CNN batches its images). Returns the
    model (CPU, eval mode) with ``train_history``."""
    from .unetpp import FEATURES, build_unetpp, unetpp_loss

    labelled = _labelled(scenes)
    seed_everything(seed)
    model = build_unetpp(features=features or FEATURES)
    opt, sched = _optimizer(model, settings)
    sampler = _Sampler(labelled, seed, settings.augment)

    def step(ctx, _):
        weak, _, targets = sampler.draw(settings.batch, ctx.device)
        target = [(t["masks"].long() * t["labels"][:, None, None]).amax(0) if len(t["labels"])
                  else torch.zeros(w.shape[-2:], dtype=torch.long, device=ctx.device) for w, t in zip(weak, targets)]
        h, w = (max(x.shape[d] for x in weak) for d in (-2, -1))  # the paper's crops differ in size: pad them
        pad = lambda x: torch.nn.functional.pad(x, (0, w - x.shape[-1], 0, h - x.shape[-2]))  # noqa: E731
        loss = unetpp_loss(ctx.models["net"](torch.stack([pad(x) for x in weak])), torch.stack([pad(t) for t in target]))
        ctx.optimize(loss)
        return {"loss": loss.detach()}

    history = fit({"net": model}, {"net": opt}, step, sampler, max_steps=settings.steps, schedulers={"net": sched},
                  clip_grad=10.0, seed=seed, device=settings.device, precision="32-true", progress=progress,
                  desc="u-net++")
    release(model)
    model.train_history = history
    return model.eval()


def evaluate_unetpp(model, scenes: Sequence[Scene], view: str = "weak") -> dict[str, float]:
    """Table 1's metrics for U-Net++ instances (connected components, :func:`.unetpp.instances_from_probs`),
    and ``dice``: the foreground Dice of its class map (any class vs background) over all the
    scenes' pixels (spheroid-C5's gate: does the reference segment at all?)."""
    from .unetpp import instances_from_probs, unetpp_probs

    device = next(model.parameters()).device
    with torch.no_grad():
        probs = [unetpp_probs(model, torch.from_numpy(getattr(sc, view))[None, None].to(device))[0] for sc in scenes]
    fg = np.stack([p.argmax(0).cpu().numpy() > 0 for p in probs])
    truth = np.stack([sc.labels > 0 for sc in scenes])
    total = fg.sum() + truth.sum()
    return {**_scores(scenes, [instances_from_probs(p) for p in probs]),
            "dice": float(2 * (fg & truth).sum() / total) if total else 1.0}


def _scores(scenes: Sequence[Scene], instances: list[dict[str, np.ndarray]]) -> dict[str, float]:
    gts = [sc.labels for sc in scenes]
    gt_classes = [np.array([sc.classes[i] for i in np.unique(sc.labels) if i > 0], np.int64) for sc in scenes]
    return table1_ap(gts, gt_classes, instances)


#: Table 2's arms: (name as the paper's row, DSC, SSC).
ARMS = (("SBS + Mask R-CNN (baseline)", False, False), ("SBS + Mask R-CNN + SSC", False, True),
        ("SBS + DSCMask R-CNN", True, False), ("SBS + DSCMask R-CNN + SSC", True, True))
#: Table 1's arms on each backbone: Mask R-CNN and DSCMask R-CNN (Table 2's arms without SSC).
TABLE1_ARMS = (ARMS[0], ARMS[2])


def dsc_activity(history: pd.DataFrame, last: float = 0.1) -> dict[str, float]:
    """How much DSC's consistency term acted over the ``last`` share of a run's updates (the
    registered spheroid-C6 gate): ``dsc_box_share`` (mean share of the target boxes' pixels that
    enter Eq. 13) and ``dsc_loss_share`` (mean of the consistency term / the whole loss); NaN
    where the term never ran.

    >>> h = pd.DataFrame({"step": [1, 2], "loss": [2.0, 1.0], "loss_consistency": [float("nan"), 0.1],
    ...                   "dsc_box_share": [float("nan"), 0.5]})
    >>> dsc_activity(h, last=0.5)
    {'dsc_box_share': 0.5, 'dsc_loss_share': 0.1}
    """
    if "loss_consistency" not in history:
        return {"dsc_box_share": float("nan"), "dsc_loss_share": float("nan")}
    tail = history[history["step"] > (1 - last) * history["step"].max()]
    return {"dsc_box_share": float(tail["dsc_box_share"].mean()),
            "dsc_loss_share": float((tail["loss_consistency"] / tail["loss"]).mean())}


def _curve(history: pd.DataFrame) -> list[float]:
    """The per-update share of box pixels entering Eq. 13 (NaN before DSC is on), for figures."""
    return [float(v) for v in history["dsc_box_share"]] if "dsc_box_share" in history else []


def run_arms(labelled: Sequence[Scene], unlabelled: Sequence[Scene], test: Sequence[Scene], settings: Settings,
             seed: int, arms: Sequence[tuple[str, bool, bool]] = ARMS, progress: bool = False,
             probe_views: dict[str, tuple[Sequence[Scene], str]] | None = None) -> list[dict[str, Any]]:
    """Train and evaluate each arm on one seed's split; one row per arm: ``arm``, ``seed``, Table 1's
    metrics, for DSC arms :func:`dsc_activity`, for SSC arms ``reliable`` (unlabelled images kept),
    ``stabilities`` (each unlabelled image's) and ``stability`` (their mean).

    An arm without SSC and SSC's first round with the same DSC setting are the same training (same
    data, settings and seed; saving checkpoints draws no random number), so it runs once and
    serves both: the four arms cost four training rounds instead of six. With
    ``settings.dsc_from`` = P > 0 the DSC round resumes from the baseline's state after P updates
    (the same numbers as training it from the start, see :func:`train_maskrcnn`), and its SSC
    checkpoints up to P are the baseline's. With ``settings.ssc_seed_offset`` = 0 an SSC round
    that keeps nothing is its first round (:func:`train_ssc`).

    ``probe_views``: ``{name: (scenes, view)}`` more test sets the baseline is scored on (e.g. the
    oracle's and the all-slice views of the test stacks: is the all-slice view harder for the
    detector?), as ``<name>_<metric>`` columns of the baseline's row, with each test stack's own
    mask mAP (``<name>_mask_AP_images``, and ``weak_mask_AP_images`` on ``test``).
    """
    rows = []
    rounds: dict[bool, tuple[Any, list[dict[str, torch.Tensor]]]] = {}
    steps = checkpoint_epochs(settings.steps, settings.ssc_checkpoints)
    fork = settings.dsc_from if 0 < settings.dsc_from < settings.steps and any(d for _, d, _ in arms) else None
    for name, dsc, ssc in sorted(arms, key=lambda a: a[1]):  # the baseline round first: DSC forks from it
        if dsc not in rounds:
            wanted = steps if any(s for _, d, s in arms if d == dsc) else []
            if dsc and fork is not None:
                base = rounds.get(False) or train_maskrcnn(labelled, settings, seed, False, fork_at=fork,
                                                           progress=progress, desc="shared prefix")
                shared = [state for step, state in zip(steps, base[1]) if step <= fork] if wanted else []
                model, states = train_maskrcnn(labelled, settings, seed, True, checkpoint_steps=[w for w in wanted if w > fork],
                                               progress=progress, desc=name, start=base[0].fork)
                rounds[True] = (model, shared + states)
            else:
                rounds[dsc] = train_maskrcnn(labelled, settings, seed, dsc, checkpoint_steps=steps if fork else wanted,
                                             progress=progress, desc=name, fork_at=None if dsc else fork)
    for name, dsc, ssc in arms:
        history = rounds[dsc][0].train_history
        extra: dict[str, Any] = {**dsc_activity(history), "box_share_curve": _curve(history)} if dsc else {}
        if ssc:
            model, info = train_ssc(labelled, unlabelled, settings, seed, dsc, progress=progress,
                                    first_round=rounds[dsc])
            extra.update(reliable=len(info["reliable"]), stability=float(np.mean(info["stability"])),
                         stabilities=[float(v) for v in info["stability"]])
            if dsc and model is not info["first"]:
                extra.update(dsc_activity(model.train_history), box_share_curve=_curve(model.train_history))
        else:
            model = rounds[dsc][0]
        if not dsc and not ssc and probe_views:
            for view_name, (scenes_, view) in probe_views.items():
                extra.update({f"{view_name}_{k}": v for k, v in evaluate(model, scenes_, view, True).items()})
        scores = evaluate(model, test, per_image="oracle_mask_AP" in extra or "strong_mask_AP" in extra)
        if "mask_AP_images" in scores:
            extra["weak_mask_AP_images"] = scores.pop("mask_AP_images")
        rows.append({"arm": name, "seed": seed, **scores, **extra})
    return rows


def factorial_differences(table: pd.DataFrame, metric: str, arms: Sequence[tuple[str, bool, bool]] = ARMS
                          ) -> dict[str, pd.Series]:
    """The per-seed differences of a 2 x 2 table (rows per arm and seed), indexed by seed: DSC = mean
    over SSC levels of (with - without), SSC likewise, interaction = (both - SSC) - (DSC -
    baseline), ``both`` = both - baseline."""
    by = {(dsc, ssc): table[table["arm"] == name].set_index("seed")[metric] for name, dsc, ssc in arms}
    base, s, d, both = by[False, False], by[False, True], by[True, False], by[True, True]
    return {"DSC": ((d - base) + (both - s)) / 2, "SSC": ((s - base) + (both - d)) / 2,
            "interaction": (both - s) - (d - base), "both": both - base}


def factorial_effects(table: pd.DataFrame, metric: str, arms: Sequence[tuple[str, bool, bool]] = ARMS
                      ) -> dict[str, dict[str, float]]:
    """:func:`factorial_differences` paired over seeds (mean and t-interval of each)."""
    from ...publish.report import paired_effect

    return {name: paired_effect(diff) for name, diff in factorial_differences(table, metric, arms).items()}


__all__ = ["ARMS", "AUGMENTS", "TABLE1_ARMS", "Scene", "Settings", "dsc_activity", "evaluate", "evaluate_unetpp", "factorial_differences", "factorial_effects", "make_scenes", "predict",
           "rankings", "run_arms", "shared_scenes", "spread_ratio", "train_maskrcnn", "train_ssc", "train_unetpp",
           "view_ssim"]
