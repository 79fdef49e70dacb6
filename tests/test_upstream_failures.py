"""Upstreams down, slow or trickling, and a slow cache disk: bounded waits, honest listings.

Against the scripted upstream of ``scripted_upstream``, on loopback: it can
answer 500s, hang, hold a page until the test says, or send a byte every
0.1 s forever (slower than any deadline, faster than any idle timeout).
"""

from __future__ import annotations

import hashlib
import re
import time

import pytest
import pytest_twisted
from archive_factory import make_wheel, wheel_filename
from proxy_fixtures import files_of, kept, start_proxy_fixture, upstream_fixture  # noqa: F401
from scripted_upstream import METADATA, SDIST, SDIST_NAME, WHEEL, WHEEL_NAME, entry
from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import deferLater
from twisted.web.client import ResponseFailed

from ministry.upstream import pages

WHEEL_2 = make_wheel("demo", "2.0")
WHEEL_2_NAME = wheel_filename("demo", "2.0")


async def timed(index, path: str, limit: float = 5.0):
    """The response and how long it took; a test fails (not hangs) past ``limit``."""
    started = time.monotonic()
    waiting = ensureDeferred(index.request("GET", path))
    response = await waiting.addTimeout(limit, reactor)
    return response, time.monotonic() - started


async def listed(index, project: str = "demo") -> dict[str, dict]:
    return await ensureDeferred(files_of(index, project)).addTimeout(5, reactor)


# -- class 5: deadlines ----------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_trickling_page_is_given_up_at_the_deadline(upstream, start_proxy):
    upstream.mode = "trickle"
    options = {"upstream-timeout": "0.5", "upstream-deadline": "1"}
    index = await start_proxy([upstream.url + "/simple"], **options)
    response, took = await timed(index, "/simple/demo/")
    assert response.code == 502
    assert b"not complete within 1 s" in response.body
    assert took < 3


async def proxy_listing_a_wheel(source, start, **options: str):
    """A proxy (``start``) in front of ``source`` publishing one wheel, its page fetched."""
    source.publish("demo", [entry(source, WHEEL_NAME, WHEEL)])
    index = await start([source.url + "/simple"], **options)
    await listed(index)
    return index


@pytest_twisted.ensureDeferred
async def test_a_trickling_file_is_cut_off_at_the_deadline(upstream, start_proxy):
    index = await proxy_listing_a_wheel(
        upstream, start_proxy, **{"upstream-timeout": "0.5", "upstream-deadline": "1"}
    )
    upstream.mode = "trickle"
    started = time.monotonic()
    with pytest.raises(ResponseFailed):
        await timed(index, f"/packages/demo/{WHEEL_NAME}")
    assert time.monotonic() - started < 3
    assert index.cached_blobs() == [] and index.staged() == []


@pytest_twisted.ensureDeferred
async def test_a_file_keeping_up_the_minimum_rate_outlives_the_deadline(upstream, start_proxy):
    index = await proxy_listing_a_wheel(
        upstream, start_proxy, **{"upstream-deadline": "0.5", "upstream-min-rate": "1K"}
    )
    upstream.gate = Deferred()  # half now, half after the deadline, within the rate
    reactor.callLater(0.7, upstream.gate.callback, None)
    response, took = await timed(index, f"/packages/demo/{WHEEL_NAME}")
    assert response.body == WHEEL
    assert took > 0.6


@pytest_twisted.ensureDeferred
async def test_with_a_short_ttl_a_failing_upstream_is_waited_for_once(upstream, start_proxy):
    other = make_wheel("other", "1.0")
    upstream.publish("demo", [entry(upstream, SDIST_NAME, SDIST)])
    upstream.publish("other", [entry(upstream, wheel_filename("other", "1.0"), other)])
    options = {"upstream-ttl": "0", "upstream-timeout": "0.5"}
    index = await start_proxy([upstream.url + "/simple"], **options)
    await listed(index)
    await listed(index, "other")
    upstream.mode = "hang"
    first, took = await timed(index, "/simple/demo/")
    assert first.code == 200 and took < 2
    # Neither this project again nor another one waits: the upstream is known to fail.
    for path in ("/simple/demo/", "/simple/demo/", "/simple/other/"):
        response, took = await timed(index, path)
        assert response.code == 200
        assert took < 0.3, path


@pytest_twisted.ensureDeferred
async def test_a_slow_upstream_gets_a_short_wait_then_is_revalidated_in_the_background(
    upstream, start_proxy, monkeypatch
):
    monkeypatch.setattr(pages, "STALE_WAIT", 0.3)
    upstream.publish("demo", [entry(upstream, SDIST_NAME, SDIST)])
    options = {"upstream-ttl": "0", "upstream-timeout": "5"}
    index = await start_proxy([upstream.url + "/simple"], **options)
    await listed(index)
    await index.request("GET", f"/packages/demo/{SDIST_NAME}")
    await kept(index)
    upstream.page_gate = Deferred()
    upstream.publish_demo('"v2"')
    response, took = await timed(index, "/simple/demo/")
    assert response.code == 200 and took < 1.5
    assert set(await listed(index)) == {SDIST_NAME}  # stale, so only what is held
    upstream.page_gate.callback(None)  # the upstream answers the revalidation under way
    await deferLater(reactor, 0.2, lambda: None)
    assert set(await listed(index)) == {SDIST_NAME, WHEEL_NAME}


@pytest_twisted.ensureDeferred
async def test_a_slow_cache_disk_does_not_hold_up_a_wheels_metadata(upstream, start_proxy):
    """The checked bytes go out at once; keeping them (fsync, rename) follows.

    A cold install asks for one ``.metadata`` per wheel, each a fresh
    write to the cache: waiting for the disk there slowed every one.
    """
    upstream.publish("demo", [entry(upstream, WHEEL_NAME, WHEEL)])
    index = await start_proxy([upstream.url + "/simple"])
    await listed(index)
    blobs, disk = index.proxy.cache.blobs, Deferred()
    commit = blobs.commit
    blobs.commit = lambda staging, key: disk.addCallback(lambda _: commit(staging, key))
    try:
        response, _ = await timed(index, f"/packages/demo/{WHEEL_NAME}.metadata", limit=2)
        assert response.code == 200 and response.body == METADATA
        assert index.cached_blobs() == []  # the disk has not finished yet
    finally:
        disk.callback(None)
    await kept(index)
    assert index.cached_blobs() == [WHEEL_NAME + ".metadata"]


# -- class 8: nothing advertised that cannot be served ---------------------------------


@pytest_twisted.ensureDeferred
async def test_while_the_upstream_is_down_pages_list_only_what_is_held(
    upstream, start_proxy, monkeypatch
):
    monkeypatch.setattr(pages, "RETRY_AFTER", 0.3)
    wheel_2_metadata = {"core-metadata": {"sha256": hashlib.sha256(b"whatever").hexdigest()}}
    upstream.publish(
        "demo",
        [
            entry(upstream, WHEEL_NAME, WHEEL),
            entry(upstream, SDIST_NAME, SDIST),
            entry(upstream, WHEEL_2_NAME, WHEEL_2, **wheel_2_metadata),
        ],
    )
    index = await start_proxy([upstream.url + "/simple"], **{"upstream-ttl": "0"})
    assert len(await listed(index)) == 3
    for path in (WHEEL_NAME, f"{WHEEL_NAME}.metadata", WHEEL_2_NAME):
        assert (await index.request("GET", f"/packages/demo/{path}")).code == 200
    await kept(index)
    upstream.mode = "500"
    files = await listed(index)
    assert set(files) == {WHEEL_NAME, WHEEL_2_NAME}  # the sdist was never fetched
    assert files[WHEEL_NAME]["core-metadata"] == {"sha256": hashlib.sha256(METADATA).hexdigest()}
    served = await index.request("GET", f"/packages/demo/{WHEEL_NAME}.metadata")
    assert hashlib.sha256(served.body).hexdigest() == files[WHEEL_NAME]["core-metadata"]["sha256"]
    assert files[WHEEL_2_NAME]["core-metadata"] is False  # its metadata is not held
    html = (await index.request("GET", "/simple/demo/")).body
    assert SDIST_NAME.encode() not in html
    assert (await index.request("GET", f"/packages/demo/{SDIST_NAME}")).code == 404
    metrics = (await index.request("GET", "/metrics")).body.decode()
    assert "ministry_upstream_failing 1.0" in metrics
    stale = re.search(r"^ministry_upstream_stale_pages_served_total (\S+)$", metrics, re.M)
    assert stale is not None and float(stale.group(1)) >= 1
    upstream.mode = "ok"
    for _ in range(50):  # the full page returns with the upstream
        if len(await listed(index)) == 3:
            break
        await deferLater(reactor, 0.1, lambda: None)
    assert set(await listed(index)) == {WHEEL_NAME, SDIST_NAME, WHEEL_2_NAME}
