"""``/static/``: the stylesheet and script of the browser pages, from the package.

The index often runs offline, so nothing is fetched from elsewhere: the few
files in ``ministry/static/`` are read once, on first use, and served from
memory with a long cache lifetime. Pages link them as ``?v=<digest>``
(:func:`static_url`), so an upgrade changes the URL instead of waiting for
browsers' copies to expire.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from twisted.web.iweb import IRequest
from twisted.web.resource import Resource

from ministry.core.errors import NotFound
from ministry.web.http.rendered import Page, PageResponse
from ministry.web.http.responses import refuse

#: The types of the files we ship; nothing else lives in ``ministry/static/``.
_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}

#: A year: the longest lifetime caches honour. The URL changes with the bytes.
CACHE_CONTROL = b"public, max-age=31536000, immutable"


@cache
def assets() -> dict[str, Page]:
    """Every file of ``ministry/static/``, by name, as a ready-to-send page."""
    found = {}
    for entry in files("ministry").joinpath("static").iterdir():
        kind = _TYPES.get("." + entry.name.rpartition(".")[2])
        if kind is not None and entry.is_file():
            found[entry.name] = Page.of(entry.read_bytes(), kind)
    return found


def static_url(name: str) -> str:
    """The path of a static file below the root (no leading slash), versioned by content."""
    digest = assets()[name].etag.decode().strip('"')
    return f"static/{name}?v={digest[:12]}"


class StaticFiles(Resource):
    """Serves :func:`assets` by name; anything else is a 404."""

    isLeaf = True

    def render_GET(self, request: IRequest) -> bytes | int:
        name = b"/".join(request.postpath).decode("utf-8", "replace")
        page = assets().get(name)
        if page is None:
            return refuse(request, NotFound(f"No such static file: {name}"))
        answer = PageResponse(page, cache_control=CACHE_CONTROL, vary_accept=False)
        return answer.render(request)
