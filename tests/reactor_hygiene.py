"""Fail a test that leaves timers or sockets on the reactor.

pytest-twisted runs every test on one long-lived reactor and, unlike trial,
never checks what a test left behind. A forgotten ``callLater``, an idle
keep-alive connection or a listening port then fires or lingers during a
later test, which fails for no reason of its own. :func:`assert_reactor_clean`
is trial's janitor as a plain function, meant for an autouse fixture::

    @pytest.fixture(autouse=True)
    def reactor_is_left_clean():
        yield
        # One reactor turn first, so callLater(0) work finishes as it would.
        pytest_twisted.blockon(deferLater(reactor, 0, lambda: None))
        assert_reactor_clean()

Keep that fixture synchronous. An async fixture's teardown runs while
pytest-twisted's own ``callLater(0)`` that drives it is still pending.
"""

from __future__ import annotations

import contextlib
from typing import Any

from twisted.internet.error import ProcessExitedAlready
from twisted.internet.interfaces import IProcessTransport


def assert_reactor_clean(reactor: Any = None) -> None:
    """Raise ``AssertionError`` naming every pending timer and open selectable.

    Cleans up what it finds first (cancels the timers, takes the selectables
    off the reactor, kills processes), as trial's janitor does, so one leaky
    test fails alone instead of poisoning the rest of the session.
    """
    if reactor is None:
        from twisted.internet import reactor  # the one pytest-twisted installed
    leftovers = []
    for call in reactor.getDelayedCalls():
        if call.active() and not _is_pytest_twisted(call):
            leftovers.append(f"pending call {call}")
            call.cancel()
    # removeAll leaves the reactor's own wakers alone and returns the rest.
    for selectable in reactor.removeAll():
        leftovers.append(f"open selectable {selectable!r}")
        if IProcessTransport.providedBy(selectable):
            with contextlib.suppress(ProcessExitedAlready):
                selectable.signalProcess("KILL")
    assert not leftovers, "The test left work on the reactor:\n  " + "\n  ".join(leftovers)


def _is_pytest_twisted(call: Any) -> bool:
    """Whether pytest-twisted scheduled ``call`` to drive a test or fixture.

    Cancelling one would leave pytest waiting forever for its result.
    """
    return getattr(call.func, "__module__", "").startswith("pytest_twisted")
