"""The browser pages over plain HTTP, in memory, with the real stores.

Every page: status, key content, redirects and 404s, pagination boundaries,
search, caching (a page changes after an upload), security headers, and
payloads in every field an uploader controls rendered as harmless text.
The pure parts (search over 100,000 names, README rendering, link
filtering, commands) are tested directly at the end.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
import pytest_twisted
from archive_factory import make_wheel, metadata_text, wheel_filename
from html_page import Page, parse_page
from http_harness import InMemoryIndex, assert_redirects
from proxy_fixtures import start_proxy_fixture, upstream_fixture  # noqa: F401
from scripted_upstream import WHEEL as PROXIED_WHEEL_BYTES
from scripted_upstream import WHEEL_NAME as PROXIED_WHEEL
from scripted_upstream import entry
from twisted.internet import reactor
from twisted.internet.task import deferLater

from ministry.catalog import holdings
from ministry.core.commands import install_commands
from ministry.core.metadata import CoreMetadata
from ministry.core.models import WHEEL, FileRecord, ProjectRecord, utcnow
from ministry.core.project_links import project_links, web_link
from ministry.core.readme import render_readme, shift_headings
from ministry.core.search import NameIndex, normalise_query, search

SERVER = "http://index.test"

README = "# Demo heading\n\nSome **bold** text.\n\n## Usage\n\n```python\nimport demo\n```\n"
URLS = {"Source": "https://git.example/demo", "Docs": "http://docs.example/demo"}

XSS = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'


def wheel(name: str, version: str, **knobs) -> tuple[str, bytes]:
    return wheel_filename(name, version), make_wheel(name, version, **knobs)


async def add_record(
    store,
    project: str,
    version: str,
    upload_time: datetime | None = None,
    *,
    filename: str | None = None,
    display_name: str | None = None,
    requires_python: str | None = None,
    yanked: str | None = None,
    origin: str = "upload",
) -> None:
    """Store a file record directly, as the proxy or an import would: no upload checks."""
    filename = filename or f"{project.replace('-', '_')}-{version}-py3-none-any.whl"
    record = FileRecord(
        project=project,
        filename=filename,
        version=version,
        packagetype=WHEEL,
        size=1234,
        sha256=hashlib.sha256(filename.encode()).hexdigest(),
        blake2b_256="0" * 64,
        md5="0" * 32,
        upload_time=upload_time or utcnow(),
        requires_python=requires_python,
        yanked=yanked,
        origin=origin,
    )
    assert await store.add_file(record, display_name or project, None)


async def upload(index: InMemoryIndex, name: str, version: str, **knobs) -> None:
    filename, data = wheel(name, version, **knobs)
    response = await index.upload(name, version, filename, data)
    assert response.code == 200, response.body


@pytest_twisted.async_yield_fixture
async def demo(index):
    """Demo.Pkg 1.0 and 2.0 (Markdown README, URLs) and 3.0b1; Other-Thing 0.1."""
    meta = {"requires_python": ">=3.8", "description": README}
    await upload(
        index,
        "Demo.Pkg",
        "1.0",
        metadata=metadata_text("Demo.Pkg", "1.0", project_urls=URLS, **meta),
    )
    await upload(
        index,
        "Demo.Pkg",
        "2.0",
        metadata=metadata_text(
            "Demo.Pkg", "2.0", summary="The demo, second edition", project_urls=URLS, **meta
        ),
    )
    await upload(index, "Demo.Pkg", "3.0b1", description="# Beta\n")
    await upload(index, "Other-Thing", "0.1", description="Plain words.\n")
    yield index


def assert_html_page(response) -> Page:
    """What every browser page has: 200, HTML, the security headers, one h1, a skip link."""
    assert response.code == 200, response.body
    assert response.header("content-type") == "text/html; charset=utf-8"
    assert response.header("content-security-policy").startswith("default-src 'self'")
    assert response.header("x-content-type-options") == "nosniff"
    assert response.header("etag")
    page = parse_page(response.body)
    assert len(page.all("h1")) == 1
    assert page.all("a")[0]["href"] == "#content"
    assert any(attrs.get("id") == "content" for attrs in page.all("main"))
    return page


# -- home ------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_home_shows_counts_search_recent_uploads_and_links(demo):
    page = assert_html_page(await demo.request("GET", "/"))
    assert "holding 2 projects and 4 files" in page.text
    (form,) = page.all("form")
    assert form["action"] == "./projects/" and form["method"] == "get"
    (field,) = page.all("input")
    assert field["name"] == "q"
    assert page.all("label")[0]["for"] == field["id"]
    recent = re.findall(r"project/[^/]+/[^/]+/", " ".join(page.hrefs()))
    assert recent[:4] == [
        "project/other-thing/0.1/",
        "project/demo-pkg/3.0b1/",
        "project/demo-pkg/2.0/",
        "project/demo-pkg/1.0/",
    ]
    hrefs = page.hrefs()
    for target in ("./simple/", "./packages/", "./help/upload/", "./projects/"):
        assert target in hrefs
    assert f"pip install --index-url {SERVER}/simple/ PROJECT" in page.text


@pytest_twisted.ensureDeferred
async def test_home_of_an_empty_index(index):
    page = assert_html_page(await index.request("GET", "/"))
    assert "holding 0 projects and 0 files" in page.text
    assert "Nothing has been uploaded yet" in page.text


@pytest_twisted.ensureDeferred
async def test_recent_uploads_are_the_ten_newest_files(index):
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for number in range(14):
        await add_record(index.store, f"proj{number}", "1.0", start + timedelta(hours=number))
    page = parse_page((await index.request("GET", "/")).body)
    shown = re.findall(r"project/(proj\d+)/1\.0/", " ".join(page.hrefs()))
    assert shown == [f"proj{number}" for number in range(13, 3, -1)]


@pytest_twisted.ensureDeferred
async def test_a_large_first_count_runs_in_the_background(index, monkeypatch):
    monkeypatch.setattr(holdings, "INLINE_LIMIT", 2)
    for number in range(5):
        await add_record(index.store, f"proj{number}", "1.0")
    first = parse_page((await index.request("GET", "/")).body)
    assert "holding 5 projects (their files are still being counted)" in first.text
    assert len(re.findall(r"project/proj\d/1\.0/", " ".join(first.hrefs()))) == 5
    for _ in range(200):
        text = parse_page((await index.request("GET", "/")).body).text
        if "still being counted" not in text:
            break
        await deferLater(reactor, 0.01, lambda: None)
    assert "holding 5 projects and 5 files" in text
    await add_record(index.store, "proj5", "1.0")  # one more: counted inline
    again = parse_page((await index.request("GET", "/")).body)
    assert "holding 6 projects and 6 files" in again.text


@pytest_twisted.ensureDeferred
async def test_home_follows_uploads(demo):
    before = await demo.request("GET", "/")
    await upload(demo, "Third", "1.0")
    after = parse_page((await demo.request("GET", "/")).body)
    assert "holding 3 projects and 5 files" in after.text
    assert after.link(r"project/third/") == "./project/third/1.0/"
    assert before.header("etag") != (await demo.request("GET", "/")).header("etag")


# -- project list ----------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_project_list_lists_every_project_with_links(demo):
    page = assert_html_page(await demo.request("GET", "/projects/"))
    assert "2 projects." in page.text
    assert "../project/demo-pkg/" in page.hrefs()
    assert "../project/other-thing/" in page.hrefs()
    assert "Demo.Pkg" in page.text and "Other-Thing" in page.text
    assert not [href for href in page.hrefs() if "page=" in href]


@pytest.mark.parametrize(
    ("query", "found"),
    [
        pytest.param("demo", ["demo-pkg"], id="substring"),
        pytest.param("Demo_Pkg", ["demo-pkg"], id="normalised like a name"),
        pytest.param("R.THING", ["other-thing"], id="case and separators"),
        pytest.param("-", ["demo-pkg", "other-thing"], id="separator alone"),
        pytest.param("nothing-like-it", [], id="no match"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_project_search(demo, query, found):
    page = assert_html_page(await demo.request("GET", f"/projects/?q={query}"))
    listed = re.findall(r"^\.\./project/([^/]+)/$", "\n".join(page.hrefs()), re.MULTILINE)
    assert listed == found
    (field,) = page.all("input")
    assert field["value"] == normalise_query(query)
    if not found:
        assert "No project name contains" in page.text


@pytest_twisted.ensureDeferred
async def test_pagination_boundaries(index):
    for number in range(120):
        await add_record(index.store, f"pkg-{number:03d}", "1.0")
    first = assert_html_page(await index.request("GET", "/projects/"))
    assert "120 projects. Showing 1 to 50." in first.text
    assert "Page 1 of 3" in first.text
    assert first.all("a")[-1]["href"] == "?page=2" and first.all("a")[-1]["rel"] == "next"
    assert not any(attrs.get("rel") == "prev" for attrs in first.all("a"))
    assert "../project/pkg-000/" in first.hrefs() and "../project/pkg-049/" in first.hrefs()
    assert "../project/pkg-050/" not in first.hrefs()

    second = parse_page((await index.request("GET", "/projects/?page=2")).body)
    rels = {attrs["rel"]: attrs["href"] for attrs in second.all("a") if attrs.get("rel")}
    assert rels == {"prev": "./", "next": "?page=3"}

    last = parse_page((await index.request("GET", "/projects/?page=3")).body)
    assert "Showing 101 to 120." in last.text
    assert [attrs["rel"] for attrs in last.all("a") if attrs.get("rel")] == ["prev"]
    assert "../project/pkg-119/" in last.hrefs()

    searched = parse_page((await index.request("GET", "/projects/?q=pkg-1")).body)
    assert "20 projects matching “pkg-1”." in searched.text  # pkg-100 .. pkg-119
    assert not [attrs for attrs in searched.all("a") if attrs.get("rel")]
    assert (await index.request("GET", "/projects/?q=pkg-1&page=2")).code == 404
    beyond = await index.request("GET", "/projects/?page=4")
    assert beyond.code == 404
    assert "No page 4" in beyond.phrase


@pytest.mark.parametrize("page", ["0", "-1", "x", "1.5", "9" * 30])
@pytest_twisted.ensureDeferred
async def test_bad_page_numbers_are_refused(demo, page):
    response = await demo.request("GET", f"/projects/?page={page}")
    assert response.code == 400
    assert "Invalid page" in response.phrase


@pytest_twisted.ensureDeferred
async def test_project_list_follows_uploads(demo):
    assert "2 projects." in parse_page((await demo.request("GET", "/projects/?q=")).body).text
    await upload(demo, "Third", "1.0")
    page = parse_page((await demo.request("GET", "/projects/")).body)
    assert "3 projects." in page.text and "../project/third/" in page.hrefs()
    searched = parse_page((await demo.request("GET", "/projects/?q=thi")).body)
    assert "../project/third/" in searched.hrefs()


# -- project and release pages -----------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_project_page_shows_the_latest_final_release(demo):
    response = await demo.request("GET", "/project/demo-pkg/")
    page = assert_html_page(response)
    body = response.body.decode()
    assert page.all("h1") and "Demo.Pkg 2.0" in page.text
    assert "The demo, second edition" in page.text
    # The README: Markdown rendered, its headings below the page's own.
    assert re.search(r"<h3[^>]*>Demo heading", body)
    assert re.search(r"<h4[^>]*>Usage", body)
    assert "<strong>bold</strong>" in body
    # Install commands with the server's absolute URL, each with a copy button.
    for command in install_commands(SERVER, "demo-pkg"):
        assert command.text in page.text
    assert f"pip install --index-url {SERVER}/simple/ demo-pkg" in page.text
    assert f"uv add --index ministry={SERVER}/simple/ demo-pkg" in page.text
    buttons = page.all("button")
    assert len(buttons) == 3 and all("hidden" in attrs for attrs in buttons)
    assert {attrs["data-copy"] for attrs in buttons} == {
        attrs["id"] for attrs in page.all("code") if attrs.get("id")
    }
    # Versions newest first, each linking its release page.
    versions = [
        href for href in page.hrefs() if re.fullmatch(r"\.\./\.\./project/demo-pkg/.+/", href)
    ]
    assert versions == [f"../../project/demo-pkg/{v}/" for v in ("3.0b1", "2.0", "1.0")]
    assert "pre-release" in page.text
    # Files of 2.0 only, with their facts.
    data = make_wheel(
        "Demo.Pkg",
        "2.0",
        metadata=metadata_text(
            "Demo.Pkg",
            "2.0",
            summary="The demo, second edition",
            project_urls=URLS,
            requires_python=">=3.8",
            description=README,
        ),
    )
    assert f"../../packages/demo-pkg/{wheel_filename('Demo.Pkg', '2.0')}" in page.hrefs()
    assert wheel_filename("Demo.Pkg", "1.0") not in body
    assert hashlib.sha256(data).hexdigest() in page.text
    assert "Requires Python >=3.8" in page.text
    assert "Origin uploaded here" in page.text
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT[\d:.]+Z">', body)
    # Project URLs and the machine-readable views.
    assert {"https://git.example/demo", "http://docs.example/demo"} <= set(page.hrefs())
    for target in ("packages/demo-pkg/", "simple/demo-pkg/", "pypi/demo-pkg/json"):
        assert f"../../{target}" in page.hrefs()


@pytest_twisted.ensureDeferred
async def test_release_page_shows_that_version(demo):
    response = await demo.request("GET", "/project/demo-pkg/1.0/")
    page = assert_html_page(response)
    assert "Demo.Pkg 1.0" in page.text
    assert "A package built by the test suite" in page.text
    assert f"../../../packages/demo-pkg/{wheel_filename('Demo.Pkg', '1.0')}" in page.hrefs()
    assert wheel_filename("Demo.Pkg", "2.0") not in response.body.decode()
    assert f"pip install --index-url {SERVER}/simple/ demo-pkg==1.0" in page.text
    assert "../../../pypi/demo-pkg/1.0/json" in page.hrefs()
    current = [attrs["href"] for attrs in page.all("a") if attrs.get("aria-current") == "page"]
    assert "../../../project/demo-pkg/1.0/" in current


@pytest_twisted.ensureDeferred
async def test_redirects(demo):
    await assert_redirects(
        demo,
        {
            "/project/Demo.Pkg/": "/project/demo-pkg/",  # a non-normalised name
            "/project/demo_pkg": "/project/demo-pkg/",  # an underscore, no slash
            "/project/demo-pkg": "/project/demo-pkg/",  # the slash missing
            "/project/DEMO-PKG/1.0/": "/project/demo-pkg/1.0/",  # a release's name
            "/project/demo-pkg/1.0": "/project/demo-pkg/1.0/",  # a release's slash
            "/project/demo-pkg/1.0.0/": "/project/demo-pkg/1.0/",  # an equal version
            "/project/": "/projects/",
            "/projects": "/projects/",
            "/help": "/help/upload/",
            "/help/upload": "/help/upload/",
        },
    )


@pytest.mark.parametrize(
    "path", ["/project/nothing-here/", "/project/demo-pkg/9.9/", "/static/nothing.css"]
)
@pytest_twisted.ensureDeferred
async def test_missing_things_are_404(demo, path):
    response = await demo.request("GET", path)
    assert response.code == 404
    assert response.body.strip()


@pytest_twisted.ensureDeferred
async def test_project_page_follows_uploads(demo):
    before = await demo.request("GET", "/project/demo-pkg/")
    assert "Demo.Pkg 2.0" in parse_page(before.body).text
    again = await demo.request(
        "GET", "/project/demo-pkg/", {"If-None-Match": before.header("etag")}
    )
    assert again.code == 304 and again.body == b""
    await upload(demo, "Demo.Pkg", "2.1", description="# Newer\n")
    after = await demo.request("GET", "/project/demo-pkg/")
    assert after.code == 200 and after.header("etag") != before.header("etag")
    assert "Demo.Pkg 2.1" in parse_page(after.body).text
    assert "../../project/demo-pkg/2.1/" in parse_page(after.body).hrefs()


@pytest_twisted.ensureDeferred
async def test_readme_formats(index):
    rst = "Title\n=====\n\nSome *emphasis*.\n"
    await upload(
        index,
        "Rst-Pkg",
        "1.0",
        metadata=metadata_text(
            "Rst-Pkg", "1.0", description=rst, description_content_type="text/x-rst"
        ),
    )
    await upload(
        index,
        "Txt-Pkg",
        "1.0",
        metadata=metadata_text(
            "Txt-Pkg", "1.0", description="# not a heading\n", description_content_type="text/plain"
        ),
    )
    rst_page = (await index.request("GET", "/project/rst-pkg/")).body.decode()
    assert re.search(r"<h3>Title", rst_page) and "<em>emphasis</em>" in rst_page
    txt_page = (await index.request("GET", "/project/txt-pkg/")).body.decode()
    assert "# not a heading" in txt_page and "<h3" not in txt_page


@pytest_twisted.ensureDeferred
async def test_yanked_files_and_other_origins_are_marked(index):
    await add_record(index.store, "old-pkg", "1.0", yanked="Broken build", origin="proxy")
    page = assert_html_page(await index.request("GET", "/project/old-pkg/"))
    assert "Yanked: installers skip this release" in page.text
    assert "Reason: Broken build" in page.text
    assert "Yanked Broken build" in page.text
    assert "Origin cached from upstream" in page.text
    (reason,) = [e.text for e in page.all("span") if e.get("class") == "reason"]
    assert reason == "Broken build"  # in the version list too, beside its "yanked" tag


@pytest_twisted.ensureDeferred
async def test_an_old_versions_page_points_to_the_newer_one(demo):
    old = assert_html_page(await demo.request("GET", "/project/demo-pkg/1.0/"))
    assert "A newer version exists: Demo.Pkg 2.0" in old.text
    assert "../../../project/demo-pkg/2.0/" in old.hrefs()
    for path in ("/project/demo-pkg/", "/project/demo-pkg/2.0/", "/project/demo-pkg/3.0b1/"):
        assert (
            "A newer version exists" not in assert_html_page(await demo.request("GET", path)).text
        )


@pytest_twisted.ensureDeferred
async def test_requires_lists_names_linked_with_their_terms_apart(index):
    requires = [
        'Requests[socks,security]>=2.30,<3; python_version < "3.12"',
        "attrs",
        "zope.x>=1.0",
    ]
    await upload(index, "needy", "1.0", requires_dist=requires)
    page = assert_html_page(await index.request("GET", "/project/needy/"))
    items = [e for e in page.all("li") if e.text.strip().startswith(("Requests", "attrs", "zope"))]
    assert [" ".join(item.text.split()) for item in items] == [
        'Requests[security, socks] <3, >=2.30 if python_version < "3.12"',
        "attrs",
        "zope.x >=1.0",
    ]
    hrefs = page.hrefs()
    for project in ("requests", "attrs", "zope-x"):
        assert f"../../project/{project}/" in hrefs
    versions = [e.text for e in page.all("span") if e.get("class") == "versions"]
    assert versions == ["<3, >=2.30", ">=1.0"]  # kept whole: never broken mid-number


@pytest_twisted.ensureDeferred
async def test_a_proxied_project_has_a_page_with_its_upstream_metadata(upstream, start_proxy):
    upstream.publish("demo", [entry(upstream, PROXIED_WHEEL, PROXIED_WHEEL_BYTES)])
    proxy = await start_proxy([f"{upstream.url}/simple/"])
    page = assert_html_page(await proxy.request("GET", "/project/demo/"))
    assert "demo 1.0" in page.text
    assert "Origin cached from upstream" in page.text
    assert "A package built by the test suite" in page.text  # from the upstream's .metadata
    assert "Requires other" in page.text
    assert upstream.asked(f"/files/{PROXIED_WHEEL}.metadata")
    # Proxied projects are shown on request, not listed or counted as hosted.
    assert "holding 0 projects" in parse_page((await proxy.request("GET", "/")).body).text
    assert "0 projects." in parse_page((await proxy.request("GET", "/projects/")).body).text


@pytest_twisted.ensureDeferred
async def test_registered_project_without_files(index):
    body, content_type = multipart_register("Lonely", "Registered, never uploaded")
    response = await index.request("POST", "/", {"Content-Type": content_type}, body)
    assert response.code == 200, response.body
    page = assert_html_page(await index.request("GET", "/project/lonely/"))
    assert "Lonely" in page.text and "Registered, never uploaded" in page.text
    assert "No files have been uploaded yet." in page.text


def multipart_register(name: str, summary: str) -> tuple[bytes, str]:
    from http_harness import multipart

    return multipart(
        [
            (":action", "submit"),
            ("protocol_version", "1"),
            ("metadata_version", "2.1"),
            ("name", name),
            ("version", "1.0"),
            ("summary", summary),
        ]
    )


# -- upload help -------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_upload_help_is_filled_in_with_this_server(index):
    page = assert_html_page(await index.request("GET", "/help/upload/"))
    text = page.text
    assert f"twine upload --repository-url {SERVER}/ dist/*" in text
    assert f"repository = {SERVER}/" in text and "[ministry]" in text
    assert f"uv publish --publish-url {SERVER}/legacy/" in text
    assert f"poetry config repositories.ministry {SERVER}/legacy/" in text
    assert f"pdm publish --repository {SERVER}/legacy/" in text


@pytest_twisted.ensureDeferred
async def test_base_url_is_what_commands_name(tmp_path):
    served = InMemoryIndex(str(tmp_path), **{"base-url": "https://pkgs.example/ministry/"})
    await served.start()
    try:
        await upload(served, "Demo.Pkg", "1.0")
        project = parse_page((await served.request("GET", "/project/demo-pkg/")).body).text
        assert "pip install --index-url https://pkgs.example/ministry/simple/ demo-pkg" in project
        help_page = parse_page((await served.request("GET", "/help/upload/")).body).text
        assert "--repository-url https://pkgs.example/ministry/ dist/*" in help_page
    finally:
        await served.stop()


# -- static files --------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_static_files_are_local_versioned_and_long_lived(index):
    page = parse_page((await index.request("GET", "/")).body)
    (stylesheet,) = [attrs["href"] for attrs in page.all("link") if attrs["rel"] == "stylesheet"]
    (script,) = [attrs["src"] for attrs in page.all("script")]
    for url, kind in ((stylesheet, "text/css"), (script, "text/javascript")):
        assert url.startswith("./static/") and "?v=" in url
        response = await index.request("GET", url[1:])
        assert response.code == 200
        assert response.header("content-type").startswith(kind)
        assert "max-age=31536000" in response.header("cache-control")
        digest = hashlib.blake2b(response.body, digest_size=12).hexdigest()
        assert url.endswith("?v=" + digest[:12])
    css = (await index.request("GET", "/static/style.css")).body
    assert len(css) < 8 * 1024  # one small stylesheet, sent once a version
    assert b"http:" not in css and b"https:" not in css and b"@import" not in css


@pytest_twisted.ensureDeferred
async def test_head_requests(demo):
    for path in ("/", "/projects/", "/project/demo-pkg/", "/help/upload/", "/static/style.css"):
        response = await demo.request("HEAD", path)
        assert response.code == 200, path
        assert response.body == b""


# -- safety ------------------------------------------------------------------------


def assert_harmless(body: bytes) -> None:
    """No script but ours, no event handler, no javascript: link, no foreign <img>."""
    for element in parse_page(body).elements:
        tag, attrs = element.tag, element.attrs
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        for name in ("href", "src", "action"):
            value = (attrs.get(name) or "").strip().lower()
            assert not value.startswith(("javascript:", "data:", "vbscript:")), (tag, attrs)
        if tag == "script":
            assert re.fullmatch(r"(\.\./)*(\./)?static/copy\.js\?v=\w+", attrs.get("src") or "")
        assert tag not in ("iframe", "object", "embed", "style", "base", "form") or (
            tag == "form" and attrs.get("role") == "search"
        )


@pytest_twisted.ensureDeferred
async def test_payloads_in_uploaded_metadata_render_as_text(index):
    readme = (
        f"# Title {XSS}\n\n{XSS}\n\n{IMG}\n\n[click](javascript:alert(1))\n\n"
        '<a href="javascript:alert(2)">raw link</a> <div onclick="alert(3)">div</div>\n'
    )
    metadata = metadata_text(
        "Evil",
        "1.0",
        summary=XSS + IMG,
        description=readme,
        project_urls={"Home": "javascript:alert(4)", IMG: "https://fine.example/"},
        extra_headers=[("Author", XSS), ("License", IMG)],
    )
    await upload(index, "Evil", "1.0", metadata=metadata)
    for path in ("/", "/projects/", "/projects/?q=evil", "/project/evil/", "/project/evil/1.0/"):
        response = await index.request("GET", path)
        assert response.code == 200, path
        assert_harmless(response.body)
    body = (await index.request("GET", "/project/evil/")).body.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    page = parse_page(body.encode())
    assert XSS + IMG in page.text  # the summary, shown as the text it is
    assert "javascript:alert(4)" in page.text  # shown, but not a link
    assert "https://fine.example/" in page.hrefs()


@pytest_twisted.ensureDeferred
async def test_payloads_in_names_versions_and_filenames_render_as_text(index):
    """Records that did not come through the upload checks (a proxy, an import)."""
    await add_record(
        index.store,
        "evil",
        IMG,
        filename=f"{IMG}.whl",
        display_name=IMG,
        requires_python=XSS,
        yanked=XSS,
    )
    for path in ("/", "/projects/", "/project/evil/"):
        response = await index.request("GET", path)
        assert response.code == 200, path
        assert_harmless(response.body)
        assert IMG in parse_page(response.body).text
    body = (await index.request("GET", "/project/evil/")).body.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    release_path = f"/project/evil/{quote(IMG, safe='')}/"
    assert "../.." + release_path in parse_page(body.encode()).hrefs()
    # The pinned install command of such a version is shell-quoted.
    release = await index.request("GET", release_path)
    assert release.code == 200
    assert_harmless(release.body)
    assert shlex.quote(f"evil=={IMG}") in parse_page(release.body).text


@pytest_twisted.ensureDeferred
async def test_host_header_cannot_inject_into_commands(index):
    await upload(index, "Demo.Pkg", "1.0")
    response = await index.request("GET", "/project/demo-pkg/", {"Host": 'x"><b>;rm -rf ~'})
    assert_harmless(response.body)
    assert b"<b>" not in response.body
    # Not a host at all: the commands name localhost rather than print it.
    assert "rm -rf" not in parse_page(response.body).text
    assert "--index-url http://localhost/simple/ demo-pkg" in parse_page(response.body).text


# -- the pure parts --------------------------------------------------------------------


def synthetic_projects(count: int) -> list[ProjectRecord]:
    created = datetime(2024, 1, 1, tzinfo=UTC)
    words = ("alpha", "beta", "gamma", "delta", "django", "flask")
    return [
        ProjectRecord(f"{words[n % 6]}-{n:06d}", f"{words[n % 6].title()}_{n:06d}", n, created)
        for n in range(count)
    ]


def test_search_over_100k_projects():
    projects = synthetic_projects(100_000)
    index = NameIndex.of(reversed(projects))
    assert index.names == tuple(sorted(project.name for project in projects))

    everything = search(index, "")
    assert everything.total == 100_000 and everything.pages == 2_000
    assert [p.name for p in everything.projects] == list(index.names[:50])
    last = search(index, "", 2_000)
    assert len(last.projects) == 50 and not last.has_next and last.has_previous
    with pytest.raises(Exception, match="No page 2001"):
        search(index, "", 2_001)

    django = search(index, normalise_query("Django"))
    expected = sorted(p.name for p in projects if "django" in p.name)
    assert django.total == len(expected) > 16_000
    assert [p.name for p in django.projects] == expected[:50]
    page_7 = search(index, "django", 7)
    assert [p.name for p in page_7.projects] == expected[300:350]

    one = search(index, normalise_query("FLASK_099995"))
    assert [p.name for p in one.projects] == ["flask-099995"] and one.total == 1
    assert search(index, "no-such-thing").total == 0
    digits = search(index, "-09999")
    assert digits.total == 10  # -099990 .. -099999


def test_exact_match_comes_first():
    names = ["demo-extra", "a-demo", "demo", "demo-cli"]
    created = datetime(2024, 1, 1, tzinfo=UTC)
    index = NameIndex.of(ProjectRecord(name, name, 1, created) for name in names)
    assert [p.name for p in search(index, "demo").projects] == [
        "demo",
        "a-demo",
        "demo-cli",
        "demo-extra",
    ]


@pytest.mark.parametrize(
    ("text", "query"),
    [("  Foo_Bar ", "foo-bar"), ("foo bar", "foo-bar"), ("A..B", "a-b"), ("-cli", "-cli")],
)
def test_normalise_query(text, query):
    assert normalise_query(text) == query


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        pytest.param("text/markdown", r"<h1[^>]*>Title", id="markdown"),
        pytest.param("text/markdown; variant=CommonMark", r"<h1[^>]*>Title", id="commonmark"),
        pytest.param("text/markdown; charset=UTF-8; variant=GFM", r"<h1[^>]*>Title", id="gfm"),
        pytest.param("text/plain", r"# Title", id="plain"),
        pytest.param("application/x-unknown", r"# Title", id="unknown type is plain"),
    ],
)
def test_readme_renderers(content_type, expected):
    assert re.search(expected, render_readme("# Title\n\ntext\n", content_type))


def test_readme_rst_is_the_default_and_broken_rst_falls_back_to_text():
    assert re.search(r"<h1>Title", render_readme("Title\n=====\n\ntext\n"))
    broken = render_readme("Title\n=====\n\n.. raw:: html\n\n   <script>x</script>\n")
    assert "<script>" not in broken and "&lt;script&gt;" in broken
    assert render_readme("  \n") == ""


def test_headings_shift_but_text_does_not():
    html = render_readme("# One\n\n###### Six\n\n`<h1>` text\n", "text/markdown", 2)
    assert re.search(r"<h3[^>]*>One(<a [^>]*></a>)?</h3>", html)
    assert re.search(r"<h6[^>]*>Six(<a [^>]*></a>)?</h6>", html)
    assert "&lt;h1&gt;" in html
    assert shift_headings("<H2 id=x>a</H2><hr>", 1) == "<h3 id=x>a</h3><hr>"


@pytest.mark.parametrize(
    ("source", "content_type", "label"),
    [
        ("[![CI](https://ci.example/b.svg?x=1&y=2)](https://ci.example/)", "text/markdown", "CI"),
        ("![](https://img.example/logo.png)", "text/markdown", "logo.png"),
        (
            '<img src="https://e.example/a.png" alt="a &quot;q&quot;">',
            "text/markdown",
            "a &quot;q&quot;",
        ),
        (".. image:: https://ci.example/rst.svg\n   :alt: docs\n", "text/x-rst", "docs"),
    ],
    ids=["badge-in-link", "no-alt", "raw-html", "rst"],
)
def test_readme_images_become_their_labels(source, content_type, label):
    html = render_readme(source, content_type)
    assert "<img" not in html  # the page's policy loads no image from another host
    assert 'class="readme-image"' in html and f">{label}</span>" in html
    if "](https://ci.example/)" in source:
        assert html.count('href="https://ci.example/"') == 1  # the badge's link is kept


@pytest.mark.parametrize(
    ("url", "linked"),
    [
        ("https://example.com/x", True),
        ("HTTP://EXAMPLE.COM", True),
        ("javascript:alert(1)", False),
        (" JaVaScRiPt:alert(1)", False),
        ("data:text/html,<script>", False),
        ("//example.com/x", False),
        ("/relative", False),
        ("http://", False),
        ("https://exa mple.com", False),
        ("http://[bad", False),
    ],
)
def test_only_http_urls_become_links(url, linked):
    assert (web_link(url) is not None) == linked


def test_project_links_keep_every_url_once():
    meta = CoreMetadata(
        "x",
        "1",
        home_page="https://x.example/",
        project_urls={"Homepage": "https://x.example/", "Bad": "javascript:x", "": "https://y/"},
    )
    links = project_links(meta)
    assert [(link.label, link.href) for link in links] == [
        ("Homepage", "https://x.example/"),
        ("Bad", None),
        ("https://y/", "https://y/"),
    ]
