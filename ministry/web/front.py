"""The front pages: the home page and the upload help page.

Whatever the root does not send elsewhere lands here (see
:mod:`ministry.web.root`). Both pages are rendered once per change to the
index and kept as bytes; the server URL they print is spliced in per
request (``ministry.web.urls``), so every ``Host`` shares one copy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable

from twisted.internet.defer import ensureDeferred
from twisted.web.iweb import IRequest

from ministry.catalog.cache import ALL
from ministry.catalog.holdings import Holdings
from ministry.catalog.views import Catalog
from ministry.core.commands import install_commands, pip_conf, pypirc, upload_commands
from ministry.web.errors import refusing_app
from ministry.web.html import render_html, send_html
from ministry.web.http.rendered import Page, ServerPage
from ministry.web.http.responses import redirect
from ministry.web.urls import Urls


class Front:
    """``/`` and ``/help/upload/``."""

    app = refusing_app()

    def __init__(self, catalog: Catalog, urls: Urls) -> None:
        self.catalog = catalog
        self.urls = urls
        self.holdings = Holdings(catalog)

    def _page(
        self,
        request: IRequest,
        name: Hashable,
        render: Callable[[str], Page | Awaitable[Page]],
    ):
        """Send the cached page ``name`` with this request's server URL, rendering it on a miss."""

        async def rendered() -> Page | ServerPage:
            page = render(self.urls.render_root())
            return self.urls.rendered(page if isinstance(page, Page) else await page)

        async def send() -> bytes:
            page = await self.catalog.cache.get_or_fill((ALL, "page", name), rendered)
            return send_html(request, self.urls.for_request(page, request))

        return ensureDeferred(send())

    @app.route("/", methods=["GET", "HEAD"])
    def home(self, request: IRequest):
        return self._page(request, ("home", self.holdings.epoch), self._home)

    async def _home(self, server: str) -> Page:
        summary = await self.holdings.summary()
        return render_html(
            "home.html",
            summary.serial,
            root="./",
            summary=summary,
            commands=install_commands(server, "PROJECT"),
            nav="home",
        )

    @app.route("/help/upload/", methods=["GET", "HEAD"])
    def upload_help(self, request: IRequest):
        return self._page(request, "help-upload", self._upload_help)

    def _upload_help(self, server: str) -> Page:
        return render_html(
            "upload_help.html",
            root="../../",
            server=server,
            snippets={
                snippet.key: snippet
                for snippet in [*upload_commands(server), pypirc(server), pip_conf(server)]
            },
            nav="upload",
        )

    @app.route("/help", methods=["GET", "HEAD"])
    @app.route("/help/", methods=["GET", "HEAD"])
    @app.route("/help/upload", methods=["GET", "HEAD"])
    def to_upload_help(self, request: IRequest) -> bytes:
        return redirect(request, "/help/upload/")
