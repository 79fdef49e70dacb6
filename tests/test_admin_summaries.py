"""``ministry-admin summaries fill``: summaries for projects stored before ministry kept them.

A project stored before summaries has none and no version it came from,
as an upload that brings no summary leaves it (``add_file(..., None)``):
so the tests make such projects that way, in each store, and fill them.
Redis is the store that needs it (it has no migrations); SQLite's
migration 8 does the same, and the command must agree with it there.
"""

from __future__ import annotations

import argparse
from typing import Any

import pytest
import pytest_twisted
import test_store_contract
from archive_factory import metadata_text
from store_records import make_record
from test_store_contract import RedisFactory, SQLiteFactory

from ministry.admin.summaries import summaries_command
from ministry.core.summaries import kept_release

metadata_store = test_store_contract.metadata_store


async def old_file(store: Any, project: str, version: str, summary: str | None) -> None:
    """A file as a ministry without summaries stored it: metadata, but no summary taken."""
    filename = f"{project.replace('-', '_')}-{version}-py3-none-any.whl"
    record = make_record(filename, project, sha256=f"{version}-{project}".ljust(64, "0")[:64])
    record = record.with_changes(version=version)
    data = None if summary is None else metadata_text(project, version, summary=summary).encode()
    assert await store.add_file(record, project, data, None)


async def fill(store: Any, capsys: pytest.CaptureFixture[str]) -> str:
    await summaries_command(argparse.Namespace(action="fill"), store, None, None)
    return capsys.readouterr().out


def kept(project: Any) -> tuple[str, str | None]:
    return project.summary, project.summary_version


@pytest.mark.parametrize(
    ("versions", "expected"),
    [
        ([], None),
        (["1.0"], 0),
        (["1.0", "2.0", "1.5"], 1),  # the newest release, whatever the upload order
        (["2.0", "2.0"], 1),  # of one release, the last file
        (["2.0", "not a version"], 0),  # an unversioned one loses to a kept version
        (["not a version", "0.1"], 1),
    ],
)
def test_the_release_kept_is_the_rules(versions: list[str], expected: int | None) -> None:
    assert kept_release(versions) == expected


class SummariesFillContract:
    @pytest_twisted.ensureDeferred
    async def test_old_projects_get_their_newest_releases_summary(
        self, metadata_store: Any, capsys: pytest.CaptureFixture[str]
    ) -> None:
        await old_file(metadata_store, "demo-pkg", "1.0", "Old words")
        await old_file(metadata_store, "demo-pkg", "2.0", "Newest words")
        await old_file(metadata_store, "demo-pkg", "1.5", "Backported words")
        await old_file(metadata_store, "bare-pkg", "3.0", None)  # no metadata stored
        before = await metadata_store.get_project("demo-pkg")
        assert kept(before) == ("", None)

        assert await fill(metadata_store, capsys) == (
            "1 of 2 projects without a summary now have one\n"
        )
        after = await metadata_store.get_project("demo-pkg")
        assert kept(after) == ("Newest words", "2.0")
        assert after.serial > before.serial  # announced, as an upload's summary is
        assert kept(await metadata_store.get_project("bare-pkg")) == ("", None)

    @pytest_twisted.ensureDeferred
    async def test_a_newest_file_without_metadata_gives_way_to_the_next(
        self, metadata_store: Any, capsys: pytest.CaptureFixture[str]
    ) -> None:
        await old_file(metadata_store, "demo-pkg", "1.0", "From 1.0")
        await old_file(metadata_store, "demo-pkg", "2.0", None)
        await fill(metadata_store, capsys)
        assert kept(await metadata_store.get_project("demo-pkg")) == ("From 1.0", "1.0")

    @pytest_twisted.ensureDeferred
    async def test_a_registration_and_a_second_run(
        self, metadata_store: Any, capsys: pytest.CaptureFixture[str]
    ) -> None:
        await metadata_store.register("reg-pkg", "Reg-Pkg", {"name": ["Reg-Pkg"]})
        await old_file(metadata_store, "reg-pkg", "1.0", "From the file")
        await fill(metadata_store, capsys)
        assert kept(await metadata_store.get_project("reg-pkg")) == ("From the file", "1.0")
        serial = await metadata_store.last_serial()

        assert await fill(metadata_store, capsys) == (
            "0 of 0 projects without a summary now have one\n"
        )
        assert await metadata_store.last_serial() == serial


class TestSQLiteSummariesFill(SQLiteFactory, SummariesFillContract):
    pass


class TestRedisSummariesFill(RedisFactory, SummariesFillContract):
    pass
