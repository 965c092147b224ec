"""The ``cellrepro sweep`` and ``cellrepro collect`` subcommands (registered by :mod:`cellrepro.cli`).

    cellrepro sweep demo/tiny --grid n=2,3 --grid scale=0.5,1 --seeds 0,1 --profile smoke --cores 2
    cellrepro sweep organoid/ablation-data --grid proportion=0.1,0.5,1 --seeds 0,1,2 --profile paper \\
        --executor slurm --dry-run -- --default-resources slurm_account=lab slurm_partition=gpu
    cellrepro collect _build/sweeps/smoke/demo/tiny

Everything after ``--`` goes to Snakemake unchanged (:func:`split_passthrough`).
"""

from __future__ import annotations

import argparse
from typing import Callable, Iterator

from ..publish.project import PROFILES


def split_passthrough(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split a command line at its first ``--``: ``(cellrepro's arguments, Snakemake's)``.

    argparse alone cannot take options after a positional argument and a ``--``.
    """
    if "--" not in argv:
        return argv, []
    at = argv.index("--")
    return argv[:at], argv[at + 1:]


def sweep_lines(args: argparse.Namespace) -> Iterator[str]:
    """``cellrepro sweep``: plan, run and report, yielding the lines the command shows (the CLI
    prints them as they come, so the plan appears before Snakemake starts); returns the exit status."""
    from .. import CellreproError
    from ..publish.project import Project
    from ..publish.runner import NotebookFailed
    from .collect import write_results
    from .execute import run_sweep
    from .grid import parse_grid
    from .plan import plan_sweep

    project = Project(args.root) if args.root else Project.find()
    plan = plan_sweep(project, args.notebook, parse_grid(args.grid or [], args.seeds), profile=args.profile,
                      out=args.out)
    yield f"{plan.notebook.key}: {len(plan.runs)} runs in profile {plan.profile} -> {plan.out}"
    for run in plan.runs:
        values = ", ".join(f"{k}={v!r}" for k, v in run.parameters.items())
        needs = ", ".join(f"{k}={v}" for k, v in run.resources.items())
        yield f"  {run.id}  {values}  [{needs}]"
    result = run_sweep(plan, cores=args.cores, jobs=args.jobs, executor=args.executor, dry_run=args.dry_run,
                       extra=getattr(args, "snakemake_args", []))
    if args.dry_run:
        return result.returncode
    yield (f"ran {len(result.executed)} of {len(plan.runs)} runs: {len(result.ok)} ok, {len(result.failed)} failed, "
           f"{len(result.pending)} not run")
    for run in result.failed:
        yield f"  failed: {run}  log {plan.out / 'logs' / (run + '.log')}"
    if args.collect and (result.ok or result.failed):
        yield f"results: {write_results(plan.out)}"
    if result.failed:  # exit status 1, as for a failing `cellrepro run`
        raise NotebookFailed(f"sweep {plan.out}: {len(result.failed)} run(s) failed; fix the cause and run the "
                             "same command again to re-run only those")
    if result.returncode != 0:
        raise CellreproError(f"sweep {plan.out}: Snakemake stopped with exit status {result.returncode} "
                             "(its messages are above; a run's own log is in logs/<run>.log)")
    return 0


def collect_lines(args: argparse.Namespace) -> Iterator[str]:
    """``cellrepro collect``: write the results table and yield its summary line; returns 0."""
    from .collect import collect, write_results

    path = write_results(args.folder, args.out)
    table = collect(args.folder)
    yield f"{len(table)} runs ({(table.status == 'ok').sum()} ok) -> {path}"
    return 0


def add_parsers(sub: argparse._SubParsersAction, handler: Callable) -> None:
    """Add ``sweep`` and ``collect`` to the ``cellrepro`` command's subparsers; ``handler`` turns a
    line generator into the command's function (the CLI's, which prints)."""
    p = sub.add_parser("sweep", help="run a notebook over a grid of parameters with Snakemake (laptop or SLURM)",
                       description="Run NOTEBOOK once per combination of --grid values (and --seeds) with "
                                   "Snakemake. Arguments after -- go to Snakemake unchanged.")
    p.add_argument("notebook", help="paper/experiment (see `cellrepro list`) or a path to its .md source")
    p.add_argument("--grid", action="append", metavar="NAME=V1,V2",
                   help="values of one parameter (repeatable); checked against the notebook's declared types")
    p.add_argument("--seeds", metavar="S1,S2", help="values of the notebook's `seed` parameter (a --grid seed=...)")
    p.add_argument("--profile", choices=PROFILES, default="book",
                   help="parameter overrides under the grid, and each run's resources (default: book)")
    p.add_argument("--cores", type=int, help="cores for runs on this machine (default: all)")
    p.add_argument("--executor", help="a Snakemake executor, e.g. slurm (pip install 'cellrepro[slurm]'); "
                   "default: this machine")
    p.add_argument("--jobs", type=int, default=100, help="runs kept submitted at once by --executor (default 100)")
    p.add_argument("--dry-run", action="store_true", help="list the runs and the jobs with their resources; run none")
    p.add_argument("--out", help="sweep folder (default: _build/sweeps/<profile>/<paper>/<experiment>)")
    p.add_argument("--collect", action="store_true", help="then write the runs' table to <out>/results.csv")
    p.set_defaults(func=handler(sweep_lines))

    p = sub.add_parser("collect", help="gather the run records of a sweep folder into one CSV table")
    p.add_argument("folder", help="a sweep folder (cellrepro sweep --out)")
    p.add_argument("--out", help="CSV to write (default: FOLDER/results.csv)")
    p.set_defaults(func=handler(collect_lines))
