"""``ministry-admin export`` then ``import`` as a backup restored: everything a team relies on.

The in-memory index of ``test_auth_http`` with users, tokens (one read-only),
roles, a team holding one, a yank, a deleted file, an attested upload and a
cooldown exception is exported and imported into an empty index, which must
then behave the same for its users: they log in, the token uploads, the
team's member uploads, the read token is still refused, the deleted filename
stays refused, and the history is there.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest_twisted
from archive_factory import make_wheel, wheel_filename
from attestation_factory import attestation, field
from test_auth_http import SDIST, SDIST_NAME, WHEEL, WHEEL_NAME, AuthIndex, started_team
from test_teams_http import read_token

from ministry.admin.transfer import export_index, import_index
from ministry.core.attestations import INTEGRITY_V1
from ministry.core.cooldown import CooldownException
from ministry.core.models import MAINTAINER, OWNER, TeamRecord

ALLOWED = CooldownException("requests", "2.33.0", "fixes a CVE", "root", datetime.now(UTC))


@pytest_twisted.ensureDeferred
async def test_a_restored_backup_keeps_users_tokens_teams_roles_tombstones_and_history(
    tmp_path,
):
    source = await started_team(tmp_path / "source")
    try:
        attested = field(attestation(SDIST_NAME, SDIST))
        sent = await source.send(
            "demo", "1.0", SDIST_NAME, SDIST, "alice", "alice-pw", attestations=attested
        )
        assert sent.code == 200
        assert (
            await source.send("demo", "1.0", WHEEL_NAME, WHEEL, "alice", "alice-pw")
        ).code == 200
        await source.store.set_role("demo", "bob", MAINTAINER)
        await source.add_user("carol", "carol-pw")
        await source.store.add_team(TeamRecord("devs", ("carol",), datetime.now(UTC)))
        await source.store.set_role("demo", "@devs", MAINTAINER)
        token = await source.add_token("alice", "demo")
        reader = await read_token(source, "alice")
        body = {"project": "demo", "filename": SDIST_NAME, "reason": "broken"}
        assert (await source.api("yank", body, "alice", "alice-pw")).code == 200
        gone = {"project": "demo", "filename": WHEEL_NAME}
        assert (await source.api("delete", gone, "root", "root-pw")).code == 200
        await source.store.allow_cooldown(ALLOWED)
        history = await source.store.list_audit()
        await export_index(source.store, source.blobs, str(tmp_path / "dump"))
    finally:
        await source.stop()

    target = AuthIndex(str(tmp_path / "target"))
    await target.start()
    try:
        added, present, problems = await import_index(
            target.store, target.blobs, str(tmp_path / "dump")
        )
        assert (added, present, problems) == (1, 0, [])
        assert await target.store.get_roles("demo") == {
            "alice": OWNER,
            "bob": MAINTAINER,
            "@devs": MAINTAINER,
        }
        assert [team.members for team in await target.store.list_teams()] == [("carol",)]
        assert await target.files() == {SDIST_NAME: "broken"}

        # alice logs in with her password, her token uploads, bob may as a maintainer.
        two = make_wheel("demo", "2.0")
        assert (
            await target.send(
                "demo", "2.0", wheel_filename("demo", "2.0"), two, "alice", "alice-pw"
            )
        ).code == 200
        three = make_wheel("demo", "3.0")
        by_token = await target.send(
            "demo", "3.0", wheel_filename("demo", "3.0"), three, "__token__", token
        )
        assert by_token.code == 200
        # carol may through her team; the read token still only reads.
        five = make_wheel("demo", "5.0")
        by_team = await target.send(
            "demo", "5.0", wheel_filename("demo", "5.0"), five, "carol", "carol-pw"
        )
        assert by_team.code == 200
        read_only = await target.send(
            "demo",
            "6.0",
            wheel_filename("demo", "6.0"),
            make_wheel("demo", "6.0"),
            "__token__",
            reader,
        )
        assert read_only.code == 403 and "read-only" in read_only.phrase
        wrong = await target.send(
            "demo", "4.0", wheel_filename("demo", "4.0"), WHEEL, "bob", "nope"
        )
        assert wrong.code == 401

        # The deleted filename stays refused, whatever the bytes.
        again = await target.send("demo", "1.0", WHEEL_NAME, WHEEL, "alice", "alice-pw")
        assert again.code == 400 and "already been used" in again.phrase

        # The attested file's provenance came along.
        provenance = await target.request("GET", f"/integrity/demo/1.0/{SDIST_NAME}/provenance")
        assert provenance.code == 200 and provenance.header("content-type") == INTEGRITY_V1

        assert await target.store.cooldown_exceptions() == [ALLOWED]
        restored = await target.store.list_audit(limit=1000)
        imported = [event for event in restored if "files imported from" in (event.detail or "")]
        assert [event.project for event in imported] == ["demo"]
        assert restored[-len(history) :] == history
    finally:
        await target.stop()
