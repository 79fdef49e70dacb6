"""The URLs the index hands out, relative unless ``--base-url`` is set.

Relative links keep working behind a reverse proxy that mounts the index
under a path; ``--base-url`` is for when absolute links are wanted (the JSON
API always needs them, and takes the request's host without it).
"""

from __future__ import annotations

from urllib.parse import quote

from twisted.web.iweb import IRequest

from ministry.core.models import FileRecord


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
        host = (request.getHeader(b"host") or b"localhost").decode("latin-1")
        return f"{scheme}://{host}"
