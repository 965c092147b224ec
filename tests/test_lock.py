"""requirements.lock pins the project's dependencies, records cite it, and the README's commands hold."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
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


def _readme_papermill_lines() -> list[str]:
    readme = (REPO / "README.md").read_text()
    block = readme.split("Without the `cellrepro` command", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [ln for ln in block.strip().splitlines() if ln.strip()]


@pytest.mark.slow
def test_readme_plain_jupytext_papermill_lines_run(tmp_path):
    """The README's lines without cellrepro (parameters from `cellrepro params`), with the notebook
    swapped for the fixture's and the output folder for a temporary one."""
    params, convert, execute = _readme_papermill_lines()
    m = re.fullmatch(r"cellrepro params (\S+) --profile smoke > (/tmp/\S+\.yml)", params)
    assert m, f"unexpected README line: {params}"
    key, yml = m.groups()
    m2 = re.fullmatch(rf"jupytext --to ipynb notebooks/{key}\.md -o (/tmp/\S+\.ipynb)", convert)
    assert m2, f"unexpected README line: {convert}"
    m3 = re.fullmatch(rf"OMP_WAIT_POLICY=PASSIVE papermill {re.escape(m2.group(1))} (/tmp/\S+\.ipynb) -f "
                      rf"{re.escape(yml)}( -p \S+ \S+)+", execute)
    assert m3, f"unexpected README line: {execute}"
    project = tmp_path / "project"
    shutil.copytree(REPO / "tests" / "fixtures" / "project", project)
    params, convert, execute = (line.replace("/tmp/", f"{tmp_path}/") for line in (params, convert, execute))
    lines = [params.replace(key, "demo/tiny").replace("cellrepro params", f"cellrepro --root {project} params"),
             convert.replace(f"notebooks/{key}.md", str(project / "notebooks" / "demo" / "tiny.md")),
             execute.replace(m3.group(2), " -p scale 2")]
    command = " && ".join(lines)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import nbformat

    out = nbformat.read(m3.group(1).replace("/tmp/", f"{tmp_path}/"), as_version=4)
    text = "".join(o.get("text", "") for c in out.cells for o in c.get("outputs", []))
    assert "total=2.0 label=demo" in text  # the smoke profile's n = 2, then -p scale 2


@pytest.mark.slow
def test_lock_file_installs(tmp_path):
    """pip resolves the whole lock file as it stands (a dry run: no second torch install in CI)."""
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "-r", str(LOCK)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
