"""The front pages: the home page and ``/health``.

The browser interface grows here; the machine-readable status stays small.
"""

from __future__ import annotations

import json

from klein import Klein
from twisted.web.iweb import IRequest

from ministry.core.errors import MinistryError
from ministry.web.catalog import Catalog
from ministry.web.responses import refuse

_HOME = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>MinistryOfPackages</title></head>
<body><h1>MinistryOfPackages</h1>
<p>A private Python package index holding {count} projects.</p>
<ul>
<li><a href="simple/">Simple index</a> (pip, uv: <code>--index-url {root}/simple/</code>)</li>
<li><a href="packages/">All files</a></li>
</ul>
<p>Upload with <code>twine upload --repository-url {root}/ dist/*</code>.</p>
</body></html>
"""


class Front:
    """``/`` and ``/health``."""

    app = Klein()

    def __init__(self, catalog: Catalog, root_url) -> None:
        self.catalog = catalog
        self.root_url = root_url

    @app.handle_errors(MinistryError)
    def _refuse(self, request: IRequest, failure) -> bytes:
        return refuse(request, failure.value)

    @app.route("/", methods=["GET", "HEAD"])
    async def home(self, request: IRequest) -> bytes:
        index = await self.catalog.index()
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return _HOME.format(count=len(index.projects), root=self.root_url(request)).encode()

    @app.route("/health", methods=["GET", "HEAD"])
    async def health(self, request: IRequest) -> bytes:
        serial = await self.catalog.store.last_serial()
        request.setHeader(b"content-type", b"application/json")
        return json.dumps({"status": "ok", "store": {"ok": True, "serial": serial}}).encode()
