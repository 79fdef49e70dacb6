"""Teams and token scopes in every IMetadataStore: one contract, run against each store.

The mixin pattern of ``test_store_contract.py`` (its factories and fixtures
are reused): teams are kept with their members both ways, hold roles as
``@team`` like users do, and go with their memberships and roles; removing a
user takes them out of every team; a token's scope survives the store, and
a token stored before scopes existed reads back as an upload token.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest_twisted
import test_store_contract
from recorder import Recorder
from store_records import CREATED, make_token, make_user
from test_store_contract import RedisFactory, SQLiteFactory, Timed, running

from ministry.core.models import (
    MAINTAINER,
    OWNER,
    READ_SCOPE,
    UPLOAD_SCOPE,
    TeamRecord,
    TokenRecord,
)
from ministry.interfaces import IMetadataStore

DEVS = TeamRecord("devs", ("alice", "bob"), CREATED)

metadata_store = test_store_contract.metadata_store


class TeamContract:
    """What ``ministry-admin team`` and the authenticator rely on, in any store."""

    @pytest_twisted.ensureDeferred
    async def test_teams_are_added_listed_and_their_members_changed(
        self, metadata_store: IMetadataStore
    ) -> None:
        assert await metadata_store.list_teams() == []
        assert await metadata_store.add_team(TeamRecord("devs", ("bob", "alice"), CREATED))
        assert await metadata_store.add_team(TeamRecord("devs", (), CREATED)) is False
        assert await metadata_store.add_team(TeamRecord("ops", (), CREATED)) is True
        assert await metadata_store.list_teams() == [DEVS, TeamRecord("ops", (), CREATED)]
        assert await metadata_store.user_teams("alice") == frozenset({"devs"})

        assert await metadata_store.set_member("ops", "alice", True) is True
        assert await metadata_store.set_member("ops", "alice", True) is True  # already: fine
        assert await metadata_store.set_member("devs", "bob", False) is True
        assert await metadata_store.set_member("nope", "alice", True) is False
        assert await metadata_store.user_teams("alice") == frozenset({"devs", "ops"})
        assert await metadata_store.user_teams("bob") == frozenset()
        assert await metadata_store.user_teams("nobody") == frozenset()
        assert [team.members for team in await metadata_store.list_teams()] == [
            ("alice",),
            ("alice",),
        ]
        assert await metadata_store.last_serial() == 0  # teams are not part of the index

    @pytest_twisted.ensureDeferred
    async def test_a_team_holds_roles_and_takes_them_when_removed(
        self, metadata_store: IMetadataStore
    ) -> None:
        await metadata_store.add_team(DEVS)
        await metadata_store.set_role("demo-pkg", "carol", OWNER)
        await metadata_store.set_role("demo-pkg", "@devs", MAINTAINER)
        await metadata_store.set_role("other", "@devs", OWNER)
        assert await metadata_store.get_roles("demo-pkg") == {"carol": OWNER, "@devs": MAINTAINER}
        assert await metadata_store.user_roles("@devs") == {"demo-pkg": MAINTAINER, "other": OWNER}

        recorder = Recorder()
        metadata_store.subscribe(recorder)
        assert await metadata_store.remove_team("devs") is True
        assert await metadata_store.remove_team("devs") is False
        assert await metadata_store.list_teams() == []
        assert await metadata_store.user_teams("alice") == frozenset()
        assert await metadata_store.get_roles("demo-pkg") == {"carol": OWNER}
        assert await metadata_store.get_roles("other") == {}
        assert await metadata_store.user_roles("@devs") == {}
        assert recorder.names == []
        # A team of the same name made later starts with nothing.
        assert await metadata_store.add_team(TeamRecord("devs", (), CREATED)) is True
        assert await metadata_store.list_teams() == [TeamRecord("devs", (), CREATED)]

    @pytest_twisted.ensureDeferred
    async def test_removing_a_user_takes_them_out_of_every_team(
        self, metadata_store: IMetadataStore
    ) -> None:
        await metadata_store.add_user(make_user("alice"))
        await metadata_store.add_team(DEVS)
        await metadata_store.add_team(TeamRecord("ops", ("alice",), CREATED))
        await metadata_store.set_role("demo-pkg", "@devs", OWNER)
        assert await metadata_store.remove_user("alice") is True
        assert await metadata_store.user_teams("alice") == frozenset()
        assert [team.members for team in await metadata_store.list_teams()] == [("bob",), ()]
        assert await metadata_store.get_roles("demo-pkg") == {"@devs": OWNER}  # the team's stays

    @pytest_twisted.ensureDeferred
    async def test_memberships_are_shared_by_two_instances(self, tmp_path: Path) -> None:
        make = self.make_store  # type: ignore[attr-defined]
        async with running(make(tmp_path)) as one, running(make(tmp_path)) as two:
            await one.add_team(DEVS)
            assert await two.user_teams("bob") == frozenset({"devs"})
            await one.set_member("devs", "bob", False)
            assert await two.user_teams("bob") == frozenset()  # at once: nothing is cached

    @pytest_twisted.ensureDeferred
    async def test_a_token_keeps_its_scope(self, metadata_store: IMetadataStore) -> None:
        await metadata_store.add_user(make_user("alice"))
        reader = replace(make_token("00000000000000r1", "alice"), scope=READ_SCOPE)
        assert await metadata_store.add_token(reader) is True
        assert await metadata_store.add_token(make_token("00000000000000u1", "alice"))
        assert (await metadata_store.get_token(reader.id)).scope == READ_SCOPE
        assert (await metadata_store.get_token("00000000000000u1")).scope == UPLOAD_SCOPE


def test_a_token_stored_before_scopes_existed_uploads():
    """Its JSON has no ``scope``: it reads back as what every token was then."""
    old = make_token("00000000000000o1", "alice").to_dict()
    del old["scope"]
    assert TokenRecord.from_dict(json.loads(json.dumps(old))).scope == UPLOAD_SCOPE


class TestSQLiteTeams(SQLiteFactory, TeamContract):
    pass


class TestRedisTeams(RedisFactory, TeamContract):
    pass


class TestTimedSQLiteTeams(Timed, SQLiteFactory, TeamContract):
    pass


class TestTimedRedisTeams(Timed, RedisFactory, TeamContract):
    pass
