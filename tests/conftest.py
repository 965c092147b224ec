"""Shared fixtures: a throw-away copy of the tiny fixture project, and the real project."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from cellrepro.publish.project import Project

HERE = Path(__file__).parent
REPO = HERE.parent
FIXTURE = HERE / "fixtures" / "project"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def tiny(tmp_path: Path) -> Project:
    """A copy of tests/fixtures/project in a fresh git repository with one commit."""
    root = tmp_path / "project"
    shutil.copytree(FIXTURE, root)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "fixture")
    return Project(root)


@pytest.fixture(scope="session")
def repo() -> Project:
    """The real project this test suite belongs to."""
    return Project(REPO)


@pytest.fixture
def judged(monkeypatch):
    """Every ``report.judge`` call a test makes, as ``(claim, paired differences, keywords, entry)``,
    with the real decision recorded."""
    import numpy as np

    from cellrepro.publish import report

    calls = []
    real = report.judge

    def spy(claim, paired, **kw):
        entry = real(claim, paired, **kw)
        calls.append((claim, np.asarray(paired, float), kw, entry))
        return entry

    monkeypatch.setattr(report, "judge", spy)
    return calls


def not_measured(entry) -> list[str]:
    """The registered gates a verdict entry counted as failed because the test did not supply them."""
    return [g["name"] for g in entry["gates"] if g.get("value") == "not measured"]
