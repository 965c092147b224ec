"""One training loop for every paper, on Lightning Fabric.

A chapter supplies models, optimizers, a data loader and a *step function*; :func:`fit`
does the rest: device ("auto": cuda, then mps, then cpu), precision (bf16-mixed on GPU,
32-true on CPU), gradient accumulation and clipping, evaluation every N steps, tqdm
progress, atomic checkpoints with exact resume, NaN/inf detection, and a pandas history.

The step function receives a :class:`StepContext` and a batch, computes losses, calls
``ctx.optimize(losses, *optimizer_names)`` once per update it wants, and returns the values
to log. Two networks, a teacher and a student, or a generator and a discriminator are the
same loop with more names::

    def step(ctx, batch):
        x, y = batch
        loss = F.cross_entropy(ctx.models["net"](x), y)
        ctx.optimize({"ce": loss})           # backward, clip, step (every `accumulate` batches)
        return {"ce": loss}

    loader = TensorLoader(x, y, batch_size=32, shuffle=True)   # batches cut on the device
    history = fit({"net": net}, {"net": adam(net.parameters(), lr=1e-3)}, step, loader, max_steps=1000)
    release(net)                                               # back to the CPU, GPU memory freed

Using the hardware: one Fabric per process and setting (:func:`make_fabric`), data resident
on the device (:class:`TensorLoader`), no host sync per step (values become floats every
``log_every`` updates, :mod:`cellrepro.engine.trainlog`), fused Adam on CUDA (:func:`adam`),
optional channels_last, bf16-mixed on GPU with TF32 for the remaining fp32 matrix products.

Multi-GPU and multi-node runs use Fabric's launchers (``torchrun``, SLURM ``srun``) with
``devices``/``num_nodes``/``strategy``; the same code runs single-process on a CPU.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import pandas as pd
import torch
from torch import nn
from .progress import bar as progress_bar

from .. import CellreproError
from . import checkpoint as ckpt
from .hardware import adam, default_precision, make_fabric, release, resolve_accelerator, unwrap, uses_conv2d
from .tensorloader import TensorLoader
from .trainlog import History, NonFiniteLoss, check_finite

log = logging.getLogger(__name__)

__all__ = ["CHANNELS_LAST_ON_CUDA", "NonFiniteLoss", "StepContext", "TensorLoader", "adam", "check_finite",
           "default_precision", "ema", "ema_update", "evaluate", "fit", "make_fabric", "release",
           "resolve_accelerator", "seed_everything"]

#: channels_last for conv nets on CUDA when ``fit(channels_last=None)``. Off: not yet measured
#: to help on this project's U-Nets (run benchmarks/train_precision.py on a GPU, then decide).
CHANNELS_LAST_ON_CUDA = False


def seed_everything(seed: int) -> int:
    """Seed Python, NumPy and torch, and make data-loader workers derive their seeds from it.

    Wraps Lightning Fabric's ``seed_everything(seed, workers=True)``: loaders set up by
    :func:`fit` get a worker init function that seeds each worker from (seed, rank, worker id).
    """
    from lightning_fabric.utilities.seed import seed_everything as _seed

    return _seed(seed, workers=True, verbose=False)


def ema(model: nn.Module, decay: float = 0.999) -> torch.optim.swa_utils.AveragedModel:
    """An exponential moving average of ``model``'s weights and buffers (a teacher).

    Uses ``torch.optim.swa_utils.AveragedModel`` with ``get_ema_multi_avg_fn``; call
    :func:`ema_update` after each optimizer step. Pass it to :func:`fit` under its own name
    (without an optimizer) so it is placed on the device and saved in checkpoints.
    """
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def ema_update(teacher: nn.Module, student: nn.Module) -> None:
    """``teacher <- decay * teacher + (1 - decay) * student`` (Fabric wrappers are looked through)."""
    unwrap(teacher).update_parameters(unwrap(student))


def _setup(fabric: Any, module: nn.Module) -> nn.Module:
    """``fabric.setup_module``, marking the module's ``forward_methods`` (e.g. a U-Net's
    ``encode``/``decode``) so that calling them goes through Fabric's precision and strategy."""
    wrapped = fabric.setup_module(module)
    for name in getattr(module, "forward_methods", ()):
        wrapped.mark_forward_method(name)
    return wrapped


@dataclass
class StepContext:
    """What a step function sees: the set-up models and optimizers, and ``optimize``."""

    fabric: Any
    models: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, Any]
    accumulate: int = 1
    clip_grad: float | None = None
    step: int = 0  # optimizer updates done so far
    micro: int = 0  # index of the batch within the current accumulation window
    stepped: set[str] = field(default_factory=set)
    history: "History | None" = None  # set by fit: non-finite checks are buffered there

    @property
    def device(self) -> torch.device:
        return self.fabric.device

    def optimize(self, losses: torch.Tensor | Mapping[str, torch.Tensor], *names: str) -> torch.Tensor:
        """Back-propagate the sum of ``losses`` and, at the end of an accumulation window, clip
        and step the named optimizers (all when none are named) and their schedulers.

        Raises:
            NonFiniteLoss: a term is NaN or infinite. Checked before backward when ``fit`` logs
                every update; otherwise at the next flush of the history (see :func:`fit`).
        """
        terms = {"loss": losses} if isinstance(losses, torch.Tensor) else dict(losses)
        if self.history is not None:
            self.history.watch(self.step + 1, terms)
        else:
            check_finite(terms, self.step + 1)
        names = names or tuple(self.optimizers)
        unknown = [n for n in names if n not in self.optimizers]
        if unknown:
            raise CellreproError(f"no optimizer named {unknown[0]!r}; optimizers: {', '.join(self.optimizers)}")
        if self.micro == 0:
            for n in names:
                self.optimizers[n].zero_grad(set_to_none=True)
        values = list(terms.values())
        total = sum(values[1:], values[0]) if values else torch.zeros((), device=self.device)
        self.fabric.backward(total / self.accumulate if self.accumulate > 1 else total)
        if self.micro == self.accumulate - 1:
            for n in names:
                opt = self.optimizers[n]
                if self.clip_grad:
                    if n in self.models:
                        self.fabric.clip_gradients(self.models[n], opt, max_norm=self.clip_grad, error_if_nonfinite=False)
                    else:
                        params = [p for g in opt.param_groups for p in g["params"]]
                        torch.nn.utils.clip_grad_norm_(params, self.clip_grad)
                opt.step()  # gradients are cleared before the next backward (micro == 0), not here: once is enough
                if n in self.schedulers:
                    self.schedulers[n].step()
                self.stepped.add(n)
        return total


class _Batches:
    """Endless iteration over a loader, with a position that can be saved and restored exactly.

    The RNG state at the start of each epoch is kept, so that a resumed run re-creates the
    same shuffled order and worker seeds, skips the batches already used, then restores the
    RNG state of the checkpoint.
    """

    def __init__(self, loader: Iterable, fabric: Any, move: bool):
        self.loader, self.fabric, self.move = loader, fabric, move
        self.epoch, self.index, self.epoch_rng, self.it = 0, 0, None, None

    def next(self) -> Any:
        while True:
            if self.it is None:
                self.epoch_rng = ckpt.raw_rng()  # made storable only when a checkpoint is written
                self.it = iter(self.loader)
            try:
                batch = next(self.it)
            except StopIteration:
                self.it, self.epoch, self.index = None, self.epoch + 1, 0
                continue
            self.index += 1
            return self.fabric.to_device(batch) if self.move else batch

    def state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "index": self.index, "started": self.it is not None,
                "epoch_rng": ckpt.portable_rng(self.epoch_rng) if self.epoch_rng is not None else None}

    def restore(self, state: dict[str, Any]) -> None:
        self.epoch, self.index = state["epoch"], 0
        if state["started"]:
            now = ckpt.capture_rng()
            ckpt.restore_rng(state["epoch_rng"])
            self.epoch_rng, self.it = ckpt.raw_rng(), iter(self.loader)
            for _ in range(state["index"]):
                next(self.it)
            self.index = state["index"]
            ckpt.restore_rng(now)


def _as_dict(obj: Any, default: str) -> dict[str, Any]:
    if obj is None:
        return {}
    return dict(obj) if isinstance(obj, Mapping) else {default: obj}


def fit(
    models: nn.Module | Mapping[str, nn.Module],
    optimizers: torch.optim.Optimizer | Mapping[str, torch.optim.Optimizer],
    step_fn: Callable[[StepContext, Any], Mapping[str, Any]],
    train_loader: Iterable,
    *,
    max_steps: int,
    schedulers: Any = None,
    eval_fn: Callable[[StepContext], Mapping[str, float]] | None = None,
    eval_every: int = 0,
    accumulate: int = 1,
    clip_grad: float | None = None,
    device: str = "auto",
    precision: str | None = None,
    seed: int | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 0,
    keep_checkpoints: int = 2,
    resume: bool = False,
    progress: bool = True,
    fabric: Any = None,
    desc: str = "train",
    log_every: int | None = None,
    channels_last: bool | None = None,
) -> pd.DataFrame:
    """Train for ``max_steps`` optimizer updates and return the history (one row per update).

    Args:
        models: a module or ``{name: module}``; modules without an optimizer (EMA teachers)
            are placed on the device and checkpointed too.
        optimizers: an optimizer or ``{name: optimizer}``; a single module and optimizer are
            both named ``"model"``. Clipping uses the module of the same name when there is one.
            :func:`adam` gives a fused Adam on CUDA.
        step_fn: ``step_fn(ctx, batch) -> {name: value}``; calls ``ctx.optimize``.
        train_loader: a :class:`TensorLoader` (a copy is moved to the device once and batches
            are cut there; the caller's stays where it is), a ``DataLoader`` (set up by
            Fabric: device moves, worker seeding) or any re-iterable of batches; iterated
            endlessly, epoch after epoch.
        max_steps: optimizer updates; each consumes ``accumulate`` batches.
        schedulers: a scheduler or ``{optimizer name: scheduler}``, stepped after each update.
        eval_fn: ``eval_fn(ctx) -> {metric: value}``, run under ``torch.no_grad`` with models in
            eval mode every ``eval_every`` updates and after the last.
        clip_grad: max gradient norm (None: no clipping).
        device, precision: see :func:`make_fabric` (one Fabric per process and setting, reused);
            ignored when ``fabric`` is given.
        seed: seeds everything first (:func:`seed_everything`).
        checkpoint_dir, checkpoint_every, keep_checkpoints: atomic checkpoints every N updates
            and after the last, keeping the newest few.
        resume: continue from the newest checkpoint in ``checkpoint_dir`` if there is one.
        log_every: logged values stay on the device and become floats (one host sync) every N
            updates, at checkpoints and at the end; the progress bar updates its values then.
            Default: 1 on the CPU (a sync costs nothing there), 50 elsewhere. With N > 1 a NaN
            or infinite term is found up to N - 1 updates late, after those updates were applied;
            the error still names the step and term where it first appeared.
        channels_last: store 2-D conv models and 4-D :class:`TensorLoader` batches as NHWC.
            None: ``CHANNELS_LAST_ON_CUDA`` for conv nets on CUDA (off until measured), off elsewhere.

    Returns:
        DataFrame with ``step``, ``epoch``, the mean of each logged value over the update's
        batches, ``lr/<optimizer>`` and the evaluation metrics (NaN between evaluations).

    Raises:
        NonFiniteLoss: a logged or optimized term is NaN/inf (names the step and the term).
    """
    if max_steps < 1 or accumulate < 1 or (log_every is not None and log_every < 1):
        raise CellreproError(f"max_steps, accumulate and log_every must be >= 1 (got {max_steps}, {accumulate}, {log_every})")
    if (checkpoint_every or resume) and checkpoint_dir is None:
        raise CellreproError("checkpoint_every and resume need a checkpoint_dir")
    models = _as_dict(models, "model")
    optimizers = _as_dict(optimizers, "model")
    schedulers = _as_dict(schedulers, next(iter(optimizers), "model"))
    fabric = fabric or make_fabric(device, precision)
    on_cpu = fabric.device.type == "cpu"
    if seed is not None:
        seed_everything(seed)
    if channels_last is None:
        channels_last = CHANNELS_LAST_ON_CUDA and fabric.device.type == "cuda" and any(map(uses_conv2d, models.values()))
    if channels_last:
        for m in models.values():
            unwrap(m).to(memory_format=torch.channels_last)
    models = {n: _setup(fabric, m) for n, m in models.items()}
    optimizers = {n: fabric.setup_optimizers(o) for n, o in optimizers.items()}
    batches = _Batches(_device_loader(fabric, train_loader, channels_last), fabric,
                       move=not isinstance(train_loader, (TensorLoader, torch.utils.data.DataLoader)))
    history = History(log_every or (1 if on_cpu else 50), [])
    ctx = StepContext(fabric, models, optimizers, schedulers, accumulate, clip_grad, history=history)
    if resume and (state := ckpt.load_latest(checkpoint_dir)) is not None:
        for kind, target in (("models", models), ("optimizers", optimizers), ("schedulers", schedulers)):
            for n, obj in target.items():
                obj.load_state_dict(state[kind][n])
        history.rows = pd.DataFrame(state["history"]).to_dict("records")
        ctx.step = state["step"]
        batches.restore(state["data"])
        ckpt.restore_rng(state["rng"])
        log.info("resumed from %s at step %d", state["path"], ctx.step)

    def save() -> None:
        state = {"step": ctx.step, "rng": ckpt.capture_rng(), "data": batches.state(),
                 "history": pd.DataFrame(history.rows).to_dict("list"),
                 **{kind: {n: o.state_dict() for n, o in target.items()}
                    for kind, target in (("models", models), ("optimizers", optimizers), ("schedulers", schedulers))}}
        if fabric.is_global_zero:
            ckpt.save(checkpoint_dir, ctx.step, state, keep=keep_checkpoints)
        fabric.barrier()

    for m in models.values():
        m.train()
    with progress_bar(total=max_steps, initial=ctx.step, desc=desc, disable=not progress or not fabric.is_global_zero) as bar:
        while ctx.step < max_steps:
            logged: dict[str, list[Any]] = {}
            ctx.stepped = set()
            for ctx.micro in range(accumulate):
                sync_off = [fabric.no_backward_sync(m, enabled=ctx.micro < accumulate - 1)
                            for n, m in models.items() if n in optimizers]
                with contextlib.ExitStack() as stack:
                    for cm in sync_off:
                        stack.enter_context(cm)
                    values = step_fn(ctx, batches.next())
                for k, v in history.watch(ctx.step + 1, values).items():
                    logged.setdefault(k, []).append(v)
            if optimizers and not ctx.stepped:
                raise CellreproError("the step function returned without calling ctx.optimize(...): nothing was trained")
            ctx.step += 1
            tail: dict[str, Any] = {f"lr/{n}": o.param_groups[0]["lr"] for n, o in optimizers.items()}
            if eval_fn is not None and ((eval_every and ctx.step % eval_every == 0) or ctx.step == max_steps):
                tail.update(evaluate(ctx, eval_fn))
            history.add({"step": ctx.step, "epoch": batches.epoch}, logged, tail)
            bar.update(1)
            saving = checkpoint_dir is not None and ((checkpoint_every and ctx.step % checkpoint_every == 0)
                                                     or ctx.step == max_steps)
            if saving or ctx.step % history.every == 0 or ctx.step == max_steps:
                bar.set_postfix({k: f"{v:.4g}" for k, v in history.flush(ctx.step).items()})
            if saving:
                save()
    return pd.DataFrame(history.rows)


def _device_loader(fabric: Any, loader: Iterable, channels_last: bool) -> Iterable:
    """A TensorLoader copied to the device (sharded across processes), a DataLoader set up by
    Fabric, anything else as it is."""
    if isinstance(loader, TensorLoader):
        moved = loader.to(fabric.device, channels_last=channels_last)
        return moved.shard(fabric.global_rank, fabric.world_size) if fabric.world_size > 1 else moved
    if isinstance(loader, torch.utils.data.DataLoader):
        return fabric.setup_dataloaders(loader)
    return loader


def evaluate(ctx: StepContext, eval_fn: Callable[[StepContext], Mapping[str, float]]) -> dict[str, float]:
    """Run ``eval_fn`` without gradients, models in eval mode, and return plain floats.

    The random number generators (CPU, and the training device's on CUDA) are forked around the
    call: an evaluation that draws random numbers (augmented views for a validation loss) leaves
    the training stream as it found it, so the batches and augmentations of training do not
    depend on how often, or whether, it is evaluated.
    """
    modes = {n: m.training for n, m in ctx.models.items()}
    for m in ctx.models.values():
        m.eval()
    devices = [ctx.device] if ctx.device.type == "cuda" else []
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            out = eval_fn(ctx)
    finally:
        for n, m in ctx.models.items():
            m.train(modes[n])
    return {k: float(v) for k, v in out.items()}
