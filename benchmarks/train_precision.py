"""Images per second of a MONAI U-Net training step through cellrepro.train.fit: fp32 vs bf16-mixed.

Both precisions run in this process on the same synthetic batches; the script prints
images/second for each and the ratio bf16-mixed / fp32. Meant for a GPU:

    python benchmarks/train_precision.py --device cuda --size 256 --batch 16 --steps 50

On a CPU it runs too (bf16 autocast on CPU is usually *slower*; the number only shows the
script works).
"""

from __future__ import annotations

import argparse
import time

import torch
from monai.networks.nets import UNet
from torch import nn

from cellrepro.record import machine_device
from cellrepro.train import fit, make_fabric


def images_per_second(device: str, precision: str, size: int, batch: int, steps: int, warmup: int) -> float:
    torch.manual_seed(0)
    net = UNet(spatial_dims=2, in_channels=1, out_channels=1, channels=(32, 64, 128, 256, 512),
               strides=(2, 2, 2, 2), num_res_units=2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.randn(batch, 1, size, size)
    y = (torch.rand(batch, 1, size, size) > 0.5).float()
    fabric = make_fabric(device, precision)
    x, y = fabric.to_device((x, y))
    loss_fn = nn.BCEWithLogitsLoss()

    def step(ctx, _):
        loss = loss_fn(ctx.models["model"](x), y)
        ctx.optimize({"bce": loss})
        return {"bce": loss}

    batches = [None] * (warmup + steps)
    fit(net, opt, step, batches[:warmup], max_steps=warmup, fabric=fabric, progress=False)
    sync = torch.cuda.synchronize if fabric.device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    fit(net, opt, step, batches[:steps], max_steps=steps, fabric=fabric, progress=False)
    sync()
    return batch * steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    print(f"device: {machine_device()}; U-Net 2D, {args.batch} x 1 x {args.size} x {args.size}, {args.steps} steps")
    fp32 = images_per_second(args.device, "32-true", args.size, args.batch, args.steps, args.warmup)
    bf16 = images_per_second(args.device, "bf16-mixed", args.size, args.batch, args.steps, args.warmup)
    print(f"fp32        {fp32:10.1f} images/s")
    print(f"bf16-mixed  {bf16:10.1f} images/s")
    print(f"ratio bf16-mixed / fp32: {bf16 / fp32:.2f}")


if __name__ == "__main__":
    main()
