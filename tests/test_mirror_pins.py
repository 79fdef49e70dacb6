"""The mirror pins a project's files before it fetches any, in one go; a failed pin stops it.

Pins keep mirrored files from eviction (``ministry.upstream.cache``). A file
pinned only after its fetch could be evicted in between; pinned one by one,
a pass over thousands of files paid a write of the pins' file for every one
or two. In memory on a fake clock, with ``test_upstream_inprocess``'s
scripted upstream.
"""

from __future__ import annotations

from typing import Any

import pytest_twisted
from scripted_upstream import WHEEL, WHEEL_NAME, entry
from test_upstream_inprocess import DEMO_MIRROR, WHEEL_2, WHEEL_2_NAME, proxied, store
from twisted.internet.defer import fail

from ministry.core.errors import StoreUnavailable
from ministry.mirror.service import MirrorService

__all__ = ["proxied", "store"]  # fixtures, used by name


@pytest_twisted.ensureDeferred
async def test_every_file_of_a_project_is_pinned_before_the_first_is_fetched(proxied, store):
    proxy, upstream, clock, *_ = await proxied()
    upstream.publish(
        "demo", [entry(upstream, WHEEL_NAME, WHEEL), entry(upstream, WHEEL_2_NAME, WHEEL_2)]
    )
    events: list[str] = []
    index = proxy.cache.index
    pin, handle = index.pin, upstream.render

    def pinned(key: str) -> Any:
        events.append("pin " + key.rsplit("/", 1)[-1])
        return pin(key)

    def served(request: Any) -> Any:
        if request.path.endswith(b".whl"):
            events.append("fetch " + request.path.decode().rsplit("/", 1)[-1])
        return handle(request)

    index.pin, upstream.render = pinned, served
    mirror = MirrorService(DEMO_MIRROR, proxy, store, clock=clock)
    await mirror.run_once()
    assert mirror.status.errors == []
    assert mirror.status.files_fetched == 2
    pins = [event for event in events if event.startswith("pin ")]
    assert {f"pin {WHEEL_NAME}", f"pin {WHEEL_2_NAME}"} <= set(pins)  # and a .metadata
    assert sorted(events[len(pins) :]) == sorted(
        [f"fetch {WHEEL_NAME}", f"fetch {WHEEL_2_NAME}"]
    ), events


@pytest_twisted.ensureDeferred
async def test_files_that_cannot_be_pinned_are_not_fetched_and_the_status_says_why(proxied, store):
    proxy, upstream, clock, *_ = await proxied()
    upstream.publish("demo", [entry(upstream, WHEEL_NAME, WHEEL)])
    proxy.cache.index.pin = lambda key: fail(StoreUnavailable("Redis is unavailable: stalled"))
    mirror = MirrorService(DEMO_MIRROR, proxy, store, clock=clock)
    await mirror.run_once()
    assert mirror.status.files_fetched == 0
    assert not [path for path, _ in upstream.asked("/files/")]
    assert mirror.status.errors == [
        ("demo", "could not pin its files: Redis is unavailable: stalled")
    ]
