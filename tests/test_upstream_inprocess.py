"""The proxy and the mirror in memory, on a fake clock: no sockets, no sleeps.

The upstream is the scriptable resource of ``scripted_upstream``, reached
through treq.testing's ``RequestTraversalAgent``; every timer and timestamp
of the upstream side runs on a ``twisted.internet.task.Clock`` handed to
``ministry.backends.build_upstream``, so an hour of TTL, cooldown or retry delay
passes in one ``advance``. Only disk work (pages, blobs, SQLite) goes through
the real reactor's thread pool.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import pytest
import pytest_twisted
import treq
from accept_headers import JSON_V1
from archive_factory import make_wheel, wheel_filename
from packaging.requirements import Requirement
from scripted_upstream import SDIST, SDIST_NAME, WHEEL, WHEEL_NAME, Upstream, entry
from treq.testing import RequestTraversalAgent
from twisted.internet import reactor
from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.internet.task import Clock, deferLater
from twisted.python.failure import Failure
from twisted.web.client import ResponseFailed
from twisted.web.resource import Resource

from ministry.backends import build_upstream
from ministry.catalog.views import ProjectView
from ministry.config import load_settings
from ministry.core.cooldown import CooldownException, HeldBack
from ministry.core.errors import StoreUnavailable
from ministry.core.mirror_config import MirrorConfig
from ministry.core.models import format_time
from ministry.core.simple import render_project
from ministry.mirror.service import MirrorService
from ministry.stores.blobs import FilesystemBlobStore
from ministry.stores.cache_index import EVICTION_LEASE, LocalCacheIndex
from ministry.stores.lease import LocalLease
from ministry.stores.sqlite import SQLiteStore
from ministry.upstream import pages
from ministry.upstream.pages import UpstreamPages
from ministry.web.html import environment
from ministry.web.http.files import SEND_DIRECTLY
from ministry.web.proxied_files import ProxiedFile

#: The fake clock's start (2033): the pages' default upload times are far behind it.
START = 2_000_000_000.0
HOUR = 3600.0
DAY = 24 * HOUR
#: Mirror ``demo`` alone, every two hours, for one Linux target.
DEMO_MIRROR = MirrorConfig(
    every=2 * HOUR,
    requirements=(Requirement("demo"),),
    dependencies=False,
    python=("3.12",),
    platforms=("manylinux_2_28_x86_64",),
)
WHEEL_2 = make_wheel("demo", "2.0")
WHEEL_2_NAME = wheel_filename("demo", "2.0")


def uploaded(seconds_ago: float) -> dict[str, str]:
    """A page entry's upload time, ``seconds_ago`` before START."""
    return {"upload-time": format_time(datetime.fromtimestamp(START - seconds_ago, UTC))}


class Exceptions:
    """Cooldown exceptions as the metadata store would give them, held in a list."""

    def __init__(self) -> None:
        self.held: list[CooldownException] = []
        self.asked: list[str] = []
        self.down = False  # answer as a store that is unavailable

    def of(self, name: str) -> Deferred[list[CooldownException]]:
        self.asked.append(name)
        if self.down:
            return fail(StoreUnavailable("Redis is down"))
        return succeed([item for item in self.held if item.project == name])


class Proxied(NamedTuple):
    proxy: UpstreamPages
    upstream: Upstream
    clock: Clock
    agent: RequestTraversalAgent  # the proxy's way to the upstream (flush it for late answers)
    exceptions: Exceptions


@pytest_twisted.async_yield_fixture
async def proxied(tmp_path):
    """Start an in-memory proxy on a fake clock: ``await proxied(**settings)``."""
    started: list[UpstreamPages] = []

    async def start(**options: str) -> Proxied:
        clock = Clock()
        clock.advance(START)
        upstream = Upstream()
        data_dir = str(tmp_path / f"data{len(started)}")
        settings = load_settings(
            {"data-dir": data_dir, "upstream": ["http://upstream.test/simple"], **options}
        )
        agent = RequestTraversalAgent(upstream)
        data_dir = os.path.abspath(data_dir)
        blobs = FilesystemBlobStore(os.path.join(data_dir, "upstream", "files"))
        index = LocalCacheIndex(LocalLease(EVICTION_LEASE, clock))
        exceptions = Exceptions()
        proxy = build_upstream(settings, data_dir, clock, blobs, index, exceptions.of, agent)
        assert proxy is not None
        proxy.client.startService()
        await proxy.startService()
        started.append(proxy)
        return Proxied(proxy, upstream, clock, agent, exceptions)

    yield start
    for proxy in started:
        proxy.stopService()
        await proxy.client.stopService()
        assert proxy.clock.getDelayedCalls() == [], "a timer outlived the test"


async def until(done: Callable[[], bool], pump: Callable[[], None] = lambda: None) -> None:
    """Turn the real reactor (threads report through it) until ``done()``; never sleeps."""
    give_up = time.monotonic() + 5
    while time.monotonic() < give_up:
        pump()
        if done():
            return
        await deferLater(reactor, 0, lambda: None)
    raise AssertionError("never happened")


async def filenames(proxy: UpstreamPages, project: str = "demo") -> tuple[set[str], float]:
    view, expires = await proxy.project(project)
    assert view is not None
    return {record.filename for record in view.files}, expires


async def hold(proxy: UpstreamPages, filename: str, project: str = "demo") -> None:
    """Have the proxy fetch and keep one file of the project's page."""
    view, _ = await proxy.project(project)
    assert view is not None
    record = next(record for record in view.files if record.filename == filename)
    assert await proxy.downloads.fetch(record, view.sources[filename]) == record.size


# -- pages: TTL, revalidation, stale-if-error, cooldown ------------------------------


@pytest_twisted.ensureDeferred
async def test_a_page_is_kept_for_its_ttl_then_revalidated_with_its_etag(proxied):
    proxy, upstream, clock, *_ = await proxied(**{"upstream-ttl": "10m"})
    upstream.publish("demo", [entry(upstream, SDIST_NAME, SDIST)])
    assert await filenames(proxy) == ({SDIST_NAME}, START + 600)
    clock.advance(599)
    assert await filenames(proxy) == ({SDIST_NAME}, START + 600)
    assert upstream.asked("/simple/") == [("/simple/demo/", None)]
    clock.advance(1)  # the TTL is over: asked again, with the ETag, and still the same
    assert await filenames(proxy) == ({SDIST_NAME}, START + 1200)
    assert upstream.asked("/simple/")[-1] == ("/simple/demo/", '"v1"')
    assert proxy.stats()["pages_not_modified"] == 1
    upstream.publish_demo('"v2"')
    clock.advance(600)
    assert await filenames(proxy) == ({SDIST_NAME, WHEEL_NAME}, START + 1800)
    assert proxy.stats()["pages_fetched"] == 2


@pytest_twisted.ensureDeferred
async def test_a_change_the_store_announces_revalidates_the_page_before_its_ttl(proxied):
    """``ministry-admin cache drop`` (or a cooldown change) reaches ``changed``: asked again."""
    proxy, upstream, clock, *_ = await proxied(**{"upstream-ttl": "1h"})
    upstream.publish("demo", [entry(upstream, SDIST_NAME, SDIST)])
    assert (await filenames(proxy))[0] == {SDIST_NAME}
    upstream.publish_demo('"v2"')
    proxy.changed("other")  # not cached here: nothing to ask
    clock.advance(60)
    assert (await filenames(proxy))[0] == {SDIST_NAME}  # well inside the TTL
    assert len(upstream.asked("/simple/")) == 1

    proxy.changed("demo")
    assert await filenames(proxy) == ({SDIST_NAME, WHEEL_NAME}, clock.seconds() + HOUR)
    assert upstream.asked("/simple/")[-1] == ("/simple/demo/", '"v1"')
    assert (await filenames(proxy))[0] == {SDIST_NAME, WHEEL_NAME}  # once: fresh again
    assert len(upstream.asked("/simple/")) == 2


@pytest_twisted.ensureDeferred
async def test_a_failing_upstream_gets_the_stale_page_served_then_is_retried(proxied):
    proxy, upstream, clock, *_ = await proxied(**{"upstream-ttl": "10m"})
    upstream.publish_demo()
    await hold(proxy, SDIST_NAME)
    upstream.mode = "500"
    clock.advance(600)
    now = clock.seconds()
    # Stale-if-error: at once, only what is held, and asked again after RETRY_AFTER.
    assert await filenames(proxy) == ({SDIST_NAME}, now + pages.RETRY_AFTER)
    assert proxy.failing and proxy.stats()["stale_pages_served"] == 1
    asked = len(upstream.asked("/simple/"))
    upstream.mode = "ok"
    clock.advance(pages.RETRY_AFTER)
    assert await filenames(proxy) == ({SDIST_NAME, WHEEL_NAME}, clock.seconds() + 600)
    assert len(upstream.asked("/simple/")) == asked + 1 and not proxy.failing


@pytest_twisted.ensureDeferred
async def test_a_slow_revalidation_is_waited_for_until_stale_wait_on_the_clock(proxied):
    proxy, upstream, clock, agent, _ = await proxied(**{"upstream-ttl": "10m"})
    upstream.publish_demo()
    await hold(proxy, WHEEL_NAME)
    upstream.page_gate = Deferred()
    clock.advance(600)
    waiting = Deferred.fromCoroutine(filenames(proxy))
    await until(lambda: len(upstream.asked("/simple/")) == 2)  # revalidating, and waiting
    clock.advance(pages.STALE_WAIT - 0.001)
    assert not waiting.called
    clock.advance(0.001)
    assert await waiting == ({WHEEL_NAME}, START + 600 + pages.RETRY_AFTER)
    changed: list[str | None] = []
    proxy.subscribe(changed.append)
    upstream.page_gate.callback(None)  # the revalidation (a 304) ends in the background
    await until(lambda: "demo" in changed, agent.flush)
    assert await filenames(proxy) == ({SDIST_NAME, WHEEL_NAME}, START + 1200 + pages.STALE_WAIT)
    assert proxy.stats()["pages_not_modified"] == 1


@pytest_twisted.ensureDeferred
async def test_the_cooldown_releases_a_file_when_the_clock_passes_min_age(proxied):
    proxy, upstream, clock, *_ = await proxied(**{"upstream-ttl": "1d", "upstream-min-age": "1h"})
    upstream.publish(
        "demo",
        [
            entry(upstream, SDIST_NAME, SDIST, **uploaded(2 * HOUR)),
            entry(upstream, WHEEL_NAME, WHEEL, **uploaded(600)),
        ],
    )
    # The young wheel is hidden, and the view expires when it comes of age.
    assert await filenames(proxy) == ({SDIST_NAME}, START + HOUR - 600)
    clock.advance(HOUR - 601)
    assert (await filenames(proxy))[0] == {SDIST_NAME}
    clock.advance(1)
    assert await filenames(proxy) == ({SDIST_NAME, WHEEL_NAME}, START + 24 * HOUR)
    assert len(upstream.asked("/simple/")) == 1  # the page was fresh all along


# -- files: streamed, verified, kept; retried after a failure ------------------------


async def get(agent: RequestTraversalAgent) -> tuple[int, bytes]:
    """The status and body of a GET through an in-memory agent (pumped until done)."""
    response = await pumped(treq.get("http://index.test/file", agent=agent, unbuffered=True), agent)
    return response.code, await pumped(treq.content(response), agent)


async def pumped(d: Deferred, agent: RequestTraversalAgent) -> Any:
    """``d``'s result, flushing ``agent`` until it has one (a held file's answer waits
    for the cache's index and a thread, so it may need several flushes)."""
    outcome: list = []
    d.addBoth(outcome.append)
    await until(lambda: outcome, agent.flush)
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return outcome[0]


@pytest_twisted.ensureDeferred
async def test_a_file_with_a_wrong_hash_is_cut_off_then_fetched_again_and_held(proxied):
    proxy, upstream, _, *_ = await proxied()
    upstream.publish("demo", [entry(upstream, WHEEL_NAME, WHEEL)])
    view, _ = await proxy.project("demo")
    (record,) = view.files
    client = RequestTraversalAgent(
        ProxiedFile(proxy, SEND_DIRECTLY, record, view.sources[WHEEL_NAME])
    )
    upstream.files[f"/files/{WHEEL_NAME}"] = b"x" * len(WHEEL)  # the size given, other bytes
    with pytest.raises(ResponseFailed):  # cut off before its last byte: never a whole wrong file
        await get(client)
    assert await proxy.cache.find(record, served=False) is None
    upstream.files[f"/files/{WHEEL_NAME}"] = WHEEL
    assert await get(client) == (200, WHEEL)  # asked again: a failure is not remembered
    await until(lambda: not proxy.downloads.in_flight())  # committed in a thread
    assert await get(client) == (200, WHEEL)  # from the cache
    assert len(upstream.asked("/files/")) == 2
    stats = proxy.stats()
    assert (stats["file_hits"], stats["file_misses"], stats["cached_files"]) == (1, 2, 1)


class _FailingDelivery:
    """A storage's ``Delivery`` whose response fails as it is rendered (a bug, a lost disk),
    after sending ``sent`` of the body."""

    def __init__(self, sent: bytes) -> None:
        self.sent = sent

    def file(self, *args: Any) -> Resource:
        sent = self.sent

        class Failing(Resource):
            isLeaf = True

            def render(self, request: Any) -> bytes:
                if sent:
                    request.write(sent)
                raise OSError("the disk went away")

        return Failing()


async def failing_to_render(proxied, sent: bytes) -> RequestTraversalAgent:
    """A client of a held wheel whose delivery fails after sending ``sent``."""
    proxy, upstream, _, *_ = await proxied()
    upstream.publish("demo", [entry(upstream, WHEEL_NAME, WHEEL)])
    await hold(proxy, WHEEL_NAME)
    view, _ = await proxy.project("demo")
    (record,) = view.files
    delivery = _FailingDelivery(sent)
    return RequestTraversalAgent(ProxiedFile(proxy, delivery, record, view.sources[WHEEL_NAME]))


@pytest_twisted.ensureDeferred
async def test_a_held_file_that_fails_to_render_gets_a_500_not_a_hanging_request(proxied, logged):
    code, _ = await get(await failing_to_render(proxied, b""))
    assert code == 500
    assert [failure.type for failure in logged.failures] == [OSError]


@pytest_twisted.ensureDeferred
async def test_a_held_file_failing_after_its_first_bytes_is_cut_off(proxied, logged):
    with pytest.raises(ResponseFailed):  # never a short body that looks whole
        await get(await failing_to_render(proxied, WHEEL[:100]))
    assert [failure.type for failure in logged.failures] == [OSError]


# -- the mirror: on its timer, cooldown, retry after failure --------------------------


@pytest_twisted.async_yield_fixture
async def store(tmp_path):
    store = SQLiteStore(str(tmp_path / "ministry.sqlite3"))
    await store.startService()
    yield store
    await store.stopService()


def run_ends(mirror: MirrorService) -> Deferred[None]:
    """Fires when the mirror's current (or next) run is over."""
    over: Deferred[None] = Deferred()

    def progress(status) -> None:
        if not status.running and not over.called:
            over.callback(None)

    mirror.on_progress = progress
    return over


@pytest_twisted.ensureDeferred
async def test_the_mirror_runs_on_its_clock_and_fetches_what_cooled_or_failed(proxied, store):
    proxy, upstream, clock, *_ = await proxied(**{"upstream-min-age": "1h"})
    upstream.publish(
        "demo",
        [
            entry(upstream, SDIST_NAME, SDIST),
            entry(upstream, WHEEL_NAME, WHEEL),
            entry(upstream, WHEEL_2_NAME, WHEEL_2, **uploaded(600)),  # cooling for 50 minutes
        ],
    )
    upstream.files[f"/files/{SDIST_NAME}"] = b"x" * len(SDIST)  # not what the page says
    config = DEMO_MIRROR
    mirror = MirrorService(config, proxy, store, clock=clock)
    first = run_ends(mirror)
    mirror.startService()  # the first run starts at once
    await first
    status = mirror.status
    assert (status.runs, status.files_fetched, status.files_present) == (1, 1, 0)
    assert [project for project, error in status.errors if "sha256" in error] == ["demo"]
    await until(lambda: status.next_run() is not None)  # the timer took the run's end
    assert status.next_run() == START + 2 * HOUR
    upstream.files[f"/files/{SDIST_NAME}"] = SDIST
    second = run_ends(mirror)
    clock.advance(2 * HOUR)  # the timer, on the fake clock; 2.0 has come of age meanwhile
    await second
    assert (status.runs, status.errors) == (2, [])
    assert (status.files_fetched, status.files_present) == (2, 1)  # the sdist again, and 2.0
    assert status.last_success == START + 2 * HOUR
    assert sorted(path for path, _ in upstream.asked("/files/")) == sorted(
        f"/files/{name}" for name in (WHEEL_NAME, SDIST_NAME, SDIST_NAME, WHEEL_2_NAME)
    )
    await maybeDeferred(mirror.stopService)


@pytest_twisted.ensureDeferred
async def test_the_mirror_fetches_what_an_exception_releases(proxied, store):
    proxy, upstream, clock, _, exceptions = await proxied(**{"upstream-min-age": "1d"})
    upstream.publish("demo", [entry(upstream, WHEEL_2_NAME, WHEEL_2, **uploaded(600))])
    mirror = MirrorService(DEMO_MIRROR, proxy, store, clock=clock)
    await mirror.run_once()
    assert upstream.asked("/files/") == []
    exceptions.held.append(allowed("2"))
    await mirror.run_once()
    assert [path for path, _ in upstream.asked("/files/")] == [f"/files/{WHEEL_2_NAME}"]


@pytest_twisted.ensureDeferred
async def test_files_the_mirror_keeps_are_never_evicted(proxied, store):
    others = {version: make_wheel("other", version) for version in ("1.0", "2.0")}
    bound = sum(len(data) for data in others.values()) - 1  # the mirrored wheel not counted
    proxy, upstream, clock, *_ = await proxied(**{"cache-max-size": str(bound)})
    upstream.publish("demo", [entry(upstream, WHEEL_NAME, WHEEL)])
    upstream.publish(
        "other", [entry(upstream, wheel_filename("other", v), data) for v, data in others.items()]
    )
    config = DEMO_MIRROR
    await MirrorService(config, proxy, store, clock=clock).run_once()
    for version in others:  # proxied for clients, the older first
        clock.advance(1)
        await hold(proxy, wheel_filename("other", version), "other")
    await until(lambda: proxy.cache.evicted == 1)
    (mirrored,) = (await proxy.project("demo"))[0].files
    older, newer = (await proxy.project("other"))[0].files
    assert await proxy.cache.find(mirrored, served=False) is not None
    assert await proxy.cache.find(older, served=False) is None
    assert await proxy.cache.find(newer, served=False) is not None


# -- the cooldown of files the upstream gives no upload time -------------------------


def moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@pytest_twisted.ensureDeferred
async def test_an_undated_file_cools_down_from_first_seen_and_is_never_dated(proxied):
    proxy, upstream, clock, *_ = await proxied(**{"upstream-ttl": "1h", "upstream-min-age": "1d"})
    undated = entry(upstream, WHEEL_NAME, WHEEL, **{"upload-time": None})
    upstream.publish("demo", [entry(upstream, SDIST_NAME, SDIST, **uploaded(2 * DAY)), undated])
    view, _ = await proxy.project("demo")
    assert {record.filename for record in view.files} == {SDIST_NAME}
    assert view.held_back == (
        HeldBack(WHEEL_NAME, "1.0", moment(START), False, moment(START + DAY)),
    )
    # A changed page, still undated: the first sighting is kept, not restarted.
    clock.advance(12 * HOUR)
    upstream.publish(
        "demo", [entry(upstream, SDIST_NAME, SDIST, **uploaded(2 * DAY)), undated], '"v2"'
    )
    view, _ = await proxy.project("demo")
    assert proxy.stats()["pages_fetched"] == 2
    assert [item.until for item in view.held_back] == [moment(START + DAY)]
    clock.advance(DAY - 12 * HOUR - 1)
    assert (await filenames(proxy))[0] == {SDIST_NAME}
    clock.advance(1)
    view, _ = await proxy.project("demo")
    assert {record.filename for record in view.files} == {SDIST_NAME, WHEEL_NAME}
    assert view.held_back == ()
    # Served, but its first-seen time is not passed off as an upload time.
    assert not view.sources[WHEEL_NAME].upload_time_known
    assert view.sources[SDIST_NAME].upload_time_known
    catalog_view = ProjectView.of(view.project, list(view.files), view.sources, view.held_back)
    served = {record.filename: catalog_view.upload_time_known(record) for record in view.files}
    assert served == {SDIST_NAME: True, WHEEL_NAME: False}


@pytest_twisted.ensureDeferred
async def test_the_held_back_files_are_listed_with_when_they_are_released(proxied):
    proxy, upstream, clock, *_ = await proxied(**{"upstream-ttl": "1d", "upstream-min-age": "1h"})
    upstream.publish(
        "demo",
        [
            entry(upstream, SDIST_NAME, SDIST, **uploaded(2 * HOUR)),
            entry(upstream, WHEEL_NAME, WHEEL, **{"upload-time": None}),
            entry(upstream, WHEEL_2_NAME, WHEEL_2, **uploaded(600)),
        ],
    )
    view, expires = await proxy.project("demo")
    assert view.held_back == (
        HeldBack(WHEEL_2_NAME, "2.0", moment(START - 600), True, moment(START + HOUR - 600)),
        HeldBack(WHEEL_NAME, "1.0", moment(START), False, moment(START + HOUR)),
    )
    assert expires == START + HOUR - 600
    html = environment().get_template("held_back.html").render(held_back=view.held_back)
    items = re.findall(r'<li data-filename="([^"]+)">(.*?)</li>', html, re.S)
    assert [name for name, _ in items] == [WHEEL_2_NAME, WHEEL_NAME]
    assert "Uploaded" in items[0][1] and "2033-05-18 03:23 UTC" in items[0][1]
    assert "First seen here" in items[1][1] and "Uploaded" not in items[1][1]
    assert "Held back until" in items[1][1] and "2033-05-18 04:33 UTC" in items[1][1]
    clock.advance(HOUR)
    view, _ = await proxy.project("demo")
    assert view.held_back == ()
    assert environment().get_template("held_back.html").render(held_back=()).strip() == ""
    # Pages that pass nothing (a hosted project) render nothing either.
    assert environment().get_template("held_back.html").render().strip() == ""


def allowed(version: str | None) -> CooldownException:
    return CooldownException("demo", version, "reviewed the diff", "alice", moment(START))


@pytest_twisted.ensureDeferred
async def test_a_cooldown_exception_releases_one_version_or_all_and_is_shown(proxied):
    proxy, upstream, _, _, exceptions = await proxied(
        **{"upstream-ttl": "1d", "upstream-min-age": "1d"}
    )
    upstream.publish(
        "demo",
        [
            entry(upstream, SDIST_NAME, SDIST, **uploaded(HOUR)),
            entry(upstream, WHEEL_2_NAME, WHEEL_2, **uploaded(HOUR)),
        ],
    )
    assert (await filenames(proxy))[0] == set()
    exceptions.held.append(allowed("1.0.0"))  # as 1.0: one release
    view, expires = await proxy.project("demo")
    assert {record.filename for record in view.files} == {SDIST_NAME}
    assert [item.filename for item in view.held_back] == [WHEEL_2_NAME]
    assert (view.exceptions, view.released_early) == ((allowed("1.0.0"),), (SDIST_NAME,))
    assert expires == START - HOUR + DAY  # the held wheel still comes of age on time

    exceptions.held.append(allowed(None))
    view, _ = await proxy.project("demo")
    assert {record.filename for record in view.files} == {SDIST_NAME, WHEEL_2_NAME}
    assert view.held_back == ()
    html = (
        environment()
        .get_template("held_back.html")
        .render(held_back=(), exceptions=view.exceptions, released_early=view.released_early)
    )
    assert re.findall(r'data-exception="([^"]+)"', html) == ["demo==1.0.0", "demo"]
    assert "reviewed the diff" in html and "alice" in html and WHEEL_2_NAME in html


@pytest_twisted.ensureDeferred
async def test_exceptions_are_asked_only_under_a_cooldown_and_an_outage_applies_none(
    proxied, logged
):
    proxy, upstream, _, _, exceptions = await proxied(**{"upstream-ttl": "1d"})
    upstream.publish("demo", [entry(upstream, SDIST_NAME, SDIST, **uploaded(HOUR))])
    assert (await filenames(proxy))[0] == {SDIST_NAME}
    assert exceptions.asked == []  # no cooldown, so no store call per view

    proxy, upstream, _, _, exceptions = await proxied(
        **{"upstream-ttl": "1d", "upstream-min-age": "1d"}
    )
    upstream.publish("demo", [entry(upstream, SDIST_NAME, SDIST, **uploaded(HOUR))])
    exceptions.held.append(allowed(None))
    exceptions.down = True
    view, expires = await proxy.project("demo")
    assert view.files == () and [item.filename for item in view.held_back] == [SDIST_NAME]
    assert expires == START + pages.RETRY_AFTER  # asked again soon, not at the TTL
    assert any("Cooldown exceptions of demo unknown, none applied" in t for t in logged.texts)


# -- the upstream's PEP 792 project status ------------------------------------------


@pytest_twisted.ensureDeferred
async def test_an_upstream_quarantine_reaches_the_pages_at_their_next_refresh(proxied):
    proxy, upstream, clock, *_ = await proxied(**{"upstream-ttl": "10m"})
    upstream.publish_demo()
    view, _ = await proxy.project("demo")
    assert (view.project.status, len(view.files)) == ("active", 2)
    upstream.publish(
        "demo",
        [entry(upstream, SDIST_NAME, SDIST), entry(upstream, WHEEL_NAME, WHEEL)],
        '"v2"',
        status={"status": "quarantined", "reason": "malware in 1.0"},
    )
    clock.advance(600)  # the TTL is over: the next ask revalidates
    view, _ = await proxy.project("demo")
    assert (view.project.status, view.project.status_reason) == ("quarantined", "malware in 1.0")
    page = json.loads(render_project(view.project, list(view.files), str, JSON_V1))
    assert page["files"] == [] and page["project-status"]["status"] == "quarantined"
    # Kept with the saved page: a restart (or the offline listing) says it too.
    saved = await proxy.saved.read("demo")
    assert (saved.status, saved.status_reason) == ("quarantined", "malware in 1.0")


@pytest_twisted.ensureDeferred
async def test_the_mirror_skips_a_project_quarantined_upstream(proxied, store):
    proxy, upstream, clock, *_ = await proxied()
    upstream.publish("demo", [entry(upstream, WHEEL_NAME, WHEEL)], status={"status": "quarantined"})
    mirror = MirrorService(DEMO_MIRROR, proxy, store, clock=clock)
    await mirror.run_once()
    report = mirror.status.to_dict()
    assert report["skipped"] == [{"project": "demo", "reason": "demo is quarantined upstream"}]
    assert upstream.asked("/files/") == []


@pytest_twisted.ensureDeferred
async def test_the_mirror_asks_for_several_project_pages_at_once(proxied, store):
    """A run is not one round trip per project in turn: an unchanged selection of
    hundreds of projects would take minutes on a distant upstream."""
    proxy, upstream, clock, agent, _ = await proxied()
    names = [f"proj{n}" for n in range(6)]
    for name in names:
        data = make_wheel(name, "1.0")
        upstream.publish(name, [entry(upstream, wheel_filename(name, "1.0"), data)])
    config = MirrorConfig(
        requirements=tuple(Requirement(name) for name in names),
        dependencies=False,
        python=("3.12",),
        platforms=("manylinux_2_28_x86_64",),
    )
    mirror = MirrorService(config, proxy, store, clock=clock)
    upstream.page_gate = Deferred()  # every page waits until the gate opens
    run = Deferred.fromCoroutine(mirror.run_once())
    await until(lambda: len(upstream.asked("/simple/")) >= 4)  # asked before any answer
    upstream.page_gate.callback(None)
    await until(lambda: run.called, agent.flush)
    assert await run is True
    assert (mirror.status.errors, mirror.status.files_fetched) == ([], 6)
    assert mirror.status.projects_done == mirror.status.projects_total == 6
