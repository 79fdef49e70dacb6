"""The mirror asks the upstream's index once what changed, in memory on a fake clock.

A run reads the PEP 691 ``/simple/`` index (``_last-serial`` per project)
and uses a kept page as it is when its ``X-PyPI-Last-Serial`` is the index's;
anything else (a moved serial, no serial, no usable index) is revalidated
as before. The upstream is ``scripted_upstream``'s, as in
``test_upstream_inprocess``, whose fixtures these tests share;
``test_mirror.py`` has the same against a real ministry upstream.
"""

from __future__ import annotations

import pytest_twisted
from scripted_upstream import WHEEL, WHEEL_NAME, entry
from test_upstream_inprocess import DEMO_MIRROR, WHEEL_2, WHEEL_2_NAME, proxied, store

from ministry.core.upstream_index import parse_serials, serial_of
from ministry.core.upstream_links import PageError
from ministry.core.upstream_pages import UpstreamPage
from ministry.mirror.service import MirrorService

__all__ = ["proxied", "store"]  # fixtures, used by name

PAGE = "/simple/demo/"


def page_requests(upstream) -> list[str | None]:
    """The If-None-Match of each request for demo's page (None: a plain GET)."""
    return [etag for path, etag in upstream.asked(PAGE) if path == PAGE]


def index_requests(upstream) -> int:
    return sum(1 for path, _ in upstream.requests if path == "/simple/")


async def mirror_twice(proxy, upstream, store, clock) -> MirrorService:
    """A mirror of demo that reads the index for any run; two runs, the second unchanged."""
    mirror = MirrorService(DEMO_MIRROR, proxy, store, clock=clock, index_min_projects=1)
    await mirror.run_once()
    clock.advance(60)
    await mirror.run_once()
    return mirror


@pytest_twisted.ensureDeferred
async def test_an_unchanged_serial_skips_the_page_and_a_moved_one_refreshes_it(proxied, store):
    proxy, upstream, clock, *_ = await proxied()
    upstream.publish("demo", [entry(upstream, WHEEL_NAME, WHEEL)])
    upstream.serials[PAGE] = 7
    upstream.publish_index({"demo": 7, "other": 3})
    mirror = await mirror_twice(proxy, upstream, store, clock)
    # The first run had nothing kept: the page, no index. The second: the index alone.
    assert page_requests(upstream) == [None]
    assert index_requests(upstream) == 1
    status = mirror.status
    assert (status.errors, status.files_fetched, status.files_present) == ([], 0, 1)
    assert mirror.serials.current == 1

    # A new release moves the serial: the page is revalidated and the new file fetched.
    upstream.publish(
        "demo",
        [entry(upstream, WHEEL_NAME, WHEEL), entry(upstream, WHEEL_2_NAME, WHEEL_2)],
        etag='"v2"',
    )
    upstream.serials[PAGE] = 9
    upstream.publish_index({"demo": 9})
    await mirror.run_once()
    assert page_requests(upstream) == [None, '"v1"']
    assert (mirror.status.errors, mirror.status.files_fetched) == ([], 1)
    assert [path for path, _ in upstream.asked("/files/") if path.endswith(".whl")] == [
        f"/files/{WHEEL_NAME}",
        f"/files/{WHEEL_2_NAME}",
    ]
    assert (await proxy.saved.read("demo")).serial == 9


@pytest_twisted.ensureDeferred
async def test_a_removed_file_is_seen_once_the_serial_moves(proxied, store):
    proxy, upstream, clock, *_ = await proxied()
    upstream.publish(
        "demo", [entry(upstream, WHEEL_NAME, WHEEL), entry(upstream, WHEEL_2_NAME, WHEEL_2)]
    )
    upstream.serials[PAGE] = 4
    upstream.publish_index({"demo": 4})
    await mirror_twice(proxy, upstream, store, clock)
    upstream.publish("demo", [entry(upstream, WHEEL_NAME, WHEEL)], etag='"v2"')
    upstream.serials[PAGE] = 5
    upstream.publish_index({"demo": 5})
    mirror = MirrorService(DEMO_MIRROR, proxy, store, clock=clock, index_min_projects=1)
    await mirror.run_once()
    assert mirror.status.errors == []
    view, _ = await proxy.project("demo")
    assert [record.filename for record in view.files] == [WHEEL_NAME]


@pytest_twisted.ensureDeferred
async def test_a_304_with_a_new_serial_keeps_it_for_the_next_run(proxied, store):
    proxy, upstream, clock, *_ = await proxied()
    upstream.publish("demo", [entry(upstream, WHEEL_NAME, WHEEL)])
    upstream.serials[PAGE] = 8
    upstream.publish_index({"demo": 8})
    await mirror_twice(proxy, upstream, store, clock)
    assert page_requests(upstream) == [None]  # the first run's page came with 8 already
    upstream.serials[PAGE] = 10  # moved, yet the page is the same (a new summary, say)
    upstream.publish_index({"demo": 10})
    mirror = MirrorService(DEMO_MIRROR, proxy, store, clock=clock, index_min_projects=1)
    await mirror.run_once()
    assert page_requests(upstream) == [None, '"v1"']  # a 304, carrying 10
    assert (await proxy.saved.read("demo")).serial == 10
    await mirror.run_once()
    assert page_requests(upstream) == [None, '"v1"']
    assert mirror.serials.current == 1


@pytest_twisted.ensureDeferred
async def test_without_usable_serials_each_page_is_revalidated(proxied, store):
    proxy, upstream, clock, *_ = await proxied()
    upstream.publish("demo", [entry(upstream, WHEEL_NAME, WHEEL)])
    # Pages without a serial (a company mirror): the index is never asked.
    await mirror_twice(proxy, upstream, store, clock)
    assert (page_requests(upstream), index_requests(upstream)) == ([None, '"v1"'], 0)

    # Serials on the pages, but no index (a 404): asked once a run, then each page.
    upstream.serials[PAGE] = 7
    mirror = MirrorService(DEMO_MIRROR, proxy, store, clock=clock, index_min_projects=1)
    await mirror.run_once()  # its 304 brings the serial
    await mirror.run_once()
    assert (page_requests(upstream), index_requests(upstream)) == (
        [None, '"v1"', '"v1"', '"v1"'],
        1,
    )
    assert mirror.status.errors == []

    # An index that leaves the project out, or gives it serial 0 (a ministry's proxied
    # projects): revalidated.
    for listed in ({"other": 7}, {"demo": 0}):
        upstream.publish_index(listed)
        await mirror.run_once()
    assert page_requests(upstream)[-2:] == ['"v1"', '"v1"']
    assert mirror.serials.current == 0


@pytest_twisted.ensureDeferred
async def test_small_runs_revalidate_each_page_without_the_index(proxied, store):
    proxy, upstream, clock, *_ = await proxied()
    upstream.publish("demo", [entry(upstream, WHEEL_NAME, WHEEL)])
    upstream.serials[PAGE] = 7
    upstream.publish_index({"demo": 7})
    mirror = MirrorService(DEMO_MIRROR, proxy, store, clock=clock)  # one project: under the bound
    await mirror.run_once()
    await mirror.run_once()
    assert (page_requests(upstream), index_requests(upstream)) == ([None, '"v1"'], 0)


# -- the pure parts -------------------------------------------------------------------------


def test_the_index_gives_positive_serials_of_the_names_wanted():
    body = (
        b'{"meta": {"api-version": "1.1"}, "projects": ['
        b'{"name": "Demo_Pkg", "_last-serial": 12}, {"name": "zero", "_last-serial": 0},'
        b'{"name": "text", "_last-serial": "5"}, {"name": "none"}, {"name": "bad name!"},'
        b'{"name": "unwanted", "_last-serial": 3}, "junk"]}'
    )
    wanted = {"demo-pkg", "zero", "text", "none"}
    found = parse_serials(body, "application/vnd.pypi.simple.v1+json", wanted.__contains__)
    assert found == {"demo-pkg": 12, "text": 5}
    for content_type, bad in [
        ("text/html", b"<html></html>"),
        ("application/vnd.pypi.simple.v1+json", b"not json"),
        ("application/vnd.pypi.simple.v1+json", b'{"projects": {}}'),
        (
            "application/vnd.pypi.simple.v2+json",
            b'{"meta": {"api-version": "2.0"}, "projects": []}',
        ),
    ]:
        try:
            parse_serials(bad, content_type, lambda name: True)
        except PageError:
            continue
        raise AssertionError(f"{bad!r} was read as an index")


def test_a_page_keeps_its_serial_and_older_pages_have_none():
    page = UpstreamPage(
        "demo", "http://u/simple", "http://u/simple/demo/", '"e"', 1.0, (), serial=4
    )
    assert UpstreamPage.from_dict(page.to_dict()) == page
    older = page.to_dict()
    del older["serial"]
    assert UpstreamPage.from_dict(older).serial is None
    assert [serial_of(value) for value in (3, "17", " 2 ", 0, -1, True, "x", None, 1.5)] == [
        3,
        17,
        2,
        None,
        None,
        None,
        None,
        None,
        None,
    ]
