"""Bounded memory whatever clients send: the page cache and the README renderer.

The page cache is bounded in bytes and evicts the least recently used
entries; a page printing the server's URL is cached once however many
``Host`` headers ask for it; a README that renders past its time budget has
its child process killed and is shown as text, and the next one renders.
"""

from __future__ import annotations

import json
import re
import zipfile

import pytest
import pytest_twisted
from archive_factory import make_wheel, metadata_text, wheel_filename
from http_harness import InMemoryIndex
from twisted.internet import reactor

from ministry.catalog.cache import OVERHEAD, PageCache
from ministry.catalog.readmes import Readmes, ReadmeWorker
from ministry.core.metadata import CoreMetadata
from ministry.web.http.rendered import Page


def slow_rst(size: int) -> str:
    """reStructuredText that docutils takes about a second per 100 KB to render."""
    sections, count = [], 0
    while count < size:
        title = f"Section {len(sections)}"
        body = "Some *text*, ``code`` and a `link <http://x/>`_.\n\n- item\n- two\n\n"
        section = f"{title}\n{'=' * len(title)}\n\n{body}"
        sections.append(section)
        count += len(section)
    return "".join(sections)


async def upload(index: InMemoryIndex, name: str, version: str, description: str) -> None:
    metadata = metadata_text(
        name, version, description=description, description_content_type="text/plain"
    )
    filename = wheel_filename(name, version)
    response = await index.upload(
        name,
        version,
        filename,
        make_wheel(name, version, metadata=metadata, compression=zipfile.ZIP_STORED),
    )
    assert response.code == 200, response.body


async def cache_state(index: InMemoryIndex) -> dict:
    return json.loads((await index.request("GET", "/health")).body)["page_cache"]


def page(size: int) -> Page:
    return Page.of(b"x" * size, "text/html")


@pytest_twisted.ensureDeferred
async def test_a_cache_over_its_byte_bound_evicts_the_least_recently_used():
    cache = PageCache(max_bytes=3 * (1000 + OVERHEAD))
    for name in ("a", "b", "c"):
        await cache.fill((name, "page"), lambda: page(1000))
    assert cache.get(("a", "page")) is not None  # "b" is now the least recently used
    await cache.fill(("d", "page"), lambda: page(1000))
    assert cache.get(("b", "page")) is None
    assert all(cache.get((name, "page")) is not None for name in ("a", "c", "d"))
    assert cache.bytes <= cache.max_bytes
    # A value bigger than the whole bound is handed on but not kept.
    assert len((await cache.fill(("e", "page"), lambda: page(10_000))).body) == 10_000
    assert cache.get(("e", "page")) is None and len(cache) == 3
    # Dropping a project gives its bytes back.
    cache.invalidate("a")
    assert len(cache) == 2 and cache.bytes == 2 * (1000 + OVERHEAD)


@pytest_twisted.ensureDeferred
async def test_many_host_headers_share_one_cached_page(index):
    await upload(index, "big-readme", "1.0", "A long description.\n" * 50_000)  # 1 MB
    await index.request("GET", "/project/big-readme/")
    await index.request("GET", "/pypi/big-readme/json")
    await index.request("GET", "/")
    before = await cache_state(index)
    tags = set()
    for n in range(60):
        host = f"host-{n}.example:8080"
        for path in ("/project/big-readme/", "/pypi/big-readme/json", "/"):
            response = await index.request("GET", path, {"Host": host})
            assert response.code == 200
            # Each client still sees the URL it reached this server by.
            assert f"http://{host}/" in response.body.decode(), path
            tags.add(response.header("etag"))
    after = await cache_state(index)
    assert after["entries"] == before["entries"]
    # Four copies of 1 MB (metadata, README, page, JSON document), whatever the hosts.
    assert after["bytes"] == before["bytes"] < 8 * 1024**2
    assert len(tags) == 3 * 60  # an ETag per URL printed: no client gets another's page


@pytest_twisted.ensureDeferred
async def test_the_same_host_revalidates_with_304(index):
    await upload(index, "small", "1.0", "Short.")
    first = await index.request("GET", "/project/small/", {"Host": "a.example"})
    tag = first.header("etag")
    same = await index.request(
        "GET", "/project/small/", {"Host": "a.example", "If-None-Match": tag}
    )
    other = await index.request(
        "GET", "/project/small/", {"Host": "b.example", "If-None-Match": tag}
    )
    assert (same.code, other.code) == (304, 200)
    assert b"http://b.example/simple/" in other.body


@pytest_twisted.ensureDeferred
async def test_a_readme_past_its_time_budget_is_killed_and_shown_as_text():
    worker = ReadmeWorker(reactor, time_budget=0.5)
    readmes = Readmes(PageCache(), worker)
    try:
        slow = CoreMetadata("slow", "1.0", description=slow_rst(300_000))
        shown = await readmes.html(("slow", "readme", 1), slow)
        assert worker.overruns == 1
        assert shown.startswith('<pre class="readme-text">Section 0\n=========')
        assert "<h1>" not in shown and "<em>text</em>" not in shown
        # A fresh child renders the next README.
        quick = CoreMetadata("quick", "1.0", description="Title\n=====\n\n*hi*\n")
        assert re.search(
            r"<h1>Title.*<em>hi</em>", await readmes.html(("quick", "readme", 1), quick), re.S
        )
        # Cached by identity: asking again renders nothing.
        assert await readmes.html(("slow", "readme", 1), slow) is shown
    finally:
        await worker.stopService()


@pytest.mark.parametrize("size", [2 * 1024**2])
@pytest_twisted.ensureDeferred
async def test_a_readme_over_its_size_budget_is_shown_as_text_without_rendering(size):
    worker = ReadmeWorker(reactor)
    readmes = Readmes(PageCache(), worker)
    huge = CoreMetadata("huge", "1.0", description="<b>x</b>\n" * (size // 9))
    shown = await readmes.html(("huge", "readme", 1), huge)
    assert shown.startswith('<pre class="readme-text">&lt;b&gt;x&lt;/b&gt;')
    assert "characters long: the first 1,048,576 are shown" in shown
    assert len(shown) < 6 * 1024**2
    await worker.stopService()
