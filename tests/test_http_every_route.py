"""Every route, with the ``Accept`` header of every client, in memory (issue 18).

``/mirror/`` once answered 500 to any request with an ``Accept`` header:
it had an Accept parser of its own. Now every page chooses through
``ministry.core.negotiate``, and this table asks every route with the
header of a browser, curl, pip, uv, poetry, pdm, old pip and none: no
answer may be a server error. Then the routes that exist for what clients
are told: ``/<name>/`` (``pip install -i http://host/``), and the "view"
links flit and hatch print after a publish.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from accept_headers import CLIENT_PARAMS, CLIENTS, TEXT_HTML
from archive_factory import make_wheel, wheel_filename
from http_harness import assert_redirects

WHEEL_NAME = wheel_filename("demo", "1.0")

#: One GET of each route (and of paths no route has), as a client may send it.
ROUTES = (
    "/",
    "/help/upload/",
    "/projects/",
    "/projects/?q=demo",
    "/project/demo/",
    "/project/demo/1.0/",
    "/project/demo",
    "/simple/",
    "/simple/demo/",
    "/simple/Demo/",
    "/packages/",
    "/pypi/demo/json",
    "/pypi/demo/1.0/json",
    f"/integrity/demo/1.0/{WHEEL_NAME}/provenance",
    "/health",
    "/metrics",
    "/mirror/",
    "/mirror",
    "/admin/audit/",
    "/static/style.css",
    "/demo/",
    "/no-such-project/",
    "//demo",
    "/legacy/demo",
    "/help/no-such-page/",
    "/a/b/c/",
)


@pytest_twisted.async_fixture
async def index(index):
    """conftest's index, holding demo 1.0."""
    response = await index.upload("demo", "1.0", WHEEL_NAME, make_wheel("demo", "1.0"))
    assert response.code == 200, response.body
    return index


@pytest.mark.parametrize("client", CLIENT_PARAMS)
@pytest_twisted.ensureDeferred
async def test_no_route_answers_any_client_with_a_server_error(index, client):
    errors = {}
    for path in ROUTES:
        response = await index.request("GET", path, client.headers())
        if response.code >= 500:
            errors[path] = f"{response.code} {response.body[:200]!r}"
    assert errors == {}


@pytest.mark.parametrize("client", CLIENT_PARAMS)
@pytest_twisted.ensureDeferred
async def test_the_index_url_without_simple_serves_each_client_what_it_expects(index, client):
    """``/demo/`` is the simple page for installers and tools, the project page for browsers."""
    response = await index.request("GET", "/demo/", client.headers())
    assert response.code == 200
    assert response.header("vary") == "Accept"
    kind = response.header("content-type").split(";")[0]
    if client.person:
        assert kind == TEXT_HTML
        assert b"<h1>demo" in response.body
    else:
        assert kind == client.gets
        assert WHEEL_NAME.encode() in response.body
        assert b"<h1>demo" not in response.body


@pytest_twisted.ensureDeferred
async def test_the_index_url_without_simple_is_a_404_for_an_unknown_project(index):
    pip = next(client for client in CLIENTS if client.name == "pip")
    response = await index.request("GET", "/no-such-project/", pip.headers())
    assert response.code == 404
    assert b"no-such-project" in response.body


@pytest_twisted.ensureDeferred
async def test_the_links_publishers_print_land_on_the_project_page(index):
    await assert_redirects(
        index,
        {
            "//demo": "/project/demo/",  # flit and hatch with a repository URL of http://host/
            "//demo/": "/project/demo/",
            "/legacy/demo": "/project/demo/",  # twine-style repository URLs
            "/legacy//demo": "/project/demo/",
            "/legacy/demo/1.0/": "/project/demo/1.0/",  # hatch names the release too
            "/legacy/demo/1.0": "/project/demo/1.0/",
        },
    )
    landed = await index.request("GET", "/project/demo/")
    assert landed.code == 200 and b"<h1>demo" in landed.body


@pytest_twisted.ensureDeferred
async def test_mirror_status_chooses_by_the_shared_negotiation(index):
    """No mirror: a 404 that says so, for a browser as for a tool; a 406 if neither form fits."""
    for accept in ("text/html,application/xhtml+xml,*/*;q=0.8", "application/json", "*/*"):
        response = await index.request("GET", "/mirror/", {"Accept": accept})
        assert response.code == 404
        assert b"No mirror is configured" in response.body
    refused = await index.request("GET", "/mirror/", {"Accept": "image/png"})
    assert refused.code == 406
    assert b"application/json, text/html" in refused.body
