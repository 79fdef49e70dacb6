"""Changes to proxied projects in every metadata store: cooldown exceptions and refreshes.

A contract mixin run against each store (as ``test_store_contract.py`` does
for the rest of ``IMetadataStore``). Exceptions (kept, listed, revoked) and
refreshes (``ministry-admin cache drop``) are about proxied projects, which
have no record in the store: announcing one must reach every process's page
cache and proxy without making the project hosted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest_twisted
import test_store_contract
from recorder import Recorder
from store_records import make_record
from test_store_contract import RedisFactory, SQLiteFactory, Timed, running, until

from ministry.core.cooldown import CooldownException
from ministry.interfaces import IMetadataStore

# The contract's fixtures, by the names the tests ask for.
metadata_store = test_store_contract.metadata_store
quick_polls = test_store_contract.quick_polls

AT = datetime(2026, 12, 2, 9, 30, 0, 250000, tzinfo=UTC)


def exception(project: str = "requests", version: str | None = "2.33", **rest: str) -> Any:
    fields = {"reason": "security fix, reviewed", "by": "alice", **rest}
    return CooldownException(project, version, fields["reason"], fields["by"], AT)


class CooldownContract:
    """What the proxy and ``ministry-admin cooldown`` rely on, for every store."""

    @pytest_twisted.ensureDeferred
    async def test_exceptions_are_kept_listed_replaced_and_revoked(
        self, metadata_store: IMetadataStore
    ) -> None:
        one, whole, other = exception(), exception(version=None), exception("urllib3", "2.6")
        assert await metadata_store.cooldown_exceptions() == []
        for item in (other, whole, one):
            assert await metadata_store.allow_cooldown(item) is None
        assert await metadata_store.cooldown_exceptions() == [whole, one, other]
        assert await metadata_store.cooldown_exceptions("requests") == [whole, one]
        assert await metadata_store.cooldown_exceptions("absent") == []

        again = exception(version="2.33.0", reason="re-reviewed", by="bob")
        await metadata_store.allow_cooldown(again)
        assert await metadata_store.cooldown_exceptions("requests") == [whole, again]

        assert await metadata_store.revoke_cooldown("requests", "2.33.0") is True  # one release
        assert await metadata_store.revoke_cooldown("requests", "2.33") is False
        assert await metadata_store.revoke_cooldown("requests", "9.9") is False
        assert await metadata_store.cooldown_exceptions("requests") == [whole]
        assert await metadata_store.revoke_cooldown("requests", None) is True
        assert await metadata_store.cooldown_exceptions() == [other]

    @pytest_twisted.ensureDeferred
    async def test_a_change_is_announced_without_hosting_the_project(
        self, metadata_store: IMetadataStore
    ) -> None:
        await metadata_store.add_file(make_record(), "demo-pkg", None)
        recorder = Recorder()
        metadata_store.subscribe(recorder)
        serial = await metadata_store.last_serial()

        await metadata_store.allow_cooldown(exception())
        assert recorder.names == ["requests"]
        assert await metadata_store.last_serial() == serial + 1
        await metadata_store.revoke_cooldown("requests", "2.33")
        await metadata_store.revoke_cooldown("requests", "2.33")  # nothing to revoke: no change
        assert recorder.names == ["requests"] * 2
        assert await metadata_store.last_serial() == serial + 2

        assert [p.name for p in await metadata_store.list_projects()] == ["demo-pkg"]
        assert await metadata_store.get_project("requests") is None
        assert await metadata_store.list_files("requests") == []

    @pytest_twisted.ensureDeferred
    async def test_another_process_hears_of_a_change(self, tmp_path: Path) -> None:
        """``ministry-admin cooldown allow`` writes through its own store: the daemon hears."""
        make = self.make_store  # type: ignore[attr-defined]
        async with running(make(tmp_path)) as daemon, running(make(tmp_path)) as admin:
            recorder = Recorder()
            daemon.subscribe(recorder)
            await admin.allow_cooldown(exception())
            await until(lambda: recorder.names == ["requests"])
            assert await daemon.cooldown_exceptions("requests") == [exception()]
            await admin.revoke_cooldown("requests", "2.33")
            await until(lambda: recorder.names == ["requests"] * 2)

    @pytest_twisted.ensureDeferred
    async def test_a_refresh_is_announced_everywhere_without_hosting_the_project(
        self, tmp_path: Path
    ) -> None:
        """``ministry-admin cache drop`` writes through its own store: the daemon hears."""
        make = self.make_store  # type: ignore[attr-defined]
        async with running(make(tmp_path)) as daemon, running(make(tmp_path)) as admin:
            here, there = Recorder(), Recorder()
            admin.subscribe(here)
            daemon.subscribe(there)
            serial = await admin.last_serial()
            assert await admin.refresh_upstream("requests") is None
            assert here.names == ["requests"]
            await until(lambda: there.names == ["requests"])
            assert await daemon.last_serial() == serial + 1
            await admin.refresh_upstream("requests")  # every refresh is a change
            await until(lambda: there.names == ["requests"] * 2)
            assert await daemon.list_projects() == []
            assert await daemon.cooldown_exceptions() == []


class TestSQLiteCooldown(SQLiteFactory, CooldownContract):
    pass


class TestRedisCooldown(RedisFactory, CooldownContract):
    pass


class TestTimedRedisCooldown(Timed, RedisFactory, CooldownContract):
    pass
