"""The HTTP client for upstream indexes: project pages, file bodies, the index for serials.

A :class:`twisted.application.service.Service` over an injected ``IAgent``
and ``IReactorTime`` clock (``ministry.backends.build_upstream`` gives an Agent on
a connection pool of its own, since treq's module-level functions share a
global pool that outlives the service; tests give treq.testing's
``RequestTraversalAgent`` over a resource, and a ``Clock``). An Agent rather
than a ``treq.HTTPClient``: treq gzip-decodes every body, which pages want
and files must not get (see below). Nothing is requested before
``startService``; ``stopService`` cancels what is in flight and closes the pool.

Every request is bounded in time, so an upstream that hangs or trickles
cannot hold a client of ours: the connect timeout (the Agent's), a timeout
on the response headers, an idle timeout while a body is read (reset by
every chunk), and a total ``deadline``: a page must be whole by then, a
file must keep up ``min_rate`` after it (:mod:`ministry.upstream.body`).
Every body is read to the end or the connection is closed, or a pooled
connection would stay pinned.

Credentials. An upstream URL may carry ``user:password@``; they are taken
out of it at construction (a URL with them is no valid request target) and
sent as Basic ``Authorization`` only to that upstream's origin (scheme, host
and port): a file hosted elsewhere is fetched without them, and a redirect
to another origin drops them (twisted's RedirectAgent does that). Messages
and ``shown_urls`` never contain them. A redirect is followed only within the
requested host or to a host ``redirect_hosts`` names (``ministry.upstream.redirects``).

Pages go through treq (gzip-decoded: simple pages compress well); files go
through the same pool without content decoding, because their sha256 is over
the bytes as served, and a static server may well label a ``.tar.gz`` with
``Content-Encoding: gzip``.

Several upstreams are tried in order for a page; a 404 or 410 moves on to
the next one, but any other failure ends the search with an error: taking
the project from a later upstream because an earlier one is down could serve
a different project of the same name (the earlier one may be the company
mirror holding the real one).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from treq.client import HTTPClient
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import HTTPConnectionPool
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IAgent, IResponse

import ministry
from ministry.core.errors import MinistryError
from ministry.core.redaction import Credentials, origin, redact_url, split_credentials
from ministry.core.upstream_index import serial_of
from ministry.core.upstream_links import PageError
from ministry.core.upstream_pages import UpstreamPage, parse_page
from ministry.upstream.body import BodyReader, Pace, UpstreamError, refuse_all
from ministry.upstream.redirects import AllowedRedirects
from ministry.upstream.responses import cancelling, describe, header, phrase
from ministry.upstream.targets import request_target

log = Logger()

#: PEP 691 negotiation preferring JSON, as pip and uv ask.
ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
    "text/html;q=0.01"
)
#: The ``/simple/`` index in JSON only: an HTML index carries no serials.
INDEX_ACCEPT = "application/vnd.pypi.simple.v1+json"
#: The project serial a PyPI-like upstream sends with each page.
SERIAL_HEADER = b"x-pypi-last-serial"
USER_AGENT = f"MinistryOfPackages/{ministry.__version__} (proxy)"

#: The largest project page read (the public index's biggest JSON pages are
#: tens of megabytes); a bigger one is treated as garbage.
PAGE_LIMIT = 256 * 1024**2
#: How much of an error response is read before the connection is dropped.
_ERROR_BODY_LIMIT = 64 * 1024


class UpstreamUnavailable(MinistryError):
    """What a client sees when the upstream failed and nothing cached can stand in."""

    status = 502


class FileBody:
    """An upstream file response whose headers are in and whose body is not read yet.

    Exactly one of :meth:`read` or :meth:`abandon` must be called.
    """

    def __init__(self, client: UpstreamClient, response: IResponse, url: str, pace: Pace) -> None:
        self._client = client
        self._response = response
        self._pace = pace
        self.url = url
        #: The upstream's Content-Length, or None when it did not send one.
        self.length: int | None = None if response.length is UNKNOWN_LENGTH else response.length

    def read(self, sink: Callable[[bytes], None], limit: int | None = None) -> Deferred[None]:
        """Hand every chunk to ``sink``; fires at the end, or fails with UpstreamError.

        If ``sink`` raises, reading stops, the connection is closed and the
        Deferred fails with that exception.
        """
        return self._client._read(self._response, self.url, sink, limit, self._pace)

    def abandon(self) -> None:
        """Close the connection without reading the body."""
        reading = self._client._read(self._response, self.url, refuse_all, None, self._pace)
        reading.addErrback(lambda _: None)


class UpstreamClient(Service):
    """Fetches project pages and file bodies from the ``--upstream`` indexes."""

    def __init__(
        self,
        urls: Sequence[str],
        timeout: float,
        *,
        deadline: float,
        min_rate: float,
        agent: IAgent,
        clock: IReactorTime,
        pool: HTTPConnectionPool | None = None,
        redirect_hosts: Sequence[str] = (),
    ) -> None:
        split = [split_credentials(url.rstrip("/")) for url in urls]
        #: The upstream base URLs, without credentials.
        self.urls = tuple(url for url, _ in split)
        #: The same, fit to show (credentials hidden, not dropped: one can see they are set).
        self.shown_urls = tuple(redact_url(url.rstrip("/")) for url in urls)
        self._credentials = [(url, found) for url, found in split if found is not None]
        self.timeout = timeout
        self.deadline = deadline
        self.min_rate = min_rate
        #: Every timer and timestamp of the upstream side comes from this clock.
        self.clock = clock
        self._pool = pool  # behind ``agent``: its connections are closed on stop
        self._files = AllowedRedirects(agent, frozenset(redirect_hosts))
        self._http = HTTPClient(self._files)  # its own redirects off: these are checked
        self._in_flight: set[Deferred[Any]] = set()
        self.pages_fetched = 0
        self.pages_not_modified = 0
        self.errors = 0

    def stopService(self) -> Deferred[Any]:
        super().stopService()
        for waiting in list(self._in_flight):
            waiting.cancel()
        return self._pool.closeCachedConnections() if self._pool is not None else succeed(None)

    # -- pages ------------------------------------------------------------------

    async def fetch_page(self, project: str, cached: UpstreamPage | None) -> UpstreamPage | None:
        """The page of ``project`` from the first upstream that has it, or None.

        With ``cached`` from the same upstream and an ETag, asks with
        ``If-None-Match`` and returns ``cached`` with a new fetch time on a
        304 (and the serial the 304 gives, if any: an unchanged page may
        well come with a new one). Raises :class:`UpstreamError` on any
        failure (see the module docstring for why a failure does not fall
        through to the next upstream).
        """
        for upstream in self.urls:
            url = f"{upstream}/{project}/"
            headers = self._headers(url, Accept=ACCEPT)
            revalidating = cached is not None and cached.upstream == upstream and cached.etag
            if revalidating:
                headers.setRawHeaders(b"if-none-match", [cached.etag.encode("latin-1")])
            pace = Pace(self.clock.seconds(), self.deadline)
            response = await self._get(url, headers, pace)
            if response.code == 304 and revalidating:
                await self._discard(response, url, pace)
                self.pages_not_modified += 1
                serial = serial_of(header(response, SERIAL_HEADER)) or cached.serial
                return replace(cached, fetched=self.clock.seconds(), serial=serial)
            if response.code in (404, 410):
                await self._discard(response, url, pace)
                continue
            if response.code != 200:
                raise await self._refused(response, url, pace)
            return await self._page(project, upstream, url, response, cached, pace)
        return None

    async def fetch_index(self, upstream: str) -> tuple[bytes, str]:
        """``upstream``'s ``/simple/`` index asked as PEP 691 JSON: its body and Content-Type.

        For the mirror's serials (:mod:`ministry.core.upstream_index`), which
        judges the body; raises :class:`UpstreamError` unless the answer is a 200.
        """
        url = f"{upstream}/"
        pace = Pace(self.clock.seconds(), self.deadline)
        response = await self._get(url, self._headers(url, Accept=INDEX_ACCEPT), pace)
        if response.code != 200:  # not counted in ``errors``: the index is optional
            await self._discard(response, url, pace)
            raise UpstreamError(f"{url} answered {response.code} {phrase(response)}")
        chunks: list[bytes] = []
        await self._guard(self._read(response, url, chunks.append, PAGE_LIMIT, pace))
        return b"".join(chunks), header(response, b"content-type") or ""

    async def _page(
        self,
        project: str,
        upstream: str,
        url: str,
        response: IResponse,
        cached: UpstreamPage | None,
        pace: Pace,
    ) -> UpstreamPage:
        chunks: list[bytes] = []
        await self._guard(self._read(response, url, chunks.append, PAGE_LIMIT, pace))
        page_url = response.request.absoluteURI.decode("ascii", "replace")
        content_type = header(response, b"content-type") or ""
        now = self.clock.seconds()
        try:
            parsed = await deferToThread(
                parse_page,
                b"".join(chunks),
                content_type,
                page_url,
                project,
                datetime.fromtimestamp(now, UTC),
                cached,
            )
        except PageError as exc:
            raise self._error(f"{page_url}: unusable page: {exc}") from None
        if parsed.skipped and not parsed.files:
            # An empty page would leave installers saying only "from versions: none".
            raise self._error(
                f"{page_url}: none of its {parsed.skipped} files has a sha256 digest and"
                f" a name of {project}: this index serves only files it can check"
            )
        if parsed.skipped:
            log.info(
                "{url}: left out {count} files without a sha256 or a usable name",
                url=page_url,
                count=parsed.skipped,
            )
        self.pages_fetched += 1
        etag = header(response, b"etag")
        return UpstreamPage(
            project,
            upstream,
            page_url,
            etag,
            now,
            parsed.files,
            parsed.status,
            parsed.status_reason,
            serial_of(header(response, SERIAL_HEADER)),
        )

    # -- files ------------------------------------------------------------------

    async def open_file(self, url: str) -> FileBody:
        """Request a file; returns once a 200's headers are in (the body is not read).

        Credentials in ``url`` itself (a page may link with them) are used
        for it alone; otherwise those of the configured upstream on its origin.
        """
        self._running()
        url, own = split_credentials(url)
        pace = Pace(self.clock.seconds(), self.deadline, self.min_rate)
        sent = self._files.request(
            b"GET",
            request_target(url),
            self._headers(url, own),
        )
        response = await self._send(sent, url, pace)
        if response.code != 200:
            raise await self._refused(response, url, pace)
        return FileBody(self, response, url, pace)

    async def fetch_bytes(self, url: str, limit: int) -> bytes:
        """A small file (a ``.metadata``) whole, at most ``limit`` bytes."""
        body = await self.open_file(url)
        chunks: list[bytes] = []
        await self._guard(body.read(chunks.append, limit))
        return b"".join(chunks)

    # -- plumbing ---------------------------------------------------------------

    def _running(self) -> HTTPClient:
        """The page client; refuses before ``startService`` and after ``stopService``."""
        if not self.running:
            raise self._error("the upstream client is not running")
        return self._http

    def _headers(self, url: str, own: Credentials | None = None, **more: str) -> Headers:
        """Our request headers for ``url``, with the credentials meant for its origin."""
        headers = Headers({"User-Agent": [USER_AGENT], **{k: [v] for k, v in more.items()}})
        credentials = own or self._credentials_for(url)
        if credentials is not None:
            headers.setRawHeaders(b"authorization", [credentials.basic()])
        return headers

    def _credentials_for(self, url: str) -> Credentials | None:
        """Those of the upstream on ``url``'s origin whose base is the longest prefix of it."""
        here = origin(url)
        found = [(base, creds) for base, creds in self._credentials if origin(base) == here]
        found.sort(key=lambda pair: (url.startswith(pair[0] + "/"), len(pair[0])), reverse=True)
        return found[0][1] if found else None

    async def _get(self, url: str, headers: Headers, pace: Pace) -> IResponse:
        """A page-client GET (gzip-decoded, redirects not followed: see the module docstring)."""
        sent = self._running().get(
            url, headers=headers, unbuffered=True, reactor=self.clock, allow_redirects=False
        )
        return await self._send(sent, url, pace)

    async def _refused(self, response: IResponse, url: str, pace: Pace) -> UpstreamError:
        """The error for an unwanted status, its body read and dropped first."""
        await self._discard(response, url, pace)
        return self._error(f"{url} answered {response.code} {phrase(response)}")

    async def _send(self, sent: Deferred[IResponse], url: str, pace: Pace) -> IResponse:
        """The response, or UpstreamError naming the URL (timeouts included)."""
        wait = min(self.timeout, pace.latest(0) - self.clock.seconds())
        timer = self.clock.callLater(wait, sent.cancel)
        sent.addBoth(cancelling(timer))
        try:
            return await self._track(sent)
        except Exception as exc:
            reasons = [exc, *(failure.value for failure in getattr(exc, "reasons", ()))]
            if any(isinstance(reason, CancelledError) for reason in reasons):
                raise self._error(f"{url}: no response within {wait:g} s") from None
            raise self._error(f"{url}: {describe(exc)}") from None

    def _read(
        self,
        response: IResponse,
        url: str,
        sink: Callable[[bytes], None],
        limit: int | None,
        pace: Pace,
    ) -> Deferred[None]:
        reader = BodyReader(sink, limit, self.timeout, self.clock, url, pace)
        response.deliverBody(reader)

        def count(failure: Failure) -> Failure:
            if failure.check(UpstreamError):
                self.errors += 1
            return failure

        return self._track(reader.done).addErrback(count)

    async def _discard(self, response: IResponse, url: str, pace: Pace) -> None:
        """Read and drop an unwanted body, so its connection can be reused."""
        # On an error the connection was closed instead: nothing stays pinned.
        with contextlib.suppress(UpstreamError, CancelledError):
            await self._read(response, url, lambda data: None, _ERROR_BODY_LIMIT, pace)

    @staticmethod
    async def _guard(reading: Deferred[None]) -> None:
        """Await a body; a cancellation (the service stopping) becomes an UpstreamError."""
        try:
            await reading
        except CancelledError:
            raise UpstreamError("the upstream client stopped") from None

    def _track(self, waiting: Deferred[Any]) -> Deferred[Any]:
        """Remember ``waiting`` until it fires, so stopService can cancel it."""
        self._in_flight.add(waiting)

        def forget(result: Any) -> Any:
            self._in_flight.discard(waiting)
            return result

        return waiting.addBoth(forget)

    def _error(self, message: str) -> UpstreamError:
        self.errors += 1
        return UpstreamError(message)
