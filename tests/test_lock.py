"""requirements.lock pins the project's dependencies, records cite it, and the README's commands hold."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from cellrepro.publish.record import lock_hash, read_record, write_record

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.lock"


def _locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_lock_pins_every_dependency_within_its_range():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = _locked()
    for spec in [*project["dependencies"], *project["optional-dependencies"]["test"]]:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in requirements.lock: regenerate it (see its header)"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} is outside {req.specifier}"


def test_records_carry_the_lock_files_hash(tmp_path):
    expected = "sha256:" + hashlib.sha256(LOCK.read_bytes()).hexdigest()
    assert lock_hash() == expected
    write_record(tmp_path / "r.json", {"notebook": "x"})
    assert read_record(tmp_path / "r.json")["lock"] == expected


def test_readme_and_reproducibility_page_say_how_to_install_from_the_lock():
    for page in (REPO / "README.md", REPO / "book" / "reproducibility.md"):
        assert "pip install -r requirements.lock" in page.read_text(), page.name


def _readme_papermill_line() -> str:
    readme = (REPO / "README.md").read_text()
    block = readme.split("Without the `cellrepro` command", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    (line,) = [ln for ln in block.strip().splitlines() if ln.strip()]
    return line


@pytest.mark.slow
def test_readme_plain_jupytext_papermill_line_runs(tmp_path):
    """The README's line without cellrepro, with its notebook and parameter swapped for the fixture's."""
    line = _readme_papermill_line()
    m = re.fullmatch(r"jupytext --to ipynb (\S+\.md) -o - \| papermill - (\S+\.ipynb)( -p \S+ \S+)+", line)
    assert m, f"unexpected README line: {line}"
    tiny = REPO / "tests" / "fixtures" / "project" / "notebooks" / "demo" / "tiny.md"
    command = line.replace(m.group(1), str(tiny)).replace(m.group(3), " -p n 2")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / m.group(2)).is_file()


@pytest.mark.slow
def test_lock_file_installs(tmp_path):
    """pip resolves the whole lock file as it stands (a dry run: no second torch install in CI)."""
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "-r", str(LOCK)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
