"""Who owns a project and who uploaded its files, as a person sees it in Chromium.

A ``--private`` daemon with a user and a team made by the real
``ministry-admin``; the user uploads, the team is made maintainer, and
headless Chromium (the ``browser`` fixture of ``test_browser.py``) opens the
project page with the user's credentials: the owners and maintainers are
listed (the team as a team), each file names its uploader, all of it fits
a phone's width, and without credentials the page is refused.
"""

from __future__ import annotations

import urllib.request
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_browser
from archive_factory import make_wheel, wheel_filename
from http_harness import multipart, upload_fields
from playwright.sync_api import Browser, expect
from servers import MinistryProcess
from test_auth_clients import PrivateProcess, admin

pytestmark = pytest.mark.browser

browser = test_browser.browser
PASSWORD = "alice-s3cret-pw"


def upload_as_alice(server: MinistryProcess) -> None:
    filename, data = wheel_filename("team-demo", "1.0"), make_wheel("team-demo", "1.0")
    body, content_type = multipart(
        upload_fields("team-demo", "1.0", filename, data), [("content", filename, data)]
    )
    credentials = b64encode(f"alice:{PASSWORD}".encode()).decode()
    headers = {"Content-Type": content_type, "Authorization": f"Basic {credentials}"}
    request = urllib.request.Request(server.url + "/", data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinistryProcess]:
    data: Path = tmp_path_factory.mktemp("browser-owners") / "data"
    admin(data, "user", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    admin(data, "team", "add", "devs")
    with PrivateProcess(data, "--private") as running:
        upload_as_alice(running)
        admin(data, "project", "add-maintainer", "team-demo", "@devs")
        yield running


def test_the_project_page_names_owners_teams_and_the_uploader(browser: Browser, server):
    context = browser.new_context(
        base_url=server.url,
        http_credentials={"username": "alice", "password": PASSWORD},
        viewport={"width": 360, "height": 740},
        is_mobile=True,
    )
    try:
        tab = context.new_page()
        tab.goto("/project/team-demo/")
        people = tab.get_by_role("region", name="Owners and maintainers")
        expect(people).to_be_visible()
        expect(people.get_by_role("listitem")).to_have_text(
            ["alice, owner", "@devs (team), maintainer"]
        )
        expect(tab.locator("dd.uploader")).to_have_text(["alice"])
        overflow = tab.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the project page is {overflow}px wider than a phone screen"
        test_browser.screenshot(tab, "phone-project-owners")
    finally:
        context.close()

    # Chromium itself gives up on a challenge it has no credentials for; its
    # request API shows what it was answered.
    anonymous = browser.new_context(base_url=server.url)
    try:
        response = anonymous.request.get("/project/team-demo/")
        assert response.status == 401 and "alice" not in response.text()
    finally:
        anonymous.close()
