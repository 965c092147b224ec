"""Work beside a CPU-bound neighbour: OpenMP's default wait policy against cellrepro's passive one.

    python benchmarks/contention.py [--size 192] [--steps 20] [--out benchmarks/results/contention_cpu.json]

On a machine whose cores are all taken, torch's OpenMP threads that spin while they wait for a
core another process holds turn seconds into minutes (issue 33: ``cellrepro blurmap`` of a
192 x 192 image took 36.9 s beside one busy loop, 7.8 s with ``OMP_WAIT_POLICY=PASSIVE``).
cellrepro now sets the passive policy when it is imported before torch, unless the user chose
one (:data:`cellrepro.THREAD_WAIT_POLICY`), and the runner passes it to every kernel.

Two workloads, a HiFST blur map (:func:`cellrepro.stacking.blur.blur_map`) and training steps
of the organoid chapter's U-Net (Adam, batch 16 of 64 px crops), each run two ways:

* **command**: ``cellrepro blurmap IMAGE`` and a ``python`` process that imports cellrepro first
  (the subprocess's wall time, start-up included, for the command; the loop's own time for
  the training steps);
* **kernel**: a notebook executed by :func:`cellrepro.publish.runner.run_notebook` (the loop's own
  times, logged to the run record), in a throw-away copy of the tests' fixture project;

each **alone** and **beside** one busy-loop process, under two policies: OpenMP's **default**
(``OMP_WAIT_POLICY=""``: set but empty, which cellrepro leaves alone and OpenMP treats as unset:
what every run got before this change) and cellrepro's **passive** (the variable unset, so
cellrepro sets it). Reported per workload, path and policy: seconds, and the ratio beside /
alone (the target of issue 33: <= 1.5 with the passive policy); and default / passive beside.
The ratios are what the notes quote; all runs of one invocation share the machine's state.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
POLICIES = {"default": "", "passive": None}  # None: unset, cellrepro sets PASSIVE

TRAIN = """
import torch
from cellrepro.nets import SplitUNet
torch.manual_seed(0)
net = SplitUNet(features=(8, 16, 32, 64, 128, 8))
opt = torch.optim.Adam(net.parameters(), 1e-3)
x, y = torch.rand(16, 1, 64, 64), (torch.rand(16, 1, 64, 64) > 0.5).float()
def step():
    opt.zero_grad()
    torch.nn.functional.binary_cross_entropy_with_logits(net(x), y).backward()
    opt.step()
step()
t = time.perf_counter()
for _ in range(steps):
    step()
train_s = time.perf_counter() - t
"""
"""Training steps of the organoid U-Net; ``steps`` and ``time`` come from the surrounding code."""

NOTEBOOK = """---
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# Contention benchmark

```{{code-cell}} ipython3
:tags: [parameters]

size = 192
steps = 20
seed = 0
dataset = "demo"
```

```{{code-cell}} ipython3
import time
import numpy as np
from cellrepro.publish.record import log_metrics
from cellrepro.stacking.blur import blur_map

image = np.random.default_rng(0).random((size, size))
blur_map(image[:32, :32], device="cpu")
t = time.perf_counter()
blur_map(image, device="cpu")
blur_s = time.perf_counter() - t
{train}
log_metrics(blur_s=blur_s, train_s=train_s)
```
"""


@contextmanager
def neighbour(busy: bool):
    """One process that keeps a core busy (a Python loop), for the duration of the block."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        time.sleep(0.5 if busy else 0)
        yield
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()


def environment(policy: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if POLICIES[policy] is not None:
        env["OMP_WAIT_POLICY"] = POLICIES[policy]
    return env


def command_runs(image: Path, steps: int, policy: str, workdir: Path) -> dict[str, float]:
    env = environment(policy)
    cli = Path(sys.executable).with_name("cellrepro")
    t = time.perf_counter()
    subprocess.run([str(cli), "blurmap", str(image), "--out", str(workdir / "maps"), "--device", "cpu"],
                   env=env, check=True, capture_output=True)
    blur_s = time.perf_counter() - t
    code = f"import time, cellrepro\nsteps = {steps}\n{TRAIN}\nprint(train_s)"
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True)
    return {"blur_s": blur_s, "train_s": float(out.stdout.split()[-1])}


def kernel_project(tmp: Path) -> Path:
    root = tmp / "project"
    shutil.copytree(REPO / "tests" / "fixtures" / "project", root)
    (root / "notebooks" / "demo" / "contention.md").write_text(NOTEBOOK.format(train=TRAIN))
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "b"]):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)
    return root


def kernel_runs(root: Path, size: int, steps: int, policy: str, out: Path) -> dict[str, float]:
    from cellrepro.publish.project import Project
    from cellrepro.publish.runner import run_notebook

    old = os.environ.get("OMP_WAIT_POLICY")
    os.environ.pop("OMP_WAIT_POLICY", None)
    if POLICIES[policy] is not None:
        os.environ["OMP_WAIT_POLICY"] = POLICIES[policy]
    try:
        result = run_notebook(Project(root), "demo/contention", profile="book", out_dir=out,
                              parameters={"size": size, "steps": steps}, progress=False)
    finally:
        os.environ.pop("OMP_WAIT_POLICY", None)
        if old is not None:
            os.environ["OMP_WAIT_POLICY"] = old
    return {k: float(result.record["metrics"][k]) for k in ("blur_s", "train_s")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=192, help="blur map image side")
    parser.add_argument("--steps", type=int, default=20, help="training steps timed")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "contention_cpu.json")
    args = parser.parse_args()

    import numpy as np
    import tifffile

    from cellrepro.publish.record import cpu_isa, machine_device

    rows = []
    with tempfile.TemporaryDirectory(prefix="cellrepro-contention-") as tmp:
        tmp = Path(tmp)
        image = tmp / "image.tif"
        tifffile.imwrite(image, (np.random.default_rng(0).random((args.size, args.size)) * 255).astype(np.uint8))
        root = kernel_project(tmp)
        for path in ("command", "kernel"):
            for policy in POLICIES:
                for busy in (False, True):
                    with neighbour(busy):
                        if path == "command":
                            times = command_runs(image, args.steps, policy, tmp)
                        else:
                            times = kernel_runs(root, args.size, args.steps, policy, tmp / f"runs-{policy}-{busy}")
                    rows.append({"path": path, "policy": policy, "neighbour": busy, **times})
                    print(f"{path:8s} {policy:8s} {'beside' if busy else 'alone ':6s} "
                          f"blur {times['blur_s']:7.2f} s  train {times['train_s']:7.2f} s", flush=True)
    table = {}
    for path in ("command", "kernel"):
        for work in ("blur_s", "train_s"):
            t = {(r["policy"], r["neighbour"]): r[work] for r in rows if r["path"] == path}
            table[f"{path} {work[:-2]}"] = {
                "beside / alone, passive": t[("passive", True)] / t[("passive", False)],
                "beside / alone, default": t[("default", True)] / t[("default", False)],
                "default / passive, beside": t[("default", True)] / t[("passive", True)],
                "default / passive, alone": t[("default", False)] / t[("passive", False)]}
    print("\nratios (target: beside / alone, passive <= 1.5)")
    for name, r in table.items():
        print(f"  {name:15s} " + "  ".join(f"{k} {v:5.2f}" for k, v in r.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": "python " + " ".join(sys.argv), "device": machine_device(),
                                    "cpu_isa": cpu_isa(), "cores": os.cpu_count(), "size": args.size,
                                    "steps": args.steps, "runs": rows, "ratios": table}, indent=1) + "\n")


if __name__ == "__main__":
    main()
