"""The one behaviour every IMetadataStore must have, run against each of them.

The design promises that nothing depends on which store is configured; this
suite is where that promise is kept. Every test takes the ``metadata_store``
fixture, which is parametrized over :data:`STORE_FACTORIES`, so each test
runs once per implementation and an implementation passes only if it
behaves identically.

Adding an implementation (say Redis) is two edits here:

1. write a factory ``def redis_store(tmp_path) -> IMetadataStore`` that
   returns the store *unstarted* and isolated from other tests (a fresh key
   prefix or database), calling ``pytest.skip`` if its server is absent;
2. add ``pytest.param(redis_store, id="redis")`` to :data:`STORE_FACTORIES`.

The fixture starts the store (``startService``), hands it to the test and
stops it afterwards; a store whose ``startService`` returns a Deferred is
awaited. Tests specific to one implementation (persistence of the SQLite
file, schema versions) live at the bottom, outside the contract.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from reactor_hygiene import assert_reactor_clean
from twisted.internet import reactor
from twisted.internet.defer import maybeDeferred
from twisted.internet.task import deferLater
from twisted.logger import globalLogPublisher
from twisted.python import threadable
from zope.interface.verify import verifyObject

from ministry.core.errors import FileExists, StoreUnavailable
from ministry.core.models import SDIST, WHEEL, FileRecord
from ministry.interfaces import IMetadataStore
from ministry.stores.sqlite import SCHEMA_VERSION, SQLiteStore


def sqlite_store(tmp_path: Path) -> IMetadataStore:
    return SQLiteStore(str(tmp_path / "db" / "ministry.sqlite"))


def redis_store(tmp_path: Path) -> IMetadataStore:
    """The session's redis-server (tests/redis_server.py); a key prefix per test."""
    from redis_server import find_redis_server, shared_server

    from ministry.stores.redis import RedisStore

    if find_redis_server() is None:
        pytest.skip("redis-server is not installed (test_redis_store.py fails for it)")
    return RedisStore(shared_server().url, prefix=f"contract:{tmp_path.name}:")


STORE_FACTORIES = [
    pytest.param(sqlite_store, id="sqlite"),
    pytest.param(redis_store, id="redis"),
]


@pytest.fixture(autouse=True)
def reactor_is_left_clean() -> Iterator[None]:
    """Fail a test that leaves timers or sockets behind (see reactor_hygiene)."""
    yield
    pytest_twisted.blockon(deferLater(reactor, 0, lambda: None))
    assert_reactor_clean()


@pytest_twisted.async_yield_fixture(params=STORE_FACTORIES)
async def metadata_store(request: pytest.FixtureRequest, tmp_path: Path):
    store = request.param(tmp_path)
    await maybeDeferred(store.startService)
    yield store
    await maybeDeferred(store.stopService)


def make_record(
    filename: str = "demo_pkg-1.0-py3-none-any.whl",
    project: str = "demo-pkg",
    sha256: str = "a" * 64,
    **changes: Any,
) -> FileRecord:
    """A complete record; every field set so round-trips test all of them."""
    values: dict[str, Any] = {
        "project": project,
        "filename": filename,
        "version": "1.0",
        "packagetype": WHEEL,
        "size": 1234,
        "sha256": sha256,
        "blake2b_256": "b" * 64,
        "md5": "c" * 32,
        "upload_time": datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        "requires_python": ">=3.9",
        "python_version": "py3",
        "metadata_sha256": "d" * 64,
        "yanked": None,
        "origin": "upload",
    }
    values.update(changes)
    return FileRecord(**values)


SDIST_RECORD = make_record(
    filename="demo_pkg-1.0.tar.gz",
    sha256="e" * 64,
    packagetype=SDIST,
    python_version="source",
    requires_python=None,
    metadata_sha256=None,
)


class Recorder:
    """A subscriber that remembers what it was told, and on which thread."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.on_reactor_thread: list[bool] = []

    def __call__(self, name: str) -> None:
        self.names.append(name)
        self.on_reactor_thread.append(threadable.isInIOThread())


# -- the contract --------------------------------------------------------------


def test_provides_the_interface(metadata_store: IMetadataStore) -> None:
    assert verifyObject(IMetadataStore, metadata_store)


@pytest_twisted.ensureDeferred
async def test_empty_store(metadata_store: IMetadataStore) -> None:
    assert await metadata_store.last_serial() == 0
    assert await metadata_store.list_projects() == []
    assert await metadata_store.get_project("demo-pkg") is None
    assert await metadata_store.list_files("demo-pkg") == []


@pytest_twisted.ensureDeferred
async def test_add_file_creates_the_project(metadata_store: IMetadataStore) -> None:
    record = make_record()
    assert await metadata_store.add_file(record, "Demo_Pkg", b"Metadata-Version: 2.1\n") is True

    project = await metadata_store.get_project("demo-pkg")
    assert project.name == "demo-pkg"
    assert project.display_name == "Demo_Pkg"
    assert project.info == {}
    assert project.created.tzinfo is not None
    assert project.serial == await metadata_store.last_serial() == 1
    assert await metadata_store.list_projects() == [project]
    assert await metadata_store.list_files("demo-pkg") == [record]


@pytest_twisted.ensureDeferred
async def test_second_file_joins_the_project(metadata_store: IMetadataStore) -> None:
    await metadata_store.add_file(make_record(), "Demo_Pkg", None)
    assert await metadata_store.add_file(SDIST_RECORD, "demo.pkg", None) is True

    project = await metadata_store.get_project("demo-pkg")
    assert project.display_name == "Demo_Pkg"  # the first one stays
    assert project.serial == 2
    assert [p.name for p in await metadata_store.list_projects()] == ["demo-pkg"]
    assert await metadata_store.list_files("demo-pkg") == [make_record(), SDIST_RECORD]


@pytest_twisted.ensureDeferred
async def test_same_filename_same_bytes_is_a_no_op(metadata_store: IMetadataStore) -> None:
    await metadata_store.add_file(make_record(), "demo-pkg", b"original")
    project = await metadata_store.get_project("demo-pkg")

    again = make_record(upload_time=datetime(2030, 1, 1, tzinfo=UTC))
    assert await metadata_store.add_file(again, "Other", b"other") is False

    assert await metadata_store.last_serial() == 1
    assert await metadata_store.get_project("demo-pkg") == project
    assert await metadata_store.get_file("demo-pkg", again.filename) == make_record()
    assert await metadata_store.get_metadata("demo-pkg", again.filename) == b"original"


@pytest_twisted.ensureDeferred
async def test_same_filename_other_bytes_is_refused(metadata_store: IMetadataStore) -> None:
    await metadata_store.add_file(make_record(), "demo-pkg", b"original")
    project = await metadata_store.get_project("demo-pkg")

    with pytest.raises(FileExists) as caught:
        await metadata_store.add_file(make_record(sha256="f" * 64), "demo-pkg", b"other")

    assert caught.value.status == 409
    assert caught.value.message.startswith("File already exists")  # what twine looks for
    assert make_record().filename in caught.value.message
    assert await metadata_store.last_serial() == 1
    assert await metadata_store.get_project("demo-pkg") == project
    assert await metadata_store.list_files("demo-pkg") == [make_record()]
    assert await metadata_store.get_metadata("demo-pkg", make_record().filename) == b"original"


@pytest_twisted.ensureDeferred
async def test_same_filename_in_another_project_is_independent(
    metadata_store: IMetadataStore,
) -> None:
    await metadata_store.add_file(make_record(), "demo-pkg", None)
    other = make_record(project="other", sha256="f" * 64)
    assert await metadata_store.add_file(other, "other", None) is True
    assert await metadata_store.get_file("other", other.filename) == other


@pytest_twisted.ensureDeferred
async def test_serials_increase_and_projects_keep_their_last(
    metadata_store: IMetadataStore,
) -> None:
    await metadata_store.add_file(make_record(project="alpha"), "alpha", None)
    await metadata_store.add_file(make_record(project="beta"), "beta", None)
    await metadata_store.add_file(SDIST_RECORD.with_changes(project="alpha"), "alpha", None)
    await metadata_store.register("gamma", "Gamma", {})

    assert await metadata_store.last_serial() == 4
    serials = {p.name: p.serial for p in await metadata_store.list_projects()}
    assert serials == {"alpha": 3, "beta": 2, "gamma": 4}


@pytest_twisted.ensureDeferred
async def test_projects_are_listed_by_canonical_name(metadata_store: IMetadataStore) -> None:
    for name in ["zeta", "alpha", "mid-name"]:
        await metadata_store.add_file(make_record(project=name), name.upper(), None)
    names = [p.name for p in await metadata_store.list_projects()]
    assert names == ["alpha", "mid-name", "zeta"]


@pytest_twisted.ensureDeferred
async def test_files_are_listed_in_upload_order(metadata_store: IMetadataStore) -> None:
    filenames = [f"demo_pkg-{version}.tar.gz" for version in ["2.0", "1.0", "10.0", "1.5"]]
    for index, filename in enumerate(filenames):
        record = SDIST_RECORD.with_changes(filename=filename, sha256=f"{index:064x}")
        await metadata_store.add_file(record, "demo-pkg", None)
    listed = await metadata_store.list_files("demo-pkg")
    assert [r.filename for r in listed] == filenames


@pytest_twisted.ensureDeferred
async def test_missing_things_are_none(metadata_store: IMetadataStore) -> None:
    await metadata_store.add_file(make_record(), "demo-pkg", b"x")
    assert await metadata_store.get_file("demo-pkg", "nope-1.0.tar.gz") is None
    assert await metadata_store.get_file("nope", make_record().filename) is None
    assert await metadata_store.get_metadata("demo-pkg", "nope-1.0.tar.gz") is None
    assert await metadata_store.get_metadata("nope", make_record().filename) is None
    assert await metadata_store.list_files("nope") == []
    assert await metadata_store.get_project("nope") is None


@pytest_twisted.ensureDeferred
async def test_file_stored_without_metadata(metadata_store: IMetadataStore) -> None:
    await metadata_store.add_file(SDIST_RECORD, "demo-pkg", None)
    assert await metadata_store.get_metadata("demo-pkg", SDIST_RECORD.filename) is None


@pytest.mark.parametrize(
    "metadata",
    [
        b"Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n\n",
        b"Summary: caf\xe9 \xff\xfe\x00 and \r\n line ends\r\n",  # not UTF-8, NUL inside
        b"",
        bytes(range(256)) * 400,  # large and every byte value
    ],
    ids=["text", "not-utf8", "empty", "large"],
)
@pytest_twisted.ensureDeferred
async def test_metadata_bytes_round_trip_exactly(
    metadata_store: IMetadataStore, metadata: bytes
) -> None:
    await metadata_store.add_file(make_record(), "demo-pkg", metadata)
    stored = await metadata_store.get_metadata("demo-pkg", make_record().filename)
    assert type(stored) is bytes
    assert stored == metadata


@pytest.mark.parametrize(
    "record",
    [
        make_record(),
        SDIST_RECORD,
        make_record(yanked=""),
        make_record(yanked="broken build"),
        make_record(origin="mirror", upload_time=datetime(1999, 12, 31, 23, 59, 59, 1, UTC)),
        make_record(filename="Ünïcode_pkg-1.0-py3-none-any.whl", project="ünïcode-pkg"),
    ],
    ids=["wheel", "sdist", "yanked-no-reason", "yanked-reason", "mirror-microsecond", "unicode"],
)
@pytest_twisted.ensureDeferred
async def test_file_record_round_trips(metadata_store: IMetadataStore, record: FileRecord) -> None:
    await metadata_store.add_file(record, record.project, None)
    stored = await metadata_store.get_file(record.project, record.filename)
    assert stored == record
    assert stored.yanked == record.yanked  # "" and None are different states
    assert stored.upload_time.microsecond == record.upload_time.microsecond
    assert await metadata_store.list_files(record.project) == [record]


@pytest_twisted.ensureDeferred
async def test_register_creates_then_updates(metadata_store: IMetadataStore) -> None:
    info = {"summary": ["A demo"], "classifiers": ["A :: B", "C :: D"]}
    created = await metadata_store.register("demo-pkg", "Demo_Pkg", info)
    assert created.name == "demo-pkg"
    assert created.display_name == "Demo_Pkg"
    assert created.info == info
    assert created.serial == 1
    assert await metadata_store.get_project("demo-pkg") == created

    newer = {"summary": ["Replaced"]}
    updated = await metadata_store.register("demo-pkg", "DEMO-PKG", newer)
    assert updated.info == newer  # replaced, not merged
    assert updated.display_name == "Demo_Pkg"
    assert updated.created == created.created
    assert updated.serial == 2 == await metadata_store.last_serial()
    assert await metadata_store.get_project("demo-pkg") == updated


@pytest_twisted.ensureDeferred
async def test_register_keeps_files_and_add_file_keeps_info(
    metadata_store: IMetadataStore,
) -> None:
    info = {"summary": ["A demo"]}
    await metadata_store.register("demo-pkg", "Demo_Pkg", info)
    await metadata_store.add_file(make_record(), "other-display", None)
    project = await metadata_store.get_project("demo-pkg")
    assert (project.info, project.display_name, project.serial) == (info, "Demo_Pkg", 2)

    await metadata_store.register("demo-pkg", "Demo_Pkg", {})
    assert await metadata_store.list_files("demo-pkg") == [make_record()]


@pytest_twisted.ensureDeferred
async def test_subscribers_hear_of_every_change(metadata_store: IMetadataStore) -> None:
    first, second = Recorder(), Recorder()
    metadata_store.subscribe(first)
    metadata_store.subscribe(second)

    await metadata_store.add_file(make_record(), "Demo_Pkg", None)
    await metadata_store.register("other", "Other", {})
    assert first.names == second.names == ["demo-pkg", "other"]
    assert all(first.on_reactor_thread)


@pytest_twisted.ensureDeferred
async def test_subscribers_do_not_hear_of_no_ops_or_refusals(
    metadata_store: IMetadataStore,
) -> None:
    await metadata_store.add_file(make_record(), "demo-pkg", None)
    recorder = Recorder()
    metadata_store.subscribe(recorder)

    assert await metadata_store.add_file(make_record(), "demo-pkg", None) is False
    with pytest.raises(FileExists):
        await metadata_store.add_file(make_record(sha256="f" * 64), "demo-pkg", None)
    assert recorder.names == []


@pytest_twisted.ensureDeferred
async def test_subscribers_run_before_the_caller_hears(metadata_store: IMetadataStore) -> None:
    """A page cache must be dropped before the uploader is told it worked."""
    recorder = Recorder()
    metadata_store.subscribe(recorder)

    seen_by_caller = await metadata_store.add_file(make_record(), "demo-pkg", None).addCallback(
        lambda _: list(recorder.names)
    )
    assert seen_by_caller == ["demo-pkg"]

    seen_by_caller = await metadata_store.register("demo-pkg", "demo-pkg", {}).addCallback(
        lambda _: list(recorder.names)
    )
    assert seen_by_caller == ["demo-pkg", "demo-pkg"]


@pytest_twisted.ensureDeferred
async def test_a_failing_subscriber_breaks_nothing(metadata_store: IMetadataStore) -> None:
    def broken(name: str) -> None:
        raise RuntimeError(f"subscriber bug for {name}")

    logged: list[dict] = []
    recorder = Recorder()
    metadata_store.subscribe(broken)
    metadata_store.subscribe(recorder)
    globalLogPublisher.addObserver(logged.append)
    try:
        assert await metadata_store.add_file(make_record(), "demo-pkg", None) is True
        assert (await metadata_store.register("demo-pkg", "x", {})).name == "demo-pkg"
    finally:
        globalLogPublisher.removeObserver(logged.append)

    assert recorder.names == ["demo-pkg", "demo-pkg"]
    failures = [event["log_failure"] for event in logged if "log_failure" in event]
    assert len(failures) == 2
    assert all(f.check(RuntimeError) for f in failures)
    assert await metadata_store.last_serial() == 2
    assert await metadata_store.add_file(SDIST_RECORD, "demo-pkg", None) is True


# -- the SQLite store alone ------------------------------------------------------


async def started(path: Path) -> SQLiteStore:
    store = SQLiteStore(str(path))
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
