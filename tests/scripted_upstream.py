"""A scriptable upstream index, and the demo project's files it serves.

:class:`Upstream` is a small twisted.web resource that can answer 500s,
garbage, hang, trickle, hold a page or a file half sent, ask for a login,
redirect, and count what it was asked. The proxy tests put it on loopback
(``proxy_fixtures``); the fake-clock tests reach it in memory.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

from accept_headers import JSON_V1
from archive_factory import make_sdist, make_wheel, sdist_filename, wheel_filename
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from ministry.core.models import format_time

#: The demo project's files (what :meth:`Upstream.publish_demo` lists).
WHEEL = make_wheel("demo", "1.0", requires_python=">=3.8", requires_dist=["other"])
WHEEL_NAME = wheel_filename("demo", "1.0")
SDIST = make_sdist("demo", "1.0")
SDIST_NAME = sdist_filename("demo", "1.0")
METADATA = zipfile.ZipFile(io.BytesIO(WHEEL)).read("demo-1.0.dist-info/METADATA")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Upstream(Resource):
    """A scriptable simple index: pages under /simple/, files under /files/."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.url = ""
        self.pages: dict[str, tuple[str, bytes, str | None]] = {}
        self.files: dict[str, bytes] = {}
        #: "ok", "500", "garbage", "hang" or "trickle" (a byte every 0.1 s, forever)
        self.mode = "ok"
        #: When set, files are sent in two halves, the second once it fires.
        self.gate: Deferred[None] | None = None
        #: When set, pages are answered only once it fires.
        self.page_gate: Deferred[None] | None = None
        #: When set, the Authorization header every request to 127.0.0.1 must
        #: carry (else a 401); asked as localhost (another origin), it is open.
        self.authorization: str | None = None
        #: path -> where a request for it is redirected (302), before any check.
        self.redirects: dict[str, str] = {}
        self.requests: list[tuple[str, str | None]] = []
        #: (path, Host, Authorization) of every request.
        self.received: list[tuple[str, str, str | None]] = []
        #: page path -> the ``X-PyPI-Last-Serial`` its answers carry (200s and 304s).
        self.serials: dict[str, int] = {}

    def render(self, request):
        path = request.path.decode()
        if_none_match = request.getHeader(b"if-none-match")
        self.requests.append((path, if_none_match and if_none_match.decode()))
        authorization = request.getHeader(b"authorization")
        host = request.getHeader(b"host").decode()
        self.received.append((path, host, authorization and authorization.decode()))
        if path in self.redirects:
            request.redirect(self.redirects[path].encode())
            return b""
        logging_in = self.authorization is not None and host.startswith("127.0.0.1")
        if logging_in and authorization != self.authorization.encode():
            request.setResponseCode(401)
            request.setHeader(b"www-authenticate", b'Basic realm="upstream"')
            return b"log in first"
        if self.mode == "500":
            request.setResponseCode(500)
            return b"upstream trouble"
        if self.mode == "hang":
            return NOT_DONE_YET
        if self.mode == "trickle":
            return _trickle(request, len(self.files.get(path, b"")))
        if self.page_gate is not None and path in self.pages:
            self.page_gate.addCallback(lambda _: _answer_later(request, self.render_page(request)))
            return NOT_DONE_YET
        if self.mode == "garbage":
            request.setHeader(b"content-type", JSON_V1.encode())
            return b"<html>certainly not JSON"
        if path in self.pages:
            return self.render_page(request)
        if path in self.files:
            data = self.files[path]
            request.setHeader(b"content-type", b"application/octet-stream")
            request.setHeader(b"content-length", str(len(data)).encode())
            if self.gate is None:
                return data
            request.write(data[: len(data) // 2])
            gone: list[object] = []
            request.notifyFinish().addErrback(gone.append)

            def rest(_):
                if not gone:  # the proxy may have given up on this response
                    request.write(data[len(data) // 2 :])
                    request.finish()

            self.gate.addCallback(rest)
            return NOT_DONE_YET
        request.setResponseCode(404)
        return b"no such thing"

    def render_page(self, request) -> bytes:
        content_type, body, etag = self.pages[request.path.decode()]
        serial = self.serials.get(request.path.decode())
        if serial is not None:
            request.setHeader(b"x-pypi-last-serial", str(serial).encode())
        if etag is not None:
            request.setHeader(b"etag", etag.encode())
            if request.getHeader(b"if-none-match") == etag.encode():
                request.setResponseCode(304)
                return b""
        request.setHeader(b"content-type", content_type.encode())
        return body

    def asked(self, prefix: str) -> list[tuple[str, str | None]]:
        return [entry for entry in self.requests if entry[0].startswith(prefix)]

    def publish(
        self, project: str, files: list[dict], etag: str | None = '"v1"', status: dict | None = None
    ) -> None:
        """A PEP 691 page for ``project``: ``files`` (see :func:`entry`), a PEP 792 ``status``."""
        document: dict = {"meta": {"api-version": "1.4"}, "name": project, "files": files}
        if status is not None:
            document["project-status"] = status
        body = json.dumps(document)
        self.pages[f"/simple/{project}/"] = (JSON_V1, body.encode(), etag)

    def publish_index(self, serials: dict[str, int]) -> None:
        """The PEP 691 ``/simple/`` index: each project with its ``_last-serial``."""
        projects = [{"name": name, "_last-serial": serial} for name, serial in serials.items()]
        body = json.dumps({"meta": {"api-version": "1.4", "_last-serial": 0}, "projects": projects})
        self.pages["/simple/"] = (JSON_V1, body.encode(), None)

    def publish_demo(self, etag: str | None = '"v1"') -> None:
        """``demo`` with the sdist and the wheel: the page most tests start from."""
        self.publish("demo", [entry(self, SDIST_NAME, SDIST), entry(self, WHEEL_NAME, WHEEL)], etag)

    def publish_html(self, project: str, filenames: list[str]) -> None:
        links = "".join(
            f'<a href="../../files/{name}#sha256={sha256(self.files["/files/" + name])}">{name}</a>'
            for name in filenames
        )
        self.pages[f"/simple/{project}/"] = ("text/html", f"<html><body>{links}".encode(), None)


def _trickle(request, length: int) -> object:
    """Answer 200 and then one byte every 0.1 s until the client gives up."""
    request.setHeader(b"content-type", JSON_V1.encode())
    if length:  # a file's true length, so that the proxy starts on it
        request.setHeader(b"content-length", str(length).encode())
    dripping = LoopingCall(request.write, b" ")
    request.notifyFinish().addBoth(lambda _: dripping.stop())
    dripping.start(0.1)
    return NOT_DONE_YET


def _answer_later(request, body: bytes) -> None:
    if not request.finished and not request._disconnected:
        request.write(body)
        request.finish()


def entry(upstream: Upstream, filename: str, data: bytes, **extra) -> dict:
    """One file of a JSON page, stored under /files/ (with its metadata for wheels)."""
    upstream.files[f"/files/{filename}"] = data
    result = {
        "filename": filename,
        "url": f"../../files/{filename}",
        "hashes": {"sha256": sha256(data)},
        "size": len(data),
        "upload-time": format_time(datetime.now(UTC) - timedelta(days=30)),
    }
    if filename == WHEEL_NAME:
        upstream.files[f"/files/{filename}.metadata"] = METADATA
        result["core-metadata"] = {"sha256": sha256(METADATA)}
    result.update(extra)
    return result
