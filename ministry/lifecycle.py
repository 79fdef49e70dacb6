"""A MultiService whose children stop one at a time, last started first.

Twisted's :class:`~twisted.application.service.MultiService` calls every
child's ``stopService`` in the same tick and waits for them together, so
"stopped in the reverse order" is only true of the calls: a blob store's
thread pool would be gone while the mirror's run, which it serves, is still
finishing its files. Here each child stops only once the child started
after it has finished stopping, so every service outlives its users.
"""

from __future__ import annotations

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, ensureDeferred, maybeDeferred
from twisted.logger import Logger

log = Logger()


class OrderedMultiService(MultiService):
    """Starts children in order (as MultiService does); stops them in reverse, each in turn."""

    def stopService(self) -> Deferred[None]:
        Service.stopService(self)
        return ensureDeferred(self._stop_in_turn())

    async def _stop_in_turn(self) -> None:
        for child in reversed(list(self)):
            try:
                await maybeDeferred(child.stopService)
            except Exception:  # the others must still stop
                log.failure("Stopping {name} failed", name=child.name)
