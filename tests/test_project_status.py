"""PEP 792 project status through the whole web layer, in memory, with the real stores.

alice owns ``demo`` (one wheel), bob maintains it, carol is another user and
root an administrator. Every page is read once before the status changes,
so each check also proves that the change dropped the cached pages.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
import pytest_twisted
from accept_headers import JSON_V1
from archive_factory import make_wheel, wheel_filename
from html_page import parse_page
from http_harness import InMemoryIndex, Response, multipart, upload_fields

from ministry.core.auth import Action, Identity, decide, hash_password, new_token
from ministry.core.errors import BadRequest
from ministry.core.models import (
    MAINTAINER,
    OWNER,
    READ_SCOPE,
    ProjectRecord,
    TokenRecord,
    UserRecord,
)
from ministry.core.negotiate import TEXT_HTML
from ministry.core.project_status import check_reason, check_status
from ministry.core.simple import render_project

WHEEL_NAME = wheel_filename("demo", "1.0")
NEXT = make_wheel("demo", "2.0")
NEXT_NAME = wheel_filename("demo", "2.0")
FILE_PATH = f"/packages/demo/{WHEEL_NAME}"
PAGES = (
    "/simple/demo/",
    "/pypi/demo/json",
    "/project/demo/",
    "/packages/demo/",
    FILE_PATH,
)


def _auth(user: str | None) -> dict[str, str]:
    if user is None:
        return {}
    token = base64.b64encode(f"{user}:{user}-pw".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class StatusIndex(InMemoryIndex):
    async def add_user(self, name: str, admin: bool = False) -> None:
        hashed = hash_password(f"{name}-pw", n=2**4, r=1, p=1)
        assert await self.store.add_user(UserRecord(name, hashed, admin, datetime.now(UTC)))

    async def get(self, path: str, user: str | None = None, **headers: str) -> Response:
        return await self.request("GET", path, {**headers, **_auth(user)})

    async def set_status(self, body: object, user: str | None = "alice") -> Response:
        headers = {"Content-Type": "application/json", **_auth(user)}
        return await self.request("POST", "/api/status", headers, json.dumps(body).encode())

    async def send(self, version: str, filename: str, data: bytes, user: str = "alice"):
        body, content_type = multipart(
            upload_fields("demo", version, filename, data), [("content", filename, data)]
        )
        headers = {"Content-Type": content_type, **_auth(user)}
        return await self.request("POST", "/", headers, body)


@pytest_twisted.async_yield_fixture
async def team(tmp_path):
    served = StatusIndex(str(tmp_path))
    await served.start()
    for name in ("alice", "bob", "carol"):
        await served.add_user(name)
    await served.add_user("root", admin=True)
    assert (await served.send("1.0", WHEEL_NAME, make_wheel("demo", "1.0"))).code == 200
    await served.store.set_role("demo", "bob", MAINTAINER)
    for path in PAGES:  # cached before any status change
        assert (await served.get(path)).code == 200, path
    assert (await served.get("/simple/demo/", Accept=JSON_V1)).code == 200
    yield served
    await served.stop()


# -- what each status does to every page -----------------------------------------------


STATUS_TABLE = [
    #: status, files offered to installers, uploads taken, page warning
    pytest.param("active", True, True, None, id="active"),
    pytest.param("archived", True, False, "takes no new uploads", id="archived"),
    pytest.param("quarantined", False, False, "considered unsafe", id="quarantined"),
    pytest.param("deprecated", True, True, "no longer recommended", id="deprecated"),
]


@pytest.mark.parametrize(("status", "offered", "uploads", "warning"), STATUS_TABLE)
@pytest_twisted.ensureDeferred
async def test_each_status_on_every_page(team, status, offered, uploads, warning):
    answer = await team.set_status({"project": "demo", "status": status, "reason": "why ✓"})
    assert answer.code == 200, answer.phrase
    expected = {"status": status, "reason": "why ✓"}
    assert json.loads(answer.body) == {"project": "demo", "project-status": expected}

    html = await team.get("/simple/demo/")
    page = parse_page(html.body.decode())
    assert page.meta["pypi:repository-version"] == "1.4"
    assert "pypi:project-status" not in page.meta  # PEP 833: new fields are JSON-only
    assert [link.text for link in page.links] == ([WHEEL_NAME] if offered else [])

    document = json.loads((await team.get("/simple/demo/", Accept=JSON_V1)).body)
    assert document["meta"]["api-version"] == "1.4"
    assert document["project-status"] == expected
    assert [entry["filename"] for entry in document["files"]] == ([WHEEL_NAME] if offered else [])
    assert document["versions"] == (["1.0"] if offered else [])

    legacy = await team.get("/pypi/demo/json")
    assert legacy.code == (200 if offered else 404)
    if not offered:
        assert "demo is quarantined (why ✓)" in legacy.body.decode()

    project_page = await team.get("/project/demo/")
    notices = [
        element.text
        for element in parse_page(project_page.body.decode()).all("p")
        if element.get("data-project-status") == status
    ]
    if warning is None:
        assert b"data-project-status" not in project_page.body
    else:
        assert len(notices) == 1 and warning in notices[0] and "why ✓" in notices[0]

    anonymous = await team.get(FILE_PATH)
    assert anonymous.code == (200 if offered else 403)
    if not offered:
        assert "demo is quarantined (why ✓): its files are not" in anonymous.body.decode()

    upload = await team.send("2.0", NEXT_NAME, NEXT)
    assert upload.code == (200 if uploads else 403)
    if not uploads:
        # The status line is latin-1 (the reason's ✓ becomes ?); the body is UTF-8.
        assert upload.phrase == f"demo is {status} (why ?): it accepts no new uploads."
        assert f"demo is {status} (why ✓): it accepts no new uploads." in upload.body.decode()
        assert await team.store.get_file("demo", NEXT_NAME) is None  # nothing stored


@pytest_twisted.ensureDeferred
async def test_back_to_active_offers_the_files_again(team):
    await team.set_status({"project": "demo", "status": "quarantined"}, "root")
    assert (await team.get(FILE_PATH)).code == 403
    answer = await team.set_status({"project": "demo", "status": "active"})
    assert json.loads(answer.body)["project-status"] == {"status": "active"}
    page = parse_page((await team.get("/simple/demo/")).body.decode())
    assert [link.text for link in page.links] == [WHEEL_NAME]
    assert "pypi:project-status" not in page.meta
    assert (await team.get(FILE_PATH)).code == 200
    assert (await team.get("/pypi/demo/json")).code == 200


@pytest.mark.parametrize(
    ("user", "code"),
    [
        pytest.param("alice", 200, id="owner"),
        pytest.param("root", 200, id="admin"),
        pytest.param("bob", 403, id="maintainer"),
        pytest.param("carol", 403, id="stranger"),
        pytest.param(None, 403, id="anonymous"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_owners_and_admins_still_download_quarantined_files(team, user, code):
    await team.set_status({"project": "demo", "status": "quarantined", "reason": "malware"})
    for path in (FILE_PATH, f"{FILE_PATH}.metadata"):
        response = await team.get(path, user)
        assert response.code == code, (path, response.phrase)
        if code == 403:
            assert response.phrase.startswith("demo is quarantined (malware)")
    listing = await team.get("/packages/demo/", user)  # names stay listed, for everyone
    assert WHEEL_NAME in listing.body.decode()


@pytest_twisted.ensureDeferred
async def test_an_owners_read_only_token_is_told_why_it_gets_no_quarantined_file(team):
    made = new_token()
    record = TokenRecord(made.id, "alice", made.digest, (), datetime.now(UTC), READ_SCOPE)
    assert await team.store.add_token(record)
    await team.set_status({"project": "demo", "status": "quarantined", "reason": "malware"})
    secret = base64.b64encode(f"__token__:{made.text}".encode()).decode()
    response = await team.request("GET", FILE_PATH, {"Authorization": f"Basic {secret}"})
    assert response.code == 403
    assert response.phrase.startswith("demo is quarantined (malware)")
    assert response.phrase.endswith("and not with a read-only token (quarantine stops installs).")


# -- who may set it, and what is refused -------------------------------------------------


@pytest.mark.parametrize(
    ("body", "user", "code", "phrase"),
    [
        ({"project": "demo", "status": "archived"}, None, 401, "This needs credentials"),
        ({"project": "demo", "status": "archived"}, "bob", 403, "Only owners of demo"),
        ({"project": "demo", "status": "archived"}, "carol", 403, "Only owners of demo"),
        ({"project": "demo", "status": "haunted"}, "alice", 400, "Unknown project status"),
        ({"project": "demo"}, "alice", 400, "The JSON body needs a 'project' and a 'status'"),
        ({"project": "demo", "status": "archived", "reason": 3}, "alice", 400, "'reason' must"),
        (
            {"project": "demo", "status": "archived", "reason": "a\nb"},
            "alice",
            400,
            "The status reason must be one line",
        ),
        ({"project": "nope", "status": "archived"}, "root", 404, "No such project hosted here"),
        ({"project": "-bad-", "status": "archived"}, "root", 400, "Invalid project name"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_status_refusals(team, body, user, code, phrase):
    response = await team.set_status(body, user)
    assert response.code == code
    assert response.phrase.startswith(phrase), response.phrase
    assert (await team.store.get_project("demo")).status == "active"


@pytest_twisted.ensureDeferred
async def test_a_project_name_is_normalised(team):
    response = await team.set_status({"project": "DEMO", "status": "deprecated"}, "root")
    assert json.loads(response.body) == {
        "project": "demo",
        "project-status": {"status": "deprecated"},
    }


# -- the pure rules ----------------------------------------------------------------------


def test_reasons_are_one_stripped_line_or_none():
    assert check_reason(None) is None
    assert check_reason("   ") is None
    assert check_reason("  found malware ") == "found malware"
    with pytest.raises(BadRequest, match="over 500 characters"):
        check_reason("x" * 501)
    assert check_status("archived") == "archived"
    with pytest.raises(BadRequest, match="active, archived, quarantined, deprecated"):
        check_status("Archived")


@pytest.mark.parametrize(
    ("identity", "roles", "reason"),
    [
        pytest.param(Identity("alice"), {"alice": OWNER}, "", id="owner"),
        pytest.param(Identity("root", admin=True), {}, "", id="admin-of-an-unowned-project"),
        pytest.param(Identity("bob"), {"bob": MAINTAINER}, "Only owners of demo", id="maintainer"),
        pytest.param(Identity("carol"), {}, "Only owners of demo", id="nobody-owns-it"),
        pytest.param(
            Identity("alice", token_id="t", token_projects=frozenset({"other"})),
            {"alice": OWNER},
            "This token is limited to other",
            id="token-for-another-project",
        ),
    ],
)
def test_who_may_set_a_status(identity, roles, reason):
    decision = decide(identity, Action.SET_STATUS, "demo", roles)
    assert decision.allowed is (not reason) and reason in decision.reason
    assert decision.claims is False  # setting a status never makes anyone an owner


def test_the_status_is_json_only_on_the_simple_pages():
    """PEP 833 froze the HTML format: the reason (hostile here) never reaches the HTML page."""
    hostile = '"><script>alert(1)</script>&'
    project = ProjectRecord("demo", "demo", 1, datetime.now(UTC), {}, "deprecated", hostile)
    html = render_project(project, [], str, TEXT_HTML).decode()
    assert "deprecated" not in html and "script" not in html
    document = json.loads(render_project(project, [], str, JSON_V1))
    assert document["project-status"] == {"status": "deprecated", "reason": hostile}
