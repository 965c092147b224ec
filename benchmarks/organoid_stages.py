"""Images/s of each organoid training stage, against baselines run in the same process.

For the global, local and fine-tuning stages: the stage as the chapter runs it (``fit`` on
Lightning Fabric, a device-resident ``TensorLoader``, augmentations built once) and a plain
PyTorch loop over the same model, loss and batches (the ratio shows what the engine costs).
For the local loss alone: this project's loss (foreground anchors, one block at a time) against
the previous implementation (every pair of the batch at once), both in Eq. 3.4's literal form.

    python benchmarks/organoid_stages.py --device cpu --crop 64 --batch 8 --steps 4
    python benchmarks/organoid_stages.py --device cuda --crop 128 --batch 16 --steps 20
"""

from __future__ import annotations

import argparse
import time

import torch

from cellrepro.losses import finetune_loss, global_contrastive, local_contrastive
from cellrepro.nets import GlobalHead, LocalHead, SplitUNet
from cellrepro.semi.augment import global_augment, local_augment
from cellrepro.semi.contrastive import StageConfig, finetune, global_stage, local_stage


def all_pairs_literal(features: torch.Tensor, labels: torch.Tensor, temperature: float, s: int) -> torch.Tensor:
    """The previous local loss: Eq. 3.4 (literal) over every pair of every block at once."""
    b, d, h, w = features.shape
    f = features.reshape(b, d, h // s, s, w // s, s).permute(2, 4, 0, 3, 5, 1).reshape(-1, b * s * s, d)
    y = labels[:, 0].reshape(b, h // s, s, w // s, s).permute(1, 3, 0, 2, 4).reshape(-1, b * s * s).bool()
    sim = torch.exp(f @ f.transpose(1, 2) / temperature)
    n = sim.shape[-1]
    same = (y[:, :, None] == y[:, None, :]) & ~torch.eye(n, dtype=torch.bool, device=f.device)
    other = y[:, :, None] != y[:, None, :]
    n_pos = same.sum(-1)
    anchor = y & (n_pos > 0) & other.any(-1)
    per = torch.log((sim * same).sum(-1).clamp_min(1e-30) / (sim * other).sum(-1).clamp_min(1e-30)) / n_pos.clamp_min(1)
    return -(per * anchor).sum() / anchor.sum().clamp_min(1)


def rate(fn, n_images: int, repeats: int = 2) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return n_images / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--crop", type=int, default=64, help="crop side in pixels")
    ap.add_argument("--batch", type=int, default=8, help="batch size")
    ap.add_argument("--steps", type=int, default=4, help="optimizer steps per measurement")
    ap.add_argument("--features", default="8,16,32,64,128,8", help="U-Net features")
    args = ap.parse_args()
    dev = torch.device(args.device)
    feats = tuple(int(v) for v in args.features.split(","))
    n = args.batch * args.steps
    torch.manual_seed(0)
    x = torch.rand(n, 1, args.crop, args.crop)
    m = (torch.rand(n, 1, args.crop, args.crop) > 0.6).float()
    cfg = StageConfig(epochs=1, batch=args.batch, lr=1e-3, temperature=0.5, block_size=16)
    rows = []

    def plain(step):
        def run():
            for i in range(0, n, args.batch):
                step(x[i:i + args.batch].to(dev), m[i:i + args.batch].to(dev))
        return run

    # global stage
    net, head = SplitUNet(features=feats).to(dev), GlobalHead(feats[4]).to(dev)
    opt = torch.optim.Adam(list(net.encoder_parameters()) + list(head.parameters()), 1e-3)

    def g_step(xb, _):
        loss = global_contrastive(head(net.encode(global_augment(xb))[-1]), head(net.encode(global_augment(xb))[-1]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    rows.append(("global stage", rate(lambda: global_stage(SplitUNet(features=feats), x, cfg, None, 0, args.device), n),
                 rate(plain(g_step), n)))
    # local stage
    net, head = SplitUNet(features=feats).to(dev), LocalHead(feats[5]).to(dev)
    opt = torch.optim.Adam(list(net.parameters()) + list(head.parameters()), 1e-3)

    def l_step(xb, mb):
        views = torch.cat([local_augment(xb), local_augment(xb)])
        loss = local_contrastive(head(net.decode(net.encode(views))), torch.cat([mb, mb]), 0.07, 16)
        opt.zero_grad()
        loss.backward()
        opt.step()
    rows.append(("local stage", rate(lambda: local_stage(SplitUNet(features=feats), x, m, cfg, False, None, 0,
                                                         args.device), n), rate(plain(l_step), n)))
    # fine-tuning
    net = SplitUNet(features=feats).to(dev)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    lf = finetune_loss("bce_dice")

    def f_step(xb, mb):
        loss = sum(lf(net(xb), mb).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    rows.append(("fine-tuning", rate(lambda: finetune(SplitUNet(features=feats), x, m, cfg, "bce_dice", None, 0,
                                                      args.device), n), rate(plain(f_step), n)))
    print(f"device {args.device}, crop {args.crop}, batch {args.batch}, {args.steps} steps, features {feats}")
    print(f"{'stage':<14}{'cellrepro img/s':>16}{'plain loop img/s':>18}{'ratio':>8}")
    for name, ours, base in rows:
        print(f"{name:<14}{ours:>16.1f}{base:>18.1f}{ours / base:>8.2f}")
    # the local loss alone, forward and backward, two views of a batch
    f = torch.nn.functional.normalize(torch.randn(2 * args.batch, feats[5], args.crop, args.crop, device=dev), dim=1)
    lab = torch.cat([m[:args.batch], m[:args.batch]]).to(dev)

    def loss_run(fn):
        def run():
            g = f.clone().requires_grad_()
            fn(g).backward()
        return run
    new = rate(loss_run(lambda g: local_contrastive(g, lab, 0.07, 16, form="literal")), 2 * args.batch)
    old = rate(loss_run(lambda g: all_pairs_literal(g, lab, 0.07, 16)), 2 * args.batch)
    print(f"local loss (literal form): foreground rows {new:.1f} img/s, all pairs (previous) {old:.1f} img/s, "
          f"ratio {new / old:.2f}")


if __name__ == "__main__":
    main()
