"""Reading an upstream response body within its bounds, for :mod:`ministry.upstream.client`.

:class:`BodyReader` hands every chunk to a sink and gives up, closing the
connection, on the first bound crossed: a size limit, an idle timeout
(reset by every chunk) and the request's total :class:`Pace`. A page must be
whole within its deadline; a file may take longer, as big files must, but
only by keeping up a minimum rate: its n-th byte must be in by ``deadline +
n / min_rate`` seconds after the request was sent. So a file arriving a byte
a second is cut off once the deadline has passed, and a large one arriving
at any useful speed never is (one timer, re-armed only when it fires).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.http import PotentialDataLoss


class UpstreamError(Exception):
    """An upstream failed, timed out or answered something unusable."""


@dataclass(frozen=True)
class Pace:
    """The total deadline of one request (see the module docstring)."""

    started: float  # reactor seconds when it was sent
    deadline: float
    #: Bytes per second a body must keep up after the deadline; None: none may pass it.
    min_rate: float | None = None

    def latest(self, received: int) -> float:
        """When the body must have more than ``received`` bytes (or be whole)."""
        allowance = received / self.min_rate if self.min_rate else 0.0
        return self.started + self.deadline + allowance

    def exceeded(self, url: str) -> UpstreamError:
        if self.min_rate is None:
            return UpstreamError(f"{url}: not complete within {self.deadline:g} s")
        return UpstreamError(
            f"{url}: slower than {self.min_rate:g} bytes/s after {self.deadline:g} s"
        )


class _Abandoned(Exception):
    """Raised by the sink of a body nobody wants, to close its connection."""


def refuse_all(data: bytes) -> None:
    raise _Abandoned()


class BodyReader(Protocol):
    """Feeds a response body to a sink, with an idle timeout, a deadline and a size limit."""

    def __init__(
        self,
        sink: Callable[[bytes], None],
        limit: int | None,
        timeout: float,
        clock: IReactorTime,
        url: str,
        pace: Pace,
    ) -> None:
        self.sink = sink
        self.limit = limit
        self.timeout = timeout
        self.clock = clock
        self.url = url
        self.pace = pace
        self.received = 0
        self.done: Deferred[None] = Deferred(lambda _: self._stop(CancelledError()))
        self._timer: IDelayedCall | None = None
        self._deadline: IDelayedCall | None = None

    def connectionMade(self) -> None:
        self._timer = self.clock.callLater(self.timeout, self._timed_out)
        self._check_pace()

    def _check_pace(self) -> None:
        """Cut the body off if it is behind its pace, else look again when it could be."""
        self._deadline = None
        delay = self.pace.latest(self.received) - self.clock.seconds()
        if delay <= 0:
            self._stop(self.pace.exceeded(self.url))
        else:
            self._deadline = self.clock.callLater(delay, self._check_pace)

    def dataReceived(self, data: bytes) -> None:
        if self.done.called:
            return
        if self._timer is not None:
            self._timer.reset(self.timeout)
        self.received += len(data)
        if self.limit is not None and self.received > self.limit:
            self._stop(UpstreamError(f"{self.url}: body larger than {self.limit} bytes"))
            return
        try:
            self.sink(data)
        except Exception as exc:  # the sink's refusal ends the read, with its reason
            self._stop(exc)

    def connectionLost(self, reason: Failure) -> None:
        self._cancel_timer()
        if self.done.called:
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(None)
        else:
            message = reason.getErrorMessage()
            self.done.errback(UpstreamError(f"{self.url}: connection lost reading body: {message}"))

    def _timed_out(self) -> None:
        self._timer = None
        self._stop(UpstreamError(f"{self.url}: no data for {self.timeout:g} s"))

    def _stop(self, error: BaseException) -> None:
        self._cancel_timer()
        if self.transport is not None:
            self.transport.stopProducing()
        if not self.done.called:
            self.done.errback(error)

    def _cancel_timer(self) -> None:
        for timer in (self._timer, self._deadline):
            if timer is not None and timer.active():
                timer.cancel()
        self._timer = self._deadline = None
