"""Build the Jupyter Book: optionally execute every TOC notebook in a profile, then make HTML.

* ``book`` profile: notebooks execute into ``book/<paper>/`` (the committed, published
  results) and the HTML lands in ``_build/html``.
* ``smoke`` / ``paper``: the book sources are copied to a staging folder
  ``_build/staging/<profile>/``, notebooks execute there, and its HTML lands in
  ``_build/staging/<profile>/_build/html``; committed results are never touched.
* ``execute=False``: only the HTML build, from what is committed.
* ``jobs=N``: N notebooks at once, each in its own process and kernel, under one progress bar.
* GPU-only notebooks (``_gpu_only`` in ``book.yml``) keep their published result in a
  book-profile build on a machine without a GPU.

The HTML build runs ``jupyter-book build`` with ``-W --keep-going``: any Sphinx warning
fails it, after reporting all of them.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .. import CellreproError
from .project import Project
from .profile import gpu_only
from .record import git_state
from .runner import NotebookFailed, run_notebook

log = logging.getLogger(__name__)

BOOK_FILES = ("_config.yml", "_toc.yml")


def staging_root(project: Project, profile: str) -> Path:
    return project.root / "_build" / "staging" / profile


def stage(project: Project, profile: str) -> Path:
    """Copy the book sources (config, TOC, ``book/``) into a fresh staging folder."""
    dest = staging_root(project, profile)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in BOOK_FILES:
        shutil.copy2(project.root / name, dest / name)
    shutil.copytree(project.book_dir, dest / "book", ignore=shutil.ignore_patterns("*.failed.*", ".ipynb_checkpoints"))
    return dest


def has_gpu() -> bool:
    """Whether torch sees a CUDA GPU here (GPU-only notebooks run in the book profile only then)."""
    import torch

    return torch.cuda.is_available()


def execute_all(project: Project, profile: str, book_root: Path, jobs: int = 1) -> list[Path]:
    """Run every TOC notebook in ``profile`` into ``book_root/book/<paper>/``, with one progress bar.

    In the book profile on a machine without a GPU, the notebooks ``book.yml`` marks GPU-only
    (``_gpu_only``) are not run: their last published result is kept, and a warning says so.

    Args:
        jobs: notebooks run at once, each in its own worker process and kernel. With 1 the
            first failure stops the build; with more, every notebook runs and the failures
            are reported together at the end.

    Raises:
        NotebookFailed: the first failing notebook (``jobs=1``) or all of them (``jobs > 1``),
            each named with its failing cell's error or step.
    """
    if jobs < 1:
        raise CellreproError(f"--jobs must be >= 1, got {jobs}")
    notebooks = project.toc_notebooks()
    if profile == "book" and (marked := set(gpu_only(project))) and not has_gpu():
        for nb in [nb for nb in notebooks if nb.key in marked]:
            published = book_root / "book" / f"{nb.key}.ipynb"
            state = "kept its last published result" if published.is_file() else "no published result to keep"
            log.warning("%s is GPU-only and there is no GPU here: not run, %s (%s)", nb.key, state, published)
        notebooks = [nb for nb in notebooks if nb.key not in marked]
    git = git_state(project.root)  # once, before results are rewritten
    runs = [dict(project=project, name=nb.key, profile=profile, out_dir=book_root / "book" / nb.paper, git=git,
                 progress=False) for nb in notebooks]
    with tqdm(total=len(runs), desc=f"notebooks ({profile})", unit="nb", file=sys.stderr) as bar:
        if jobs == 1:
            done = []
            for kw in runs:
                bar.set_postfix_str(kw["name"])
                done.append(run_notebook(**kw).notebook)
                bar.update(1)
            return done
        return _run_concurrently(runs, jobs, bar)


def _run_concurrently(runs: list[dict[str, Any]], jobs: int, bar: tqdm) -> list[Path]:
    """Run ``run_notebook(**kw)`` for each of ``runs``, ``jobs`` at a time in worker processes
    (each has its own environment for the run record), naming the running ones on ``bar``."""
    done: list[Path] = []
    failed: list[tuple[str, BaseException]] = []
    pending, running = list(runs), {}
    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold threads or CUDA
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        while pending or running:
            while pending and len(running) < jobs:
                kw = pending.pop(0)
                running[pool.submit(run_notebook, **kw)] = kw["name"]
            bar.set_postfix_str(", ".join(running.values()))
            finished, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                try:
                    done.append(future.result().notebook)
                except Exception as err:  # a failed notebook, or a worker that died
                    failed.append((name, err))
                    log.error("%s failed: %s", name, err)
                bar.update(1)
    if failed:
        names = ", ".join(name for name, _ in failed)
        details = "\n\n".join(str(err) if isinstance(err, NotebookFailed) else f"notebook {name} failed: "
                               f"{type(err).__name__}: {err}" for name, err in failed)
        raise NotebookFailed(f"{len(failed)} of {len(runs)} notebooks failed: {names}\n\n{details}")
    return done


def check_executed(project: Project, book_root: Path) -> None:
    """Refuse to build when a TOC notebook has no executed ``.ipynb`` under ``book_root``."""
    missing = [nb.key for nb in project.toc_notebooks() if not (book_root / "book" / f"{nb.key}.ipynb").is_file()]
    if missing:
        raise CellreproError(
            "no executed notebook for: " + ", ".join(missing)
            + ". Run `cellrepro book --profile book` (GPU) or `cellrepro run KEY --profile smoke --out book/<paper>`."
        )


def build_html(book_root: Path, builder: str = "html") -> Path:
    """Run ``jupyter-book build`` on ``book_root`` with warnings as errors; return the HTML folder.

    Raises:
        CellreproError: the build failed or warned; the message holds the warnings.
    """
    exe = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(exe) if exe.exists() else "jupyter-book", "build", str(book_root),
           "--builder", builder, "-W", "-n", "--keep-going"]
    log.info("building the book: %s", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        text = proc.stdout + proc.stderr
        lines = [ln for ln in text.splitlines() if "WARNING" in ln or "ERROR" in ln or "Error" in ln]
        detail = "\n".join(lines[-40:]) or text[-4000:]
        raise CellreproError(f"the book build failed (jupyter-book exit code {proc.returncode}):\n{detail}")
    return book_root / "_build" / builder


def build_book(project: Project, profile: str = "book", execute: bool = True, jobs: int = 1) -> Path:
    """Execute (optionally, ``jobs`` notebooks at a time) and build; return the folder holding ``index.html``."""
    project.toc_notebooks()  # refuse a TOC/notebook mismatch before anything runs
    if profile == "book" or not execute:
        book_root = project.root
    else:
        book_root = stage(project, profile)
    if execute:
        execute_all(project, profile, book_root, jobs=jobs)
    check_executed(project, book_root)
    return build_html(book_root)
