"""Finding projects by name, and cutting the answer into pages.

The project list must stay fast with 100,000 projects, so the sorted name
list (:class:`NameIndex`) is built once per index serial by the web layer
and cached; a search is then one pass of ``in`` over plain strings, in C,
with no store call. A search and a page are pure functions of that index.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass

from ministry.core.errors import NotFound
from ministry.core.models import ProjectRecord

PER_PAGE = 50

#: Longest query we search for: no project name is longer than this.
MAX_QUERY = 200


@dataclass(frozen=True)
class NameIndex:
    """Every project, sorted by canonical name, with the names alone beside them."""

    names: tuple[str, ...]
    projects: tuple[ProjectRecord, ...]

    @classmethod
    def of(cls, projects: Iterable[ProjectRecord]) -> NameIndex:
        ordered = sorted(projects, key=lambda project: project.name)
        return cls(tuple(project.name for project in ordered), tuple(ordered))

    def cache_weight(self) -> int:
        """Its own bytes, roughly (the records are shared with the index view)."""
        return 16 * len(self.names)

    def exact(self, name: str) -> int | None:
        """The position of a project named exactly ``name``, if any."""
        at = bisect_left(self.names, name)
        return at if at < len(self.names) and self.names[at] == name else None


class Paged:
    """The way to a page's neighbours, for a page that knows its ``number`` of ``pages``."""

    number: int
    pages: int

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


@dataclass(frozen=True)
class ResultPage(Paged):
    """One page of a search: what to show and how to reach the others."""

    query: str  # normalised; empty for "every project"
    number: int  # 1-based
    total: int  # projects matching, over all pages
    projects: tuple[ProjectRecord, ...]
    per_page: int = PER_PAGE

    @property
    def pages(self) -> int:
        return page_count(self.total, self.per_page)

    @property
    def first(self) -> int:
        """The 1-based position of the first project shown (0 when none)."""
        return (self.number - 1) * self.per_page + 1 if self.projects else 0


def page_count(total: int, per_page: int) -> int:
    """How many pages ``total`` results fill; an empty answer is one (empty) page."""
    return max(1, -(-total // per_page))


def normalise_query(text: str) -> str:
    """A query in the form names are kept in (PEP 503), so ``Foo_Bar`` finds ``foo-bar``.

    Separators at the ends are kept: ``-cli`` is a useful query. Whitespace
    inside a query is a separator too, as users type "foo bar" for foo-bar.
    """
    return re.sub(r"[-_.\s]+", "-", text.strip()[:MAX_QUERY]).lower()


def search(index: NameIndex, query: str, number: int = 1, per_page: int = PER_PAGE) -> ResultPage:
    """Page ``number`` of the projects whose canonical name contains ``query``.

    ``query`` must be normalised already. Matches come in name order, except
    that a project named exactly ``query`` comes first. Raises NotFound for a
    page past the last (page 1 always exists, even when empty).
    """
    if number < 1:
        raise NotFound(f"No page {number}: pages start at 1.")
    if query:
        exact = index.exact(query)
        matches = [at for at, name in enumerate(index.names) if query in name and at != exact]
        if exact is not None:
            matches.insert(0, exact)
        total = len(matches)
    else:
        total = len(index.names)
    start = (number - 1) * per_page
    if start >= total and number > 1:
        raise NotFound(f"No page {number}: there are {page_count(total, per_page)}.")
    if query:
        shown = tuple(index.projects[at] for at in matches[start : start + per_page])
    else:
        shown = index.projects[start : start + per_page]
    return ResultPage(query, number, total, shown, per_page)
