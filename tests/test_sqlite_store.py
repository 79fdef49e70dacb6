"""The SQLite store alone: its file, its schema and its thread, outside the contract.

What every store must do is in ``test_store_contract.py``; this is what only
the embedded store has: persistence of its file, schema versions and
migrations, the one worker thread, and its polls for other writers, timed
by the clock it was given.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_twisted
from recorder import Recorder
from store_records import SDIST_RECORD, make_record, make_user, sdist
from twisted.internet import reactor
from twisted.internet.task import Clock, deferLater

from ministry.core.audit import AuditEvent
from ministry.core.cooldown import CooldownException
from ministry.core.errors import SdistExists, StoreUnavailable
from ministry.core.models import FileRecord
from ministry.stores.sqlite import SQLiteStore, projects, schema
from ministry.stores.sqlite import store as sqlite_store
from ministry.stores.sqlite.schema import SCHEMA_VERSION

WHEN = datetime(2026, 12, 1, 12, 0, 0, 123456, tzinfo=UTC)


async def started(path: Path, clock: Clock | None = None) -> SQLiteStore:
    store = SQLiteStore(str(path), clock)
    await store.startService()
    return store


@pytest_twisted.ensureDeferred
async def test_sqlite_persists_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "ministry.sqlite"
    store = await started(path)
    await store.add_file(make_record(), "Demo_Pkg", b"\xffmetadata")
    project = await store.register("demo-pkg", "ignored", {"summary": ["kept"]})
    await store.stopService()

    store = await started(path)
    try:
        assert await store.last_serial() == 2
        assert await store.list_projects() == [project]
        assert await store.list_files("demo-pkg") == [make_record()]
        assert await store.get_metadata("demo-pkg", make_record().filename) == b"\xffmetadata"
        assert await store.add_file(SDIST_RECORD, "demo-pkg", None) is True
        assert await store.last_serial() == 3
    finally:
        await store.stopService()


def test_sqlite_constructor_touches_nothing(tmp_path: Path) -> None:
    SQLiteStore(str(tmp_path / "db" / "ministry.sqlite"))
    assert list(tmp_path.iterdir()) == []


@pytest_twisted.ensureDeferred
async def test_sqlite_records_its_schema_version_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "ministry.sqlite"
    store = await started(path)
    await store.stopService()
    with sqlite3.connect(path) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        journal = conn.execute("PRAGMA journal_mode").fetchone()
    assert version == (SCHEMA_VERSION,)
    assert journal == ("wal",)


@pytest_twisted.ensureDeferred
async def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "ministry.sqlite"
    await (await started(path)).stopService()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = 99 WHERE key = 'schema_version'")

    store = await started(path)
    try:
        with pytest.raises(StoreUnavailable, match="schema version 99"):
            await store.last_serial()
    finally:
        await store.stopService()


@pytest_twisted.ensureDeferred
async def test_sqlite_calls_fail_cleanly_when_stopped(tmp_path: Path) -> None:
    store = await started(tmp_path / "ministry.sqlite")
    await store.stopService()
    with pytest.raises(StoreUnavailable):
        await store.last_serial()


@pytest_twisted.ensureDeferred
async def test_sqlite_queued_work_finishes_before_stop(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "ministry.sqlite"))
    store.startService()  # not awaited, as MultiService does not
    added = store.add_file(make_record(), "demo-pkg", None)
    await store.stopService()
    assert await added is True


#: What migrating to each schema version added: (tables, columns of projects).
ADDED_BY: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {
    2: (("tombstones", "users", "tokens", "roles"), ()),
    3: ((), ("status", "status_reason")),
    4: (("audit",), ()),
    5: (("cooldown_exceptions", "cooldown_serials"), ()),
    6: (("team_members", "teams"), ()),
    7: (("sdist_releases",), ()),
    8: ((), ("summary", "summary_version")),
}


def rewind(path: Path, version: int) -> None:
    """Make the database as schema ``version`` left it, undoing every later migration."""
    assert max(ADDED_BY) == SCHEMA_VERSION, "a new migration needs its line in ADDED_BY"
    with sqlite3.connect(path) as conn:
        for later in range(version + 1, SCHEMA_VERSION + 1):
            tables, columns = ADDED_BY[later]
            for table in tables:
                conn.execute(f"DROP TABLE {table}")
            for column in columns:
                conn.execute(f"ALTER TABLE projects DROP COLUMN {column}")
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))


@pytest_twisted.ensureDeferred
async def test_sqlite_migrates_a_version_1_database(tmp_path: Path) -> None:
    """Indexes made before users and deletions existed open with their files intact."""
    path = tmp_path / "ministry.sqlite"
    store = await started(path)
    await store.add_file(make_record(), "demo-pkg", None)
    await store.stopService()
    rewind(path, 1)

    store = await started(path)
    try:
        assert await store.list_files("demo-pkg") == [make_record()]
        assert await store.add_user(make_user()) is True
        assert await store.delete_files("demo-pkg", [make_record().filename]) == [make_record()]
    finally:
        await store.stopService()
    with sqlite3.connect(path) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert version == (SCHEMA_VERSION,)


@pytest_twisted.ensureDeferred
async def test_sqlite_migrates_a_version_2_database_to_active_projects(tmp_path: Path) -> None:
    """Indexes made before project statuses (PEP 792) open with every project active."""
    path = tmp_path / "ministry.sqlite"
    store = await started(path)
    await store.add_file(make_record(), "demo-pkg", None)
    await store.stopService()
    rewind(path, 2)

    store = await started(path)
    try:
        project = await store.get_project("demo-pkg")
        assert (project.status, project.status_reason) == ("active", None)
        archived = await store.set_project_status("demo-pkg", "archived", "done")
        assert (archived.status, archived.status_reason) == ("archived", "done")
    finally:
        await store.stopService()


@pytest_twisted.ensureDeferred
async def test_sqlite_migrates_a_version_3_database_to_an_empty_audit_log(tmp_path: Path) -> None:
    """Indexes made before the audit log open with their files and an empty log."""
    path = tmp_path / "ministry.sqlite"
    store = await started(path)
    await store.add_file(make_record(), "demo-pkg", None)
    await store.stopService()
    rewind(path, 3)

    store = await started(path)
    try:
        assert await store.list_files("demo-pkg") == [make_record()]
        assert await store.list_audit() == []
        event = AuditEvent(WHEN, "alice", "192.0.2.7", "delete", "demo-pkg")
        await store.append_audit(event)
        assert await store.list_audit("demo-pkg") == [event]
    finally:
        await store.stopService()


@pytest_twisted.ensureDeferred
async def test_sqlite_migrates_a_version_4_database_to_no_cooldown_exceptions(
    tmp_path: Path,
) -> None:
    """Indexes made before cooldown exceptions open with none, and take one."""
    path = tmp_path / "ministry.sqlite"
    store = await started(path)
    await store.add_file(make_record(), "demo-pkg", None)
    await store.stopService()
    rewind(path, 4)

    store = await started(path)
    try:
        assert await store.cooldown_exceptions("demo-pkg") == []
        allowed = CooldownException("demo-pkg", "1.0", "fixes CVE", "alice", WHEN)
        await store.allow_cooldown(allowed)
        assert await store.cooldown_exceptions("demo-pkg") == [allowed]
    finally:
        await store.stopService()


@pytest_twisted.ensureDeferred
async def test_other_writers_are_looked_for_on_the_given_clock(tmp_path: Path) -> None:
    """``ministry-admin`` writes to the same file; the daemon hears of it at each poll."""
    path, clock = tmp_path / "ministry.sqlite", Clock()
    store, other = await started(path, clock), await started(path)
    recorder = Recorder()
    store.subscribe(recorder)
    try:
        await other.add_file(make_record(), "demo-pkg", None)
        await deferLater(reactor, 0.2, lambda: None)
        assert recorder.names == []  # the real reactor's time does not count
        clock.advance(sqlite_store.POLL_INTERVAL)
        for _ in range(100):  # the look runs on the store's thread
            if recorder.names:
                break
            await deferLater(reactor, 0.02, lambda: None)
        assert recorder.names == ["demo-pkg"]
    finally:
        await other.stopService()
        await store.stopService()


def claim_steps(path: Path, record: FileRecord) -> int:
    """The SQLite VM steps (in tens) :func:`projects.add_file` takes to claim ``record``."""
    conn = schema.connect(str(path))
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    try:
        conn.set_progress_handler(count, 10)
        projects.add_file(conn, record, record.project, None)
    finally:
        conn.close()
    return steps


def test_an_sdist_claim_costs_the_same_in_a_project_of_thousands_of_releases(
    tmp_path: Path,
) -> None:
    """One sdist per release is checked by key, not by reading the project's every sdist.

    An upload into a project of 1,000 releases did work proportional to its
    sdists (issue 17: uploads slowed from 88/s to 34/s while 5,000 releases
    were loaded); counted in SQLite's own steps, so the test is not timed.
    """
    paths = {releases: tmp_path / f"{releases}.sqlite" for releases in (1, 1000)}
    for releases, path in paths.items():
        conn = schema.connect(str(path))
        for n in range(releases):
            older = sdist(f"demo_pkg-1.{n}.tar.gz", f"1.{n}", f"{n:064x}")
            projects.add_file(conn, older, "demo-pkg", None)
        conn.close()
    newest = sdist("demo_pkg-9.0.tar.gz", "9.0", "f" * 64)
    assert claim_steps(paths[1000], newest) <= claim_steps(paths[1], newest) * 1.2


@pytest_twisted.ensureDeferred
async def test_sqlite_migrates_a_version_6_database_keeping_one_sdist_per_release(
    tmp_path: Path,
) -> None:
    """An sdist stored before the release index still keeps its release's second sdist out."""
    path = tmp_path / "ministry.sqlite"
    store = await started(path)
    await store.add_file(sdist("demo_pkg-7.0.tar.gz", "7.0"), "demo-pkg", None)
    await store.stopService()
    rewind(path, 6)

    store = await started(path)
    try:
        with pytest.raises(SdistExists):
            await store.add_file(sdist("demo_pkg-7.zip", "7", "f" * 64), "demo-pkg", None)
        assert await store.add_file(sdist("demo_pkg-8.zip", "8", "f" * 64), "demo-pkg", None)
    finally:
        await store.stopService()


def metadata(version: str, summary: str | None) -> bytes:
    lines = ["Metadata-Version: 2.1", "Name: demo-pkg", f"Version: {version}"]
    return "\n".join([*lines, *([f"Summary: {summary}"] if summary else [])]).encode() + b"\n"


@pytest_twisted.ensureDeferred
async def test_sqlite_migrates_a_version_7_database_filling_summaries_from_metadata(
    tmp_path: Path,
) -> None:
    """Projects stored before summaries get their latest release's from its stored metadata."""
    path = tmp_path / "ministry.sqlite"
    store = await started(path)
    for version, summary in [("1.0", "One"), ("2.0", "Two"), ("1.5", "A backport")]:
        record = make_record(f"demo_pkg-{version}-py3-none-any.whl", version=version)
        await store.add_file(record, "demo-pkg", metadata(version, summary))
    unread = make_record("demo_pkg-3.0-py3-none-any.whl", version="3.0")
    await store.add_file(unread, "demo-pkg", None)  # no metadata stored: no summary known
    await store.add_file(make_record(project="bare"), "bare", metadata("1.0", None))
    await store.add_file(make_record(project="odd"), "odd", b"\xff\xfe not metadata")
    await store.register("registered", "Registered", {"summary": ["Only registered"]})
    await store.stopService()
    rewind(path, 7)

    store = await started(path)
    try:
        summaries = {p.name: (p.summary, p.summary_version) for p in await store.list_projects()}
        assert summaries == {
            "demo-pkg": ("Two", "2.0"),
            "bare": ("", "1.0"),
            "odd": ("", "1.0"),
            "registered": ("Only registered", None),
        }
        newer = make_record("demo_pkg-2.1-py3-none-any.whl", version="2.1")
        await store.add_file(newer, "demo-pkg", None, "Newer")
        assert (await store.get_project("demo-pkg")).summary == "Newer"
    finally:
        await store.stopService()


@pytest_twisted.ensureDeferred
async def test_a_big_project_listed_again_parses_only_what_changed(tmp_path: Path) -> None:
    """After one upload into a project of 600 files, listing it parses one record, not 601.

    Every change drops the project's pages and the next page lists its files
    again (issue 17: most of a second per upload at 10,000 files). A yank
    and a deletion, made here or by another process, still show at once.
    """
    path = tmp_path / "ministry.sqlite"
    conn = schema.connect(str(path))
    for n in range(600):
        projects.add_file(conn, make_record(f"demo_pkg-1.{n}-py3-none-any.whl"), "demo-pkg", None)
    conn.close()
    store = await started(path)
    other = await started(path)  # another process: ministry-admin, say
    try:
        listed = await store.list_files("demo-pkg")
        parsed = store._parsed.parsed
        newest = make_record("demo_pkg-2.0-py3-none-any.whl", version="2.0")
        await store.add_file(newest, "demo-pkg", None)
        assert await store.list_files("demo-pkg") == [*listed, newest]
        assert store._parsed.parsed == parsed + 1

        await other.set_yanked("demo-pkg", [listed[0].filename], "broken")
        await other.delete_files("demo-pkg", [listed[1].filename])
        again = await store.list_files("demo-pkg")
        assert again[0] == listed[0].with_changes(yanked="broken")
        assert again[1:] == [*listed[2:], newest]
    finally:
        await other.stopService()
        await store.stopService()
