"""Teams, read-only tokens and who-owns-what on the project page, over HTTP (issue 18).

The in-memory index of ``test_auth_http`` with its real store: a team's
member uploads while the team holds a role and is refused the moment they
leave it (with the same credentials, inside the memory of good logins); a
read token installs from a ``--private`` index and is refused uploads with
the reason; the project page names owners, maintainers (teams as teams) and
each file's uploader, to anyone on an open index and only to logged-in
users on a private one. Real clients do the same in ``test_auth_clients.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest_twisted
import test_auth_http
from archive_factory import make_wheel, wheel_filename
from html_page import parse_page
from test_auth_http import WHEEL, WHEEL_NAME, AuthIndex, _headers

from ministry.core.auth import new_token
from ministry.core.models import MAINTAINER, OWNER, READ_SCOPE, TeamRecord, TokenRecord

index = test_auth_http.index
team = test_auth_http.team


def release(version: str) -> tuple[str, bytes]:
    return wheel_filename("demo", version), make_wheel("demo", version)


async def read_token(served: AuthIndex, user: str) -> str:
    made = new_token()
    record = TokenRecord(made.id, user, made.digest, (), datetime.now(UTC), READ_SCOPE)
    assert await served.store.add_token(record)
    return made.text


@pytest_twisted.ensureDeferred
async def test_a_team_member_uploads_and_a_removed_member_at_once_cannot(team):
    two, three = release("2.0"), release("3.0")
    refused = await team.send("demo", "2.0", *two, "bob", "bob-pw")
    assert refused.code == 403
    assert await team.store.add_team(TeamRecord("devs", ("bob",), datetime.now(UTC)))
    await team.store.set_role("demo", "@devs", MAINTAINER)
    assert (await team.send("demo", "2.0", *two, "bob", "bob-pw")).code == 200

    assert await team.store.set_member("devs", "bob", False)
    # Same credentials, same clock: the login is remembered, the membership is not.
    gone = await team.send("demo", "3.0", *three, "bob", "bob-pw")
    assert gone.code == 403
    assert gone.phrase == "bob is not an owner or maintainer of demo, so may not upload to it."
    assert set(await team.files()) == {WHEEL_NAME, two[0], "demo-1.0.tar.gz"}


@pytest_twisted.ensureDeferred
async def test_a_team_owner_yanks_and_a_deleted_team_grants_nothing(team):
    await team.store.add_team(TeamRecord("devs", ("bob",), datetime.now(UTC)))
    await team.store.set_role("demo", "@devs", OWNER)
    body = {"project": "demo", "version": "1.0", "reason": "broken"}
    assert (await team.api("yank", body, "bob", "bob-pw")).code == 200
    assert await team.store.remove_team("devs")
    refused = await team.api("unyank", {"project": "demo", "version": "1.0"}, "bob", "bob-pw")
    assert refused.code == 403
    assert await team.store.get_roles("demo") == {"alice": OWNER}


@pytest_twisted.async_yield_fixture
async def private(tmp_path):
    served = AuthIndex(str(tmp_path), private="true")
    await served.start()
    await served.add_user("alice", "alice-pw")
    assert (await served.send("demo", "1.0", WHEEL_NAME, WHEEL, "alice", "alice-pw")).code == 200
    yield served
    await served.stop()


@pytest_twisted.ensureDeferred
async def test_a_read_token_installs_from_a_private_index_and_may_not_upload(private):
    token = await read_token(private, "alice")
    assert await private.files("demo", "__token__", token) == {WHEEL_NAME: False}
    fetched = await private.request(
        "GET", f"/packages/demo/{WHEEL_NAME}", _headers("__token__", token)
    )
    assert (fetched.code, fetched.body) == (200, WHEEL)

    refused = await private.send("demo", "2.0", *release("2.0"), "__token__", token)
    assert refused.code == 403
    assert refused.phrase.startswith("This token is read-only: it may install from this index")
    assert b"read-only" in refused.body
    yank = await private.api("yank", {"project": "demo", "version": "1.0"}, "__token__", token)
    assert yank.code == 403 and "read-only" in yank.phrase
    assert await private.files("demo", "alice", "alice-pw") == {WHEEL_NAME: False}


def people(body: bytes) -> list[str]:
    """The project page's "Owners and maintainers" entries, as their text."""
    page = parse_page(body)
    return [li.text.strip() for li in page.all("li") if "data-role" in li]


def uploaders(body: bytes) -> list[str]:
    return [dd.text.strip() for dd in parse_page(body).all("dd") if dd.get("class") == "uploader"]


@pytest_twisted.ensureDeferred
async def test_the_project_page_names_owners_teams_and_uploaders_to_anyone(team):
    page = await team.request("GET", "/project/demo/")
    assert page.code == 200
    assert people(page.body) == ["alice, owner"]
    assert uploaders(page.body) == ["alice", "alice"]  # the wheel and the sdist of 1.0

    await team.store.add_team(TeamRecord("devs", ("bob",), datetime.now(UTC)))
    await team.store.set_role("demo", "@devs", MAINTAINER)
    # Roles bump no serial: the next view shows the change all the same.
    again = await team.request("GET", "/project/demo/")
    assert people(again.body) == ["alice, owner", "@devs (team), maintainer"]
    assert '<span class="team">@devs</span>' in again.body.decode()


@pytest_twisted.ensureDeferred
async def test_a_file_uploaded_while_the_index_was_open_names_no_uploader(index):
    assert (await index.send("demo", "1.0", WHEEL_NAME, WHEEL)).code == 200
    page = await index.request("GET", "/project/demo/")
    assert page.code == 200
    assert uploaders(page.body) == [] and people(page.body) == []
    assert "Uploaded by" not in page.body.decode()


@pytest_twisted.ensureDeferred
async def test_a_private_index_shows_owners_to_logged_in_users_only(private):
    assert (await private.request("GET", "/project/demo/")).code == 401
    page = await private.request("GET", "/project/demo/", _headers("alice", "alice-pw"))
    assert page.code == 200
    assert people(page.body) == ["alice, owner"] and uploaders(page.body) == ["alice"]
