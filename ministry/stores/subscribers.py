"""The callbacks a metadata store tells of each changed project.

Both stores announce changes the same way (the web layer's page caches
subscribe), so the loop lives here once: every callback is called, in the
order it subscribed, and a broken one is logged rather than allowed to turn
a committed change into an error for its caller.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.logger import Logger

log = Logger()


class Subscribers:
    """The callbacks of one store, called with a project's canonical name."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[str], None]] = []

    def add(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(name)`` after every later change."""
        self._callbacks.append(callback)

    def notify(self, name: str) -> None:
        """Tell every callback that ``name`` changed; never raises."""
        for callback in list(self._callbacks):  # a callback may subscribe another
            try:
                callback(name)
            except Exception:
                log.failure(
                    "Store subscriber {callback!r} failed for {name}", callback=callback, name=name
                )
