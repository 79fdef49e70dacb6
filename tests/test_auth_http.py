"""Users, tokens, owners, yanking and deleting over HTTP, in memory, with the real store.

Each rule of issue 4 that a client can see: 401 with the challenge, 403 with
the reason, the first uploader owning a project, tokens and their limits,
``--private`` reads, htpasswd files, the JSON curation API and
``:action=remove_pkg``, and the slowing down of repeated failures. Real
clients drive the same paths in ``test_auth_clients.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from datetime import UTC, datetime

import bcrypt
import pytest
import pytest_twisted
from accept_headers import JSON_V1, TEXT_HTML
from archive_factory import make_sdist, make_wheel, sdist_filename, wheel_filename
from http_harness import InMemoryIndex, multipart
from twisted.internet import reactor

from ministry.core.auth import hash_password, new_token
from ministry.core.models import MAINTAINER, OWNER, TokenRecord, UserRecord
from ministry.core.throttle import FailureThrottle
from ministry.curation import Target, select_files
from ministry.web.auth import REMEMBER_SECONDS

WHEEL = make_wheel("demo", "1.0")
WHEEL_NAME = wheel_filename("demo", "1.0")
SDIST = make_sdist("demo", "1.0")
SDIST_NAME = sdist_filename("demo", "1.0")
CHALLENGE = 'Basic realm="ministry"'


class Clock:
    """The reactor with a time the test sets: for the authenticator's memory and the
    htpasswd file. Delayed calls (the throttle's waits) still run on the reactor."""

    def __init__(self) -> None:
        self.now = 1000.0

    def seconds(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> object:
        return getattr(reactor, name)


class AuthIndex(InMemoryIndex):
    """The in-memory index on a clock the test sets."""

    def __init__(self, data_dir: str, **options: str) -> None:
        self.clock = Clock()
        super().__init__(data_dir, self.clock, **options)

    async def add_user(self, name: str, password: str, admin: bool = False) -> None:
        # Cheap scrypt parameters: they are stored with the hash, and tests are many.
        hashed = hash_password(password, n=2**4, r=1, p=1)
        assert await self.store.add_user(UserRecord(name, hashed, admin, datetime.now(UTC)))

    async def add_token(self, user: str, *projects: str) -> str:
        made = new_token()
        record = TokenRecord(made.id, user, made.digest, projects, datetime.now(UTC))
        assert await self.store.add_token(record)
        return made.text

    async def send(self, name, version, filename, data, user=None, password=None, **extra):
        fields = _fields(name, version, filename) + list(extra.items())
        body, content_type = multipart(fields, [("content", filename, data)])
        return await self.request("POST", "/", _headers(user, password, content_type), body)

    async def api(self, action: str, body: object, user=None, password=None):
        headers = _headers(user, password, "application/json")
        return await self.request("POST", f"/api/{action}", headers, json.dumps(body).encode())

    async def files(self, name: str = "demo", user=None, password=None) -> dict[str, object]:
        headers = {"Accept": JSON_V1, **_headers(user, password)}
        response = await self.request("GET", f"/simple/{name}/", headers)
        assert response.code == 200, response.body
        return {entry["filename"]: entry["yanked"] for entry in json.loads(response.body)["files"]}


def _fields(name: str, version: str, filename: str) -> list[tuple[str, str]]:
    filetype = "bdist_wheel" if filename.endswith(".whl") else "sdist"
    return [
        (":action", "file_upload"),
        ("protocol_version", "1"),
        ("name", name),
        ("version", version),
        ("filetype", filetype),
    ]


def _headers(user=None, password=None, content_type=None) -> dict[str, str]:
    headers = {}
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    if content_type:
        headers["Content-Type"] = content_type
    return headers


@pytest_twisted.async_yield_fixture
async def index(tmp_path):
    served = AuthIndex(str(tmp_path))
    await served.start()
    yield served
    await served.stop()


async def started_team(tmp_path, **options: object) -> AuthIndex:
    """A started index with users alice and bob, and root an administrator."""
    served = AuthIndex(str(tmp_path), **options)
    await served.start()
    await served.add_user("alice", "alice-pw")
    await served.add_user("bob", "bob-pw")
    await served.add_user("root", "root-pw", admin=True)
    return served


@pytest_twisted.async_yield_fixture
async def team(tmp_path):
    """alice owns demo (wheel and sdist 1.0), bob is another user, root an administrator."""
    served = await started_team(tmp_path)
    assert (await served.send("demo", "1.0", WHEEL_NAME, WHEEL, "alice", "alice-pw")).code == 200
    assert (await served.send("demo", "1.0", SDIST_NAME, SDIST, "alice", "alice-pw")).code == 200
    yield served
    await served.stop()


# -- open until configured ---------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_an_index_without_users_takes_uploads_from_anyone(index):
    assert (await index.send("demo", "1.0", WHEEL_NAME, WHEEL)).code == 200
    # twine always sends something; while the index is open it is not checked.
    assert (await index.send("demo", "1.0", SDIST_NAME, SDIST, "any", "any")).code == 200
    assert await index.store.get_roles("demo") == {}  # nobody owns it yet


@pytest_twisted.ensureDeferred
async def test_the_start_up_warns_while_anyone_may_upload(index, logged):
    index.auth.startService()
    await index.auth.reported
    index.auth.stopService()
    assert any("anyone who can reach this index may upload" in text for text in logged.texts)


@pytest_twisted.ensureDeferred
async def test_once_a_user_exists_uploads_need_credentials(index):
    await index.add_user("alice", "alice-pw")
    missing = await index.send("demo", "1.0", WHEEL_NAME, WHEEL)
    assert missing.code == 401
    assert missing.header("www-authenticate") == CHALLENGE
    assert b"needs credentials" in missing.body
    wrong = await index.send("demo", "1.0", WHEEL_NAME, WHEEL, "alice", "nope")
    assert (wrong.code, wrong.phrase) == (401, "Wrong username or password.")
    assert wrong.header("www-authenticate") == CHALLENGE
    unknown = await index.send("demo", "1.0", WHEEL_NAME, WHEEL, "mallory", "alice-pw")
    assert (unknown.code, unknown.phrase) == (401, "Wrong username or password.")
    assert (await index.request("GET", "/simple/demo/")).code == 404  # nothing stored

    assert (await index.send("demo", "1.0", WHEEL_NAME, WHEEL, "alice", "alice-pw")).code == 200
    assert await index.store.get_roles("demo") == {"alice": OWNER}
    upload, claim = await index.store.list_audit("demo")
    assert (claim.action, claim.actor, claim.detail) == (
        "role",
        "alice",
        "alice: owner (first upload)",
    )
    assert upload.action == "upload"


@pytest_twisted.ensureDeferred
async def test_a_project_published_while_open_is_claimed_only_by_an_administrator(index, logged):
    """The first user to come by does not take over what others published anonymously."""
    assert (await index.send("demo", "1.0", WHEEL_NAME, WHEEL)).code == 200
    await index.add_user("alice", "alice-pw")
    await index.add_user("root", "root-pw", admin=True)

    index.auth.startService()  # start-up says how many such projects there are
    await index.auth.reported
    index.auth.stopService()
    (warning,) = [text for text in logged.texts if "no owner or maintainer" in text]
    assert "1 hosted projects" in warning and "First of them: demo" in warning

    refused = await index.send("demo", "1.0", SDIST_NAME, SDIST, "alice", "alice-pw")
    assert refused.code == 403
    assert b"ministry-admin project add-owner demo alice" in refused.body
    assert await index.store.get_roles("demo") == {}
    assert list(await index.files()) == [WHEEL_NAME]  # nothing stored
    # An administrator's upload is allowed, and still makes nobody its owner.
    assert (await index.send("demo", "1.0", SDIST_NAME, SDIST, "root", "root-pw")).code == 200
    assert await index.store.get_roles("demo") == {}
    # Named its owner, alice uploads; a new project is still the first uploader's.
    await index.store.set_role("demo", "alice", OWNER)
    assert (
        await index.send(
            "demo",
            "1.1",
            wheel_filename("demo", "1.1"),
            make_wheel("demo", "1.1"),
            "alice",
            "alice-pw",
        )
    ).code == 200
    fresh = await index.send(
        "fresh",
        "1.0",
        wheel_filename("fresh", "1.0"),
        make_wheel("fresh", "1.0"),
        "alice",
        "alice-pw",
    )
    assert fresh.code == 200
    assert await index.store.get_roles("fresh") == {"alice": OWNER}


# -- owners, maintainers, administrators ---------------------------------------------


@pytest_twisted.ensureDeferred
async def test_only_owners_maintainers_and_admins_upload_to_a_project(team):
    wheel = make_wheel("demo", "2.0")
    refused = await team.send("demo", "2.0", wheel_filename("demo", "2.0"), wheel, "bob", "bob-pw")
    assert refused.code == 403
    assert refused.phrase == "bob is not an owner or maintainer of demo, so may not upload to it."
    assert refused.body.decode().strip() == refused.phrase
    assert refused.header("www-authenticate") is None

    await team.store.set_role("demo", "bob", MAINTAINER)
    accepted = await team.send("demo", "2.0", wheel_filename("demo", "2.0"), wheel, "bob", "bob-pw")
    assert accepted.code == 200
    third = make_wheel("demo", "3.0")
    as_admin = await team.send(
        "demo", "3.0", wheel_filename("demo", "3.0"), third, "root", "root-pw"
    )
    assert as_admin.code == 200
    assert await team.store.get_roles("demo") == {"alice": OWNER, "bob": MAINTAINER}


@pytest_twisted.ensureDeferred
async def test_registering_claims_a_new_project_and_is_refused_to_others(team):
    body, content_type = multipart([(":action", "submit"), ("name", "Fresh"), ("version", "1")])
    registered = await team.request("POST", "/", _headers("bob", "bob-pw", content_type), body)
    assert registered.code == 200
    assert await team.store.get_roles("fresh") == {"bob": OWNER}
    (claim,) = await team.store.list_audit("fresh")
    assert claim.detail == "bob: owner (first registration)"
    body, content_type = multipart([(":action", "submit"), ("name", "demo"), ("version", "1")])
    refused = await team.request("POST", "/", _headers("bob", "bob-pw", content_type), body)
    assert refused.code == 403
    assert "may not register it" in refused.phrase


# -- tokens --------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_tokens_upload_within_their_limits_until_revoked(team):
    everything = await team.add_token("alice")
    limited = await team.add_token("alice", "other")
    wheel, name = make_wheel("demo", "2.0"), wheel_filename("demo", "2.0")

    refused = await team.send("demo", "2.0", name, wheel, "__token__", limited)
    assert (refused.code, refused.phrase) == (
        403,
        "This token is limited to other: it may not upload to demo.",
    )
    assert (await team.send("demo", "2.0", name, wheel, "__token__", everything)).code == 200

    token_id = everything.split("-")[1]
    assert await team.store.revoke_token(token_id)
    team.clock.now += REMEMBER_SECONDS  # the memory of the good login expires
    revoked = await team.send("demo", "2.0", name, wheel, "__token__", everything)
    assert (revoked.code, revoked.header("www-authenticate")) == (401, CHALLENGE)
    assert "token is not valid" in revoked.phrase
    forged = everything[:-1] + ("0" if everything[-1] != "0" else "1")
    assert (await team.send("demo", "2.0", name, wheel, "__token__", forged)).code == 401
    assert (await team.send("demo", "2.0", name, wheel, "__token__", "alice-pw")).code == 401


# -- yanking -------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_yanking_a_release_shows_in_every_format_and_bumps_the_serial(team):
    serial = (await team.request("GET", "/simple/demo/")).header("x-pypi-last-serial")
    body = {"project": "Demo", "version": "1.0.0", "reason": "broken build"}
    yanked = await team.api("yank", body, "alice", "alice-pw")
    assert yanked.code == 200, yanked.body
    assert json.loads(yanked.body) == {
        "project": "demo",
        "files": [WHEEL_NAME, SDIST_NAME],
        "changed": [WHEEL_NAME, SDIST_NAME],
    }
    assert await team.files() == {WHEEL_NAME: "broken build", SDIST_NAME: "broken build"}
    html = await team.request("GET", "/simple/demo/", {"Accept": TEXT_HTML})
    assert html.body.count(b'data-yanked="broken build"') == 2
    api = json.loads((await team.request("GET", "/pypi/demo/json")).body)
    assert api["info"]["yanked"] is True
    assert {entry["yanked_reason"] for entry in api["urls"]} == {"broken build"}
    after = (await team.request("GET", "/simple/demo/")).header("x-pypi-last-serial")
    assert int(after) == int(serial) + 1

    again = await team.api("yank", body, "alice", "alice-pw")
    assert json.loads(again.body)["changed"] == []
    unyanked = await team.api(
        "unyank", {"project": "demo", "filename": SDIST_NAME}, "root", "root-pw"
    )
    assert json.loads(unyanked.body)["changed"] == [SDIST_NAME]
    assert await team.files() == {WHEEL_NAME: "broken build", SDIST_NAME: False}


@pytest.mark.parametrize(
    ("body", "user", "code", "phrase"),
    [
        ({"project": "demo", "version": "1.0"}, None, 401, "This needs credentials"),
        ({"project": "demo", "version": "1.0"}, "bob", 403, "bob is not an owner or maintainer"),
        ({"project": "demo", "version": "9.9"}, "alice", 404, "No such file or release: demo 9.9"),
        ({"project": "demo"}, "alice", 400, "Name either a version"),
        ({"project": "demo", "version": "1.0", "filename": "x"}, "alice", 400, "Name either"),
        ({"version": "1.0"}, "alice", 400, "The JSON body needs a 'project'"),
        ({"project": "demo", "version": 1.0}, "alice", 400, "'version' must be a string"),
        (["demo"], "alice", 400, "The JSON body must be an object"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_yank_refusals(team, body, user, code, phrase):
    response = await team.api("yank", body, user, f"{user}-pw")
    assert response.code == code
    assert response.phrase.startswith(phrase), response.phrase
    assert await team.files() == {WHEEL_NAME: False, SDIST_NAME: False}


@pytest_twisted.ensureDeferred
async def test_a_body_that_is_not_json_is_a_400(team):
    headers = _headers("alice", "alice-pw", "application/json")
    response = await team.request("POST", "/api/yank", headers, b"{not json")
    assert response.code == 400
    assert "not valid JSON" in response.phrase


# -- deleting ------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_only_admins_delete_and_a_deleted_filename_is_never_reused(team):
    target = {"project": "demo", "filename": WHEEL_NAME}
    refused = await team.api("delete", target, "alice", "alice-pw")
    assert (refused.code, refused.phrase) == (
        403,
        "Only administrators may delete files; alice is not one.",
    )
    record = await team.store.get_file("demo", WHEEL_NAME)
    blob = team.blobs.local_path(record.blob_key)
    assert os.path.exists(blob)

    deleted = await team.api("delete", target, "root", "root-pw")
    assert json.loads(deleted.body)["changed"] == [WHEEL_NAME]
    assert await team.files() == {SDIST_NAME: False}
    assert not os.path.exists(blob)
    assert (await team.request("GET", f"/packages/demo/{WHEEL_NAME}")).code == 404

    for data in (WHEEL, make_wheel("demo", "1.0", description="other bytes")):
        again = await team.send("demo", "1.0", WHEEL_NAME, data, "alice", "alice-pw")
        assert again.code == 400
        assert again.phrase.startswith("This filename has already been used")
    assert await team.files() == {SDIST_NAME: False}


@pytest.mark.parametrize("encoding", ["multipart", "urlencoded"])
@pytest_twisted.ensureDeferred
async def test_remove_pkg_deletes_a_release_as_pypiserver_does(team, encoding):
    fields = [(":action", "remove_pkg"), ("name", "Demo"), ("version", "1.0")]
    if encoding == "multipart":
        body, content_type = multipart(fields)
    else:
        body = "&".join(f"{key}={value}" for key, value in fields).encode()
        content_type = "application/x-www-form-urlencoded"
    owner = await team.request("POST", "/", _headers("alice", "alice-pw", content_type), body)
    assert owner.code == 403
    admin = await team.request("POST", "/", _headers("root", "root-pw", content_type), body)
    assert admin.code == 200, admin.body
    assert await team.files() == {}
    again = await team.request("POST", "/", _headers("root", "root-pw", content_type), body)
    assert again.code == 404


# -- private reads -------------------------------------------------------------------


@pytest_twisted.async_yield_fixture
async def private(tmp_path):
    served = AuthIndex(str(tmp_path), private="true")
    await served.start()
    await served.add_user("alice", "alice-pw")
    yield served
    await served.stop()


@pytest.mark.parametrize(
    "path", ["/", "/simple/", "/simple/demo/", "/packages/", "/pypi/demo/json", "/metrics"]
)
@pytest_twisted.ensureDeferred
async def test_a_private_index_answers_nothing_without_credentials(private, path):
    response = await private.request("GET", path)
    assert response.code == 401
    assert response.header("www-authenticate") == CHALLENGE
    wrong = await private.request("GET", path, _headers("alice", "wrong"))
    assert wrong.code == 401


@pytest_twisted.ensureDeferred
async def test_a_private_index_serves_with_credentials_and_health_to_anyone(private):
    assert (await private.request("GET", "/health")).code == 200
    assert (await private.send("demo", "1.0", WHEEL_NAME, WHEEL, "alice", "alice-pw")).code == 200
    assert await private.files("demo", "alice", "alice-pw") == {WHEEL_NAME: False}
    response = await private.request(
        "GET", f"/packages/demo/{WHEEL_NAME}", _headers("alice", "alice-pw")
    )
    assert (response.code, response.body) == (200, WHEEL)
    head = await private.request("HEAD", "/simple/", _headers("alice", "alice-pw"))
    assert head.code == 200


@pytest_twisted.ensureDeferred
async def test_a_good_login_is_remembered_briefly(private):
    """The read hot path must not run scrypt per request: a checked header is reused."""
    headers = _headers("alice", "alice-pw")
    assert (await private.request("GET", "/simple/", headers)).code == 200
    assert await private.store.remove_user("alice")
    assert (await private.request("GET", "/simple/", headers)).code == 200  # remembered
    private.clock.now += REMEMBER_SECONDS
    assert (await private.request("GET", "/simple/", headers)).code == 401  # forgotten


@pytest_twisted.ensureDeferred
async def test_repeated_failures_from_one_address_are_slowed_down(private):
    private.auth.throttle = FailureThrottle(free=1, base=0.2, cap=0.2)
    wrong = _headers("alice", "wrong")
    timings = []
    for _ in range(3):
        started = time.monotonic()
        assert (await private.request("GET", "/simple/", wrong)).code == 401
        timings.append(time.monotonic() - started)
    assert timings[0] < 0.2 and timings[1] < 0.2  # the free failure, then the first counted
    assert timings[2] >= 0.2
    assert len(private.auth.throttle) == 1


# -- htpasswd ------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_htpasswd_users_log_in_and_the_file_is_reread_when_it_changes(tmp_path):
    htpasswd = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(b"bea-pw", bcrypt.gensalt(4)).decode().replace("$2b$", "$2y$", 1)
    htpasswd.write_text(f"bea:{hashed}\n")
    served = AuthIndex(str(tmp_path / "data"), htpasswd=str(htpasswd))
    await served.start()
    try:
        # An htpasswd file alone closes the index, even with no users in the store.
        assert (await served.send("demo", "1.0", WHEEL_NAME, WHEEL)).code == 401
        assert (await served.send("demo", "1.0", WHEEL_NAME, WHEEL, "bea", "bea-pw")).code == 200
        assert await served.store.get_roles("demo") == {"bea": OWNER}

        sha = "{SHA}" + base64.b64encode(hashlib.sha1(b"sam-pw").digest()).decode()
        htpasswd.write_text(f"bea:{hashed}\nsam:{sha}\n")
        os.utime(htpasswd, ns=(time.time_ns(), time.time_ns() + 10**9))
        sdist = (SDIST_NAME, SDIST)
        assert (await served.send("demo", "1.0", *sdist, "sam", "sam-pw")).code == 401
        served.clock.now += 5  # the file is looked at again only every few seconds
        assert (await served.send("demo", "1.0", *sdist, "sam", "sam-pw")).code == 403
    finally:
        await served.stop()


# -- the pure part of curation -------------------------------------------------------


def test_a_release_is_selected_by_version_equality():
    from test_store_contract import make_record

    files = [
        make_record(filename="a-1.0.tar.gz", version="1.0"),
        make_record(filename="a-1.0.0-py3-none-any.whl", version="1.0.0"),
        make_record(filename="a-1.0.1.tar.gz", version="1.0.1"),
    ]
    chosen = select_files(files, Target.of("A", "1.0", None))
    assert [r.filename for r in chosen] == ["a-1.0.tar.gz", "a-1.0.0-py3-none-any.whl"]
    chosen = select_files(files, Target.of("A", None, "a-1.0.1.tar.gz"))
    assert [r.filename for r in chosen] == ["a-1.0.1.tar.gz"]
    assert select_files(files, Target.of("A", "not a version", None)) == []
