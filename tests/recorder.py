"""One way for a test to see what was called: a store's subscribers, the log, a callback.

A :class:`Recorder` is a callable that remembers every call it gets, and
whether it came on the reactor thread (store subscribers must be called
there, whichever thread the store's work finished on). Handed to
``store.subscribe`` it collects project names; added to the global log
publisher (:meth:`Recorder.watching_log`, or the ``logged`` fixture in
``conftest.py``) it collects log events, readable as text or as failures.
Tests that need to know what happened assert on one of its lists, so there
is one recorder to read rather than a hand-written list per test module.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from twisted.logger import formatEvent, globalLogPublisher
from twisted.python import threadable
from twisted.python.failure import Failure


class Recorder:
    """Remembers every call: its arguments, and whether it ran on the reactor thread."""

    def __init__(self) -> None:
        #: ``(args, kwargs)`` of every call, in order.
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        #: For every call, whether it was made on the reactor thread.
        self.on_reactor_thread: list[bool] = []

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append((args, kwargs))
        self.on_reactor_thread.append(threadable.isInIOThread())

    @property
    def names(self) -> list[Any]:
        """The first argument of every call: a subscriber is called with a project name."""
        return [args[0] for args, _ in self.calls if args]

    @property
    def events(self) -> list[dict[str, Any]]:
        """The log events heard, as a log observer is called with one event each time."""
        return [args[0] for args, _ in self.calls if args and isinstance(args[0], dict)]

    @property
    def texts(self) -> list[str]:
        """Every log event that has a message, formatted as the log file would show it."""
        return [formatEvent(event) for event in self.events if "log_format" in event]

    @property
    def failures(self) -> list[Failure]:
        """The failures logged (``log.failure(...)``, errors logged with their traceback)."""
        return [event["log_failure"] for event in self.events if "log_failure" in event]

    @contextmanager
    def watching_log(self) -> Iterator[Recorder]:
        """Record every event of Twisted's global log while the block runs."""
        globalLogPublisher.addObserver(self)
        try:
            yield self
        finally:
            globalLogPublisher.removeObserver(self)
