"""The five papers' claims, the papers' self-contradictions, and the verdicts the runs recorded.

``claims.yml`` lists every claim of the claims register (67: spheroid 10, multimodal 13,
mmcs 13, brightfield 20, organoid 11) with where the paper makes it, how this project tests
it, what data it needs and the book section that judges it. ``inconsistencies.yml`` lists the
register's numbered self-contradictions ("inconsistency #N" in the chapters).

Verdicts live in the run records beside the executed notebooks (``book/<paper>/*.record.json``),
under metric keys ``verdict/<claim id>`` written by :func:`cellrepro.publish.report.record_verdict`.
:func:`claim_status` joins the two: it is what the book's "Claims and verdicts" page and each
chapter's findings table show, so neither can go stale. Records of the ``smoke`` profile never
count as verdicts.

>>> len(claims()), len(inconsistencies())
(67, 21)
>>> claim("organoid-C9")["paper"]
'organoid'
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ... import PAPERS, CellreproError

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


REVISION_KEYS = ("date", "reason", "previous_hash", "previous_verdict")
"""What a registration's ``revisions`` entry records when a rule changes after a result was seen."""
REGISTRATION_TESTS = ("superiority", "non-inferiority", "equivalence", "non-superiority", "sweep", "descriptive",
                      "untestable")


@functools.lru_cache(maxsize=1)
def _registrations() -> dict[str, dict[str, Any]]:
    from ..decision import MARGIN_TESTS

    raw = yaml.safe_load(resources.files(__package__).joinpath("registrations.yml").read_text(encoding="utf-8"))
    ids = [c["id"] for c in _claims()]
    missing = [i for i in ids if i not in raw]
    unknown = [i for i in raw if i not in ids]
    if missing or unknown:
        raise CellreproError(f"registrations.yml: claims without a registration: {missing or 'none'}; "
                             f"registrations of unknown claims: {unknown or 'none'}")
    for cid, reg in raw.items():
        test = reg.get("test")
        if test not in REGISTRATION_TESTS:
            raise CellreproError(f"registrations.yml: {cid}: test must be one of {', '.join(REGISTRATION_TESTS)}; "
                                 f"got {test!r}")
        if test in MARGIN_TESTS and not (isinstance(reg.get("margin"), (int, float)) and reg["margin"] > 0):
            raise CellreproError(f"registrations.yml: {cid}: a {test} test needs a positive margin; got {reg.get('margin')!r}")
        for rev in reg.get("revisions") or []:
            missing = [k for k in REVISION_KEYS if not rev.get(k)]
            if missing:
                raise CellreproError(f"registrations.yml: {cid}: a revision needs {', '.join(REVISION_KEYS)}; "
                                     f"missing {', '.join(missing)}")
    return raw


def registration(claim_id: str) -> dict[str, Any]:
    """How ``claim_id`` is judged, fixed before its run: test type, arms, metric and unit, unit of
    analysis, the paper's effect, the margin, the seed SD it was planned from, the planned n and
    the gates (``registrations.yml``, beside the claims).

    >>> registration("organoid-C6")["test"] in REGISTRATION_TESTS
    True
    """
    claim(claim_id)  # an unknown id is refused with the paper's ids
    return dict(_registrations()[claim_id])


def registration_hash(claim_id: str) -> str:
    """A short hash of ``claim_id``'s registration: a verdict judged under another hash is stale.

    Changing a rule after a result was seen stays possible, visibly: edit the entry and add to its
    ``revisions`` list ``{date, reason, previous_hash, previous_verdict, previous_effect}`` (the
    verdict and effect the earlier rule gave); the book shows it beside the new verdict. The
    ``revisions`` list itself is not part of the hash.

    >>> len(registration_hash("organoid-C6"))
    16
    """
    rule = {k: v for k, v in registration(claim_id).items() if k != "revisions"}  # the record of changes is not the rule
    text = json.dumps(rule, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def recorded_verdicts(book_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Judged claims in the run records under ``book_dir`` (``<paper>/*.record.json``).

    Returns ``{claim id: verdict entry}`` where each entry is what
    :func:`cellrepro.publish.report.record_verdict` stored plus ``notebook``, ``device``,
    ``profile`` and ``wall_time_s`` from the record. Smoke-profile records and failed runs are skipped; when two
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
                    "profile": rec.get("profile"), "started": rec.get("started", ""),
                    "wall_time_s": rec.get("wall_time_s")}
            cid = key[len(VERDICT_KEY):]
            if cid not in found or full["started"] >= found[cid]["started"]:
                found[cid] = full
    return found


OLD_PROTOCOL = "old protocol"


def implied(entry: dict[str, Any]) -> dict[str, Any]:
    """What a verdict recorded under the old protocol implies under :func:`cellrepro.publish.decision.decide`.

    From its stored mean, 95 % interval and n: the seed SD, the class, the minimal detectable effect
    and the units the paper's effect would need (the entry's own numeric effect, else the
    registration's for a superiority claim, said in ``why``). Only a rule of the form "CI > 0" on a
    mean difference over at least 2 units implies a class; a rule "CI > 0 and ..." implies one only
    when its interval alone rules out "holds" (its further conditions could only lower a holding
    verdict); a margin rule ("|CI| within ...") gets the SD and MDE but no class; anything else (a
    ratio, a median, an accuracy bar: not a mean difference) gets none of them.

    >>> e = {"effect": 0.005, "low": -0.004, "high": 0.014, "n": 3, "threshold": "CI > 0", "paper_effect": 0.05}
    >>> implied(e)["class"]
    "smaller than the paper's"
    >>> implied({**e, "threshold": "ratio CI > 1"})["class"] is None
    True
    """
    from ..decision import classify
    from ..power import implied_sd, mde_and_n

    mean, low, high, n = (entry.get(k) for k in ("effect", "low", "high", "n"))
    rule = str(entry.get("threshold") or "")
    none = {"class": None, "sd": None, "mde": None, "n_needed": None, "paper_effect": None}
    if not (all(isinstance(v, (int, float)) for v in (mean, low, high, n)) and n >= 2):
        return {**none, "why": "no interval over at least 2 units was stored"}
    if not rule.startswith(("CI ", "|CI|")):  # a ratio, a median, an accuracy bar: not a mean difference
        return {**none, "why": f"its rule ({rule or 'none stored'}) is not read off one interval of a mean difference"}
    paper, paper_from = entry.get("paper_effect"), ""
    if not isinstance(paper, (int, float)):
        paper = None
        claim_id = entry.get("claim")
        reg = _registrations().get(claim_id) if claim_id else None
        if reg and reg.get("test") == "superiority" and isinstance(reg.get("paper_effect"), (int, float)):
            paper, paper_from = reg["paper_effect"], "the paper's effect as registered"
    sd = implied_sd(low, high, int(n))
    if not rule.startswith("CI > 0"):
        mde, needed = mde_and_n(int(n), sd, paper, "superiority", 0.05)
        return {**none, "sd": sd, "mde": mde, "n_needed": needed, "paper_effect": paper,
                "why": f"its rule ({rule}) is not an interval against 0"}
    out = classify(float(mean), sd, int(n), test="superiority", paper_effect=paper, direction=1)
    klass, why = out["verdict"], [paper_from] if paper_from else []
    if rule != "CI > 0":
        if klass == "holds":  # its further conditions could still make it fail: no class
            return {**none, "sd": out["sd"], "mde": out["mde"], "n_needed": out["n_needed"], "paper_effect": paper,
                    "why": f"its interval clears 0, but its rule ({rule}) has further conditions not re-judged"}
        why.append("its rule's further conditions are not re-judged (they cannot turn this into holds)")
    return {"class": klass, "sd": out["sd"], "mde": out["mde"], "n_needed": out["n_needed"], "paper_effect": paper,
            "why": "; ".join(why)}


def claim_status(book_dir: str | Path, sections: set[str] | None = None) -> list[dict[str, Any]]:
    """Every claim with its verdict from the records, or why it has none.

    Args:
        book_dir: the book's ``book/`` folder holding ``<paper>/*.record.json``.
        sections: labels of the sections the book has (to tell "no section yet" from "its
            section has not recorded a verdict"); None: trust ``claims.yml``.

    Returns:
        The :func:`claims` dicts with ``verdict`` (an entry of :func:`recorded_verdicts`, or
        None), ``why`` (empty when judged), ``protocol`` (``"registered"``, :data:`OLD_PROTOCOL`,
        or None), ``class`` (the verdict class: the recorded one under a registration, the
        implied one for an old-protocol verdict, None when it cannot be implied), ``implied``
        (:func:`implied`, old protocol only), ``stale`` (the registration changed after the run) and
        ``revisions`` (the registration's record of rules changed after a result was seen).
    """
    judged = recorded_verdicts(book_dir)
    out = []
    for c in claims():
        entry = judged.get(c["id"])
        why, protocol, klass, imp, stale = "", None, None, None, False
        if entry is None:
            has_section = bool(c["section"]) and (sections is None or c["section"] in sections)
            if _registrations().get(c["id"], {}).get("test") == "descriptive" and has_section:
                why = "descriptive: its section shows the numbers beside the paper's; its registration judges nothing"
            elif c["needs"] != "syn":
                why = NEEDS[c["needs"]]
            elif has_section:
                why = "its section has no published verdict yet (only a smoke run, or no verdict recorded)"
            else:
                why = NEEDS["syn"]
        elif entry.get("registration"):
            protocol, klass = "registered", entry["verdict"]
            stale = entry["registration"] != registration_hash(c["id"])
        else:
            protocol, imp = OLD_PROTOCOL, implied(entry)
            klass = imp["class"]
        revisions = list(_registrations().get(c["id"], {}).get("revisions") or [])
        out.append({**c, "verdict": entry, "why": why, "protocol": protocol, "class": klass, "implied": imp,
                    "stale": stale, "revisions": revisions})
    return out


def chapter_status(rows: list[dict[str, Any]], paper: str) -> dict[str, Any]:
    """What a chapter's verdicts amount to, from :func:`claim_status` rows: never "reproduced".

    Returns ``judged`` (claims with a published verdict), ``testable`` (claims the synthetic
    stand-in can test), ``old`` (judged under the old protocol), ``stale`` (judged under a
    registration that has changed since) and ``classes``: verdict class -> count, old-protocol
    verdicts counted by the class their interval implies and under ``"old rule, no class"``
    when none can be implied.

    >>> rows = [{"paper": "x", "needs": "syn", "verdict": {}, "class": "holds", "protocol": "registered", "stale": False},
    ...         {"paper": "x", "needs": "syn", "verdict": None, "class": None, "protocol": None, "stale": False},
    ...         {"paper": "x", "needs": "private-only", "verdict": None, "class": None, "protocol": None, "stale": False}]
    >>> s = chapter_status(rows, "x"); s["judged"], s["testable"], s["classes"]["holds"]
    (1, 2, 1)
    """
    from ..decision import CLASSES

    mine = [r for r in rows if r["paper"] == paper]
    classes = {k: 0 for k in (*CLASSES, "old rule, no class")}
    for r in mine:
        if r["verdict"] is not None:
            classes[r["class"] or "old rule, no class"] += 1
    return {"judged": sum(r["verdict"] is not None for r in mine),
            "testable": sum(r["needs"] == "syn" for r in mine),
            "old": sum(r["protocol"] == OLD_PROTOCOL for r in mine),
            "stale": sum(bool(r["stale"]) for r in mine),
            "classes": classes}
