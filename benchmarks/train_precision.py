"""Images per second of one training step: cellrepro.engine.train.fit vs a plain PyTorch loop, and
bf16-mixed vs true fp32, for a MONAI U-Net or the MMCS chapter's CPnet.

    python benchmarks/train_precision.py --device cuda --size 256 --batch 64 --steps 50
    python benchmarks/train_precision.py --device cpu --size 64 --batch 8 --steps 5
    python benchmarks/train_precision.py --model cpnet --device cuda --size 224 --batch 32 --steps 50

``--model unet``: MONAI's U-Net, 1 input channel, BCE with logits. ``--model cpnet``: the Cellpose-style
:class:`cellrepro.nets.CellposeNet` at Cellpose's widths (32, 64, 128, 256) with two input channels
(cytoplasm, nucleus) and the Cellpose loss on (dy, dx, foreground) targets, as MMCS trains it (issue 12).

Every configuration runs in this process on the same batch, resident on the device, with the
same network, loss (BCE with logits) and optimizer (Adam, fused on CUDA):

* plain loop, true fp32: no Fabric; ``torch.backends.cudnn.allow_tf32 = False`` and
  ``torch.set_float32_matmul_precision("highest")`` (on CUDA, cuDNN convolutions otherwise run
  in TF32 even when asked for fp32);
* plain loop, TF32 (CUDA only): cuDNN's default and matmul precision "high";
* plain loop, bf16-mixed: ``torch.autocast(dtype=torch.bfloat16)`` around forward and loss;
* ``fit`` with 32-true (TF32 on CUDA, as ``make_fabric`` sets) and with bf16-mixed, the data
  in a :class:`cellrepro.engine.train.TensorLoader`;
* on CUDA also the bf16-mixed plain loop and ``fit`` with channels_last.

It prints images/s and the ratios ``fit / plain loop`` (the loop's overhead) and
``bf16-mixed / true fp32``. Goals on an H100 at 256 px: fit >= 0.9 x the plain loop; bf16-mixed
>= 1.8 x true fp32 at batch 64. On a CPU, bf16 autocast is usually slower: the CPU numbers only
show that the script runs and what the loop costs there.

``--chapters``: every chapter's training networks at the size and batch their book profile trains
them (the notebooks' parameter cells), with their own loss and optimiser, on synthetic blob images
whose targets are made the chapter's way; see `precision_cases.py` and ``benchmarks/README.md``:

    OMP_WAIT_POLICY=PASSIVE python benchmarks/train_precision.py --chapters --device cpu
    OMP_WAIT_POLICY=PASSIVE python benchmarks/train_precision.py --chapters --device cpu --quick

For each network, in one process: fp32, bf16-mixed (``torch.autocast(device, torch.bfloat16)``
around forward and loss), channels_last fp32, channels_last bf16-mixed and (``--compile``)
``torch.compile`` fp32, each from a ``copy.deepcopy`` of one initialisation with its own optimiser,
on one batch resident in memory; warm-up steps, then interleaved rounds (every configuration once
per round), the median rate per configuration. Then a quality check: from the same initialisation
and the same fixed batches, ``--quality-steps`` updates in fp32 and in bf16-mixed, the final loss of
each (fp32 forward on the fixed batches, seeded) and their ratio. A table per network and a JSON file
(``--json``); the recommended setting per network: bf16-mixed only where it is >= 1.15 x fp32 and its
loss ratio is in [0.9, 1.1]; channels_last only where it is >= 1.05 x the same precision without it.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from monai.networks.nets import UNet
from torch import nn

from cellrepro.losses.flows import cellpose_loss
from cellrepro.nets.cellpose import CellposeNet
from cellrepro.publish.record import device_name
from cellrepro.engine.train import TensorLoader, fit, make_fabric
from precision_cases import Case, _cl, _plain_step, chapter_cases  # benchmarks/ is on sys.path

MODEL = "unet"
"""Set by ``--model``: which network and loss every configuration uses."""


def network() -> nn.Module:
    """The benchmarked network, ``MODEL``'s, seeded."""
    torch.manual_seed(0)
    if MODEL == "cpnet":
        return CellposeNet(in_channels=2, features=(32, 64, 128, 256))
    return UNet(spatial_dims=2, in_channels=1, out_channels=1, channels=(32, 64, 128, 256, 512),
                strides=(2, 2, 2, 2), num_res_units=2)


def make_loss() -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    return cellpose_loss if MODEL == "cpnet" else nn.BCEWithLogitsLoss()


def batch_data(batch: int, size: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One fixed batch: inputs and targets of ``MODEL``'s shapes (random, seeded)."""
    g = torch.Generator().manual_seed(0)
    if MODEL == "cpnet":
        x = torch.rand(batch, 2, size, size, generator=g)
        fg = (torch.rand(batch, 1, size, size, generator=g) > 0.5).float()
        flows = torch.nn.functional.normalize(torch.randn(batch, 2, size, size, generator=g), dim=1) * fg
        return x.to(device), torch.cat((flows, fg), 1).to(device)
    x = torch.randn(batch, 1, size, size, generator=g)
    y = (torch.rand(batch, 1, size, size, generator=g) > 0.5).float()
    return x.to(device), y.to(device)


def optimizer(net: nn.Module, device: str) -> torch.optim.Adam:
    return torch.optim.Adam(net.parameters(), lr=1e-4, fused=device == "cuda" or None)


@contextlib.contextmanager
def true_fp32() -> Iterator[None]:
    """fp32 convolutions and matrix products without TF32, restored afterwards."""
    conv, matmul = torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision()
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = conv
        torch.set_float32_matmul_precision(matmul)


def timed(run: Callable[[int], None], device: str, batch: int, steps: int, warmup: int) -> float:
    """Images/s of ``run(steps)`` after ``run(warmup)``, synchronising the GPU around the clock."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if warmup:
        run(warmup)
    sync()
    t0 = time.perf_counter()
    run(steps)
    sync()
    return batch * steps / (time.perf_counter() - t0)


def plain_loop(device: str, x: torch.Tensor, y: torch.Tensor, bf16: bool, channels_last: bool = False):
    """The step without Fabric: forward (autocast when ``bf16``), BCE, backward, Adam."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = network().to(device, memory_format=fmt)
    x = x.contiguous(memory_format=fmt)
    opt, loss_fn = optimizer(net, device), make_loss()
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=bf16)

    def run(steps: int) -> None:
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            with autocast:
                loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()

    return run


def through_fit(device: str, x: torch.Tensor, y: torch.Tensor, precision: str, channels_last: bool = False):
    """The same step as a ``fit`` step function, data in a TensorLoader, default log_every."""
    net = network()
    opt, loss_fn = optimizer(net, device), make_loss()
    fabric = make_fabric(device, precision)
    loader = TensorLoader(x, y, batch_size=len(x), shuffle=False)

    def step(ctx, batch):
        xb, yb = batch
        loss = loss_fn(ctx.models["model"](xb), yb)
        ctx.optimize({"bce": loss})
        return {"bce": loss}

    def run(steps: int) -> None:
        fit(net, opt, step, loader, max_steps=steps, fabric=fabric, progress=False, channels_last=channels_last)

    return run


# ----------------------------------------------------------------------------------------------
# --chapters: every chapter's training networks at their book-profile size and batch
# ----------------------------------------------------------------------------------------------

CONFIGS = {  # key: (label, bf16, channels_last, compiled)
    "fp32": ("fp32", False, False, False),
    "bf16": ("bf16-mixed", True, False, False),
    "cl_fp32": ("channels_last fp32", False, True, False),
    "cl_bf16": ("channels_last bf16-mixed", True, True, False),
    "compile": ("torch.compile fp32", False, False, True),
}
BF16_MIN_SPEEDUP = 1.15
"""bf16-mixed is recommended only at >= this many times fp32's images/s ..."""
LOSS_RATIO_BAND = (0.9, 1.1)
"""... and with its final loss within this band of fp32's (bf16 loss / fp32 loss)."""
CL_MIN_SPEEDUP = 1.05
"""channels_last is recommended only at >= this many times the same precision without it."""
COMPILE_LIMIT_S = 60.0
"""torch.compile's first (compiling) step may take this long; longer, the configuration is dropped."""
SLOW = 3.0
"""A configuration whose warm-up step is this many times slower than fp32's gets one step per round."""


def load_average() -> str:
    try:
        import subprocess

        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except Exception:  # noqa: BLE001 (no uptime binary: the kernel's numbers)
        return "load average: " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def cpu_features() -> dict:
    """What decides whether bf16 can pay on this CPU: native bf16 instructions (AVX512-BF16, AMX)."""
    flags: set[str] = set()
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        onednn_bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # noqa: BLE001
        onednn_bf16 = None
    return {"model": model, "avx512f": "avx512f" in flags, "avx512_bf16": "avx512_bf16" in flags,
            "amx_bf16": "amx_bf16" in flags, "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "onednn_bf16_supported": onednn_bf16}


class Runner:
    """One configuration of one case: its own copy of the model and optimiser, ``run(steps)`` on one batch."""

    def __init__(self, case: Case, model0: nn.Module, batch, config: str, device: str):
        _, bf16, channels_last, compiled = CONFIGS[config]
        self.case, self.config = case, config
        self.model = copy.deepcopy(model0)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
            batch = _cl(batch)
        self.opts, self.scheds = case.optimizers(self.model)
        self.forward_model = torch.compile(self.model) if compiled else self.model
        self.batch = batch
        self.autocast = lambda: torch.autocast(device, dtype=torch.bfloat16, enabled=bf16)
        self.sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        self.last = float("nan")

    def run(self, steps: int) -> float:
        """Seconds of ``steps`` updates."""
        step = self.case.step or _plain_step
        self.sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = step(self.case, self.forward_model, self.opts, self.batch, self.autocast)
            for s in self.scheds:
                s.step()
        self.sync()
        self.last = float(loss)
        return time.perf_counter() - t0


def quality_run(case: Case, model0: nn.Module, batches: list, steps: int, bf16: bool, device: str) -> dict:
    """``steps`` updates from ``model0`` cycling over ``batches`` (bf16-mixed or fp32), then the fp32 loss."""
    model = copy.deepcopy(model0)
    opts, scheds = case.optimizers(model)
    autocast = lambda: torch.autocast(device, dtype=torch.bfloat16, enabled=bf16)  # noqa: E731
    step = case.step or _plain_step
    torch.manual_seed(1)  # dropout, RoI sampling: the same draws in both arms
    losses = []
    for i in range(steps):
        losses.append(float(step(case, model, opts, batches[i % len(batches)], autocast)))
        for s in scheds:
            s.step()
    return {"final": fp32_loss(case, model, batches), "train_losses": losses}


def fp32_loss(case: Case, model: nn.Module, batches: list) -> float:
    """Mean fp32 training-mode loss over ``batches``, without gradients, seeded."""
    torch.manual_seed(2)
    loss_fn = case.quality_loss or case.loss
    with torch.no_grad():
        return float(np.mean([float(loss_fn(model, b)) for b in batches]))


def measure_case(case: Case, args, device: str, compile_state: dict, allot: float) -> dict:
    """Time every configuration of ``case`` and run its quality check within about ``allot`` seconds."""
    t_case = time.perf_counter()
    elapsed = lambda: time.perf_counter() - t_case  # noqa: E731
    model0 = case.build().to(device).train()
    params = sum(p.numel() for p in model0.parameters())
    batches = case.make_batches(max(1, args.quality_batches), 1000)
    configs = [c for c in CONFIGS if c != "compile" or args.compile]
    skipped: dict[str, str] = {}
    if not args.compile:
        skipped["compile"] = "not tried (--compile not given; compiling takes 20-60 s per network on 2 cores)"
    runners: dict[str, Runner] = {}
    est: dict[str, float] = {}
    # warm-up: every configuration, fp32 first (its step time scales the others' step counts)
    for c in configs:
        try:
            if c == "compile" and compile_state.get("off"):
                raise RuntimeError(compile_state["off"])
            r = Runner(case, model0, batches[0], c, device)
            first = r.run(1)
            if c == "compile" and first > COMPILE_LIMIT_S:
                compile_state["off"] = f"an earlier network's compiling step took {first:.0f} s"
                raise RuntimeError(f"the compiling step took {first:.0f} s > {COMPILE_LIMIT_S:.0f} s")
            # a configuration far slower than fp32 from its first step on gets no further warm-up
            slow = c != "compile" and "fp32" in est and first > 3 * SLOW * est["fp32"]
            t = first if slow else r.run(1)
            for _ in range(0 if slow else max(0, args.warmup - 2)):  # the first two steps above
                t = r.run(1)
        except Exception as exc:  # noqa: BLE001 (a configuration this network or torch cannot run: say why)
            text = str(exc).strip().splitlines()
            reason = f"{type(exc).__name__}: {text[0][:160] if text else ''}"
            skipped[c] = reason
            print(f"    {CONFIGS[c][0]} skipped: {reason}", flush=True)
            continue
        runners[c], est[c] = r, t
    if "fp32" not in runners:
        raise RuntimeError(f"fp32 does not run: {skipped.get('fp32')}")
    steps = {c: max(1, round(args.round_seconds / est[c])) if est[c] < SLOW * est["fp32"] else 1 for c in runners}
    samples: dict[str, list[float]] = {c: [] for c in runners}
    for i in range(args.rounds):  # interleaved: every configuration once per round
        t_round = time.perf_counter()
        for c, r in runners.items():
            samples[c].append(case.batch * steps[c] / r.run(steps[c]))
        spent = time.perf_counter() - t_round
        if i + 1 >= min(2, args.rounds) and elapsed() + spent > 0.6 * allot:
            break  # the budget: at least 2 rounds, then only while they fit in 60 % of the allotment
    rates = {c: float(np.median(v)) for c, v in samples.items()}
    base = rates["fp32"]
    ratios = {c: rates[c] / base for c in rates}
    del runners
    # quality: fp32 and bf16-mixed from the same init on the same fixed batches
    quality: dict = {"steps": 0, "batches": len(batches)}
    bf16_best = max([ratios[c] for c in ("bf16", "cl_bf16") if c in ratios] or [0.0])
    per_step = est["fp32"] + est.get("bf16", est["fp32"])
    k = args.quality_steps
    if "bf16" not in rates:
        quality["skipped"] = "bf16-mixed does not run here"
        k = 0
    elif args.quality == "auto" and bf16_best < args.quality_min_ratio:
        k = min(k, int(max(0.0, allot - elapsed()) / per_step))
        if k < 3:
            quality["skipped"] = (f"bf16-mixed runs at {bf16_best:.2f} x fp32 here, so it is no candidate, and "
                                  f"{args.quality_steps} steps per precision would take ~{args.quality_steps * per_step:.0f} s")
            k = 0
        elif k < args.quality_steps:
            quality["cut"] = (f"cut from {args.quality_steps} to {k} steps: bf16-mixed runs at {bf16_best:.2f} x fp32 "
                              f"here (no candidate) and the budget left ~{allot - elapsed():.0f} s")
    if k > 0:
        quality["steps"] = k
        quality["initial"] = fp32_loss(case, copy.deepcopy(model0), batches)
        q32 = quality_run(case, model0, batches, k, False, device)
        q16 = quality_run(case, model0, batches, k, True, device)
        quality.update(fp32=q32["final"], bf16=q16["final"], ratio=q16["final"] / q32["final"],
                       fp32_train=q32["train_losses"], bf16_train=q16["train_losses"])
    return {"chapter": case.chapter, "network": case.network, "source": case.source, "batch": case.batch,
            "size": case.size, "loss": case.loss_name, "parameters": params, "note": case.note,
            "rates": rates, "ratios": ratios, "rounds": samples, "steps_per_round": steps,
            "warmup_step_s": est, "skipped": skipped, "quality": quality,
            "recommendation": recommend(rates, quality), "seconds": elapsed(), "allotted_seconds": allot}


def recommend(rates: dict, quality: dict) -> tuple[str, bool, float]:
    """(precision, channels_last, images/s ratio to fp32) by the thresholds above."""
    base = rates["fp32"]
    ratio = quality.get("ratio")
    bf16_ok = ratio is not None and LOSS_RATIO_BAND[0] <= ratio <= LOSS_RATIO_BAND[1]
    choice = ("32-true", False, 1.0)
    if "cl_fp32" in rates and rates["cl_fp32"] >= CL_MIN_SPEEDUP * base:
        choice = ("32-true", True, rates["cl_fp32"] / base)
    if bf16_ok:
        for name, cl in (("bf16", False), ("cl_bf16", True)):
            if name not in rates or rates[name] < BF16_MIN_SPEEDUP * base:
                continue
            if cl and "bf16" in rates and rates["bf16"] >= BF16_MIN_SPEEDUP * base \
                    and rates[name] < CL_MIN_SPEEDUP * rates["bf16"]:
                continue  # channels_last must pay on top of bf16 too
            if rates[name] / base > choice[2]:
                choice = ("bf16-mixed", cl, rates[name] / base)
    return choice[0], choice[1], round(choice[2], 2)


def print_case(key: str, res: dict) -> None:
    print(f"  {key}: {res['network']}, batch {res['batch']} x {res['size']} px, {res['parameters'] / 1e6:.2f} M "
          f"parameters; loss: {res['loss']}")
    print(f"    ({res['source']})" + (f"; {res['note']}" if res["note"] else ""))
    print(f"    {'configuration':<28} {'images/s':>9} {'x fp32':>7}  rounds (images/s)")
    for c, rate in res["rates"].items():
        rounds = " ".join(f"{v:.1f}" for v in res["rounds"][c])
        print(f"    {CONFIGS[c][0]:<28} {rate:9.2f} {res['ratios'][c]:7.2f}  {rounds}  "
              f"({res['steps_per_round'][c]} step(s)/round)")
    for c, why in res["skipped"].items():
        if c not in res["rates"]:
            print(f"    {CONFIGS[c][0]:<28} {'-':>9} {'-':>7}  {why}")
    q = res["quality"]
    if "ratio" in q:
        print(f"    quality, {q['steps']} steps on {q['batches']} fixed batches: fp32 loss {q['initial']:.4f} -> "
              f"{q['fp32']:.4f}, bf16-mixed -> {q['bf16']:.4f}; bf16 / fp32 = {q['ratio']:.3f}"
              + (f" ({q['cut']})" if "cut" in q else ""))
    else:
        print(f"    quality check skipped: {q.get('skipped')}")
    p, cl, r = res["recommendation"]
    print(f"    recommended: {p}{', channels_last' if cl else ''} ({r:.2f} x fp32); {res['seconds']:.0f} s")


def chapters_main(args) -> None:
    global_t0 = time.perf_counter()
    dev = args.device
    if args.quick:
        args.rounds, args.round_seconds, args.warmup, args.quality_steps = 2, 0.05, 2, 3
    start_load = load_average()
    cpu = cpu_features()
    print(f"uptime at start: {start_load}")
    print(f"device: {device_name(dev)}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}")
    if dev == "cpu":
        print(f"CPU: {cpu['model']}; AVX-512F {cpu['avx512f']}, AVX512-BF16 {cpu['avx512_bf16']}, "
              f"AMX-BF16 {cpu['amx_bf16']}; torch kernels {cpu['torch_cpu_capability']}, "
              f"oneDNN bf16 {cpu['onednn_bf16_supported']}")
    print(f"{args.rounds} interleaved rounds of ~{args.round_seconds} s per configuration after {args.warmup} "
          f"warm-up steps; median images/s; quality: {args.quality_steps} steps per precision")
    torch.set_float32_matmul_precision("highest")
    if dev == "cuda":
        torch.backends.cudnn.allow_tf32 = False
    cases = chapter_cases(dev, args.quick)
    if args.only:
        wanted = set(args.only.split(","))
        cases = [c for c in cases if c.key in wanted or c.chapter in wanted]
    budget = args.budget if args.budget is not None else (30.0 if args.quick else 330.0)
    results: dict[str, dict] = {}
    compile_state: dict = {}
    for i, case in enumerate(cases):
        allot = max(0.0, budget - (time.perf_counter() - global_t0)) / (len(cases) - i)
        print(f"\n[{case.chapter}] {case.key} (~{allot:.0f} s allotted)", flush=True)
        try:
            results[case.key] = measure_case(case, args, dev, compile_state, allot)
        except Exception as exc:  # noqa: BLE001 (one network failing must not lose the others' numbers)
            print(f"  {case.key} failed: {type(exc).__name__}: {exc}")
            results[case.key] = {"chapter": case.chapter, "network": case.network, "error": f"{type(exc).__name__}: {exc}"}
            continue
        print_case(case.key, results[case.key])
    end_load = load_average()
    print("\nsummary (fp32 images/s; the others as a ratio to fp32 in the same process; loss: bf16 / fp32 final "
          "loss (steps))")
    print(f"  {'network':<22} {'fp32':>8} {'bf16':>7} {'cl fp32':>8} {'cl bf16':>8} {'compile':>8} {'loss':>11}  recommended")
    rec: dict[str, tuple] = {}
    for key, res in results.items():
        if "error" in res:
            print(f"  {key:<22} failed: {res['error'][:80]}")
            continue
        r = res["ratios"]
        cell = lambda c: f"{r[c]:.2f}" if c in r else "-"  # noqa: E731
        q = res["quality"]
        loss = f"{q['ratio']:.3f} ({q['steps']})" if "ratio" in q else "-"
        rec[key] = res["recommendation"]
        p, cl, x = rec[key]
        print(f"  {key:<22} {res['rates']['fp32']:8.1f} {cell('bf16'):>7} {cell('cl_fp32'):>8} {cell('cl_bf16'):>8} "
              f"{cell('compile'):>8} {loss:>11}  {p}{' +cl' if cl else ''} {x:.2f}")
    print("recommended (precision, channels_last, images/s ratio to fp32)"
          + (": --quick is a smoke test at batch 2 and 32 px, these mean nothing" if args.quick else ":"))
    print("  {" + ", ".join(f"{k!r}: {v!r}" for k, v in rec.items()) + "}")
    total = time.perf_counter() - global_t0
    print(f"uptime at end: {end_load}\ntotal {total:.0f} s")
    out = {"command": "OMP_WAIT_POLICY=" + os.environ.get("OMP_WAIT_POLICY", "") + " python " + " ".join(sys.argv),
           "device": device_name(dev), "cpu": cpu if dev == "cpu" else None, "torch": torch.__version__,
           "threads": torch.get_num_threads(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
           "uptime_start": start_load, "uptime_end": end_load, "seconds": total,
           "settings": {k: getattr(args, k) for k in ("rounds", "round_seconds", "warmup", "quality_steps",
                                                     "quality_batches", "quick", "compile")} | {"budget": budget},
           "thresholds": {"bf16_min_speedup": BF16_MIN_SPEEDUP, "loss_ratio_band": LOSS_RATIO_BAND,
                          "channels_last_min_speedup": CL_MIN_SPEEDUP},
           "networks": results, "recommended": {k: list(v) for k, v in rec.items()}}
    path = Path(args.json or Path(__file__).resolve().parent / "results"
                / f"train_precision_{dev}{'_quick' if args.quick else ''}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=str))
    print(f"wrote {path}")


def chapters_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("--chapters mode")
    g.add_argument("--chapters", action="store_true", help="every chapter's networks at their book-profile size and batch")
    g.add_argument("--quick", action="store_true", help="a ~30 s smoke pass (2 short rounds, 4 quality steps)")
    g.add_argument("--only", default="", help="comma-separated network keys or chapters (default: all)")
    g.add_argument("--rounds", dest="rounds", type=int, default=3, help=argparse.SUPPRESS)
    g.add_argument("--round-seconds", type=float, default=0.5, help="seconds per configuration per round")
    g.add_argument("--quality-steps", type=int, default=30, help="updates per precision in the quality check")
    g.add_argument("--quality-batches", type=int, default=3, help="fixed batches the quality check cycles over")
    g.add_argument("--quality", choices=("auto", "always"), default="auto",
                   help="auto: skip the check where bf16 is far slower than fp32 and the check would be long")
    g.add_argument("--quality-min-ratio", type=float, default=0.5, help=argparse.SUPPRESS)
    g.add_argument("--quality-max-seconds", type=float, default=20.0, help=argparse.SUPPRESS)
    g.add_argument("--compile", action="store_true", help="also time torch.compile (fp32)")
    g.add_argument("--budget", type=float, default=None,
                   help="seconds for all networks (default 330; --quick 30): fewer rounds and shorter quality checks "
                        "of non-candidates when short")
    g.add_argument("--json", default=None, help="output path (default benchmarks/results/train_precision_<device>.json, "
                   "--quick: ..._quick.json)")

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=None, help="warm-up steps (default 5; --chapters: 2)")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved rounds; the best rate of each is shown")
    parser.add_argument("--model", choices=("unet", "cpnet"), default="unet",
                        help="unet: MONAI U-Net + BCE; cpnet: CellposeNet (2 channels) + the Cellpose loss")
    chapters_arguments(parser)
    args = parser.parse_args()
    if args.chapters:
        args.warmup = 2 if args.warmup is None else args.warmup
        chapters_main(args)
        return
    args.warmup = 5 if args.warmup is None else args.warmup
    global MODEL
    MODEL = args.model
    dev = args.device
    x, y = batch_data(args.batch, args.size, dev)
    name, channels = ("CPnet (32-64-128-256)", 2) if MODEL == "cpnet" else ("MONAI U-Net 2D", 1)
    print(f"device: {device_name(dev)}; {name}, {args.batch} x {channels} x {args.size} x {args.size}, "
          f"{args.steps} steps after {args.warmup} warm-up steps, best of {args.repeats}")
    cuda = dev == "cuda"
    if cuda:
        torch.set_float32_matmul_precision("high")  # as make_fabric sets it: the tf32 rows use TF32 matmuls too
    runs: dict[str, tuple[Callable[[int], None], bool]] = {"plain loop, true fp32": (plain_loop(dev, x, y, bf16=False), True)}
    if cuda:
        runs["plain loop, tf32"] = (plain_loop(dev, x, y, bf16=False), False)
    runs["plain loop, bf16-mixed"] = (plain_loop(dev, x, y, bf16=True), False)
    runs["fit, 32-true" + (" (tf32)" if cuda else "")] = (through_fit(dev, x, y, "32-true"), False)
    runs["fit, bf16-mixed"] = (through_fit(dev, x, y, "bf16-mixed"), False)
    if cuda:
        runs["plain loop, bf16-mixed, channels_last"] = (plain_loop(dev, x, y, bf16=True, channels_last=True), False)
        runs["fit, bf16-mixed, channels_last"] = (through_fit(dev, x, y, "bf16-mixed", channels_last=True), False)
    rates: dict[str, float] = {}
    for round_ in range(args.repeats):  # interleaved rounds; the best of each is kept (others share the machine)
        for name, (run, strict) in runs.items():
            with true_fp32() if strict else contextlib.nullcontext():
                rate = timed(run, dev, args.batch, args.steps, args.warmup if round_ == 0 else 0)
            rates[name] = max(rate, rates.get(name, 0.0))
    for name, rate in rates.items():
        print(f"  {name:<40} {rate:10.1f} images/s")
    plain32 = "plain loop, tf32" if cuda else "plain loop, true fp32"
    fit32 = "fit, 32-true" + (" (tf32)" if cuda else "")
    print("ratios:")
    print(f"  fit / plain loop, fp32 ({'tf32' if cuda else 'true fp32'}):    {rates[fit32] / rates[plain32]:.2f}   (goal >= 0.90)")
    print(f"  fit / plain loop, bf16-mixed:             {rates['fit, bf16-mixed'] / rates['plain loop, bf16-mixed']:.2f}   (goal >= 0.90)")
    print(f"  bf16-mixed / true fp32, plain loop:       {rates['plain loop, bf16-mixed'] / rates['plain loop, true fp32']:.2f}"
          "   (goal >= 1.8 at batch 64 on GPU)")
    print(f"  bf16-mixed fit / true fp32 plain loop:    {rates['fit, bf16-mixed'] / rates['plain loop, true fp32']:.2f}")
    if cuda:
        print(f"  channels_last / NCHW, fit bf16-mixed:     "
              f"{rates['fit, bf16-mixed, channels_last'] / rates['fit, bf16-mixed']:.2f}")


if __name__ == "__main__":
    main()
