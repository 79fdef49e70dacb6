"""The daemon's services stop one at a time, each after those started after it."""

from __future__ import annotations

from twisted.application.service import Service
from twisted.internet.defer import Deferred

from ministry.lifecycle import OrderedMultiService


class Slow(Service):
    """A service whose stop takes until the test says so; logs what happened when."""

    def __init__(self, name: str, events: list[str], fail: bool = False) -> None:
        self.setName(name)
        self.events = events
        self.fail = fail
        self.stopping: Deferred[None] | None = None

    def stopService(self) -> Deferred[None]:
        super().stopService()
        self.events.append(f"stop {self.name}")
        if self.fail:
            raise RuntimeError("cannot stop")
        self.stopping = Deferred()
        return self.stopping


def test_each_child_stops_only_after_the_one_started_after_it_has_stopped() -> None:
    events: list[str] = []
    parent = OrderedMultiService()
    storage, store, mirror = (Slow(name, events) for name in ("storage", "store", "mirror"))
    for child in (storage, store, mirror):
        child.setServiceParent(parent)
    parent.startService()
    stopped = parent.stopService()
    assert events == ["stop mirror"]  # the store waits for the mirror's run to end
    mirror.stopping.callback(None)
    assert events == ["stop mirror", "stop store"]
    store.stopping.callback(None)
    assert events[-1] == "stop storage" and not stopped.called
    storage.stopping.callback(None)
    assert stopped.called


def test_a_child_that_fails_to_stop_does_not_keep_the_others_running() -> None:
    events: list[str] = []
    parent = OrderedMultiService()
    first, broken = Slow("first", events), Slow("broken", events, fail=True)
    first.setServiceParent(parent)
    broken.setServiceParent(parent)
    parent.startService()
    stopped = parent.stopService()
    first.stopping.callback(None)
    assert events == ["stop broken", "stop first"] and stopped.called
    assert not first.running
