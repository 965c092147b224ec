"""Sphinx extension: author-year labels in the bibliography, matching the author-year citations.

sphinxcontrib-bibtex cites author-year in the text (``bibtex_reference_style: author_year``)
but labels the reference list with pybtex's default ``alpha`` labels ("[CLB+22]"), so a reader
cannot find "Chen et al. (2021)" in the list. This registers a pybtex formatting style
``cellrepro_author_year`` (pybtex's ``unsrt`` entries, sorted by author, year and title, labelled
"Chen et al., 2021"); ``_config.yml`` loads the extension and sets ``bibtex_default_style`` to it. pybtex ships
no author-year label style, hence this one.

>>> from pybtex.database import parse_string
>>> bib = parse_string('''@article{a, author={Nguyen, A. and Le, B. and Tran, C.}, title={T}, journal={J}, year={2024}}
... @article{b, author={Golestaneh, S. and Karam, L.}, title={U}, journal={J}, year={2017}}
... @article{c, author={Prytula, M.}, title={V}, journal={J}, year={2023}}''', "bibtex")
>>> list(AuthorYearLabels().format_labels(bib.entries.values()))
['Nguyen et al., 2024', 'Golestaneh and Karam, 2017', 'Prytula, 2023']
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Iterator

from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle

STYLE = "cellrepro_author_year"


def _surname(person: Any) -> str:
    return " ".join(person.prelast_names + person.last_names) or str(person)


class AuthorYearLabels(BaseLabelStyle):
    """Labels "Surname, Year", "A and B, Year" or "A et al., Year"; "a", "b" appended to repeats."""

    def _label(self, entry: Any) -> str:
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        if not people:
            names = entry.fields.get("organization") or entry.key
        elif len(people) == 1:
            names = _surname(people[0])
        elif len(people) == 2:
            names = f"{_surname(people[0])} and {_surname(people[1])}"
        else:
            names = f"{_surname(people[0])} et al."
        return f"{names}, {entry.fields.get('year', 'n.d.')}".replace("{", "").replace("}", "")

    def format_labels(self, sorted_entries: Iterable[Any]) -> Iterator[str]:
        labels = [self._label(e) for e in sorted_entries]
        counts, seen = Counter(labels), Counter()
        for label in labels:
            if counts[label] > 1:
                seen[label] += 1
                yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]
            else:
                yield label


class AuthorYearStyle(UnsrtStyle):
    """pybtex's ``unsrt`` entries with author-year labels, sorted by author, year and title."""

    default_label_style = AuthorYearLabels
    default_sorting_style = "author_year_title"


def setup(app):  # noqa: ANN001 - Sphinx's extension entry point
    register_plugin("pybtex.style.formatting", STYLE, AuthorYearStyle, force=True)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
