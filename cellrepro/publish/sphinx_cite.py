"""Sphinx extension: the ``{cite-this-chapter}`` directive that ends every chapter page.

Readers cite single ablation chapters, so each page states its stable label, its URL, the
commit the book was built from and a BibTeX entry. The label is derived from the page's
path (``book/organoid/ablation-frozen`` -> ``organoid-ablation-frozen``, a chapter index
``book/spheroid/index`` -> ``spheroid``) and matches the MyST target at the top of the page;
the commit is read from git when the book is built, so it cannot go stale. Enabled in
``_config.yml`` under ``sphinx: extra_extensions``.

Configuration (``sphinx: config:``): ``html_baseurl`` (the published site),
``cellrepro_repository`` (repository URL), and the book's title (``html_title``) and ``author``.
"""

from __future__ import annotations

import subprocess
from datetime import date

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective


def chapter_label(docname: str) -> str:
    """Stable label of a page: its path under ``book/`` with ``/`` as ``-`` and no ``index``."""
    parts = docname.split("/")
    if parts and parts[0] == "book":
        parts = parts[1:]
    if len(parts) > 1 and parts[-1] == "index":
        parts = parts[:-1]
    return "-".join(parts)


def _git(srcdir: str, *args: str) -> str | None:
    try:
        return subprocess.run(["git", "-C", srcdir, *args], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


class CiteThisChapter(SphinxDirective):
    """Render the "Cite this chapter" block for the current page."""

    has_content = False
    option_spec = {"label": directives.unchanged, "title": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        env = self.env
        config = env.config
        docname = env.docname
        label = self.options.get("label") or chapter_label(docname)
        titles = list(self.state.document.findall(nodes.title))
        title = self.options.get("title") or (titles[0].astext() if titles else label)
        base = (config.html_baseurl or "").rstrip("/")
        url = f"{base}/{docname}.html" if base else f"{docname}.html"
        commit = _git(str(env.srcdir), "rev-parse", "HEAD")
        dirty = bool(_git(str(env.srcdir), "status", "--porcelain", "--untracked-files=no"))
        commit_text = (commit[:10] + (" (with uncommitted changes)" if dirty else "")) if commit else "unknown (not built from a git checkout)"
        year = (_git(str(env.srcdir), "log", "-1", "--format=%cs") or date.today().isoformat())[:4]
        book = config.html_title or config.project
        author = config.author or "cellrepro contributors"
        bibtex = "\n".join([
            f"@misc{{cellrepro-{label},",
            f"  title        = {{{{{title}}}}},",
            f"  author       = {{{{{author}}}}},",
            f"  howpublished = {{{book}, chapter `{label}'}},",
            f"  year         = {{{year}}},",
            f"  url          = {{{url}}},",
            f"  note         = {{Commit {commit[:10] if commit else 'unknown'}}}",
            "}",
        ])
        rubric = nodes.rubric(text="Cite this chapter")
        para = nodes.paragraph()
        para += nodes.Text("Stable label ")
        para += nodes.literal(text=label)
        para += nodes.Text(" · URL ")
        para += nodes.reference(text=url, refuri=url)
        para += nodes.Text(" · built from commit ")
        para += nodes.literal(text=commit_text)
        if config.cellrepro_repository and commit:
            para += nodes.Text(" (")
            tree = f"{config.cellrepro_repository.rstrip('/')}/tree/{commit}"
            para += nodes.reference(text="source at that commit", refuri=tree)
            para += nodes.Text(")")
        block = nodes.literal_block(bibtex, bibtex, language="bibtex")
        container = nodes.container(classes=["cellrepro-cite"])
        container += [rubric, para, block]
        return [container]


def setup(app):  # noqa: ANN001 - Sphinx's extension entry point
    app.add_config_value("cellrepro_repository", "", "html")
    app.add_directive("cite-this-chapter", CiteThisChapter)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
