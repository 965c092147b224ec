"""Sphinx extension: the claims-and-verdicts page and each chapter's status line, from the records.

The book never computes: these directives only read ``cellrepro/publish/claims/*.yml`` and the run
records committed beside the executed notebooks (``book/<paper>/*.record.json``), through
:func:`cellrepro.publish.claims.claim_status`, when the book is built. A chapter's status and the
claims page therefore change exactly when a published record does.

Directives (MyST: ```` ```{claims-table} organoid ```` and so on):

``claims-summary``
    one row per paper: claims, how many the synthetic stand-in can test, how many are judged, and
    the judged ones counted by verdict class (old-protocol verdicts by the class their interval
    implies), how many predate the registered protocol and how many are stale.
``claims-table PAPER``
    one row per claim of PAPER: claim and where in the paper, verdict class, effect and interval,
    the minimal detectable effect and the gates, and a link to the judging section with the run's
    profile and device; or "not judged" and why.
    Each row carries the anchor ``claim-<id>``.
``inconsistencies``
    the papers' self-contradictions, each under a rubric labelled ``inconsistency-<n>``, so a
    chapter links one with ``{ref}`inconsistency #21 <inconsistency-21>```.
``chapter-status`` (or ``chapter-findings``)
    on a chapter page ``book/<paper>/index``: "What this chapter found", the counts by class and a
    table of the chapter's verdicts (class, effect, the paper's, MDE, gates). A paper is never
    called "reproduced" for having verdicts: the classes speak.

Smoke-profile records never count (their numbers only show that the code runs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from docutils import nodes
from sphinx import addnodes
from sphinx.util.docutils import SphinxDirective

from .. import PAPERS
from .claims import OLD_PROTOCOL, chapter_status, claim_status, claims, inconsistencies
from .decision import CLASSES, MARGIN_TESTS
from .record import format_duration
from .tables import fmt_number
from .verdicts import effect_text, gates_text

NodeLike = str | nodes.Node | Sequence[nodes.Node]


def _ref(label: str, text: str | None = None) -> addnodes.pending_xref:
    """A cross-reference to the section or target ``label`` (resolved, and checked, by Sphinx);
    without ``text`` it reads as the section's title."""
    ref = addnodes.pending_xref("", refdomain="std", reftype="ref", reftarget=label, refexplicit=text is not None,
                                refwarn=True)
    ref += nodes.inline(text or label, text or label)
    return ref


def _cell(content: NodeLike) -> nodes.entry:
    entry = nodes.entry()
    para = nodes.paragraph()
    if isinstance(content, str):
        para += nodes.Text(content)
    elif isinstance(content, nodes.Node):
        para += content
    else:
        para.extend(content)
    entry += para
    return entry


def _table(headers: list[str], rows: list[list[NodeLike]], widths: list[int], classes: list[str],
           row_ids: list[str] | None = None) -> nodes.container:
    """A docutils table inside a scrolling box (CSS ``cellrepro-table``)."""
    table = nodes.table(classes=["cellrepro-data", *classes])
    group = nodes.tgroup(cols=len(headers))
    table += group
    group.extend(nodes.colspec(colwidth=w) for w in widths)
    head = nodes.thead()
    hrow = nodes.row()
    hrow.extend(_cell(h) for h in headers)
    head += hrow
    group += head
    body = nodes.tbody()
    for i, cells in enumerate(rows):
        row = nodes.row(ids=[row_ids[i]] if row_ids else [])
        row.extend(_cell(c) for c in cells)
        body += row
    group += body
    box = nodes.container(classes=["cellrepro-table"])
    box += table
    return box


class _RecordsDirective(SphinxDirective):
    """Base: the claim rows of this build, with the records noted as dependencies of the page."""

    def rows(self) -> list[dict[str, Any]]:
        book_dir = Path(self.env.srcdir) / "book"
        for path in sorted(book_dir.glob("*/*.record.json")):
            self.env.note_dependency(str(path))
        here = Path(__file__).resolve().parent
        for path in (here / "claims" / "registrations.yml", here / "claims" / "claims.yml", here / "decision.py"):
            self.env.note_dependency(str(path))  # a changed registration or rule re-renders the pages
        return claim_status(book_dir)


def _class_text(row: dict[str, Any]) -> str:
    """The verdict column: the class, how it was reached (old protocol: implied from the stored
    interval, with the recorded word) and whether its registration changed since."""
    v = row["verdict"]
    if row["protocol"] == OLD_PROTOCOL:
        implied = row["implied"] or {}
        said = f"old protocol: recorded '{v['verdict']}'"
        if row["class"] is None:
            return f"{said}; no class implied ({implied.get('why', '')})" + _revisions_text(row)
        extra = f"; {implied['why']}" if implied.get("why") else ""
        return f"{row['class']} (implied; {said}{extra})" + _revisions_text(row)
    text = row["class"] or v["verdict"]
    if v.get("smaller_than_paper"):
        text += ", smaller than the paper's"
    text += " — STALE: its registration changed after the run" if row["stale"] else ""
    return text + _revisions_text(row)


def _revisions_text(row: dict[str, Any]) -> str:
    """Rules changed after a result was seen, each with its reason and the earlier rule's verdict."""
    parts = [f"; rule revised on {r['date']} after a result was seen ({r['reason']}): the earlier rule "
             f"(registration {r['previous_hash']}) gave '{r['previous_verdict']}'"
             + (f", {r['previous_effect']}" if r.get("previous_effect") else "") for r in row.get("revisions") or []]
    return "".join(parts)


def _mde_text(row: dict[str, Any]) -> str:
    """MDE at 80 % power and the units the paper's effect would need (recorded or implied)."""
    v = row["verdict"] or {}
    src = row["implied"] if row["protocol"] == OLD_PROTOCOL else v
    if not src or src.get("mde") is None:
        return "—"
    digits = int(v.get("digits") or 3)
    text = f"MDE {fmt_number(src['mde'], digits)}"
    if src.get("n_needed"):
        test = v.get("test") if row["protocol"] != OLD_PROTOCOL else "superiority"
        aim = "the margin" if test in MARGIN_TESTS else "the paper's effect" if (src.get("paper_effect") is not None) \
            else "the registered smallest effect of interest"
        text += f"; {src['n_needed']} {v.get('over') or 'seeds'} to detect {aim}"
        seconds = v.get("seconds_needed")
        if not seconds and v.get("wall_time_s") and v.get("n"):  # the whole section's time per unit it ran
            seconds = v["wall_time_s"] / v["n"] * src["n_needed"]
        if seconds:
            text += f" (~{format_duration(seconds)} on the run's device)"
    return text


def _gates_text(row: dict[str, Any]) -> str:
    if row["protocol"] == OLD_PROTOCOL:
        return "none recorded (old protocol)"
    return gates_text(row["verdict"] or {})


SUMMARY_CLASSES = (*CLASSES, "old rule, no class")


class ClaimsSummary(_RecordsDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        rows = self.rows()
        cells = []
        for paper in PAPERS:
            s = chapter_status(rows, paper)
            total = sum(r["paper"] == paper for r in rows)
            cells.append([_ref(f"claims-{paper}", paper), str(total), str(s["testable"]), str(s["judged"]),
                          *(str(s["classes"][c]) for c in SUMMARY_CLASSES), str(s["old"]), str(s["stale"])])
        return [_table(["paper", "claims", "testable on synthetic data", "judged", *SUMMARY_CLASSES,
                        "of which old protocol", "stale"], cells,
                       [2, 1, 2, 1, 1, 1, 2, 2, 2, 2, 2, 1], ["cellrepro-claims-summary"])]


class ClaimsTable(_RecordsDirective):
    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        paper = self.arguments[0]
        if paper not in PAPERS:
            raise self.error(f"claims-table: unknown paper '{paper}' (papers: {', '.join(PAPERS)})")
        cells, ids = [], []
        for r in (r for r in self.rows() if r["paper"] == paper):
            ids.append(f"claim-{r['id']}")
            claim = [nodes.strong(text=r["id"]), nodes.Text(f": {r['claim']} ({r['where']})")]
            v = r["verdict"]
            if v is None:
                section = [_ref(r["section"])] if r["section"] else "—"
                cells.append([claim, nodes.emphasis(text="not judged"), r["why"], "—", section])
                continue
            effect, interval = effect_text(v)
            metric = v.get("metric") or ""
            label = (v.get("notebook") or "").replace("/", "-") or r["section"]
            run = [_ref(label)] if label else []
            run.append(nodes.Text(f" ({v.get('profile')} profile, {v.get('device') or 'device not recorded'})"))
            shown = f"{effect} ({interval})" if interval.startswith("no") else f"{effect} {interval}"
            cells.append([claim, nodes.strong(text=_class_text(r)), f"{metric}: {shown}".strip(": "),
                          f"{_mde_text(r)}; gates: {_gates_text(r)}", run])
        return [_table(["claim (where in the paper)", "verdict class", "effect [95% interval], or why none",
                        "power and gates", "section (profile, device)"],
                       cells, [7, 3, 5, 4, 3], ["cellrepro-verdicts", "cellrepro-claims"], ids)]


class Inconsistencies(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        out: list[nodes.Node] = []
        for item in inconsistencies():
            name = f"inconsistency-{item['n']}"
            rubric = nodes.rubric(text=f"Inconsistency #{item['n']} ({item['paper']})", ids=[name], names=[name])
            self.state.document.note_explicit_target(rubric)
            items = nodes.bullet_list()
            for key, lead in (("says", "The paper says: "), ("shows", "Its own text or tables show: "), ("so", "This project: ")):
                li = nodes.list_item()
                para = nodes.paragraph()
                para += nodes.strong(text=lead)
                para += nodes.Text(item[key])
                li += para
                items += li
            box = nodes.container(classes=["cellrepro-inconsistency"])
            box += [rubric, items]
            out.append(box)
        return out


class ChapterStatus(_RecordsDirective):
    """``chapter-status`` (alias ``chapter-findings``): "What this chapter found", generated.

    A line of counts by verdict class, then one row per claim of the paper: the claim, its class
    (old-protocol verdicts labelled, with the class their stored interval implies), this run's
    effect with its interval, the paper's effect, the minimal detectable effect and the gates.
    """

    optional_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        parts = self.env.docname.split("/")
        paper = self.arguments[0] if self.arguments else (parts[1] if len(parts) > 2 else "")
        if paper not in PAPERS:
            raise self.error(f"chapter-status: cannot tell the paper of '{self.env.docname}'; give it as argument")
        rows = self.rows()
        s = chapter_status(rows, paper)
        total = len(claims(paper))
        counts = ", ".join(f"{n} {c}" for c, n in s["classes"].items() if n)
        para = nodes.paragraph()
        para += nodes.strong(text="What this chapter found. ")
        para += nodes.Text(f"{s['judged']} of the paper's {total} claims have a published verdict ({counts or 'none'}); "
                           f"{s['testable']} can be tested on the synthetic stand-in. ")
        if s["old"]:
            para += nodes.Text(f"{s['old']} verdicts predate the registered protocol (\"old protocol\"): each is shown "
                               "with the class its stored interval implies, where its rule allows one. ")
        if s["stale"]:
            para += nodes.Text(f"{s['stale']} are STALE: their registration changed after the run. ")
        para += nodes.Text("Every claim, its verdict or why it has none: ")
        para += _ref(f"claims-{paper}", "Claims and verdicts")
        para += nodes.Text(".")
        box = nodes.container(classes=["cellrepro-status", "cellrepro-findings"])
        box += para
        cells = []
        for r in (r for r in rows if r["paper"] == paper and r["verdict"] is not None):
            v = r["verdict"]
            effect, interval = effect_text(v)
            paper_effect = v.get("paper_effect")
            digits = int(v.get("digits") or 3)
            paper_text = fmt_number(paper_effect, digits, signed=True) \
                if isinstance(paper_effect, (int, float)) else (paper_effect or "—")
            used = (r["implied"] or {}).get("paper_effect")
            if used is not None and not isinstance(paper_effect, (int, float)):
                paper_text = f"{paper_text} (registered: {fmt_number(used, digits, signed=True)})"
            cells.append([nodes.strong(text=r["id"]), _class_text(r),
                          f"{effect} ({interval})" if interval.startswith("no") else f"{effect} {interval}",
                          str(paper_text), _mde_text(r), _gates_text(r)])
        out: list[nodes.Node] = [box]
        if cells:
            out.append(_table(["claim", "class", "our effect [95% interval]", "the paper's", "MDE (80% power)", "gates"],
                              cells, [2, 4, 4, 3, 4, 3], ["cellrepro-verdicts", "cellrepro-findings-table"]))
        return out


def setup(app):  # noqa: ANN001 - Sphinx's extension entry point
    from .tables import install_glue_text

    install_glue_text()  # a missing number glued into prose reads "n/a", never "nan"
    app.add_directive("claims-summary", ClaimsSummary)
    app.add_directive("claims-table", ClaimsTable)
    app.add_directive("inconsistencies", Inconsistencies)
    app.add_directive("chapter-status", ChapterStatus)
    app.add_directive("chapter-findings", ChapterStatus)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
