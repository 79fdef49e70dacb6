"""A lease held in this process: the embedded store's :class:`ILease`.

The SQLite store serves one process (see :mod:`ministry.stores.sqlite`), so
its lease only has to keep two runs in that process apart; a lease that
several processes respect is the Redis store's
(:mod:`ministry.stores.redis.lease`). Same rules as that one, so that the
mirror cannot tell them apart: a holder keeps the lease until it releases
it or stops renewing it for ``duration`` seconds on ``clock``.
"""

from __future__ import annotations

import os
import uuid

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from ministry.interfaces import ILease


def holder_id(what: str) -> str:
    """A name for this process holding a lease for ``what``: unique, and readable in Redis.

    Host and process id say who holds it; a random part keeps two holders
    apart in one process (a restarted service, a test's two daemons).
    """
    return f"{what}:{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _global_reactor() -> IReactorTime:
    """The reactor twistd (or the tests) installed, looked up only when first needed."""
    from twisted.internet import reactor

    return reactor  # type: ignore[return-value]


@implementer(ILease)
class LocalLease:
    """One named lease, expiring on ``clock`` (the global reactor unless given)."""

    def __init__(self, name: str, clock: IReactorTime | None = None) -> None:
        self.name = name
        self._clock = clock
        self._holder: str | None = None
        self._expires = 0.0

    def _now(self) -> float:
        if self._clock is None:
            self._clock = _global_reactor()
        return self._clock.seconds()

    def _held_by(self, holder: str) -> bool:
        return self._holder == holder and self._now() < self._expires

    def acquire(self, holder: str, duration: float) -> Deferred[bool]:
        """Take the lease if it is free or expired; renew it if ``holder`` has it."""
        if self._holder is not None and not self._held_by(self._holder):
            self._holder = None  # expired: anyone may take it
        if self._holder not in (None, holder):
            return succeed(False)
        self._holder, self._expires = holder, self._now() + duration
        return succeed(True)

    def renew(self, holder: str, duration: float) -> Deferred[bool]:
        """Extend the lease by ``duration`` from now, only while ``holder`` still has it."""
        if not self._held_by(holder):
            return succeed(False)
        self._expires = self._now() + duration
        return succeed(True)

    def release(self, holder: str) -> Deferred[bool]:
        """Give the lease up, if ``holder`` still has it."""
        if not self._held_by(holder):
            return succeed(False)
        self._holder = None
        return succeed(True)
