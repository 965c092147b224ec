"""Images per second of one training step: cellrepro.train.fit vs a plain PyTorch loop, and
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
  in a :class:`cellrepro.train.TensorLoader`;
* on CUDA also the bf16-mixed plain loop and ``fit`` with channels_last.

It prints images/s and the ratios ``fit / plain loop`` (the loop's overhead) and
``bf16-mixed / true fp32``. Goals on an H100 at 256 px: fit >= 0.9 x the plain loop; bf16-mixed
>= 1.8 x true fp32 at batch 64. On a CPU, bf16 autocast is usually slower: the CPU numbers only
show that the script runs and what the loop costs there.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from typing import Callable, Iterator

import torch
from monai.networks.nets import UNet
from torch import nn

from cellrepro.losses.flows import cellpose_loss
from cellrepro.nets.cellpose import CellposeNet
from cellrepro.record import device_name
from cellrepro.train import TensorLoader, fit, make_fabric

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1, help="interleaved rounds; the best rate of each is shown")
    parser.add_argument("--model", choices=("unet", "cpnet"), default="unet",
                        help="unet: MONAI U-Net + BCE; cpnet: CellposeNet (2 channels) + the Cellpose loss")
    args = parser.parse_args()
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
