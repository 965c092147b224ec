"""Published from committed code: a run into book/ refuses uncommitted sources; verify re-runs a section."""

import json
import subprocess

import pytest

from cellrepro import CellreproError
from cellrepro.publish.record import published, uncommitted_sources
from cellrepro.publish.runner import run_notebook
from cellrepro.publish.verify import verify


def _git(root, *args):
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout


def _commit(root, message):
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)


@pytest.mark.slow
def test_publishing_needs_committed_sources_and_verify_gets_every_number_back(tiny):
    out = tiny.book_dir / "demo"
    source = tiny.notebooks_dir / "demo" / "tiny.md"
    source.write_text(source.read_text().replace("Used by the tests", "Used by the tests (edited)"))
    with pytest.raises(CellreproError, match=r"refusing to publish.*notebooks/demo/tiny\.md"):
        run_notebook(tiny, "demo/tiny", profile="smoke", out_dir=out, progress=False)
    (tiny.root / "cellrepro").mkdir()
    (tiny.root / "cellrepro" / "new.py").write_text("x = 1\n")  # untracked package source counts too
    _git(tiny.root, "checkout", "--", "notebooks")
    assert uncommitted_sources(tiny.root) == ["cellrepro/new.py"]
    (tiny.root / "cellrepro" / "new.py").unlink()
    (tiny.root / "notes.txt").write_text("untracked outside the sources: allowed\n")
    result = run_notebook(tiny, "demo/tiny", profile="smoke", out_dir=out, progress=False)
    assert result.record["git"]["dirty"] is False and result.record["verdict_protocol"] == 2
    assert isinstance(result.record["cpu_isa"], list)
    assert uncommitted_sources(tiny.root) == []  # its own outputs do not count
    (tiny.root / "notes.txt").unlink()
    _commit(tiny.root, "publish tiny")
    pub = published(tiny, tiny.notebook("demo/tiny"))
    assert pub["dirty"] is False and pub["package_changed"] is None  # the fixture has no package tree
    same = verify(tiny, "demo/tiny")
    assert same["differences"] == [] and same["same_cpu_isa"] is True
    # a published number its commit does not give back is found
    rec = json.loads((out / "tiny.record.json").read_text())
    rec["metrics"]["n_used"] = 4
    (out / "tiny.record.json").write_text(json.dumps(rec))
    _commit(tiny.root, "tampered")  # a commit that only changes a published output: the same code
    diffs = verify(tiny, "demo/tiny")["differences"]
    assert diffs == [{"key": "n_used", "published": 4, "rerun": 2}]  # the smoke profile sets n = 2
    (tiny.notebooks_dir / "demo" / "other.md").write_text(source.read_text())
    _commit(tiny.root, "a new notebook: the sources moved on")
    with pytest.raises(CellreproError, match=r"since then 1 files changed \(notebooks/demo/other\.md\)"):
        verify(tiny, "demo/tiny")


def test_verify_refuses_a_record_from_uncommitted_changes(tiny):
    path = tiny.book_dir / "demo" / "tiny.record.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"notebook": "demo/tiny", "profile": "smoke", "git": {"commit": "abc", "dirty": True},
                                "metrics": {}}))
    with pytest.raises(CellreproError, match="uncommitted changes"):
        verify(tiny, "demo/tiny")
