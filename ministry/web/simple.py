"""``/simple/``: the Simple Repository API (PEP 503 HTML, PEP 691 JSON).

The hot path of every install. A request costs one negotiation, one cache
look-up and one write: pages are rendered once per project change by the
pure core and kept as bytes with their ETag. A big page is then compressed
once, in a thread, and kept with its gzip copy beside it for the installers
that ask for gzip (``web.http.rendered``); until the copy is ready, it goes
out as it is.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from twisted.internet.defer import ensureDeferred
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.web.iweb import IRequest

from ministry.catalog.cache import ALL, Key
from ministry.catalog.views import Catalog, ProjectView
from ministry.core import negotiate, simple
from ministry.core.errors import MinistryError, NotFound
from ministry.core.models import FileRecord, ProjectRecord
from ministry.core.names import canonical
from ministry.web.errors import refusing_app
from ministry.web.http.rendered import Page, PageResponse, accept_of
from ministry.web.http.responses import redirect
from ministry.web.http.shortcut import Shortcut
from ministry.web.saved_index import SavedIndex
from ministry.web.urls import Urls


def _format_param(request: IRequest) -> str | None:
    values = request.args.get(b"format")
    return values[0].decode("latin-1") if values else None


#: From this many files, a project's page is rendered off the reactor thread,
#: and its files' lines are kept for the next render (``core.simple.FileLines``).
BIG_PROJECT_FILES = 1000
#: The pages (project and format) whose lines are kept: a few megabytes each.
KEPT_PAGES = 8

log = Logger()


def _project_page(
    view: ProjectView,
    file_url: Callable[[FileRecord], str],
    content_type: str,
    kept: simple.FileLines | None = None,
) -> Page:
    body = simple.render_project(
        view.project, list(view.files), file_url, content_type, view.upload_time_known, kept
    )
    return Page.of(body, content_type, view.project.serial)


def _index_page(projects: list[ProjectRecord], serial: int, content_type: str) -> Page:
    return Page.of(simple.render_index(projects, serial, content_type), content_type, serial)


class SimpleIndex:
    """The ``/simple/`` tree."""

    app = refusing_app()

    def __init__(self, catalog: Catalog, urls: Urls, saved: SavedIndex | None = None) -> None:
        self.catalog = catalog
        self.urls = urls
        self.saved = saved
        self._kept: OrderedDict[tuple[str, str], simple.FileLines] = OrderedDict()

    def _lines_of(self, name: str, content_type: str) -> simple.FileLines:
        """The kept lines of a big project's page in one format (the least recent go)."""
        key = (name, content_type)
        lines = self._kept.pop(key, None) or simple.FileLines()
        self._kept[key] = lines
        while len(self._kept) > KEPT_PAGES:
            self._kept.popitem(last=False)
        return lines

    def _content_type(self, request: IRequest) -> str:
        return negotiate.choose(accept_of(request), _format_param(request))

    def _gzip_later(self, key: Key, page: Page) -> None:
        """Give a page just rendered its gzip copy, in a thread, if it is big enough.

        Not in the render itself: compressing 3 MB takes 100-150 ms, which
        the first request after an upload would wait for. Called before the
        render returns: the fill caches ``page`` as it returns, and the
        thread's answer comes on a later turn of the reactor, so
        :meth:`PageCache.upgrade` finds it there, unless an upload has
        dropped it meanwhile.
        """
        if not page.wants_gzip():
            return
        compressed = deferToThread(page.with_gzip)
        compressed.addCallback(lambda copy: self.catalog.cache.upgrade(key, page, copy))
        compressed.addErrback(lambda failure: log.failure("Compressing {key}", failure, key=key))

    def _response(self, page: Page, request: IRequest) -> PageResponse:
        return PageResponse(page, accept_encoding=request.getHeader(b"accept-encoding"))

    def resource(self) -> Shortcut:
        """The tree: cached pages answered by :meth:`cached`, the rest by the routes.

        The routes only see misses (and redirects and errors), so they render
        without looking in the cache again.
        """
        return Shortcut(self.cached, self.app.resource())

    def cached(self, request: IRequest) -> PageResponse | None:
        """A cached page for a GET or HEAD that needs no routing (``web.http.shortcut``)."""
        postpath = request.postpath
        if postpath == [b""]:
            scope = ALL
        elif len(postpath) == 2 and not postpath[1] and postpath[0]:
            try:
                scope = postpath[0].decode("utf-8")
            except UnicodeDecodeError:
                return None
            if canonical(scope) != scope:
                return None
        else:
            return None
        try:
            content_type = self._content_type(request)
        except MinistryError:  # 406: the routes say why
            return None
        page = self.catalog.cache.get((scope, "simple", content_type))
        return None if page is None else self._response(page, request)

    @app.route("/", methods=["GET", "HEAD"])
    def index(self, request: IRequest):
        return ensureDeferred(self._render_index(request, self._content_type(request)))

    async def _render_index(self, request: IRequest, content_type: str) -> PageResponse:
        key = (ALL, "simple", content_type)

        async def render() -> Page:
            saved = None if self.saved is None else await self.saved.take(content_type)
            if saved is not None and saved.serial == await self.catalog.store.last_serial():
                page = saved  # the last stop's, and nothing changed since
            else:
                view = await self.catalog.index()
                projects = [*view.projects, *view.cached]
                # In a thread: at 100,000 projects, rendering and hashing take 50-80 ms.
                page = await deferToThread(_index_page, projects, view.serial, content_type)
            self._gzip_later(key, page)
            return page

        return self._response(await self.catalog.cache.fill(key, render), request)

    @app.route("/<path:name>", methods=["GET", "HEAD"])
    def project(self, request: IRequest, name: str):
        name, slash = name.removesuffix("/"), name.endswith("/")
        normal = canonical(name)
        if normal != name or not slash or "/" in name:
            if "/" in name:
                raise NotFound(f"No such page: /simple/{name}/")
            return redirect(request, f"/simple/{normal}/")
        content_type = self._content_type(request)
        return ensureDeferred(self._render_project(request, normal, content_type))

    async def _render_project(
        self, request: IRequest, name: str, content_type: str
    ) -> PageResponse:
        key = (name, "simple", content_type)

        async def render() -> Page | None:
            # The view is read inside the fill, so an upload that lands while
            # this page renders makes the fill discard it instead of caching it.
            view = await self.catalog.project(name)
            if view is None:
                return None
            args = (view, self.urls.file_from_simple, content_type)
            if len(view.files) < BIG_PROJECT_FILES:
                page = _project_page(*args)
            else:
                # 10,000 files take a render of 50-250 ms: not on the reactor's thread.
                # A proxied project's records are new objects each time: nothing to keep.
                kept = None if view.sources else self._lines_of(name, content_type)
                page = await deferToThread(_project_page, *args, kept)
            self._gzip_later(key, page)
            return page

        page = await self.catalog.cache.fill(key, render)
        if page is None:
            raise NotFound(f"No such project: {name}")
        return self._response(page, request)
