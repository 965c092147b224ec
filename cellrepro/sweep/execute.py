"""Hand a written sweep plan to Snakemake and read back what happened to each run.

Snakemake runs as its own process (``python -m snakemake``) on the packaged, static
``Snakefile`` with the sweep folder as working directory, so its command line is the whole
interface: a user's extra arguments (an executor's settings, ``--set-resources``, a
Snakemake profile) go straight through. Its output goes to the terminal unchanged.

Options cellrepro always passes: ``--keep-going`` (a failing run does not stop the others),
``--rerun-incomplete`` (a run killed mid-way runs again), ``--cores`` locally, and
``--jobs`` with another executor (how many runs it keeps submitted). On this machine, when it
has an NVIDIA GPU, it also passes ``--resources gpu=1``: runs that ask for a GPU then run one at
a time instead of sharing the first GPU (every run would pick ``cuda:0``); a cluster gives each
run its own GPUs.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Sequence

from .. import CellreproError
from .plan import SweepPlan, write_plan

log = logging.getLogger(__name__)

LOCAL = ("local", "dryrun")


@dataclass
class SweepResult:
    """What one invocation did: Snakemake's exit status and the state of every run of the plan."""

    plan: SweepPlan
    returncode: int
    command: list[str]
    executed: list[str] = field(default_factory=list)  # runs that ran in this invocation
    ok: list[str] = field(default_factory=list)  # runs with a record (now or before)
    failed: list[str] = field(default_factory=list)  # runs whose last attempt failed

    @property
    def pending(self) -> list[str]:
        """Runs with neither a record nor a failure (a dry run, or an interrupted sweep)."""
        done = set(self.ok) | set(self.failed)
        return [r.id for r in self.plan.runs if r.id not in done]


def snakefile() -> Path:
    """The packaged Snakefile."""
    return Path(str(importlib_resources.files(__package__).joinpath("Snakefile")))


def require_snakemake(executor: str | None) -> None:
    """Refuse early, naming the extra to install, when Snakemake or the executor plugin is missing."""
    if importlib.util.find_spec("snakemake") is None:
        raise CellreproError("cellrepro sweep needs Snakemake: pip install 'cellrepro[cluster]'")
    if executor and executor not in LOCAL:
        module = "snakemake_executor_plugin_" + executor.replace("-", "_")
        if importlib.util.find_spec(module) is None:
            extra = "cellrepro[slurm]" if executor == "slurm" else f"snakemake-executor-plugin-{executor}"
            raise CellreproError(f"--executor {executor}: the plugin is not installed: pip install '{extra}'")


def local_gpus() -> int:
    """How many NVIDIA GPUs ``nvidia-smi -L`` lists on this machine (0 without the tool)."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return 0
    try:
        listing = subprocess.run([tool, "-L"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in listing.splitlines())


def snakemake_command(plan: SweepPlan, cores: int | None = None, jobs: int = 100, executor: str | None = None,
                      dry_run: bool = False, extra: Sequence[str] = (), gpus: int | None = None) -> list[str]:
    """The Snakemake command line for ``plan`` (its manifest must be written first).

    ``gpus`` is this machine's GPU count for local runs (default: :func:`local_gpus`).

    Raises:
        CellreproError: ``extra`` names an executor (it belongs in ``executor``, which adds ``--jobs``).
    """
    if {"--executor", "-e"} & set(extra) or any(a.startswith("--executor=") for a in extra):
        raise CellreproError("give the executor as `cellrepro sweep --executor NAME` (it adds --jobs), not after --")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile()), "--directory", str(plan.out),
           "--keep-going", "--rerun-incomplete"]
    if executor and executor != "local":
        cmd += ["--executor", executor, "--jobs", str(jobs)]
    else:
        cmd += ["--cores", str(cores) if cores else "all"]
        if "--resources" not in extra and (local_gpus() if gpus is None else gpus) > 0:
            cmd += ["--resources", "gpu=1"]
    if dry_run:
        cmd.append("--dry-run")
    # --config takes several values: keep it last before the user's arguments, which may add their own
    return [*cmd, "--config", f"manifest={plan.manifest_path}", *extra]


def run_sweep(plan: SweepPlan, cores: int | None = None, jobs: int = 100, executor: str | None = None,
              dry_run: bool = False, extra: Sequence[str] = ()) -> SweepResult:
    """Write ``plan`` and run it with Snakemake; return what happened to each run.

    Args:
        plan: from :func:`cellrepro.sweep.plan.plan_sweep` (checked: nothing invalid reaches here).
        cores: cores for the local executor (default: all); each run takes its ``threads``.
        jobs: runs kept submitted at once by a cluster executor.
        executor: a Snakemake executor plugin name (``slurm``); None runs on this machine.
        dry_run: let Snakemake list the jobs it would run, with their resources, and run none.
        extra: further Snakemake arguments, passed unchanged.

    Raises:
        CellreproError: Snakemake or the executor plugin is not installed, or the folder is locked
            by another Snakemake (nothing is written then).
    """
    require_snakemake(executor)
    locks = plan.out / ".snakemake" / "locks"
    if "--unlock" not in extra and locks.is_dir() and any(locks.iterdir()):
        raise CellreproError(f"{plan.out} is locked: a sweep is running there, or one was killed "
                             "(then unlock it with the same command and `-- --unlock`, and run it again)")
    write_plan(plan)  # after the lock check: the jobs of a running sweep read the manifest too
    cmd = snakemake_command(plan, cores=cores, jobs=jobs, executor=executor, dry_run=dry_run, extra=extra)
    log.info("running %s", " ".join(cmd))
    started = _now(plan.out)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    returncode = subprocess.run(cmd, env=env, check=False).returncode
    return _outcome(plan, returncode, cmd, started)


def run_state(plan: SweepPlan, run: str) -> tuple[str, float]:
    """``("ok" | "failed" | "pending", mtime)`` of one run from the files it left."""
    record = plan.out / "runs" / run / f"{plan.notebook.experiment}.record.json"
    failed = plan.out / "logs" / f"{run}.failed.json"
    states = [(p.stat().st_mtime, name) for p, name in ((record, "ok"), (failed, "failed")) if p.is_file()]
    if not states:
        return "pending", 0.0
    mtime, name = max(states)
    return name, mtime


def _outcome(plan: SweepPlan, returncode: int, cmd: list[str], started: float) -> SweepResult:
    result = SweepResult(plan, returncode, cmd)
    for run in plan.runs:
        state, mtime = run_state(plan, run.id)
        if state != "pending":
            getattr(result, state).append(run.id)
            if mtime >= started:
                result.executed.append(run.id)
    return result


def _now(folder: Path) -> float:
    """The file system's idea of now (mtimes are compared with it, and may come from a network disk)."""
    probe = folder / ".cellrepro-sweep-start"
    probe.touch()
    return probe.stat().st_mtime
