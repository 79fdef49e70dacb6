"""The twisted.web Site and Request that enforce the body rules.

Two things twisted.web does not do for us: cap the size of a request body,
and parse multipart bodies without holding them in memory. Both happen here,
as the body arrives, before any resource sees the request:

- a declared ``Content-Length`` over the cap, or a body that grows past it,
  is read and dropped, and ``request.body_error`` says why (413);
- a ``multipart/form-data`` body goes to a :class:`StreamingForm` instead of
  a temporary file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TextIO

from multipart import parse_options_header
from twisted.web import http, server
from twisted.web.resource import IResource

from ministry.config import ACCESS_LOG_OFF
from ministry.core.errors import MinistryError, TooLarge
from ministry.web.fastlane import FastLane, IndexChannel, Served
from ministry.web.form import StreamingForm
from ministry.web.metrics import Metrics
from ministry.web.shortcut import Lookup


class _DroppedBody:
    """``request.content`` for a body that is being refused: keeps nothing."""

    def __init__(self) -> None:
        self._received = 0

    def write(self, data: bytes) -> None:
        self._received += len(data)

    def tell(self) -> int:
        return self._received

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def read(self, size: int = -1) -> bytes:
        return b""

    def close(self) -> None:
        pass


class IndexRequest(server.Request):
    """A Request that streams and caps its body (see the module docstring)."""

    body_error: MinistryError | None = None
    _body_received: int = 0
    #: When the request line arrived, for the latency histogram.
    started: float

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.started = time.monotonic()

    @property
    def _site(self) -> IndexSite:
        return self.channel.site

    def gotLength(self, length: int | None) -> None:
        site = self._site
        if length is not None and length > site.max_body:
            self._refuse_body(length)
            return
        content_type = self.requestHeaders.getRawHeaders(b"content-type")
        if content_type is not None:
            kind, options = parse_options_header(content_type[0].decode("latin-1"))
            if kind == "multipart/form-data" and options.get("boundary"):
                self.content = StreamingForm(options["boundary"], site.new_staging_path)
                return
        # twisted.web.http's own choice (memory, or a temporary file for a
        # big body), without server.Request's look-up of a Site hook we lack.
        http.Request.gotLength(self, length)

    def handleContentChunk(self, data: bytes) -> None:
        self._body_received += len(data)
        if self.body_error is None and self._body_received > self._site.max_body:
            self._refuse_body(self._body_received)
        self.content.write(data)

    def _refuse_body(self, size: int) -> None:
        limit = self._site.max_body
        self.body_error = TooLarge(
            f"Request body too large: {size} bytes is over the limit of {limit} bytes "
            "(--max-upload-size plus room for the form's fields)."
        )
        if self.content is not None:
            self.content.close()
        self.content = _DroppedBody()


#: Given a request before traversal and the root resource: None to let it
#: through, or a resource to answer it instead (see ``ministry.web.auth``).
ReadGuard = Callable[[server.Request, IResource], IResource | None]


class IndexSite(server.Site):
    """A Site with a body cap, a place to stage uploaded files, and its access log.

    ``access_log`` is ``--access-log``: None for twistd's log (each line an
    event through twisted.logger, about a fifth of a cached answer's CPU), a
    path for twisted.web's own line-per-write file, or ``off``.
    """

    requestFactory = IndexRequest
    #: A bare channel, not twisted.web's wrapper that would switch to HTTP/2
    #: after a TLS negotiation: ministry serves HTTP/1.1 only.
    protocol = IndexChannel
    #: Set by :meth:`use_fast_lane`; None: every request goes through twisted.web.
    fast_lane: FastLane | None = None

    def __init__(
        self,
        resource: IResource,
        max_body: int,
        new_staging_path: Callable[[], str],
        metrics: Metrics,
        read_guard: ReadGuard | None = None,
        access_log: str | None = None,
    ) -> None:
        logs = access_log != ACCESS_LOG_OFF
        super().__init__(
            resource, logPath=access_log if logs else None, parsePOSTFormSubmission=False
        )
        self.logs = logs
        self.max_body = max_body
        self.new_staging_path = new_staging_path
        self.metrics = metrics
        self.read_guard = read_guard

    def use_fast_lane(self, lookups: Mapping[bytes, Lookup]) -> FastLane:
        """Answer what these look-ups hold before twisted.web parses (``ministry.web.fastlane``)."""
        self.fast_lane = FastLane(lookups, self.log)
        return self.fast_lane

    def getResourceFor(self, request: IndexRequest) -> IResource:
        """The resource for a request, or first the read guard's (``--private``)."""
        if self.read_guard is not None:
            guard = self.read_guard(request, self.resource)
            if guard is not None:
                request.site = self
                request.sitepath = list(request.prepath)
                return guard
        return super().getResourceFor(request)

    def _openLogFile(self, path: str) -> TextIO:
        """The ``--access-log`` file: appended to, one write per line, never rotated here.

        server.Site's own choice would start a new file every megabyte and
        keep them all; rotating is logrotate's job (``copytruncate``).
        """
        return open(path, "a", 1, encoding="utf-8", newline="\n")

    def log(self, request: IndexRequest | Served) -> None:
        """Write the access log line and count the request, once per response."""
        if self.logs:
            super().log(request)
        self.metrics.request_done(
            request.path, request.method, request.code, time.monotonic() - request.started
        )
