"""Data for every chapter: deterministic synthetic stand-ins, and readers for the real formats.

Five families, each generated (seeded, cached under ``$CELLREPRO_CACHE``, default
``~/.cache/cellrepro``) or read from a user's folder by the same call::

    from cellrepro import data
    stacks = data.load("dic-spheroid", n=8, size=128, seed=0)          # synthetic
    stacks = data.load("dic-spheroid", data_root="/data/my-zstacks")   # the user's own

| family | stands in for | generator returns |
|---|---|---|
| ``dic-spheroid`` | spheroid paper's DIC z-stacks | list of :class:`ZStack` |
| ``multimodal`` | NeurIPS 2022 CellSeg (multimodal, MMCS) | ``(labeled, unlabeled)`` :class:`CellImage` lists |
| ``mmcs`` | MMCS's sources: CellSeg, Cellpose/Omnipose, pretraining (``style``) | ``(labeled, unlabeled)`` :class:`CellImage` lists |
| ``brightfield-overlap`` | brightfield thesis's field sets | ``(fields, pool)`` :class:`Field` lists |
| ``organoid`` | organoid thesis's CZI images | list of :class:`OrganoidImage` |
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable

from . import readers, writers
from .synthetic import brightfield, dic_spheroid, mmcs, multimodal, organoid
from .types import MODALITIES, SPHEROID_CLASSES, CellImage, DataError, Field, OrganoidImage, ZStack

log = logging.getLogger(__name__)

GENERATOR_VERSION = 5
"""Bump when a generator's output changes, so caches are not reused across versions."""


class Family:
    """A data family: its generator, on-disk writer and reader, and book-profile size."""

    def __init__(self, name: str, module: Any, write: Callable, read: Callable, fmt: str):
        self.name, self.module, self.write, self.read, self.format = name, module, write, read, fmt

    @property
    def defaults(self) -> dict[str, int]:
        return dict(self.module.DEFAULTS)

    def generate(self, **params: Any) -> Any:
        return self.module.generate(**params)

    def params(self, n: int | None = None, size: int | None = None, seed: int = 0) -> dict[str, Any]:
        """Generator parameters for ``n`` items of ``size``; secondary counts (unlabeled images,
        the unannotated pool) keep their book-profile ratio to the main count."""
        out = self.defaults
        if n is not None:
            main = "n_labeled" if "n_labeled" in out else "n"
            for key in ("n_unlabeled", "n_pool"):
                if key in out:
                    out[key] = max(0, round(out[key] * n / out[main]))
            out[main] = n
        if size is not None:
            out["size"] = size
        return out | {"seed": seed}

    def save(self, out: str | os.PathLike, result: Any) -> Path:
        return self.write(out, *result) if isinstance(result, tuple) else self.write(out, result)


FAMILIES: dict[str, Family] = {
    "dic-spheroid": Family("dic-spheroid", dic_spheroid, writers.write_zstacks, readers.read_zstacks, "zstack"),
    "multimodal": Family("multimodal", multimodal, writers.write_cellseg, readers.read_cellseg, "cellseg"),
    "mmcs": Family("mmcs", mmcs, writers.write_cellseg, readers.read_cellseg, "cellseg"),
    "brightfield-overlap": Family("brightfield-overlap", brightfield, writers.write_fields, readers.read_fields, "fields"),
    "organoid": Family("organoid", organoid, writers.write_organoids, readers.read_organoids, "organoid"),
}


def family(name: str) -> Family:
    if name not in FAMILIES:
        raise DataError(name, f"unknown data family; families are {', '.join(FAMILIES)}")
    return FAMILIES[name]


def cache_dir() -> Path:
    return Path(os.environ.get("CELLREPRO_CACHE") or Path.home() / ".cache" / "cellrepro")


def load(name: str, data_root: str | os.PathLike | None = None, cache: bool = True, **params: Any) -> Any:
    """A family's data: read from ``data_root`` if given, else generated (and cached).

    ``params`` go to the family's generator (``n``, ``size``, ``seed``, ...). The cache key
    is the family, the parameters and :data:`GENERATOR_VERSION`; a cached set is read back
    through the family's reader, which returns exactly what was generated.
    """
    fam = family(name)
    if data_root is not None:
        return fam.read(data_root)
    key = hashlib.sha256(json.dumps([name, GENERATOR_VERSION, sorted(params.items())], default=str).encode()).hexdigest()[:16]
    folder = cache_dir() / name / key
    if cache and folder.is_dir():
        log.info("reading cached %s from %s", name, folder)
        return fam.read(folder)
    result = fam.generate(**params)
    if cache:
        fam.save(folder, result)
    return result


def make(name: str, out: str | os.PathLike, **params: Any) -> Path:
    """Generate a family's synthetic set and write it in its real on-disk format."""
    fam = family(name)
    return fam.save(out, fam.generate(**params))


__all__ = ["FAMILIES", "MODALITIES", "SPHEROID_CLASSES", "CellImage", "DataError", "Field", "OrganoidImage",
           "ZStack", "cache_dir", "family", "load", "make", "readers", "writers"]
