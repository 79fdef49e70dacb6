"""The browser pages in a real browser: headless Chromium driven by Playwright.

A real ``twistd ministry`` runs in a subprocess (``tests/servers.py``) with a
few projects uploaded over HTTP; Playwright's sync API drives Debian's
Chromium from this test's main thread. Nothing here uses pytest-twisted:
Playwright runs its own event loop.

What a person does: search from the home page, open the project, read the
rendered README, copy the install command, page through the project list
with the keyboard alone, and read it all on a phone without scrolling
sideways. Screenshots go to ``test-artifacts/`` for a human to look at.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from archive_factory import make_wheel, metadata_text, wheel_filename
from http_harness import multipart, upload_fields
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from servers import REPO_ROOT, MinistryProcess

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = REPO_ROOT / "test-artifacts"

README = (
    "# Demo heading\n\n[![build status](https://ci.example/badge.svg)](https://ci.example/job)\n\n"
    "The **demo** project, for browser tests.\n\n## Usage\n\nImport it.\n"
)
#: One more than a page of the project list holds, so there is a second page.
FILLERS = 55
#: Markup in a summary is text to show, not markup.
DEMO_SUMMARY = "Demo <b>tools</b> & “friends”"
#: Longer than any line of the list: the browser shortens it, whole glyphs only.
LONG_SUMMARY = "Ünïcode wörds, one after another; " * 14


def upload(
    server: MinistryProcess, name: str, version: str, description: str, summary: str
) -> None:
    """POST a wheel as twine does."""
    filename = wheel_filename(name, version)
    metadata = metadata_text(
        name, version, summary=summary, description=description, requires_python=">=3.9"
    )
    data = make_wheel(name, version, metadata=metadata)
    body, content_type = multipart(
        upload_fields(name, version, filename, data), [("content", filename, data)]
    )
    request = urllib.request.Request(
        server.url + "/", data=body, headers={"Content-Type": content_type}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinistryProcess]:
    with MinistryProcess(tmp_path_factory.mktemp("browser") / "data") as running:
        upload(running, "Demo.Pkg", "1.0", README, DEMO_SUMMARY)
        for number in range(FILLERS):
            summary = LONG_SUMMARY if number == 0 else f"Filler number {number}"
            upload(running, f"filler-{number:03d}", "0.1", f"Filler number {number}.\n", summary)
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # CI installs Debian's chromium; a missing one is a failure, never a skip.
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser, server: MinistryProcess) -> Iterator[BrowserContext]:
    opened = browser.new_context(
        base_url=server.url,
        permissions=["clipboard-read", "clipboard-write"],
        viewport={"width": 1280, "height": 900},
    )
    yield opened
    opened.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A tab that fails the test on any console error (a CSP violation, a script error)."""
    opened = context.new_page()
    errors: list[str] = []
    opened.on("console", lambda message: message.type == "error" and errors.append(message.text))
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    assert errors == []


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_search_open_read_and_copy(page: Page, server: MinistryProcess):
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("MinistryOfPackages")
    expect(page.get_by_text("holding 56 projects and 56 files")).to_be_visible()
    screenshot(page, "home")

    page.get_by_label("Search projects by name").fill("Demo_Pkg")
    page.get_by_label("Search projects by name").press("Enter")
    expect(page).to_have_url(re.compile(r"/projects/\?q=Demo_Pkg$"))
    expect(page.get_by_text("1 project matching “demo-pkg”.")).to_be_visible()

    page.get_by_role("link", name="Demo.Pkg").click()
    expect(page).to_have_url(f"{server.url}/project/demo-pkg/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Demo.Pkg 1.0")
    readme = page.locator(".readme")
    expect(readme.get_by_role("heading", name="Demo heading")).to_be_visible()
    expect(readme.locator("h3")).to_have_text("Demo heading")
    expect(readme.locator("strong")).to_have_text("demo")
    # The badge is its label inside its link: no image from another host is loaded
    # (the page fixture fails on the CSP error one would raise).
    expect(readme.locator("img")).to_have_count(0)
    badge = readme.get_by_role("link", name="build status")
    expect(badge).to_have_attribute("href", "https://ci.example/job")

    command = f"pip install --index-url {server.url}/simple/ demo-pkg"
    expect(page.locator("#cmd-pip")).to_have_text(command)
    copy = page.locator('button[data-copy="cmd-pip"]')
    expect(copy).to_be_visible()
    copy.click()
    expect(copy).to_have_attribute("data-state", "copied")
    expect(copy).to_have_text("Copied")
    expect(page.get_by_role("status")).to_have_text("pip: copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == command
    screenshot(page, "project")


def test_upload_help_names_every_publisher_with_this_server(page: Page, server: MinistryProcess):
    page.goto("/help/upload/")
    for tool in ("twine", "uv", "Poetry", "PDM", "Hatch", "Flit"):
        expect(page.get_by_role("heading", name=tool, exact=True)).to_be_visible()
    legacy = f"{server.url}/legacy/"
    expected = {
        "cmd-twine-token": f"twine upload --repository-url {server.url}/ -u __token__ -p",
        "cmd-uv": f"uv publish --publish-url {legacy} -u USERNAME -p PASSWORD dist/*",
        "cmd-poetry": f"poetry config repositories.ministry {legacy}",
        "cmd-poetry-install": f"poetry source add --priority=primary ministry {server.url}/simple/",
        "cmd-pdm": f"pdm publish --repository {legacy} -u USERNAME -P PASSWORD",
        "cmd-pdm-source": f'url = "{server.url}/simple/"',
        "cmd-hatch": f"hatch publish -r {legacy} -u USERNAME -a PASSWORD",
        "cmd-flit": "flit publish --repository ministry",
        "cmd-flit-env": f"FLIT_INDEX_URL={legacy} FLIT_USERNAME=USERNAME",
    }
    for element, text in expected.items():
        expect(page.locator(f"#{element}")).to_contain_text(text)
    # Poetry's caveat: the credentials must be under the source's name.
    expect(page.get_by_text("name the source ministry too")).to_be_visible()
    copy = page.locator('button[data-copy="cmd-hatch"]')
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == (
        f"hatch publish -r {legacy} -u USERNAME -a PASSWORD"
    )
    screenshot(page, "upload-help")


def test_keyboard_pages_through_the_project_list(page: Page):
    page.goto("/projects/")
    expect(page.get_by_text("Page 1 of 2")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    next_link = page.get_by_role("link", name="Next")
    for _ in range(150):
        page.keyboard.press("Tab")
        if next_link.evaluate("link => link === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached the Next link")
    screenshot(page, "projects-next-focused")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/projects/\?page=2$"))
    expect(page.get_by_text("Page 2 of 2")).to_be_visible()
    expect(page.get_by_role("link", name="Previous")).to_be_visible()
    expect(page.locator("ul.projects li")).to_have_count(FILLERS + 1 - 50)


def test_the_project_list_shows_each_summary(page: Page):
    page.goto("/projects/?q=demo")  # search results list projects as the list does
    demo = page.locator("ul.projects li").filter(has=page.get_by_role("link", name="Demo.Pkg"))
    expect(demo.locator(".summary")).to_have_text(DEMO_SUMMARY)
    expect(demo.locator("b")).to_have_count(0)

    page.goto("/projects/")
    expect(page.get_by_text("Filler number 7", exact=True)).to_be_visible()
    listed = page.locator("ul.projects li").filter(has=page.get_by_role("link", name="filler-000"))
    long = listed.locator(".summary")
    expect(long).to_be_visible()
    expect(long).to_have_attribute("title", LONG_SUMMARY.strip())  # whitespace as kept
    # Cut by the browser at its edge, with an ellipsis, on one line.
    assert long.evaluate("summary => summary.scrollWidth > summary.clientWidth")
    assert long.evaluate("summary => getComputedStyle(summary).textOverflow") == "ellipsis"
    line = long.evaluate("summary => parseFloat(getComputedStyle(summary).lineHeight)")
    box = long.bounding_box()
    assert box is not None and box["height"] < 1.5 * line
    screenshot(page, "projects-summaries")


@pytest.mark.parametrize("path", ["/", "/projects/", "/project/demo-pkg/", "/help/upload/"])
def test_phone_width_never_scrolls_sideways(browser: Browser, server: MinistryProcess, path):
    phone = browser.new_context(
        base_url=server.url, viewport={"width": 360, "height": 740}, is_mobile=True
    )
    try:
        tab = phone.new_page()
        tab.goto(path)
        overflow = tab.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} is {overflow}px wider than a phone screen"
        name = path.strip("/").replace("/", "-") or "home"
        screenshot(tab, f"phone-{name}")
    finally:
        phone.close()


def test_pages_work_without_javascript(browser: Browser, server: MinistryProcess):
    plain = browser.new_context(base_url=server.url, java_script_enabled=False)
    try:
        tab = plain.new_page()
        tab.goto("/")
        tab.get_by_label("Search projects by name").fill("filler-01")
        tab.get_by_role("button", name="Search").click()
        expect(tab.locator("ul.projects li")).to_have_count(10)
        tab.goto("/project/demo-pkg/")
        expect(tab.locator("#cmd-pip")).to_be_visible()
        expect(tab.locator("button.copy").first).to_be_hidden()
    finally:
        plain.close()


def test_a_mistyped_url_leads_back_through_the_sites_navigation(
    context: BrowserContext, server: MinistryProcess
):
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    response = page.goto("/project/demo-pgk/")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Not Found")
    expect(page.locator(".error-message")).to_have_text("No such project: demo-pgk")
    screenshot(page, "not-found")
    page.get_by_role("navigation", name="Site").get_by_role("link", name="Files").click()
    expect(page).to_have_url(f"{server.url}/packages/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Index of /packages/")
    files = page.get_by_role("navigation", name="Site").get_by_role("link", name="Files")
    expect(files).to_have_attribute("aria-current", "page")
    page.get_by_role("link", name="demo-pkg/").click()  # the Apache-style table, as before
    expect(page).to_have_url(f"{server.url}/packages/demo-pkg/")
    expect(page.get_by_role("link", name="Parent Directory")).to_be_visible()
    screenshot(page, "listing")
    # The page's own 404 is the one error: the listing's stylesheet and icon load.
    assert errors == [
        "Failed to load resource: the server responded with a status of 404 "
        "(No such project: demo-pgk)"
    ]
