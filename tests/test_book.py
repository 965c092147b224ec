"""`cellrepro book`: execute into a staging copy and build HTML; refusals on TOC mismatches."""

import re
import shutil

import nbformat
import pytest

from cellrepro import CellreproError
from cellrepro.publish.book import build_book, staging_root
from cellrepro.publish.project import Project

from book_html import problems, progress_output

pytestmark = pytest.mark.slow


def test_smoke_build_stages_executes_and_shows_banner(tiny):
    html = build_book(tiny, profile="smoke")
    assert html == staging_root(tiny, "smoke") / "_build" / "html"
    page = (html / "book" / "demo" / "tiny.html").read_text()
    assert "cellrepro-banner" in page and "How this page was produced" in page
    assert "Cite this chapter" in page and "demo-tiny" in page
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page))
    assert "The total is 0.50." in text  # glued from the run: the smoke profile sets n=2, so (0 + 1) * 0.5
    assert (html / "book" / "intro.html").is_file() and (html / "book" / "demo" / "index.html").is_file()
    # committed results are never touched by a smoke build
    assert not (tiny.book_dir / "demo" / "tiny.ipynb").exists()


def test_no_execute_refuses_without_executed_notebooks(tiny):
    with pytest.raises(CellreproError, match=r"no executed notebook for: demo/tiny"):
        build_book(tiny, profile="book", execute=False)


def test_notebook_missing_from_toc_is_refused(tiny):
    shutil.copy(tiny.notebooks_dir / "demo" / "tiny.md", tiny.notebooks_dir / "demo" / "orphan.md")
    with pytest.raises(CellreproError, match=r"without a _toc.yml entry.*demo/orphan"):
        build_book(tiny, profile="smoke")


def test_toc_entry_without_source_is_refused(tiny):
    toc = tiny.root / "_toc.yml"
    toc.write_text(toc.read_text() + "          - file: book/demo/ghost\n")
    with pytest.raises(CellreproError, match=r"neither a page nor a notebook source: book/demo/ghost"):
        build_book(tiny, profile="smoke")


def _copy_of(repo, tmp_path):
    root = tmp_path / "book"
    root.mkdir()
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(repo.root / name, root / name)
    for name in ("book", "notebooks"):
        shutil.copytree(repo.root / name, root / name, ignore=shutil.ignore_patterns("*.failed.*"))
    return Project(root, profiles_dir=repo.profiles_dir)


def test_real_book_builds_from_committed_notebooks(repo, tmp_path):
    """The README's first command, on a copy: every TOC page is built, without warnings."""
    html = build_book(_copy_of(repo, tmp_path), execute=False)
    for entry in repo.toc_files():
        assert (html / f"{entry}.html").is_file(), entry
    assert problems(html, repo.toc_files()) == []  # cite blocks, math, captions, no nan in verdicts
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()  # math renders offline


def test_real_book_executes_every_notebook_in_the_smoke_profile(repo, tmp_path):
    """CI's end-to-end check: every TOC notebook runs in the smoke profile and the book builds."""
    copy = _copy_of(repo, tmp_path)
    html = build_book(copy, profile="smoke")
    for nb in repo.toc_notebooks():
        page = (html / "book" / f"{nb.key}.html").read_text()
        assert "cellrepro-banner" in page, nb.key
    assert (html / "book" / "intro.html").is_file()
    assert problems(html, repo.toc_files()) == []
    executed_notebooks = list((copy.root / "_build" / "staging" / "smoke" / "book").rglob("*.ipynb"))
    assert len(executed_notebooks) >= len(repo.toc_notebooks())
    for executed in executed_notebooks:  # the runner's kernels draw no progress bars
        outputs = [o for c in nbformat.read(executed, as_version=4).cells for o in c.get("outputs", [])]
        assert not progress_output("".join(o.get("text", "") for o in outputs)), executed


def _mark_gpu_only(tiny, keys):
    (tiny.profiles_dir / "book.yml").write_text(f"_gpu_only: {list(keys)}\n")


def test_gpu_only_notebook_keeps_its_published_result_without_a_gpu(tiny, monkeypatch, caplog):
    import cellrepro.publish.book as book

    published = tiny.book_dir / "demo" / "tiny.ipynb"
    published.write_text("the last published result")
    _mark_gpu_only(tiny, ["demo/tiny"])
    ran = []
    monkeypatch.setattr(book, "run_notebook", lambda project, name, **kw: ran.append(name))
    monkeypatch.setattr(book, "has_gpu", lambda: False)
    assert book.execute_all(tiny, "book", tiny.root) == []
    assert ran == [] and published.read_text() == "the last published result"  # never a smoke run over it
    assert "demo/tiny is GPU-only and there is no GPU here: not run, kept its last published result" in caplog.text
    monkeypatch.setattr(book, "has_gpu", lambda: True)
    with pytest.raises(AttributeError):  # with a GPU it runs (the stand-in returns None: no .notebook)
        book.execute_all(tiny, "book", tiny.root)
    assert ran == ["demo/tiny"]


def test_jobs_run_every_notebook_and_name_every_failure(tiny):
    from cellrepro.publish.book import execute_all
    from cellrepro.publish.runner import NotebookFailed

    for name in ("second", "broken"):
        shutil.copy(tiny.notebooks_dir / "demo" / "tiny.md", tiny.notebooks_dir / "demo" / f"{name}.md")
    toc = tiny.root / "_toc.yml"
    toc.write_text(toc.read_text() + "          - file: book/demo/broken\n          - file: book/demo/second\n")
    (tiny.profiles_dir / "smoke.yml").write_text("demo/tiny: {}\ndemo/second: {}\ndemo/broken:\n  fail: true\n")
    root = tiny.root / "_build" / "staging" / "smoke"
    with pytest.raises(NotebookFailed, match=r"(?s)1 of 3 notebooks failed: demo/broken\n.*ValueError: asked to fail"):
        execute_all(tiny, "smoke", root, jobs=2)
    for name in ("tiny", "second"):  # the failure stopped nothing
        assert (root / "book" / "demo" / f"{name}.ipynb").is_file(), name
    assert (root / "book" / "demo" / "broken.failed.json").is_file()


def test_jobs_must_be_positive(tiny):
    from cellrepro.publish.book import execute_all
    from cellrepro.cli import build_parser

    assert build_parser().parse_args(["book", "--jobs", "3"]).jobs == 3
    with pytest.raises(CellreproError, match="--jobs must be >= 1, got 0"):
        execute_all(tiny, "smoke", tiny.root, jobs=0)
