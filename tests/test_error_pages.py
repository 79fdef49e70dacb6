"""Refusals read well: a page with the site's navigation for a person, a line of text for tools.

A mistyped URL in a browser once got a bare "Not Found" with no way back;
pip, uv and curl must keep getting the status line and a line of text they
can print. The table asks the same paths with a browser's and each tool's
``Accept`` header; a failure no route expected is a logged 500 in the
same words, with nothing of the exception in the answer.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from accept_headers import BROWSER, CURL, PIP, UV
from html_page import parse_page
from treq.testing import StubTreq
from twisted.web.resource import Resource

from ministry.web.errors import refusing_app

#: (path, the status, the message in the page or the text).
REFUSALS = (
    ("/no/such/page", 404, "No page at /no/such/page"),
    ("/project/absent/", 404, "No such project: absent"),
    ("/help/nothing-here", 404, "No page at /help/nothing-here"),
)
TOOLS = pytest.mark.parametrize("accept", [PIP, UV, CURL, None], ids=["pip", "uv", "curl", "none"])


@pytest.mark.parametrize(("path", "status", "message"), REFUSALS)
@pytest_twisted.ensureDeferred
async def test_a_browser_gets_the_sites_page_with_the_message(index, path, status, message):
    response = await index.request("GET", path, {"Accept": BROWSER})
    assert response.code == status
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page = parse_page(response.body)
    (shown,) = [p.text for p in page.all("p") if p.get("class") == "error-message"]
    assert shown == message
    nav = next(link for link in page.links if link.text == "Projects")  # the site's navigation
    assert (
        nav.href == "../" * (path.count("/") - 1) + "projects/"
    )  # relative: works behind a prefix


@TOOLS
@pytest.mark.parametrize(("path", "status", "message"), REFUSALS)
@pytest_twisted.ensureDeferred
async def test_a_tool_gets_the_status_line_and_a_line_of_text(index, path, status, message, accept):
    response = await index.request("GET", path, {"Accept": accept} if accept else {})
    assert (response.code, response.phrase) == (status, message)
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.body.decode() == message + "\n"


class _Broken:
    """A component whose route fails in a way nobody handled."""

    app = refusing_app()

    @app.route("/")
    def fail(self, request):
        raise RuntimeError("secret detail of the failure")


@pytest.mark.parametrize(("accept", "content_type"), [(BROWSER, "text/html"), (CURL, "text/plain")])
@pytest_twisted.ensureDeferred
async def test_an_unexpected_failure_is_a_logged_500_that_leaks_nothing(
    logged, accept, content_type
):
    root = Resource()
    root.putChild(b"broken", _Broken().app.resource())
    client = StubTreq(root)
    response = await client.get("http://index.test/broken/", headers={"Accept": accept})
    body = (await response.content()).decode()
    assert response.code == 500
    assert response.headers.getRawHeaders("content-type")[0].startswith(content_type)
    assert "this index logged what went wrong" in body
    assert "secret detail" not in body
    (failure,) = logged.failures
    assert failure.check(RuntimeError)  # the whole failure is in the log, for the operator
