"""The audit log over HTTP, in memory: each change leaves one entry, and only admins read it.

An upload, a yank, a status change and a deletion each leave one entry
naming the authenticated user and the client's address, which behind a
``--trusted-proxy`` is the one it forwards for, as in the access log.
"""

from __future__ import annotations

import json

import pytest_twisted
from archive_factory import make_wheel, wheel_filename
from test_auth_http import WHEEL, WHEEL_NAME, AuthIndex, _headers, started_team
from twisted.internet.defer import fail
from twisted.logger import LogLevel, globalLogPublisher

from ministry.core.errors import StoreUnavailable

PROXY = {"X-Forwarded-For": "198.51.100.9"}


async def entries(index: AuthIndex, query: str = "") -> list[dict[str, object]]:
    headers = _headers("root", "root-pw")
    response = await index.request("GET", f"/admin/audit/?format=jsonl{query}", headers)
    assert response.code == 200, response.body
    assert response.header("content-type").startswith("application/jsonl")
    return [json.loads(line) for line in response.body.decode().splitlines()]


@pytest_twisted.async_yield_fixture
async def team(tmp_path):
    """alice and bob users, root an administrator, behind a trusted proxy at 127.0.0.1."""
    served = await started_team(tmp_path, **{"trusted-proxy": ["127.0.0.1"]})
    yield served
    await served.stop()


async def api(index: AuthIndex, action: str, body: object, user: str) -> int:
    headers = {**_headers(user, f"{user}-pw", "application/json"), **PROXY}
    response = await index.request("POST", f"/api/{action}", headers, json.dumps(body).encode())
    return response.code


@pytest_twisted.ensureDeferred
async def test_each_change_leaves_one_entry_with_who_and_where(team) -> None:
    assert (await team.send("demo", "1.0", WHEEL_NAME, WHEEL, "alice", "alice-pw")).code == 200
    # The same bytes again change nothing: no second entry.
    assert (await team.send("demo", "1.0", WHEEL_NAME, WHEEL, "alice", "alice-pw")).code == 200
    body = {"project": "demo", "version": "1.0", "reason": "broken"}
    assert await api(team, "yank", body, "alice") == 200
    assert await api(team, "yank", body, "alice") == 200  # already yanked: no entry
    assert await api(team, "status", {"project": "demo", "status": "archived"}, "root") == 200
    assert await api(team, "delete", {"project": "demo", "filename": WHEEL_NAME}, "root") == 200

    got = [
        (e["action"], e["actor"], e["address"], e["version"], e["filename"], e["detail"])
        for e in await entries(team)
    ]
    assert got == [
        ("delete", "root", "198.51.100.9", None, WHEEL_NAME, WHEEL_NAME),
        ("status", "root", "198.51.100.9", None, None, "archived"),
        ("yank", "alice", "198.51.100.9", "1.0", None, f"{WHEEL_NAME}: broken"),
        ("upload", "alice", "127.0.0.1", "1.0", WHEEL_NAME, ""),
        ("role", "alice", "127.0.0.1", None, None, "alice: owner (first upload)"),
    ]
    assert all(e["project"] == "demo" and e["when"].endswith("Z") for e in await entries(team))


@pytest_twisted.ensureDeferred
async def test_the_log_narrows_to_one_project_and_a_number(team) -> None:
    for name in ("demo", "other"):
        sent = await team.send(
            name, "1.0", wheel_filename(name, "1.0"), make_wheel(name, "1.0"), "alice", "alice-pw"
        )
        assert sent.code == 200
    uploads = [e["project"] for e in await entries(team) if e["action"] == "upload"]
    assert uploads == ["other", "demo"]
    assert {e["project"] for e in await entries(team, "&project=Demo")} == {"demo"}
    assert len(await entries(team, "&limit=1")) == 1


@pytest_twisted.ensureDeferred
async def test_only_administrators_read_the_log(team) -> None:
    assert (await team.send("demo", "1.0", WHEEL_NAME, WHEEL, "alice", "alice-pw")).code == 200
    anonymous = await team.request("GET", "/admin/audit/")
    assert anonymous.code == 401
    owner = await team.request("GET", "/admin/audit/", _headers("alice", "alice-pw"))
    assert owner.code == 403
    assert b"administrators" in owner.body
    page = await team.request("GET", "/admin/audit/", _headers("root", "root-pw"))
    assert page.code == 200
    assert page.header("content-type").startswith("text/html")
    assert b"<td>upload</td>" in page.body and b"<td>alice</td>" in page.body


@pytest_twisted.ensureDeferred
async def test_a_lost_entry_is_logged_loudly_and_the_change_stands(team, monkeypatch) -> None:
    logged: list[dict] = []
    globalLogPublisher.addObserver(logged.append)

    def refuse(event):
        return fail(StoreUnavailable("the audit table is full"))

    monkeypatch.setattr(team.store, "append_audit", refuse)
    try:
        sent = await team.send("demo", "1.0", WHEEL_NAME, WHEEL, "alice", "alice-pw")
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert sent.code == 200
    assert await team.store.get_file("demo", WHEEL_NAME) is not None
    critical = [e for e in logged if e.get("log_level") == LogLevel.critical]
    claim, upload = (json.loads(entry["entry"]) for entry in critical)  # alice owns it now
    assert (claim["action"], upload["filename"]) == ("role", WHEEL_NAME)
