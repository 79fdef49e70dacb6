"""``/simple/`` after a restart: the last stop's pages, if and only if nothing changed (issue 17).

At 100,000 projects the first ``/simple/`` after a start waited over a second
for every project to be read and rendered. The pages the daemon had cached
are saved when it stops (``ministry.web.saved_index``) and served at the next
start while the store's serial is still theirs. What must never happen is a
saved page hiding a change: one made while the daemon was down (by another
process on the same store), one made after the start, or one rendered by
another version of ministry.
"""

from __future__ import annotations

import json

import pytest_twisted
from archive_factory import make_wheel, wheel_filename
from http_harness import InMemoryIndex

from ministry.core.negotiate import JSON_V1
from ministry.web import saved_index
from ministry.web.saved_index import SavedIndex


def saved_service(index: InMemoryIndex) -> SavedIndex:
    (service,) = [s for s in index.services if isinstance(s, SavedIndex)]
    return service


async def started(data_dir: str) -> InMemoryIndex:
    index = InMemoryIndex(data_dir)
    await index.start()
    service = saved_service(index)
    service.startService()
    await service.loaded
    return index


async def stopped(index: InMemoryIndex) -> None:
    await saved_service(index).stopService()
    await index.stop()


async def upload(index: InMemoryIndex, name: str) -> None:
    filename = wheel_filename(name, "1.0")
    assert (await index.upload(name, "1.0", filename, make_wheel(name, "1.0"))).code == 200


async def pages(index: InMemoryIndex) -> dict[str, tuple[bytes, str]]:
    found = {}
    for accept in ("text/html", JSON_V1):
        response = await index.request("GET", "/simple/", {"Accept": accept})
        assert response.code == 200
        found[accept] = (response.body, response.headers["etag"])
    return found


def count_listings(index: InMemoryIndex) -> list[None]:
    """Each read of every project from the store, counted."""
    calls: list[None] = []
    listing = index.store.list_projects

    def counted():
        calls.append(None)
        return listing()

    index.store.list_projects = counted
    return calls


@pytest_twisted.ensureDeferred
async def test_a_restart_serves_the_saved_index_until_something_changes(tmp_path):
    first = await started(str(tmp_path))
    await upload(first, "alpha-pkg")
    await upload(first, "beta-pkg")
    before = await pages(first)
    await stopped(first)

    again = await started(str(tmp_path))
    listings = count_listings(again)
    try:
        assert await pages(again) == before  # the same bytes and ETags...
        assert listings == []  # ...without reading every project
        await upload(again, "gamma-pkg")
        after = await pages(again)
        assert listings  # rendered from the store again
        assert b"gamma-pkg" in after["text/html"][0] and b"gamma-pkg" in after[JSON_V1][0]
    finally:
        await stopped(again)


@pytest_twisted.ensureDeferred
async def test_a_change_made_while_the_daemon_was_down_is_served(tmp_path):
    first = await started(str(tmp_path))
    await upload(first, "alpha-pkg")
    await pages(first)
    await stopped(first)

    other = InMemoryIndex(str(tmp_path))  # another process on the same store
    await other.start()
    await upload(other, "late-pkg")
    await other.stop()

    again = await started(str(tmp_path))
    try:
        for body, _ in (await pages(again)).values():
            assert b"alpha-pkg" in body and b"late-pkg" in body
    finally:
        await stopped(again)


@pytest_twisted.ensureDeferred
async def test_a_page_another_version_rendered_is_not_served(tmp_path, monkeypatch):
    first = await started(str(tmp_path))
    await upload(first, "alpha-pkg")
    await pages(first)
    await stopped(first)

    monkeypatch.setattr(saved_index, "renderer_digest", lambda: "another rendering")
    again = await started(str(tmp_path))
    listings = count_listings(again)
    try:
        await pages(again)
        assert len(listings) == 1
    finally:
        await stopped(again)


def test_an_index_with_an_upstream_saves_no_page(tmp_path):
    """Its index lists the proxied projects it cached, which carry no serial."""
    proxy = InMemoryIndex(str(tmp_path), upstream="http://upstream.invalid/simple/")
    assert not [s for s in proxy.services if isinstance(s, SavedIndex)]


@pytest_twisted.ensureDeferred
async def test_a_damaged_saved_page_is_rendered_afresh(tmp_path):
    first = await started(str(tmp_path))
    await upload(first, "alpha-pkg")
    before = await pages(first)
    await stopped(first)
    ours = {"renderer": saved_index.renderer_digest(), "content_type": JSON_V1}
    for page in (tmp_path / "pages").iterdir():  # no serial; not JSON at all
        damaged = json.dumps(ours).encode() + b"\n" if "json" in page.name else b"\xff\xfe\n"
        page.write_bytes(damaged)

    again = await started(str(tmp_path))
    try:
        assert await pages(again) == before
    finally:
        await stopped(again)
