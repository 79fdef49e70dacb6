"""The proxy over HTTP, in memory on our side, against a scripted upstream on loopback.

The index under test is the in-memory Site of ``http_harness`` with a proxy;
its upstream is a small twisted.web resource (``scripted_upstream``) that
``proxy_fixtures`` puts on 127.0.0.1 in the same reactor, so each test can
make it answer 500s, garbage, hang, serve a wrong hash or hold a file half
sent, and count what the proxy asked for.
Real pip and uv against real upstreams are in ``test_proxy.py``.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_twisted
from accept_headers import UV
from archive_factory import make_sdist, make_wheel, wheel_filename
from proxy_fixtures import files_of, kept, start_proxy_fixture, upstream_fixture  # noqa: F401
from scripted_upstream import METADATA, SDIST, SDIST_NAME, WHEEL, WHEEL_NAME, entry, sha256
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredList, ensureDeferred
from twisted.internet.task import deferLater
from twisted.web.client import ResponseFailed

from ministry.core.models import format_time

# -- pages ---------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_an_upstream_project_is_served_in_both_formats_with_our_urls(upstream, start_proxy):
    upstream.publish(
        "demo",
        [
            entry(upstream, WHEEL_NAME, WHEEL, **{"requires-python": ">=3.8"}),
            entry(upstream, SDIST_NAME, SDIST, yanked="broken build"),
        ],
    )
    index = await start_proxy([upstream.url + "/simple/"])
    files = await files_of(index)
    wheel, sdist = files[WHEEL_NAME], files[SDIST_NAME]
    assert wheel["url"] == f"../../packages/demo/{WHEEL_NAME}"
    assert wheel["hashes"] == {"sha256": sha256(WHEEL)}
    assert wheel["requires-python"] == ">=3.8"
    assert wheel["core-metadata"] == {"sha256": sha256(METADATA)}
    assert wheel["size"] == len(WHEEL)
    assert sdist["yanked"] == "broken build"
    html = await index.request("GET", "/simple/demo/")
    assert html.header("content-type").startswith("text/html")
    assert f'href="../../packages/demo/{WHEEL_NAME}#sha256={sha256(WHEEL)}"'.encode() in html.body
    assert b'data-yanked="broken build"' in html.body
    assert upstream.url.encode() not in html.body
    listing = await index.request("GET", "/packages/demo/")
    assert WHEEL_NAME.encode() in listing.body
    index_page = await index.request("GET", "/simple/")
    assert b'href="demo/"' in index_page.body
    # One upstream request for all of that: pages and listings share the view.
    assert len(upstream.asked("/simple/")) == 1
    assert upstream.requests[0][0] == "/simple/demo/"


@pytest_twisted.ensureDeferred
async def test_a_fresh_page_is_not_asked_again_and_an_old_one_is_revalidated(upstream, start_proxy):
    upstream.publish("demo", [entry(upstream, SDIST_NAME, SDIST)])
    fresh = await start_proxy([upstream.url + "/simple"], "fresh")
    for _ in range(3):
        await files_of(fresh)
    assert upstream.asked("/simple/") == [("/simple/demo/", None)]
    upstream.requests.clear()
    always = await start_proxy([upstream.url + "/simple"], "always", **{"upstream-ttl": "0"})
    for _ in range(3):
        assert set(await files_of(always)) == {SDIST_NAME}
    assert upstream.asked("/simple/") == [
        ("/simple/demo/", None),
        ("/simple/demo/", '"v1"'),
        ("/simple/demo/", '"v1"'),
    ]
    assert always.proxy.stats()["pages_not_modified"] == 2


@pytest_twisted.ensureDeferred
async def test_a_changed_upstream_page_is_seen_after_the_ttl(upstream, start_proxy):
    upstream.publish("demo", [entry(upstream, SDIST_NAME, SDIST)])
    index = await start_proxy([upstream.url + "/simple"], **{"upstream-ttl": "0"})
    assert set(await files_of(index)) == {SDIST_NAME}
    upstream.publish_demo('"v2"')
    assert set(await files_of(index)) == {SDIST_NAME, WHEEL_NAME}


@pytest.mark.parametrize("mode", ["500", "garbage", "hang"])
@pytest_twisted.ensureDeferred
async def test_a_stale_page_is_served_when_the_upstream_fails(upstream, start_proxy, logged, mode):
    upstream.publish("demo", [entry(upstream, SDIST_NAME, SDIST)])
    index = await start_proxy(
        [upstream.url + "/simple"], **{"upstream-ttl": "0", "upstream-timeout": "0.3"}
    )
    await files_of(index)
    await index.request("GET", f"/packages/demo/{SDIST_NAME}")
    await kept(index)  # a stale page lists only what is held here
    upstream.mode = mode
    started = time.monotonic()
    assert set(await files_of(index)) == {SDIST_NAME}
    assert time.monotonic() - started < 3
    assert index.proxy.stats()["stale_pages_served"] == 1
    assert any("serving its page from" in line for line in logged.texts)


@pytest.mark.parametrize("mode", ["500", "garbage", "hang"])
@pytest_twisted.ensureDeferred
async def test_an_uncached_project_is_a_502_when_the_upstream_fails(upstream, start_proxy, mode):
    upstream.mode = mode
    index = await start_proxy([upstream.url + "/simple"], **{"upstream-timeout": "0.3"})
    started = time.monotonic()
    response = await index.request("GET", "/simple/demo/")
    assert time.monotonic() - started < 3
    assert response.code == 502
    assert b"upstream failed for demo" in response.body


@pytest_twisted.ensureDeferred
async def test_upstreams_are_tried_in_order_and_a_failure_stops_the_search(upstream, start_proxy):
    upstream.publish("demo", [entry(upstream, SDIST_NAME, SDIST)])
    missing = upstream.url + "/nothing-here"
    index = await start_proxy([missing, upstream.url + "/simple"], "ordered")
    assert set(await files_of(index)) == {SDIST_NAME}
    assert [path for path, _ in upstream.requests] == ["/nothing-here/demo/", "/simple/demo/"]
    unknown = await index.request("GET", "/simple/nobody/")
    assert unknown.code == 404
    # An error (not a 404) from the first upstream must not hand the name to the next.
    upstream.pages["/broken/demo/"] = ("text/plain", b"what", None)
    strict = await start_proxy([upstream.url + "/broken", upstream.url + "/simple"], "strict")
    assert (await strict.request("GET", "/simple/demo/")).code == 502


@pytest_twisted.ensureDeferred
async def test_invalid_names_never_reach_the_upstream(upstream, start_proxy):
    index = await start_proxy([upstream.url + "/simple"])
    assert (await index.request("GET", "/simple/-demo-/")).code == 404
    assert upstream.requests == []


@pytest_twisted.ensureDeferred
async def test_the_cooldown_hides_recent_files_when_serving(upstream, start_proxy):
    recent = format_time(datetime.now(UTC) - timedelta(hours=1))
    upstream.publish(
        "demo",
        [
            entry(upstream, SDIST_NAME, SDIST),
            entry(upstream, WHEEL_NAME, WHEEL, **{"upload-time": recent}),
        ],
    )
    index = await start_proxy([upstream.url + "/simple"], **{"upstream-min-age": "3d"})
    assert set(await files_of(index)) == {SDIST_NAME}
    assert (await index.request("GET", f"/packages/demo/{WHEEL_NAME}")).code == 404
    # The page is kept whole: the cooldown is applied when serving, not caching.
    kept = json.loads(Path(index.proxy.saved.directory, "demo.json").read_text())
    assert {item["filename"] for item in kept["files"]} == {SDIST_NAME, WHEEL_NAME}
    now = await start_proxy([upstream.url + "/simple"], "later", **{"upstream-min-age": "30m"})
    assert set(await files_of(now)) == {SDIST_NAME, WHEEL_NAME}


# -- files ---------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_file_is_fetched_once_then_served_from_the_cache(upstream, start_proxy):
    upstream.publish("demo", [entry(upstream, WHEEL_NAME, WHEEL)])
    index = await start_proxy([upstream.url + "/simple"])
    await files_of(index)
    first = await index.request("GET", f"/packages/demo/{WHEEL_NAME}")
    assert first.code == 200
    assert first.body == WHEEL
    assert "content-encoding" not in first.headers
    await kept(index)
    second = await index.request("GET", f"/packages/demo/{WHEEL_NAME}", {"Range": "bytes=0-9"})
    assert second.code == 206
    assert second.body == WHEEL[:10]
    assert upstream.asked("/files/") == [(f"/files/{WHEEL_NAME}", None)]
    assert index.cached_blobs() == [WHEEL_NAME]
    stats = index.proxy.stats()
    assert (stats["file_hits"], stats["file_misses"], stats["file_hit_rate"]) == (1, 1, 0.5)
    assert stats["cache_bytes"] == len(WHEEL)
    # Nothing went to the uploads' storage.
    assert not list(Path(index.blobs.root).rglob("*.whl"))
    # The same numbers are in /health and /metrics.
    health = json.loads((await index.request("GET", "/health")).body)
    assert health["upstream"]["cache_bytes"] == len(WHEEL)
    assert health["upstream"]["file_hit_rate"] == 0.5
    metrics = (await index.request("GET", "/metrics")).body.decode()
    assert f"ministry_upstream_cache_bytes {float(len(WHEEL))}" in metrics
    assert "ministry_upstream_file_hits_total 1.0" in metrics
    assert "ministry_upstream_file_misses_total 1.0" in metrics


@pytest_twisted.ensureDeferred
async def test_concurrent_requests_for_one_file_fetch_it_once(upstream, start_proxy):
    upstream.publish("demo", [entry(upstream, WHEEL_NAME, WHEEL)])
    index = await start_proxy([upstream.url + "/simple"])
    await files_of(index)
    upstream.gate = Deferred()
    downloads = DeferredList(
        [ensureDeferred(index.request("GET", f"/packages/demo/{WHEEL_NAME}")) for _ in range(3)],
        consumeErrors=True,
    )
    await deferLater(reactor, 0.2, lambda: None)
    upstream.gate.callback(None)
    results = await downloads
    assert [(ok, response.body == WHEEL) for ok, response in results] == [(True, True)] * 3
    assert upstream.asked("/files/") == [(f"/files/{WHEEL_NAME}", None)]


@pytest_twisted.ensureDeferred
async def test_a_file_with_a_wrong_hash_fails_and_is_not_kept(upstream, start_proxy, logged):
    listed = entry(upstream, SDIST_NAME, SDIST)
    listed["hashes"] = {"sha256": sha256(b"other bytes")}
    upstream.publish("demo", [listed])
    index = await start_proxy([upstream.url + "/simple"])
    await files_of(index)
    for _ in range(2):
        with pytest.raises(ResponseFailed):
            await index.request("GET", f"/packages/demo/{SDIST_NAME}")
    assert index.cached_blobs() == []
    assert index.staged() == []
    assert len(upstream.asked("/files/")) == 2
    assert any("is not the page's" in line for line in logged.texts)


@pytest_twisted.ensureDeferred
async def test_a_failing_file_download_is_a_502(upstream, start_proxy):
    upstream.publish("demo", [entry(upstream, SDIST_NAME, SDIST)])
    index = await start_proxy([upstream.url + "/simple"])
    await files_of(index)
    upstream.mode = "500"
    response = await index.request("GET", f"/packages/demo/{SDIST_NAME}")
    assert response.code == 502
    assert b"answered 500" in response.body


@pytest_twisted.ensureDeferred
async def test_metadata_is_proxied_checked_and_kept(upstream, start_proxy):
    upstream.publish("demo", [entry(upstream, WHEEL_NAME, WHEEL)])
    index = await start_proxy([upstream.url + "/simple"], "good")
    await files_of(index)
    for _ in range(2):
        response = await index.request("GET", f"/packages/demo/{WHEEL_NAME}.metadata")
        assert response.code == 200
        assert response.body == METADATA
    assert upstream.asked("/files/") == [(f"/files/{WHEEL_NAME}.metadata", None)]
    await kept(index)  # kept after it was served
    assert index.cached_blobs() == [WHEEL_NAME + ".metadata"]
    upstream.files[f"/files/{WHEEL_NAME}.metadata"] = b"Metadata-Version: 2.1\nName: evil\n"
    bad = await start_proxy([upstream.url + "/simple"], "bad")
    await files_of(bad)
    response = await bad.request("GET", f"/packages/demo/{WHEEL_NAME}.metadata")
    assert response.code == 502
    assert bad.cached_blobs() == []


@pytest_twisted.ensureDeferred
async def test_html_upstream_sizes_appear_once_files_are_cached(upstream, start_proxy):
    upstream.files[f"/files/{SDIST_NAME}"] = SDIST
    upstream.publish_html("demo", [SDIST_NAME])
    index = await start_proxy([upstream.url + "/simple"])
    assert (await files_of(index))[SDIST_NAME]["size"] == 0
    response = await index.request("GET", f"/packages/demo/{SDIST_NAME}")
    assert response.body == SDIST
    await kept(index)
    assert (await files_of(index))[SDIST_NAME]["size"] == len(SDIST)


# -- shadowing, offline, eviction ----------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_hosted_project_shadows_the_upstream_one_entirely(upstream, start_proxy):
    newer = make_wheel("demo", "9.0")
    upstream.publish("demo", [entry(upstream, wheel_filename("demo", "9.0"), newer)])
    index = await start_proxy([upstream.url + "/simple"])
    assert set(await files_of(index)) == {wheel_filename("demo", "9.0")}
    response = await index.upload("demo", "1.0", SDIST_NAME, SDIST)
    assert response.code == 200
    upstream.requests.clear()
    assert set(await files_of(index)) == {SDIST_NAME}
    missing = await index.request("GET", f"/packages/demo/{wheel_filename('demo', '9.0')}")
    assert missing.code == 404
    simple_index = await index.request("GET", "/simple/", {"Accept": UV})
    names = [project["name"] for project in json.loads(simple_index.body)["projects"]]
    assert names == ["demo"]
    assert upstream.requests == []


@pytest_twisted.ensureDeferred
async def test_a_private_project_is_never_asked_of_the_upstream(upstream, start_proxy):
    upstream.publish("private", [])
    index = await start_proxy([upstream.url + "/simple"])
    private = make_wheel("private", "1.0")
    await index.upload("private", "1.0", wheel_filename("private", "1.0"), private)
    assert set(await files_of(index, "private")) == {wheel_filename("private", "1.0")}
    assert upstream.requests == []


@pytest_twisted.ensureDeferred
async def test_offline_serves_only_what_is_cached(upstream, start_proxy):
    upstream.publish(
        "demo", [entry(upstream, WHEEL_NAME, WHEEL), entry(upstream, SDIST_NAME, SDIST)]
    )
    online = await start_proxy([upstream.url + "/simple"], "shared")
    await files_of(online)
    await online.request("GET", f"/packages/demo/{WHEEL_NAME}")
    await kept(online)
    await online.stop()
    upstream.requests.clear()
    offline = await start_proxy([], "shared", offline=True)
    files = await files_of(offline)
    assert set(files) == {WHEEL_NAME}
    assert files[WHEEL_NAME]["core-metadata"] is False  # its metadata was never fetched
    assert (await offline.request("GET", f"/packages/demo/{WHEEL_NAME}")).body == WHEEL
    assert (await offline.request("GET", "/simple/other/")).code == 404
    assert b'href="demo/"' in (await offline.request("GET", "/simple/")).body
    assert upstream.requests == []


@pytest_twisted.ensureDeferred
async def test_least_recently_used_files_are_evicted_and_uploads_never(upstream, start_proxy):
    blobs = {f"demo-{n}.0.tar.gz": make_sdist("demo", f"{n}.0") for n in range(3)}
    upstream.publish("demo", [entry(upstream, name, data) for name, data in blobs.items()])
    bound = sum(len(data) for data in blobs.values()) - 1
    index = await start_proxy([upstream.url + "/simple"], **{"cache-max-size": str(bound)})
    private = make_wheel("private", "1.0")
    await index.upload("private", "1.0", wheel_filename("private", "1.0"), private)
    await files_of(index)
    # 0.0 is fetched first, but used again after 1.0 was fetched.
    for version in ("0.0", "1.0", "0.0", "2.0"):
        await index.request("GET", f"/packages/demo/demo-{version}.tar.gz")
        await kept(index)
    for _ in range(100):
        if index.proxy.stats()["evicted_files"]:
            break
        await deferLater(reactor, 0.02, lambda: None)
    assert index.cached_blobs() == ["demo-0.0.tar.gz", "demo-2.0.tar.gz"]
    stats = index.proxy.stats()
    assert stats["cache_bytes"] <= bound
    assert stats["evicted_files"] == 1
    uploaded = await index.request("GET", f"/packages/private/{wheel_filename('private', '1.0')}")
    assert uploaded.body == private
    again = await index.request("GET", "/packages/demo/demo-1.0.tar.gz")
    assert again.body == blobs["demo-1.0.tar.gz"]


@pytest_twisted.ensureDeferred
async def test_the_json_api_and_listing_describe_a_proxied_project(upstream, start_proxy):
    upstream.publish(
        "demo", [entry(upstream, WHEEL_NAME, WHEEL), entry(upstream, SDIST_NAME, SDIST)]
    )
    index = await start_proxy([upstream.url + "/simple"])
    response = await index.request("GET", "/pypi/demo/json")
    assert response.code == 200
    document = json.loads(response.body)
    assert {item["filename"] for item in document["urls"]} == {WHEEL_NAME, SDIST_NAME}
    listing = await index.request("GET", "/packages/")
    assert b'href="demo/"' in listing.body


@pytest_twisted.ensureDeferred
async def test_a_file_that_stalls_upstream_is_cut_off_after_the_timeout(upstream, start_proxy):
    upstream.publish("demo", [entry(upstream, WHEEL_NAME, WHEEL)])
    index = await start_proxy([upstream.url + "/simple"], **{"upstream-timeout": "0.3"})
    await files_of(index)
    upstream.gate = Deferred()  # half the file, then silence
    started = time.monotonic()
    with pytest.raises(ResponseFailed):
        await index.request("GET", f"/packages/demo/{WHEEL_NAME}")
    assert time.monotonic() - started < 3
    assert index.cached_blobs() == []
    assert index.staged() == []


@pytest_twisted.ensureDeferred
async def test_cached_files_are_handed_to_nginx_with_x_accel_redirect(upstream, start_proxy):
    upstream.publish("demo", [entry(upstream, WHEEL_NAME, WHEEL)])
    options = {"x-accel-redirect": "/_ministry/"}
    index = await start_proxy([upstream.url + "/simple"], **options)
    first = await index.request("GET", f"/packages/demo/{WHEEL_NAME}")
    assert first.body == WHEEL  # not cached yet: streamed from the upstream as it arrives
    await kept(index)
    second = await index.request("GET", f"/packages/demo/{WHEEL_NAME}")
    location = second.header("x-accel-redirect")
    assert second.code == 200 and second.body == b""
    assert location.startswith("/_ministry/upstream/files/")
    blob = Path(index.settings.data_dir, location.removeprefix("/_ministry/"))
    assert blob.read_bytes() == WHEEL
