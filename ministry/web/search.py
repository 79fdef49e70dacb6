"""``/projects/?q=...&page=N``: every project, searched by name, 50 to a page.

Each project is listed with its summary, which the store keeps in the
project record (``ministry.core.summaries``): no file's metadata is read.

The sorted name list is built once per change to the index and kept in the
page cache under the all-projects scope, so any upload drops it; a search
is a pure function over it (:mod:`ministry.core.search`) and costs no store
call. Each rendered page of results is cached the same way.
"""

from __future__ import annotations

from urllib.parse import urlencode

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.web.iweb import IRequest

from ministry.catalog.cache import ALL
from ministry.catalog.views import Catalog
from ministry.core.errors import BadRequest
from ministry.core.search import NameIndex, ResultPage, normalise_query, search
from ministry.web.errors import refusing_app
from ministry.web.html import render_html, send_html
from ministry.web.http.rendered import Page, PageResponse


def _argument(request: IRequest, name: bytes) -> str:
    values = request.args.get(name)
    return values[0].decode("utf-8", "replace") if values else ""


def page_number(text: str) -> int:
    """The ``page`` parameter: a positive whole number, 1 when absent."""
    if not text:
        return 1
    if not text.isdigit() or len(text) > 9 or int(text) < 1:
        raise BadRequest(f"Invalid page {text[:20]!r}: use a whole number from 1.")
    return int(text)


def page_link(result: ResultPage, number: int) -> str:
    """The query string of another page of the same search."""
    params = {"q": result.query} if result.query else {}
    if number > 1:
        params["page"] = str(number)
    return "?" + urlencode(params) if params else "./"


class ProjectList:
    """The ``/projects/`` page."""

    app = refusing_app()

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    @app.route("/", methods=["GET", "HEAD"])
    def projects(self, request: IRequest):
        query = normalise_query(_argument(request, b"q"))
        number = page_number(_argument(request, b"page"))
        return ensureDeferred(self._render(request, query, number))

    async def _render(self, request: IRequest, query: str, number: int) -> PageResponse:
        async def render() -> Page:
            result = search(await self.names(), query, number)
            return render_html(
                "projects.html", root="../", result=result, page_link=page_link, nav="projects"
            )

        key = (ALL, "page", "projects", query, number)
        return send_html(request, await self.catalog.cache.get_or_fill(key, render))

    def names(self) -> Deferred[NameIndex]:
        """The sorted name list, built at most once per change to the index."""
        return self.catalog.cache.get_or_fill((ALL, "names"), self._build_names)

    async def _build_names(self) -> NameIndex:
        return NameIndex.of((await self.catalog.index()).projects)
