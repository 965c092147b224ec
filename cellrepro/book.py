"""Build the Jupyter Book: optionally execute every TOC notebook in a profile, then make HTML.

* ``book`` profile: notebooks execute into ``book/<paper>/`` (the committed, published
  results) and the HTML lands in ``_build/html``.
* ``smoke`` / ``paper``: the book sources are copied to a staging folder
  ``_build/staging/<profile>/``, notebooks execute there, and its HTML lands in
  ``_build/staging/<profile>/_build/html``; committed results are never touched.
* ``execute=False``: only the HTML build, from what is committed.

The HTML build runs ``jupyter-book build`` with ``-W --keep-going``: any Sphinx warning
fails it, after reporting all of them.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

from tqdm import tqdm

from . import CellreproError
from .project import Project
from .record import git_state
from .runner import run_notebook

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


def execute_all(project: Project, profile: str, book_root: Path) -> list[Path]:
    """Run every TOC notebook in ``profile`` into ``book_root/book/<paper>/``, with progress.

    Raises:
        NotebookFailed: the first failing notebook, named with its failing cell's error.
    """
    notebooks = project.toc_notebooks()
    git = git_state(project.root)  # once, before results are rewritten
    done: list[Path] = []
    with tqdm(notebooks, desc=f"notebooks ({profile})", unit="nb", file=sys.stderr) as bar:
        for nb in bar:
            bar.set_postfix_str(nb.key)
            result = run_notebook(
                project, nb.key, profile=profile, out_dir=book_root / "book" / nb.paper, git=git, progress=False
            )
            done.append(result.notebook)
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


def build_book(project: Project, profile: str = "book", execute: bool = True) -> Path:
    """Execute (optionally) and build; return the folder holding ``index.html``."""
    project.toc_notebooks()  # refuse a TOC/notebook mismatch before anything runs
    if profile == "book" or not execute:
        book_root = project.root
    else:
        book_root = stage(project, profile)
    if execute:
        execute_all(project, profile, book_root)
    check_executed(project, book_root)
    return build_html(book_root)
