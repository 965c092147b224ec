"""Sphinx extension: the claims-and-verdicts page and each chapter's status line, from the records.

The book never computes: these directives only read ``cellrepro/claims/*.yml`` and the run
records committed beside the executed notebooks (``book/<paper>/*.record.json``), through
:func:`cellrepro.claims.claim_status`, when the book is built. A chapter's status and the
claims page therefore change exactly when a published record does.

Directives (MyST: ```` ```{claims-table} organoid ```` and so on):

``claims-summary``
    one row per paper: claims, how many the synthetic stand-in can test, how many are judged, status.
``claims-table PAPER``
    one row per claim of PAPER: claim and where in the paper, verdict, effect and interval, and
    a link to the judging section with the run's profile and device; or "not yet reproduced" and why.
    Each row carries the anchor ``claim-<id>``.
``inconsistencies``
    the papers' self-contradictions, each under a rubric labelled ``inconsistency-<n>``, so a
    chapter links one with ``{ref}`inconsistency #21 <inconsistency-21>```.
``chapter-status``
    on a chapter page ``book/<paper>/index``: reproduced / partly / not yet, with counts.

Smoke-profile records never count (their numbers only show that the code runs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from docutils import nodes
from sphinx import addnodes
from sphinx.util.docutils import SphinxDirective

from . import PAPERS
from .claims import chapter_status, claim_status, claims, inconsistencies
from .verdicts import effect_text

STATUS_TEXT = {"reproduced": "reproduced", "partly": "partly reproduced", "not yet": "not yet reproduced"}
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
        return claim_status(book_dir)


class ClaimsSummary(_RecordsDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        rows = self.rows()
        cells = []
        for paper in PAPERS:
            status, judged, testable = chapter_status(rows, paper)
            total = sum(r["paper"] == paper for r in rows)
            cells.append([_ref(f"claims-{paper}", paper), str(total), str(testable), str(judged), STATUS_TEXT[status]])
        return [_table(["paper", "claims", "testable on synthetic data", "judged", "status"], cells,
                       [2, 1, 2, 1, 2], ["cellrepro-claims-summary"])]


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
                cells.append([claim, nodes.emphasis(text="not yet reproduced"), r["why"], section])
                continue
            effect, interval = effect_text(v)
            metric = v.get("metric") or ""
            label = (v.get("notebook") or "").replace("/", "-") or r["section"]
            run = [_ref(label)] if label else []
            run.append(nodes.Text(f" ({v.get('profile')} profile, {v.get('device') or 'device not recorded'})"))
            shown = f"{effect} ({interval})" if interval.startswith("no") else f"{effect} {interval}"
            cells.append([claim, nodes.strong(text=v["verdict"]), f"{metric}: {shown}".strip(": "), run])
        return [_table(["claim (where in the paper)", "verdict", "effect [95% interval], or why not yet",
                        "section (profile, device)"],
                       cells, [8, 2, 5, 4], ["cellrepro-verdicts", "cellrepro-claims"], ids)]


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
    optional_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        parts = self.env.docname.split("/")
        paper = self.arguments[0] if self.arguments else (parts[1] if len(parts) > 2 else "")
        if paper not in PAPERS:
            raise self.error(f"chapter-status: cannot tell the paper of '{self.env.docname}'; give it as argument")
        rows = self.rows()
        status, judged, testable = chapter_status(rows, paper)
        total = len(claims(paper))
        para = nodes.paragraph()
        para += nodes.strong(text=f"Status: {STATUS_TEXT[status]}. ")
        para += nodes.Text(f"{judged} of the paper's {total} claims have a published verdict; "
                           f"{testable} can be tested on the synthetic stand-in, the rest need private or "
                           "unreachable data or are qualitative. Every claim, its verdict or why it has none: ")
        para += _ref(f"claims-{paper}", "Claims and verdicts")
        para += nodes.Text(".")
        box = nodes.container(classes=["cellrepro-status", f"cellrepro-status-{status.replace(' ', '-')}"])
        box += para
        return [box]


def setup(app):  # noqa: ANN001 - Sphinx's extension entry point
    app.add_directive("claims-summary", ClaimsSummary)
    app.add_directive("claims-table", ClaimsTable)
    app.add_directive("inconsistencies", Inconsistencies)
    app.add_directive("chapter-status", ChapterStatus)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
