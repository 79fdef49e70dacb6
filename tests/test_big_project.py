"""A project of many versions in a browser's hands: its version list a page at a time.

A project of thousands of releases listed every one of them beside every
page of it (issue 17: a megabyte per page at 5,000 releases). The list now
shows :data:`~ministry.core.releases.VERSIONS_PER_PAGE` versions, newest
first, with Newer / Older links; a release page opens the list at its own
version. These tests follow the links a person would click, over HTTP, with
the real stores; ``bench/big_project.py`` measures the same at 5,000 releases.
"""

from __future__ import annotations

import threading

import pytest_twisted
from html_page import Page, parse_page
from http_harness import InMemoryIndex
from store_records import add_releases
from test_pages import assert_html_page, upload

from ministry.core.releases import VERSIONS_PER_PAGE

PROJECT = "many-versions"
#: Two full pages of versions and a part of a third.
RELEASES = 2 * VERSIONS_PER_PAGE + 20


@pytest_twisted.async_yield_fixture
async def many(index: InMemoryIndex):
    await add_releases(index.store, PROJECT, RELEASES)
    yield index


def versions(page: Page) -> list[str]:
    """The versions the page's version list links to, in its order."""
    prefix = f"../../project/{PROJECT}/"
    return [href[len(prefix) : -1] for href in page.hrefs() if href.startswith(prefix)]


def pager(page: Page) -> dict[str, str]:
    return {link["rel"]: link["href"] for link in page.all("a") if link.get("rel")}


@pytest_twisted.ensureDeferred
async def test_the_version_list_comes_a_page_at_a_time_and_its_links_work(many):
    first = assert_html_page(await many.request("GET", f"/project/{PROJECT}/"))
    assert versions(first) == [f"1.{n}" for n in range(119, 69, -1)]
    assert f"{RELEASES} versions, newest first." in first.text
    assert "Page 1 of 3" in first.text
    assert pager(first) == {"next": "?page=2"}

    second = assert_html_page(await many.request("GET", f"/project/{PROJECT}/?page=2"))
    assert versions(second) == [f"1.{n}" for n in range(69, 19, -1)]
    assert pager(second) == {"prev": "./", "next": "?page=3"}
    assert "1.119" in second.title  # the same project page, the latest release shown
    for version in versions(second)[:3]:
        release = await many.request("GET", f"/project/{PROJECT}/{version}/")
        assert release.code == 200 and f"Files of {version}" in release.body.decode()

    last = assert_html_page(await many.request("GET", f"/project/{PROJECT}/?page=3"))
    assert versions(last) == [f"1.{n}" for n in range(19, -1, -1)]
    assert pager(last) == {"prev": "?page=2"}


@pytest_twisted.ensureDeferred
async def test_a_release_page_opens_the_list_at_its_own_version(many):
    page = assert_html_page(await many.request("GET", f"/project/{PROJECT}/1.5/"))
    assert "Page 3 of 3" in page.text
    marked = [link["href"] for link in page.all("a") if link.get("aria-current") == "page"]
    assert [href for href in marked if PROJECT in href] == [f"../../../project/{PROJECT}/1.5/"]
    # Page 1 of a release page's list is named: "./" would be the release again.
    assert pager(page) == {"prev": "?page=2"}
    newest = parse_page((await many.request("GET", f"/project/{PROJECT}/1.5/?page=1")).body)
    assert "Page 1 of 3" in newest.text and pager(newest) == {"next": "?page=2"}


@pytest_twisted.ensureDeferred
async def test_pages_of_versions_that_do_not_exist_are_refused(many):
    beyond = await many.request("GET", f"/project/{PROJECT}/?page=4")
    assert beyond.code == 404
    assert "No page 4 of versions: there are 3." in beyond.phrase
    for bad in ("0", "x", "-1"):
        refused = await many.request("GET", f"/project/{PROJECT}/?page={bad}")
        assert refused.code == 400, bad
        assert "Invalid page" in refused.phrase
    moved = await many.request("GET", "/project/Many_Versions/?page=2")
    assert moved.code == 301
    assert moved.header("location").endswith(f"/project/{PROJECT}/?page=2")


@pytest_twisted.ensureDeferred
async def test_an_upload_into_a_big_project_shows_at_the_top_of_its_list(many):
    await many.request("GET", f"/project/{PROJECT}/")  # cached, to be dropped
    await upload(many, PROJECT, "2.0")
    first = parse_page((await many.request("GET", f"/project/{PROJECT}/")).body)
    assert versions(first)[:2] == ["2.0", "1.119"]
    assert "Page 1 of 3" in first.text and "121 versions" in first.text
    simple = await many.request("GET", f"/simple/{PROJECT}/")
    assert b"many_versions-2.0-py3-none-any.whl" in simple.body


@pytest_twisted.ensureDeferred
async def test_a_small_project_has_no_pages_of_versions(index):
    await upload(index, "Small", "1.0")
    page = assert_html_page(await index.request("GET", "/project/small/"))
    assert not pager(page)
    assert "Page 1" not in page.text and "newest first" not in page.text


@pytest_twisted.ensureDeferred
async def test_a_big_simple_page_renders_off_the_reactor_thread(many, monkeypatch):
    """Thousands of files take a render of 50-250 ms, which no other request may wait for."""
    from ministry.core import simple

    monkeypatch.setattr("ministry.web.simple.BIG_PROJECT_FILES", RELEASES)
    threads = []
    render = simple.render_project

    def spied(*args, **kwargs):
        threads.append(threading.current_thread())
        return render(*args, **kwargs)

    monkeypatch.setattr(simple, "render_project", spied)
    for accept in ("text/html", "application/vnd.pypi.simple.v1+json"):
        page = await many.request("GET", f"/simple/{PROJECT}/", headers={"Accept": accept})
        assert page.code == 200 and b"many_versions-1.119-py3-none-any.whl" in page.body
    assert len(threads) == 2 and threading.main_thread() not in threads


@pytest_twisted.ensureDeferred
async def test_a_big_project_page_sorts_its_versions_off_the_reactor_thread(many, monkeypatch):
    """Sorting thousands of versions takes 100 ms and more, which no other request may wait for."""
    from ministry.web import pages

    monkeypatch.setattr("ministry.web.pages.BIG_PROJECT_FILES", RELEASES)
    threads = []
    grouped = pages.group_releases

    def spied(files):
        threads.append(threading.current_thread())
        return grouped(files)

    monkeypatch.setattr(pages, "group_releases", spied)
    for path in (f"/project/{PROJECT}/", f"/project/{PROJECT}/1.5/"):
        assert_html_page(await many.request("GET", path))
    assert len(threads) == 2 and threading.main_thread() not in threads
