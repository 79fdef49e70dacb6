"""``/pypi/<project>/json`` and ``/pypi/<project>/<version>/json``.

The JSON API that tools such as poetry's older code paths, dependency bots
and mirroring clients read. Documents are built by the pure core and cached
per project like the simple pages, once for every host: without
``--base-url`` the request's host is spliced into the links per request
(``ministry.web.urls``).
"""

from __future__ import annotations

import json

from twisted.internet.defer import ensureDeferred
from twisted.web.iweb import IRequest

from ministry.catalog.views import Catalog
from ministry.core import jsonapi
from ministry.core.errors import NotFound
from ministry.core.names import canonical
from ministry.web.errors import refusing_app
from ministry.web.http.rendered import Page, PageResponse, ServerPage
from ministry.web.http.responses import redirect
from ministry.web.urls import Urls, file_path


class JsonApi:
    """The ``/pypi/`` tree."""

    app = refusing_app()

    def __init__(self, catalog: Catalog, urls: Urls) -> None:
        self.catalog = catalog
        self.urls = urls

    @app.route("/<name>/json", methods=["GET", "HEAD"])
    @app.route("/<name>/<version>/json", methods=["GET", "HEAD"])
    def document(self, request: IRequest, name: str, version: str | None = None):
        normal = canonical(name)
        if normal != name:
            tail = f"{version}/json" if version else "json"
            return redirect(request, f"/pypi/{normal}/{tail}")
        return ensureDeferred(self._render(request, normal, version))

    async def _render(self, request: IRequest, name: str, version: str | None):
        root = self.urls.render_root()

        async def render() -> Page | ServerPage | None:
            view = await self.catalog.project(name)
            if view is None:
                return None
            metadata = await self.catalog.release_metadata(view)
            document = jsonapi.project_json(
                view.project,
                list(view.files),
                metadata,
                lambda record: f"{root}/{file_path(record)}",
                root,
                version,
                view.upload_time_known,
            )
            body = json.dumps(document, separators=(",", ":")).encode()
            return self.urls.rendered(Page.of(body, "application/json", view.project.serial))

        page = await self.catalog.cache.get_or_fill((name, "json", version), render)
        if page is None:
            raise NotFound(f"No such project: {name}")
        return PageResponse(self.urls.for_request(page, request), vary_accept=False)
