"""The URLs the index hands out, relative unless ``--base-url`` is set.

Relative links keep working behind a reverse proxy that mounts the index
under a path; ``--base-url`` is for when absolute links are wanted (the JSON
API and the install commands always need them, and take the request's host
without it). A page printing the request's host is cached once for every
host (``ministry.web.http.rendered.ServerPage``), never once per ``Host`` header.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from twisted.web.iweb import IRequest

from ministry.core.models import FileRecord
from ministry.web.http.rendered import SERVER_MARK, Page, ServerPage

#: A ``Host`` header worth printing: a name or IPv4 address and a port.
#: Nothing in it needs escaping in HTML, JSON or a shell command, which is
#: what lets it be spliced into a rendered page. (An IPv6 literal's brackets
#: are glob characters in a shell: such a server wants ``--base-url``.)
_HOST = re.compile(r"[A-Za-z0-9._-]+(?::[0-9]{1,5})?")

#: The host printed when the request's is missing or not a host at all.
FALLBACK_HOST = "localhost"


def file_path(record: FileRecord) -> str:
    """The path of a file under the server root, without a leading slash."""
    return f"packages/{record.project}/{quote(record.filename)}"


class Urls:
    """Builds links for pages, given the configured base URL (or none)."""

    def __init__(self, base_url: str | None) -> None:
        self.base_url = base_url.rstrip("/") if base_url else None

    def file_from_simple(self, record: FileRecord) -> str:
        """A file's link as written on ``/simple/<project>/`` (two levels deep)."""
        if self.base_url:
            return f"{self.base_url}/{file_path(record)}"
        return f"../../{file_path(record)}"

    def root(self, request: IRequest) -> str:
        """The absolute URL of the server root, without a trailing slash."""
        if self.base_url:
            return self.base_url
        scheme = "https" if request.isSecure() else "http"
        host = (request.getHeader(b"host") or b"").decode("latin-1")
        return f"{scheme}://{host if _HOST.fullmatch(host) else FALLBACK_HOST}"

    def render_root(self) -> str:
        """The server URL to render a cached page with: ``--base-url``, or the mark."""
        return self.base_url or SERVER_MARK

    def rendered(self, page: Page) -> Page | ServerPage:
        """What to cache of a page rendered with :meth:`render_root`."""
        return page if self.base_url else ServerPage.of(page)

    def for_request(self, page: Page | ServerPage, request: IRequest) -> Page:
        """A cached page as this request gets it, its own server URL in it."""
        return page.for_server(self.root(request)) if isinstance(page, ServerPage) else page
