"""Checks on the built HTML book, shared by the book-build tests (no build of its own).

:func:`problems` walks the pages of the TOC and names, per page, what a reader would meet:
no cite block, math left as raw ``\\(``/``\\[`` text outside MathJax's reach or a MathJax loaded
from the network, a figure without a caption, and "nan" in a verdict table.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

from bs4 import BeautifulSoup

# Sections whose notebooks have not adopted captioned figures yet (their owner rewrites them);
# take a page off this list when its figures are pasted with {glue:figure} and a caption.
PENDING_CAPTIONS = {
    "book/organoid/pipeline", "book/organoid/ablation-data", "book/organoid/ablation-loss",
    "book/organoid/ablation-frozen",
}
RAW_MATH = re.compile(r"\\\(|\\\[")
NAN = re.compile(r"\bnan\b", re.IGNORECASE)


def _main(soup: BeautifulSoup):
    return soup.find("main") or soup.find("article") or soup.body or soup


def page_problems(html: str, docname: str, check_captions: bool = True) -> list[str]:
    """What is wrong with one page (empty: nothing)."""
    soup = BeautifulSoup(html, "html.parser")
    found: list[str] = []
    if not soup.select(".cellrepro-cite"):
        found.append(f"{docname}: no cite block")
    for script in soup.find_all("script", src=True):
        if "mathjax" in script["src"].lower() and re.match(r"(https?:)?//", script["src"]):
            found.append(f"{docname}: MathJax loaded from the network ({script['src']})")
    main = _main(soup)
    for tag in main.find_all(["script", "style", "pre", "code", "textarea"]):
        tag.decompose()
    for tag in main.select(".math"):  # MathJax typesets these (dollarmath, amsmath, {math})
        tag.decompose()
    text = main.get_text(" ")
    if RAW_MATH.search(text):
        i = RAW_MATH.search(text).start()
        found.append(f"{docname}: raw math outside MathJax's reach: {text[max(0, i - 40):i + 40]!r}")
    if check_captions:
        for fig in main.find_all("figure"):
            if not fig.find("figcaption") or not fig.find("figcaption").get_text(strip=True):
                found.append(f"{docname}: a figure without a caption")
        for img in main.select(".cell_output img"):
            if not img.find_parent("figure"):
                found.append(f"{docname}: an output image that is not a captioned figure ({img.get('src', '')[-30:]})")
        for img in main.find_all("img"):
            alt = img.get("alt", "")
            if not alt or re.fullmatch(r"[./_a-z]*[0-9a-f]{16,}\.(png|svg|jpg)", alt):
                found.append(f"{docname}: an image without readable alt text ({alt[-30:]!r})")
    for table in main.select("table.cellrepro-verdicts"):
        if NAN.search(table.get_text(" ")):
            found.append(f"{docname}: 'nan' in a verdict table")
    return found


def problems(html_root: Path, docnames: Iterable[str]) -> list[str]:
    """:func:`page_problems` over the pages ``<html_root>/<docname>.html``."""
    out: list[str] = []
    for doc in docnames:
        page = html_root / f"{doc}.html"
        if not page.is_file():
            out.append(f"{doc}: page not built")
            continue
        out += page_problems(page.read_text(encoding="utf-8"), doc, check_captions=doc not in PENDING_CAPTIONS)
    return out


def progress_output(text: str) -> list[str]:
    """Lines of ``text`` that look like a tqdm bar (``desc: 33%|###  | 1/3 [00:00<...]``)."""
    return [line for line in re.split(r"[\r\n]", text) if re.search(r"\d+%\|.*\| *\d+/\d+|\d+/\d+ \[\d\d:\d\d", line)]
