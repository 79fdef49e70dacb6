"""The twisted.web Site and Request: bodies bounded, connections counted.

Two things twisted.web does not do for us: cap the size of a request body,
and parse multipart bodies without holding them in memory. Both happen here,
as the body arrives, before any resource sees the request:

- the channel (``ministry.web.http.channel``) asks :meth:`IndexSite.plan_body`
  from the head, before reading the body (``ministry.web.http.bodies``): a body
  that could only be refused is refused then, with no byte of it read;
- a ``multipart/form-data`` body goes to a :class:`StreamingForm` instead of
  a temporary file; a body that grows past its cap, a form the parser gives
  up on, and a staging write that fails (a full disk: 507) are answered at
  once, and the rest of the body is not read;
- the Site admits each new connection, or refuses it, by the caps of
  ``ministry.web.http.connections``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Protocol

from twisted.web import http, server
from twisted.web.http_headers import Headers
from twisted.web.resource import IResource

from ministry.core.errors import MinistryError
from ministry.core.setting_values import ACCESS_LOG_OFF
from ministry.web.http.access_log import (
    AccessLog,
    combined_line,
    default_access_log,
    file_access_log,
)
from ministry.web.http.bodies import BodyPlan, plan_body
from ministry.web.http.channel import IndexChannel
from ministry.web.http.connections import ConnectionLimits, Connections
from ministry.web.http.fastlane import FastLane, Served
from ministry.web.http.form import StreamingForm, staging_failed
from ministry.web.http.shortcut import Lookup


class IndexRequest(server.Request):
    """A Request that streams and caps its body (see the module docstring)."""

    #: Set by the channel from the head when a body follows (``ministry.web.http.bodies``).
    body_plan = BodyPlan(0, "this request was not to have a body")
    _body_received: int = 0
    #: When the request line arrived, for the latency histogram.
    started: float

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.started = time.monotonic()
        self._proxies = self.channel.site.connections.limits.proxies

    @property
    def _site(self) -> IndexSite:
        return self.channel.site

    def getClientAddress(self) -> object:
        """The peer, or behind a trusted proxy the client it names (``ministry.web.http.clients``).

        The failed-login throttle and the access log read this.
        """
        forwarded = self.requestHeaders.getRawHeaders(b"x-forwarded-for")
        return self._proxies.client(super().getClientAddress(), forwarded)

    def gotLength(self, length: int | None) -> None:
        boundary = self.body_plan.boundary
        if boundary is not None:
            self.content = StreamingForm(boundary, self._site.new_staging_path)
            return
        # twisted.web.http's own choice (memory, or a temporary file for a
        # big body), without server.Request's look-up of a Site hook we lack.
        http.Request.gotLength(self, length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.channel.refused:
            return  # the rest of a read that held the refused part
        self._body_received += len(data)
        try:
            self.body_plan.check(self._body_received)
            self.content.write(data)
            error = getattr(self.content, "error", None)
        except MinistryError as refusal:
            error = refusal
        except OSError as failure:  # twisted.web's temporary file, on a full disk
            error = staging_failed(failure)
        if error is not None:
            self.channel.refuse(error)


class RequestCounter(Protocol):
    """What the Site tells of each answered request (``ministry.web.metrics.Metrics``).

    A protocol, so that the transport knows nothing of the components above it.
    """

    def request_done(self, path: bytes, method: bytes, status: int, seconds: float) -> None: ...


#: Given a request before traversal and the root resource: None to let it
#: through, or a resource to answer it instead (see ``ministry.web.auth``).
ReadGuard = Callable[[server.Request, IResource], IResource | None]


class IndexSite(server.Site):
    """A Site with body rules, connection caps, a place to stage uploads, and its access log.

    ``access_log`` is ``--access-log``: None for twistd's log, a path for a
    file of its own, or ``off``; either way the lines are written in
    batches (``ministry.web.http.access_log``).
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
        metrics: RequestCounter,
        read_guard: ReadGuard | None = None,
        access_log: str | None = None,
        limits: ConnectionLimits | None = None,
        uploads_need_credentials: Callable[[], bool] = lambda: False,
    ) -> None:
        super().__init__(resource, parsePOSTFormSubmission=False, logFormatter=combined_line)
        self.logs = access_log != ACCESS_LOG_OFF
        self.access_log_path = access_log if self.logs else None
        self.access_log: AccessLog | None = None
        self.max_body = max_body
        self.new_staging_path = new_staging_path
        self.metrics = metrics
        self.read_guard = read_guard
        self.connections = Connections(limits or ConnectionLimits())
        self.uploads_need_credentials = uploads_need_credentials

    def startFactory(self) -> None:
        super().startFactory()
        self.connections.start()
        if not self.logs:
            return
        if self.access_log is None:
            path = self.access_log_path
            self.access_log = (
                default_access_log(self.reactor)
                if path is None
                else file_access_log(path, self.reactor)
            )
            self.reactor.addSystemEventTrigger("after", "shutdown", self.access_log.shut)
        self.logFile = self.access_log

    def stopFactory(self) -> None:
        """Stop, but keep logging until the reactor has stopped.

        On SIGTERM twistd closes the port first, while answers to requests
        already read are still going out: their lines are written too, by
        the flush at the end of their turn or the close after shutdown.
        """
        super().stopFactory()  # AccessLog.close only flushes
        if self.access_log is not None:
            self.logFile = self.access_log

    def buildProtocol(self, addr: object) -> object:
        """A channel for a new connection, or, over a cap, a protocol that refuses it."""
        refusal = self.connections.admit(addr)
        return refusal if refusal is not None else super().buildProtocol(addr)

    def plan_body(
        self, method: bytes, path: bytes, headers: Headers, length: int | None
    ) -> BodyPlan:
        """How this request's body is received, or the refusal (``ministry.web.http.bodies``)."""
        return plan_body(
            method, path, headers, length, self.max_body, self.uploads_need_credentials
        )

    def use_fast_lane(self, lookups: Mapping[bytes, Lookup]) -> FastLane:
        """Answer what these look-ups hold before twisted.web parses (see ``fastlane``)."""
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

    def log(self, request: IndexRequest | Served) -> None:
        """Write the access log line and count the request, once per response."""
        if self.logs:
            super().log(request)
        self.metrics.request_done(
            request.path, request.method, request.code, time.monotonic() - request.started
        )
