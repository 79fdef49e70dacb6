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
from collections.abc import Callable

from multipart import parse_options_header
from twisted.web import http, server
from twisted.web.resource import IResource

from ministry.core.errors import MinistryError, TooLarge
from ministry.web.form import StreamingForm
from ministry.web.metrics import Metrics


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
    """A Site with a body cap and a place to stage uploaded files."""

    requestFactory = IndexRequest

    def __init__(
        self,
        resource: IResource,
        max_body: int,
        new_staging_path: Callable[[], str],
        metrics: Metrics,
        read_guard: ReadGuard | None = None,
    ) -> None:
        super().__init__(resource, parsePOSTFormSubmission=False)
        self.max_body = max_body
        self.new_staging_path = new_staging_path
        self.metrics = metrics
        self.read_guard = read_guard

    def getResourceFor(self, request: IndexRequest) -> IResource:
        """The resource for a request, or first the read guard's (``--private``)."""
        if self.read_guard is not None:
            guard = self.read_guard(request, self.resource)
            if guard is not None:
                request.site = self
                request.sitepath = list(request.prepath)
                return guard
        return super().getResourceFor(request)

    def log(self, request: IndexRequest) -> None:
        """Write the access log line and count the request, once per response."""
        super().log(request)
        self.metrics.request_done(
            request.path, request.method, request.code, time.monotonic() - request.started
        )
