"""The project on disk: where notebooks, profiles, the TOC and executed results live.

A project root holds ``_config.yml``, ``_toc.yml`` and ``notebooks/<paper>/<experiment>.md``
(jupytext MyST sources). Executed notebooks are published as
``book/<paper>/<experiment>.ipynb`` with their run record ``<experiment>.record.json``
beside them. The notebook *key* ``paper/experiment`` names a notebook everywhere: on the
command line, in profiles and in records.

The registry of parameter choices, ``choices.yml`` beside the profiles, gives the parameters
of existing notebooks the choices a ``Literal`` annotation would (see
:mod:`cellrepro.publish.params`).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .. import CellreproError
from .params import Parameter, load_choices, parse_parameters, with_choices

PROFILES = ("smoke", "book", "paper")


@dataclass(frozen=True)
class Notebook:
    """A notebook source: ``notebooks/<paper>/<experiment>.md``."""

    key: str  # "paper/experiment"
    source: Path
    choices_file: Path | None = field(default=None, compare=False)  # the project's choices.yml

    @property
    def paper(self) -> str:
        return self.key.split("/")[0]

    @property
    def experiment(self) -> str:
        return self.key.split("/", 1)[1]

    @property
    def toc_entry(self) -> str:
        """The entry ``_toc.yml`` must have for this notebook: ``book/<paper>/<experiment>``."""
        return f"book/{self.key}"

    @functools.cached_property
    def parameters(self) -> dict[str, Parameter]:
        """The declared parameters, from the cell tagged ``parameters``, with the choices the
        registry (:attr:`choices_file`) gives them.

        Raises:
            CellreproError: the source cannot be read, has no single ``parameters`` cell, that
                cell is not declarative, or a default lies outside its choices.
        """
        import jupytext

        try:
            nb = jupytext.read(self.source)
        except Exception as err:  # jupytext raises several types for malformed files
            raise CellreproError(f"{self.source}: cannot be read as a jupytext notebook ({err})") from err
        cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
        if len(cells) != 1:
            raise CellreproError(f"{self.source}: expected exactly one code cell tagged 'parameters', found {len(cells)}")
        params = parse_parameters(cells[0].source, where=str(self.source))
        registry = load_choices(self.choices_file) if self.choices_file else {}
        return with_choices(params, registry.get(self.key, {}), where=f"{self.key} ({self.choices_file})")


@dataclass
class Project:
    """Paths of one project checkout (or of a test fixture laid out the same way)."""

    root: Path
    profiles_dir: Path = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        if self.profiles_dir is None:
            inside = self.root / "cellrepro" / "profiles"
            self.profiles_dir = inside if inside.is_dir() else self.root / "profiles"
        self.profiles_dir = Path(self.profiles_dir)

    @classmethod
    def find(cls, start: str | os.PathLike | None = None) -> "Project":
        """The project containing ``start`` (default: ``$CELLREPRO_ROOT`` or the current folder).

        Raises:
            CellreproError: no folder from ``start`` upwards holds ``_toc.yml`` and ``notebooks/``.
        """
        start = Path(start or os.environ.get("CELLREPRO_ROOT") or Path.cwd()).resolve()
        for folder in (start, *start.parents):
            if (folder / "_toc.yml").is_file() and (folder / "notebooks").is_dir():
                return cls(folder)
        raise CellreproError(
            f"no cellrepro project found at or above {start}: expected a folder with _toc.yml and notebooks/ "
            "(run from a checkout of the repository, or pass --root / set CELLREPRO_ROOT)"
        )

    @property
    def notebooks_dir(self) -> Path:
        return self.root / "notebooks"

    @property
    def book_dir(self) -> Path:
        return self.root / "book"

    @property
    def choices_file(self) -> Path:
        """The registry of parameter choices: ``choices.yml`` beside the profiles."""
        return self.profiles_dir / "choices.yml"

    def notebooks(self) -> dict[str, Notebook]:
        """Every notebook source, by key, sorted."""
        found = sorted(self.notebooks_dir.glob("*/*.md"))
        return {f"{p.parent.name}/{p.stem}": Notebook(f"{p.parent.name}/{p.stem}", p, self.choices_file) for p in found}

    def notebook(self, name: str) -> Notebook:
        """Resolve ``paper/experiment`` or a path to a notebook source.

        Raises:
            CellreproError: no such notebook; the message lists the valid keys.
        """
        known = self.notebooks()
        key = name[:-3] if name.endswith(".md") else name
        if key in known:
            return known[key]
        path = Path(name)
        if path.suffix == ".md" and path.is_file():
            resolved = path.resolve()
            for nb in known.values():
                if nb.source.resolve() == resolved:
                    return nb
            return Notebook(f"{resolved.parent.name}/{resolved.stem}", resolved, self.choices_file)
        listing = "\n".join(f"  {k}" for k in known) or "  (none)"
        raise CellreproError(f"unknown notebook '{name}'. Known notebooks:\n{listing}")

    def toc_files(self) -> list[str]:
        """Every ``file:`` entry of ``_toc.yml``, in order (without extension)."""
        path = self.root / "_toc.yml"
        try:
            toc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as err:
            raise CellreproError(f"{path}: cannot be read ({err})") from err
        files: list[str] = []

        def walk(node: object) -> None:
            if isinstance(node, dict):
                for key in ("root", "file"):
                    if isinstance(node.get(key), str):
                        files.append(os.path.splitext(node[key])[0])
                for value in node.values():
                    if isinstance(value, (list, dict)):
                        walk(value)
            elif isinstance(node, list):
                for item in node:
                    walk(item)

        walk(toc)
        return files

    def toc_notebooks(self) -> list[Notebook]:
        """The notebooks of the TOC in TOC order, after checking TOC and sources agree.

        Raises:
            CellreproError: a notebook source has no TOC entry, or a TOC entry names neither
                a page under book/ nor a notebook source.
        """
        entries = self.toc_files()
        known = self.notebooks()
        by_entry = {nb.toc_entry: nb for nb in known.values()}
        missing = [nb.key for nb in known.values() if nb.toc_entry not in entries]
        if missing:
            raise CellreproError(
                "notebooks without a _toc.yml entry (add 'file: book/<paper>/<experiment>' under their chapter): "
                + ", ".join(missing)
            )
        dangling = [
            e for e in entries
            if e not in by_entry and not any((self.root / f"{e}{ext}").is_file() for ext in (".md", ".ipynb"))
        ]
        if dangling:
            raise CellreproError(
                "_toc.yml entries with neither a page nor a notebook source: " + ", ".join(dangling)
            )
        return [by_entry[e] for e in entries if e in by_entry]

    def record_paths(self, nb: Notebook) -> list[Path]:
        """Run records of ``nb`` that exist: the published one and ad-hoc runs under _build/runs."""
        candidates = [self.book_dir / nb.paper / f"{nb.experiment}.record.json"]
        candidates += sorted((self.root / "_build" / "runs").glob(f"*/{nb.paper}/{nb.experiment}*.json"))
        candidates += [self.book_dir / nb.paper / f"{nb.experiment}.failed.json"]
        return [p for p in candidates if p.is_file()]
