"""The read paths over HTTP, in memory: simple index, files, listings, JSON API.

Table-driven where a rule has cases (Accept headers, redirects, ranges), in
the manner of Warehouse's negotiation tests. Every request goes through the
real Site with the real SQLite store.
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import quote

import pytest
import pytest_twisted
from accept_headers import BROWSER, CLIENT_CASES, HTML_V1, JSON_V1, PIP, UV
from archive_factory import make_sdist, make_wheel, sdist_filename, wheel_filename
from html_page import links, parse_page
from http_harness import InMemoryIndex, assert_redirects
from twisted.web.resource import Resource

WHEEL = make_wheel("Demo.Pkg", "1.0", requires_python=">=3.8", description="# Demo\n")
SDIST = make_sdist("Demo.Pkg", "1.0", requires_python=">=3.8")
WHEEL_NAME = wheel_filename("Demo.Pkg", "1.0")
SDIST_NAME = sdist_filename("Demo.Pkg", "1.0")


@pytest_twisted.async_fixture
async def index(index):
    """conftest's index, holding the wheel and the sdist of Demo.Pkg 1.0."""
    for filename, data in ((WHEEL_NAME, WHEEL), (SDIST_NAME, SDIST)):
        response = await index.upload("Demo.Pkg", "1.0", filename, data)
        assert response.code == 200, response.body
    return index


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        *CLIENT_CASES,
        pytest.param(HTML_V1, HTML_V1, id="the versioned HTML type"),
        pytest.param("application/json", None, id="nothing acceptable is a 406"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_project_page_format_follows_accept(index, accept, expected):
    headers = {"Accept": accept} if accept is not None else {}
    response = await index.request("GET", "/simple/demo-pkg/", headers)
    if expected is None:
        assert response.code == 406
        assert "Not Acceptable" in response.phrase or "acceptable" in response.body.decode().lower()
        return
    assert response.code == 200
    assert response.header("content-type").startswith(expected)
    assert response.header("vary") == "Accept"
    assert response.header("x-pypi-last-serial") == "2"


@pytest_twisted.ensureDeferred
async def test_format_query_selects_json(index):
    response = await index.request("GET", "/simple/demo-pkg/?format=" + quote(JSON_V1))
    assert response.header("content-type") == JSON_V1


@pytest_twisted.ensureDeferred
async def test_json_project_page_lists_every_file_with_pep_700_fields(index):
    response = await index.request("GET", "/simple/demo-pkg/", {"Accept": UV})
    page = json.loads(response.body)
    assert page["meta"]["api-version"] == "1.4"
    assert page["name"] == "demo-pkg"
    assert page["versions"] == ["1.0"]
    files = {entry["filename"]: entry for entry in page["files"]}
    assert set(files) == {WHEEL_NAME, SDIST_NAME}
    wheel = files[WHEEL_NAME]
    assert wheel["hashes"]["sha256"] == hashlib.sha256(WHEEL).hexdigest()
    assert wheel["size"] == len(WHEEL)
    assert wheel["requires-python"] == ">=3.8"
    assert wheel["yanked"] is False
    assert wheel["upload-time"].endswith("Z") and len(wheel["upload-time"]) == 27
    assert set(wheel["core-metadata"]) == {"sha256"}
    assert files[SDIST_NAME]["core-metadata"] is False


@pytest_twisted.ensureDeferred
async def test_html_project_page_has_hashes_and_metadata_attributes(index):
    response = await index.request("GET", "/simple/demo-pkg/")
    page = parse_page(response.body)
    assert page.meta["pypi:repository-version"] == "1.4"
    by_file = {link.href.split("#")[0].rsplit("/", 1)[1]: link for link in page.links}
    wheel = by_file[WHEEL_NAME]
    assert wheel["href"].endswith("#sha256=" + hashlib.sha256(WHEEL).hexdigest())
    assert wheel["data-requires-python"] == ">=3.8"
    assert wheel["data-core-metadata"] == wheel["data-dist-info-metadata"]
    assert "data-core-metadata" not in by_file[SDIST_NAME]


@pytest_twisted.ensureDeferred
async def test_non_canonical_urls_redirect_permanently(index):
    await assert_redirects(
        index,
        {
            "/simple/Demo.Pkg/": "/simple/demo-pkg/",  # a non-normalised name
            "/simple/demo_pkg/": "/simple/demo-pkg/",  # an underscore
            "/simple/demo-pkg": "/simple/demo-pkg/",  # the slash missing
            "/simple": "/simple/",
            "/packages": "/packages/",
            "/packages/Demo_Pkg/": "/packages/demo-pkg/",  # a listing's name
            "/pypi/Demo.Pkg/json": "/pypi/demo-pkg/json",  # the JSON API's name
        },
    )


@pytest.mark.parametrize("path", ["/simple/absent/", "/pypi/absent/json", "/packages/absent/"])
@pytest_twisted.ensureDeferred
async def test_unknown_projects_are_404_with_a_reason(index, path):
    response = await index.request("GET", path)
    assert response.code == 404
    assert "absent" in response.phrase and "absent" in response.body.decode()


@pytest_twisted.ensureDeferred
async def test_etag_revalidation_answers_304_until_the_project_changes(index):
    first = await index.request("GET", "/simple/demo-pkg/", {"Accept": PIP})
    etag = first.header("etag")
    again = await index.request("GET", "/simple/demo-pkg/", {"Accept": PIP, "If-None-Match": etag})
    assert again.code == 304 and again.body == b""
    newer = make_wheel("Demo.Pkg", "2.0")
    await index.upload("Demo.Pkg", "2.0", wheel_filename("Demo.Pkg", "2.0"), newer)
    changed = await index.request(
        "GET", "/simple/demo-pkg/", {"Accept": PIP, "If-None-Match": etag}
    )
    assert changed.code == 200
    assert json.loads(changed.body)["versions"] == ["1.0", "2.0"]
    assert int(changed.header("x-pypi-last-serial")) > int(first.header("x-pypi-last-serial"))


@pytest_twisted.ensureDeferred
async def test_index_lists_projects_and_follows_uploads(index):
    before = json.loads((await index.request("GET", "/simple/", {"Accept": UV})).body)
    assert [p["name"] for p in before["projects"]] == ["Demo.Pkg"]
    await index.upload("other", "0.1", wheel_filename("other", "0.1"), make_wheel("other", "0.1"))
    after = await index.request("GET", "/simple/", {"Accept": UV})
    assert [p["name"] for p in json.loads(after.body)["projects"]] == ["Demo.Pkg", "other"]
    assert after.header("x-pypi-last-serial") == "3"


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [(WHEEL_NAME, "application/zip"), (SDIST_NAME, "application/gzip")],
)
@pytest_twisted.ensureDeferred
async def test_files_are_served_whole_with_no_content_encoding(index, filename, content_type):
    response = await index.request("GET", f"/packages/demo-pkg/{filename}")
    assert response.code == 200
    assert response.body == (WHEEL if filename == WHEEL_NAME else SDIST)
    assert response.header("content-type") == content_type
    assert response.header("content-encoding") is None
    assert "immutable" in response.header("cache-control")


@pytest.mark.parametrize(
    ("headers", "code", "piece"),
    [
        pytest.param({"Range": "bytes=0-9"}, 206, slice(0, 10), id="first ten bytes"),
        pytest.param({"Range": "bytes=-22"}, 206, slice(-22, None), id="suffix (the zip end)"),
        pytest.param({"Range": "bytes=10-"}, 206, slice(10, None), id="open-ended"),
        pytest.param({"Range": "bytes=0-1,4-5"}, 200, slice(None), id="several ranges: whole"),
        pytest.param({"Range": "bytes=999999-"}, 416, slice(0, 0), id="unsatisfiable"),
        pytest.param(
            {"Range": "bytes=0-9", "If-Range": '"stale"'}, 200, slice(None), id="stale If-Range"
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_ranges_are_honoured(index, headers, code, piece):
    if headers.get("If-Range") == '"fresh"':
        headers["If-Range"] = f'"{hashlib.sha256(WHEEL).hexdigest()}"'
    response = await index.request("GET", f"/packages/demo-pkg/{WHEEL_NAME}", headers)
    assert response.code == code
    assert response.body == WHEEL[piece]
    if code == 206:
        assert response.header("content-range").endswith(f"/{len(WHEEL)}")


@pytest_twisted.ensureDeferred
async def test_if_range_with_the_current_etag_keeps_the_range(index):
    etag = f'"{hashlib.sha256(WHEEL).hexdigest()}"'
    headers = {"Range": "bytes=0-3", "If-Range": etag}
    response = await index.request("GET", f"/packages/demo-pkg/{WHEEL_NAME}", headers)
    assert (response.code, response.body) == (206, WHEEL[:4])


@pytest_twisted.ensureDeferred
async def test_head_gives_the_length_without_a_body(index):
    response = await index.request("HEAD", f"/packages/demo-pkg/{WHEEL_NAME}")
    assert response.code == 200
    assert response.header("content-length") == str(len(WHEEL))
    assert response.body == b""


@pytest_twisted.ensureDeferred
async def test_metadata_file_matches_the_advertised_hash(index):
    page = json.loads((await index.request("GET", "/simple/demo-pkg/", {"Accept": UV})).body)
    wheel = next(entry for entry in page["files"] if entry["filename"] == WHEEL_NAME)
    response = await index.request("GET", f"/packages/demo-pkg/{WHEEL_NAME}.metadata")
    assert response.code == 200
    assert hashlib.sha256(response.body).hexdigest() == wheel["core-metadata"]["sha256"]
    assert response.body.startswith(b"Metadata-Version:")
    assert (await index.request("GET", f"/packages/demo-pkg/{SDIST_NAME}.metadata")).code == 404


@pytest.mark.parametrize(
    ("query", "order"),
    [
        pytest.param("", [WHEEL_NAME, SDIST_NAME], id="by name"),
        pytest.param("?C=N;O=D", [SDIST_NAME, WHEEL_NAME], id="by name, descending"),
        pytest.param(
            "?C=S;O=A",
            sorted(
                [WHEEL_NAME, SDIST_NAME], key=lambda n: len(WHEEL if n == WHEEL_NAME else SDIST)
            ),
            id="by size",
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_listing_sorts_with_apache_queries(index, query, order):
    response = await index.request("GET", "/packages/demo-pkg/" + query)
    assert response.code == 200
    hrefs = [link.href for link in links(response.body) if not link.href.startswith("?")]
    site = [f"../../{section}" for section in ("", "projects/", "help/upload/", "packages/")]
    assert hrefs == [*site, "../../simple/", "../", *order]  # the site's navigation, then the table


@pytest_twisted.ensureDeferred
async def test_root_listing_links_each_project_directory(index):
    response = await index.request("GET", "/packages/")
    hrefs = [link.href for link in links(response.body)]
    assert "demo-pkg/" in hrefs


@pytest_twisted.ensureDeferred
async def test_json_api_describes_the_latest_release(index):
    response = await index.request("GET", "/pypi/demo-pkg/json")
    assert response.code == 200
    document = json.loads(response.body)
    assert document["info"]["name"] == "Demo.Pkg"
    assert document["info"]["version"] == "1.0"
    assert document["info"]["requires_python"] == ">=3.8"
    assert document["last_serial"] == 2
    assert {entry["filename"] for entry in document["urls"]} == {WHEEL_NAME, SDIST_NAME}
    for entry in document["urls"]:
        assert entry["url"].startswith("http://index.test/packages/demo-pkg/")
        assert entry["digests"]["sha256"]
    assert set(document["releases"]) == {"1.0"}
    release = json.loads((await index.request("GET", "/pypi/demo-pkg/1.0/json")).body)
    assert release["info"]["version"] == "1.0" and "releases" not in release
    assert (await index.request("GET", "/pypi/demo-pkg/9.9/json")).code == 404


@pytest_twisted.ensureDeferred
async def test_base_url_makes_links_absolute(tmp_path):
    served = InMemoryIndex(str(tmp_path), **{"base-url": "https://pkgs.example.test/team"})
    await served.start()
    try:
        await served.upload("Demo.Pkg", "1.0", WHEEL_NAME, WHEEL)
        page = json.loads((await served.request("GET", "/simple/demo-pkg/", {"Accept": UV})).body)
        assert page["files"][0]["url"] == (
            f"https://pkgs.example.test/team/packages/demo-pkg/{WHEEL_NAME}"
        )
    finally:
        await served.stop()


CANONICAL = "demo-pkg"


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/simple/", {"Accept": PIP}),
        ("GET", "/simple/", {}),
        ("GET", f"/simple/{CANONICAL}/", {"Accept": UV}),
        ("GET", f"/simple/{CANONICAL}/", {"Accept": BROWSER}),
        ("GET", f"/simple/{CANONICAL}/?format={quote(JSON_V1)}", {}),
        ("HEAD", f"/simple/{CANONICAL}/", {"Accept": PIP}),
        ("GET", "/simple/Demo.Pkg/", {}),
        ("GET", f"/simple/{CANONICAL}", {}),
        ("GET", f"/simple/{CANONICAL}/", {"Accept": "application/json"}),
        ("GET", "/simple/no-such/", {}),
        ("GET", "/packages/", {}),
        ("GET", f"/packages/{CANONICAL}/", {}),
        ("GET", f"/packages/{CANONICAL}/?C=S;O=D", {}),
        ("GET", "/packages/Demo.Pkg/", {}),
        ("GET", f"/packages/{CANONICAL}/{WHEEL_NAME}", {}),
        ("HEAD", f"/packages/{CANONICAL}/{WHEEL_NAME}", {}),
        ("GET", f"/packages/{CANONICAL}/{WHEEL_NAME}", {"Range": "bytes=10-19"}),
        ("GET", f"/packages/{CANONICAL}/{WHEEL_NAME}.metadata", {}),
        ("GET", f"/packages/{CANONICAL}/{WHEEL_NAME}/", {}),
        ("GET", f"/packages/{CANONICAL}/nothing.whl", {}),
        ("GET", f"/packages/{CANONICAL}/../{CANONICAL}/", {}),
        ("POST", f"/simple/{CANONICAL}/", {}),
    ],
)
@pytest_twisted.ensureDeferred
async def test_cached_answers_are_the_answers_of_the_routes(index, method, path, headers):
    """The second request is answered from the cache before routing (``web/shortcut``)."""
    first = await index.request(method, path, headers)
    second = await index.request(method, path, headers)
    first.headers.pop("date", None)
    second.headers.pop("date", None)
    assert (second.code, second.phrase, second.headers, second.body) == (
        first.code,
        first.phrase,
        first.headers,
        first.body,
    )
    assert first.code != 500


@pytest_twisted.ensureDeferred
async def test_cached_pages_and_hosted_files_are_answered_without_routing(index):
    paths = ["/simple/", f"/simple/{CANONICAL}/", f"/packages/{CANONICAL}/"]
    paths.append(f"/packages/{CANONICAL}/{WHEEL_NAME}")
    for path in paths:
        assert (await index.request("GET", path)).code == 200
    children = index.site.resource.children
    routes = {name: children[name].routes for name in (b"simple", b"packages")}

    class Refuse(Resource):
        isLeaf = True

        def render(self, request):
            request.setResponseCode(599)
            return b"routed"

    for name in routes:
        children[name].routes = Refuse()
    try:
        for path in paths:
            assert (await index.request("GET", path)).code == 200, path
        assert (await index.request("GET", "/simple/no-such/")).code == 599
    finally:
        for name, resource in routes.items():
            children[name].routes = resource
