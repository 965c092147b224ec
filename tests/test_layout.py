"""Project layout and conventions: pins, TOC parts, chapter pages, cite labels."""

import tomllib

import yaml

from cellrepro import PAPERS
from cellrepro.publish.sphinx_cite import chapter_label


def test_pyproject_and_environment_pin_the_same_packages(repo):
    project = tomllib.loads((repo.root / "pyproject.toml").read_text())["project"]
    pip_pins = set(project["dependencies"]) | set(project["optional-dependencies"]["test"])
    env = yaml.safe_load((repo.root / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip_section) - {"-e ."} == pip_pins


def test_jupyter_book_is_pinned_to_1x(repo):
    deps = tomllib.loads((repo.root / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "jupyter-book>=1.0.4.post1,<2" in deps
    assert any(d.startswith("sphinx>=7,<8") for d in deps) and any(d.startswith("docutils") and "<0.22" in d for d in deps)


def test_toc_has_one_part_per_paper_with_its_chapter_page(repo):
    toc = yaml.safe_load((repo.root / "_toc.yml").read_text())
    chapters = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    for paper in PAPERS:
        assert f"book/{paper}/index" in chapters
    assert {"book/reproducibility", "book/bibliography"} <= set(chapters) and toc["root"] == "book/intro"


def test_every_chapter_page_has_its_label_and_ends_with_a_cite_block(repo):
    for paper in PAPERS:
        text = (repo.book_dir / paper / "index.md").read_text()
        assert text.startswith(f"({paper})=\n# ")
        assert text.rstrip().endswith("```{cite-this-chapter}\n```")


def test_references_hold_the_five_papers(repo):
    bib = (repo.book_dir / "references.bib").read_text()
    for key in ("nguyen2024blurry", "wang2022multimodal", "hu2023mmcs", "prytula2023brightfield", "zwijghuizen2023organoid"):
        assert "{" + key + "," in bib


def test_chapter_labels_are_stable_paths():
    assert chapter_label("book/spheroid/index") == "spheroid"
    assert chapter_label("book/organoid/ablation-frozen") == "organoid-ablation-frozen"
    assert chapter_label("book/reproducibility") == "reproducibility"


def test_ci_runs_the_readme_test_command(repo):
    readme = (repo.root / "README.md").read_text()
    ci = (repo.root / ".ci" / "run").read_text().strip().splitlines()[-1]
    block = readme.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line for line in block.strip().splitlines() if line.strip()]
    assert len(commands) == 2 and commands[1] == ci
    assert "cellrepro book --no-execute" in commands[0]
