"""The five papers' claims, the papers' self-contradictions, and the verdicts the runs recorded.

``claims.yml`` lists every claim of the claims register (67: spheroid 10, multimodal 13,
mmcs 13, brightfield 20, organoid 11) with where the paper makes it, how this project tests
it, what data it needs and the book section that judges it. ``inconsistencies.yml`` lists the
register's numbered self-contradictions ("inconsistency #N" in the chapters).

Verdicts live in the run records beside the executed notebooks (``book/<paper>/*.record.json``),
under metric keys ``verdict/<claim id>`` written by :func:`cellrepro.report.record_verdict`.
:func:`claim_status` joins the two: it is what the book's "Claims and verdicts" page and each
chapter's status line show, so neither can go stale. Records of the ``smoke`` profile never
count as verdicts.

>>> len(claims()), len(inconsistencies())
(67, 21)
>>> claim("organoid-C9")["paper"]
'organoid'
"""

from __future__ import annotations

import functools
import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .. import PAPERS, CellreproError

log = logging.getLogger(__name__)

VERDICT_KEY = "verdict/"  # metric-key prefix of a verdict in a run record
NEEDS = {
    "syn": "no chapter section tests it yet",
    "real-public": "needs a public data set the build machines cannot fetch (the challenge's labels, LIVECell)",
    "private-only": "needs the paper's private data or pretrained weights that cannot be fetched",
    "qual": "a qualitative claim: shown, not judged",
}


@functools.lru_cache(maxsize=1)
def _claims() -> tuple[dict[str, Any], ...]:
    raw = yaml.safe_load(resources.files(__package__).joinpath("claims.yml").read_text(encoding="utf-8"))
    out = []
    for paper, rows in raw.items():
        if paper not in PAPERS:
            raise CellreproError(f"claims.yml: unknown paper '{paper}'")
        for row in rows:
            if row.get("needs") not in NEEDS:
                raise CellreproError(f"claims.yml: {row.get('id')}: needs must be one of {', '.join(NEEDS)}")
            out.append({"paper": paper, "section": "", **row})
    return tuple(out)


def claims(paper: str | None = None) -> list[dict[str, Any]]:
    """Every claim (or one paper's), in register order, as dicts (copies).

    Keys: ``id``, ``paper``, ``claim``, ``where``, ``test``, ``needs``, ``section``.
    """
    return [dict(c) for c in _claims() if paper is None or c["paper"] == paper]


def claim(claim_id: str) -> dict[str, Any]:
    """One claim by id.

    Raises:
        CellreproError: no such claim; the message lists the paper's ids.
    """
    for c in _claims():
        if c["id"] == claim_id:
            return dict(c)
    paper = claim_id.split("-")[0]
    ids = [c["id"] for c in _claims() if c["paper"] == paper]
    hint = f" {paper}'s claims: {', '.join(ids)}" if ids else f" Papers: {', '.join(PAPERS)}."
    raise CellreproError(f"unknown claim '{claim_id}'.{hint}")


@functools.lru_cache(maxsize=1)
def _inconsistencies() -> tuple[dict[str, Any], ...]:
    raw = yaml.safe_load(resources.files(__package__).joinpath("inconsistencies.yml").read_text(encoding="utf-8"))
    return tuple(raw)


def inconsistencies() -> list[dict[str, Any]]:
    """The papers' self-contradictions, numbered as in the register (keys n, paper, says, shows, so)."""
    return [dict(i) for i in _inconsistencies()]


def recorded_verdicts(book_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Judged claims in the run records under ``book_dir`` (``<paper>/*.record.json``).

    Returns ``{claim id: verdict entry}`` where each entry is what
    :func:`cellrepro.report.record_verdict` stored plus ``notebook``, ``device`` and
    ``profile`` from the record. Smoke-profile records and failed runs are skipped; when two
    records judge the same claim, the later run wins.
    """
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(book_dir).glob("*/*.record.json")):
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise CellreproError(f"{path}: not a readable run record ({err})") from err
        if rec.get("profile") == "smoke" or rec.get("status", "ok") != "ok":
            continue
        for key, entry in (rec.get("metrics") or {}).items():
            if not key.startswith(VERDICT_KEY) or not isinstance(entry, dict):
                continue
            full = {**entry, "notebook": rec.get("notebook"), "device": rec.get("device"),
                    "profile": rec.get("profile"), "started": rec.get("started", "")}
            cid = key[len(VERDICT_KEY):]
            if cid not in found or full["started"] >= found[cid]["started"]:
                found[cid] = full
    return found


def claim_status(book_dir: str | Path, sections: set[str] | None = None) -> list[dict[str, Any]]:
    """Every claim with its verdict from the records, or why it is not yet reproduced.

    Args:
        book_dir: the book's ``book/`` folder holding ``<paper>/*.record.json``.
        sections: labels of the sections the book has (to tell "no section yet" from "its
            section has not recorded a verdict"); None: trust ``claims.yml``.

    Returns:
        The :func:`claims` dicts with ``verdict`` (an entry of :func:`recorded_verdicts`, or
        None) and ``why`` (empty when judged).
    """
    judged = recorded_verdicts(book_dir)
    out = []
    for c in claims():
        entry = judged.get(c["id"])
        why = ""
        if entry is None:
            has_section = bool(c["section"]) and (sections is None or c["section"] in sections)
            if c["needs"] != "syn":
                why = NEEDS[c["needs"]]
            elif has_section:
                why = "its section has no published verdict yet (only a smoke run, or no verdict recorded)"
            else:
                why = NEEDS["syn"]
        out.append({**c, "verdict": entry, "why": why})
    return out


def chapter_status(rows: list[dict[str, Any]], paper: str) -> tuple[str, int, int]:
    """``(status, judged, testable)`` of a chapter from :func:`claim_status` rows.

    ``testable`` counts the paper's claims that the synthetic stand-in can test (needs
    ``syn``); status is ``reproduced`` when all of them are judged, ``partly`` when some
    are, ``not yet`` when none is.

    >>> rows = [{"paper": "x", "needs": "syn", "verdict": {}}, {"paper": "x", "needs": "syn", "verdict": None},
    ...         {"paper": "x", "needs": "private-only", "verdict": None}]
    >>> chapter_status(rows, "x")
    ('partly', 1, 2)
    """
    mine = [r for r in rows if r["paper"] == paper]
    testable = [r for r in mine if r["needs"] == "syn"]
    judged = sum(r["verdict"] is not None for r in mine)
    if judged == 0:
        status = "not yet"
    elif judged >= len(testable):
        status = "reproduced"
    else:
        status = "partly"
    return status, judged, len(testable)
