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
from twisted.internet.defer import DeferredList, maybeDeferred
from twisted.internet.task import deferLater
from twisted.logger import globalLogPublisher
from twisted.python import threadable
from zope.interface.verify import verifyObject

from ministry.core.errors import FileExists, FilenameReused, SdistExists, StoreUnavailable
from ministry.core.models import (
    MAINTAINER,
    OWNER,
    SDIST,
    WHEEL,
    FileRecord,
    TokenRecord,
    UserRecord,
)
from ministry.interfaces import IMetadataStore
from ministry.stores import sqlite as sqlite_module
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


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SQLite store looks for other processes' changes ten times as often here."""
    monkeypatch.setattr(sqlite_module, "POLL_INTERVAL", 0.1)


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
    versions = ["2.0", "1.0", "10.0", "1.5"]
    filenames = [f"demo_pkg-{version}.tar.gz" for version in versions]
    for index, (filename, version) in enumerate(zip(filenames, versions, strict=True)):
        record = SDIST_RECORD.with_changes(
            filename=filename, version=version, sha256=f"{index:064x}"
        )
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


# -- yanking and deleting --------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_yank_and_unyank_change_records_and_serials(metadata_store: IMetadataStore) -> None:
    await metadata_store.add_file(make_record(), "demo-pkg", b"m")
    await metadata_store.add_file(SDIST_RECORD, "demo-pkg", None)
    recorder = Recorder()
    metadata_store.subscribe(recorder)
    filenames = [make_record().filename, SDIST_RECORD.filename]

    changed = await metadata_store.set_yanked("demo-pkg", [*filenames, "nope-1.0.tar.gz"], "bad")
    assert sorted(changed) == sorted(filenames)
    assert [r.yanked for r in await metadata_store.list_files("demo-pkg")] == ["bad", "bad"]
    assert await metadata_store.get_file("demo-pkg", SDIST_RECORD.filename) == (
        SDIST_RECORD.with_changes(yanked="bad")
    )
    assert await metadata_store.get_metadata("demo-pkg", make_record().filename) == b"m"
    assert (await metadata_store.get_project("demo-pkg")).serial == 3
    assert await metadata_store.last_serial() == 3
    assert recorder.names == ["demo-pkg"]

    # The same state again changes nothing and bumps nothing.
    assert await metadata_store.set_yanked("demo-pkg", filenames, "bad") == []
    assert await metadata_store.last_serial() == 3
    # Another reason is a change; "" (yanked, no reason) differs from None.
    assert await metadata_store.set_yanked("demo-pkg", filenames[:1], "") == filenames[:1]
    assert (await metadata_store.get_file("demo-pkg", filenames[0])).yanked == ""
    assert await metadata_store.set_yanked("demo-pkg", filenames, None) == filenames
    assert await metadata_store.list_files("demo-pkg") == [make_record(), SDIST_RECORD]
    assert await metadata_store.last_serial() == 5
    assert recorder.names == ["demo-pkg"] * 3


@pytest_twisted.ensureDeferred
async def test_yank_keeps_unicode_and_unknown_projects_are_no_ops(
    metadata_store: IMetadataStore,
) -> None:
    record = make_record(filename="Ünïcode_pkg-1.0-py3-none-any.whl", project="ünïcode-pkg")
    await metadata_store.add_file(record, "Ünïcode", None)
    assert await metadata_store.set_yanked(record.project, [record.filename], "café ✓") == [
        record.filename
    ]
    assert await metadata_store.get_file(record.project, record.filename) == record.with_changes(
        yanked="café ✓"
    )
    assert await metadata_store.set_yanked("nope", [record.filename], "x") == []
    assert await metadata_store.delete_files("nope", [record.filename]) == []
    assert await metadata_store.last_serial() == 2


@pytest_twisted.ensureDeferred
async def test_delete_removes_files_and_keeps_the_rest_in_order(
    metadata_store: IMetadataStore,
) -> None:
    records = [
        SDIST_RECORD.with_changes(filename=f"demo_pkg-{v}.tar.gz", sha256=f"{i:064x}", version=v)
        for i, v in enumerate(["1.0", "2.0", "3.0"])
    ]
    for record in records:
        await metadata_store.add_file(record, "demo-pkg", b"meta " + record.filename.encode())
    recorder = Recorder()
    metadata_store.subscribe(recorder)

    removed = await metadata_store.delete_files("demo-pkg", [records[1].filename, "nope.tar.gz"])
    assert removed == [records[1]]
    assert await metadata_store.list_files("demo-pkg") == [records[0], records[2]]
    assert await metadata_store.get_file("demo-pkg", records[1].filename) is None
    assert await metadata_store.get_metadata("demo-pkg", records[1].filename) is None
    assert (await metadata_store.get_project("demo-pkg")).serial == 4
    assert recorder.names == ["demo-pkg"]

    assert await metadata_store.delete_files("demo-pkg", [records[1].filename]) == []
    assert await metadata_store.last_serial() == 4
    assert recorder.names == ["demo-pkg"]

    # Deleting every file leaves the project (and its owners) in place.
    assert len(await metadata_store.delete_files("demo-pkg", [r.filename for r in records])) == 2
    assert await metadata_store.list_files("demo-pkg") == []
    assert (await metadata_store.get_project("demo-pkg")).serial == 5


@pytest.mark.parametrize("same_bytes", [True, False], ids=["same-bytes", "other-bytes"])
@pytest_twisted.ensureDeferred
async def test_a_deleted_filename_is_never_reused(
    metadata_store: IMetadataStore, same_bytes: bool
) -> None:
    await metadata_store.add_file(make_record(), "demo-pkg", None)
    await metadata_store.delete_files("demo-pkg", [make_record().filename])
    again = make_record() if same_bytes else make_record(sha256="f" * 64)

    with pytest.raises(FilenameReused) as caught:
        await metadata_store.add_file(again, "demo-pkg", None)
    assert caught.value.status == 400
    assert caught.value.message.startswith("This filename has already been used")
    assert await metadata_store.list_files("demo-pkg") == []
    assert await metadata_store.last_serial() == 2
    # The same filename in another project is another file.
    assert await metadata_store.add_file(again.with_changes(project="other"), "other", None)


# -- one sdist per release ----------------------------------------------------------


def sdist(filename: str, version: str, sha256: str = "e" * 64) -> FileRecord:
    return SDIST_RECORD.with_changes(filename=filename, version=version, sha256=sha256)


FIRST_SDIST = sdist("demo_pkg-7.0.tar.gz", "7.0")


@pytest.mark.parametrize(
    ("filename", "version"),
    [
        pytest.param("demo_pkg-7.0.zip", "7.0", id="another extension"),
        pytest.param("demo_pkg-7.0.0.tar.gz", "7.0.0", id="a version with a trailing zero"),
        pytest.param("Demo_Pkg-7.0.tar.gz", "7.0", id="a capitalised name"),
        pytest.param("demo-pkg-7.tar.gz", "7", id="a dashed name and a shorter version"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_release_holds_one_sdist(
    metadata_store: IMetadataStore, filename: str, version: str
) -> None:
    await metadata_store.add_file(FIRST_SDIST, "demo-pkg", b"first")

    with pytest.raises(SdistExists) as caught:
        await metadata_store.add_file(sdist(filename, version, "f" * 64), "demo-pkg", b"second")
    assert caught.value.status == 400
    assert caught.value.message.startswith("Only one sdist may be uploaded per release")
    assert FIRST_SDIST.filename in caught.value.message and filename in caught.value.message
    assert "already exist" not in caught.value.message  # twine --skip-existing would skip it
    assert await metadata_store.list_files("demo-pkg") == [FIRST_SDIST]
    assert await metadata_store.last_serial() == 1
    # The very same file again is still a no-op, not a second sdist.
    assert await metadata_store.add_file(FIRST_SDIST, "demo-pkg", b"first") is False


@pytest_twisted.ensureDeferred
async def test_one_sdist_per_release_leaves_wheels_and_other_releases_alone(
    metadata_store: IMetadataStore,
) -> None:
    others = [
        make_record(filename="demo_pkg-7.0-py3-none-any.whl", version="7.0"),
        sdist("demo_pkg-7.0.1.tar.gz", "7.0.1", "1" * 64),
        sdist("demo_pkg-7.0.post1.tar.gz", "7.0.post1", "2" * 64),
        sdist("demo_pkg-7.0.tar.gz", "7.0", "3" * 64).with_changes(project="other"),
    ]
    await metadata_store.add_file(FIRST_SDIST, "demo-pkg", None)
    for record in others:
        assert await metadata_store.add_file(record, record.project, None) is True
    assert await metadata_store.list_files("demo-pkg") == [FIRST_SDIST, *others[:3]]


@pytest_twisted.ensureDeferred
async def test_deleting_a_release_sdist_makes_room_for_another(
    metadata_store: IMetadataStore,
) -> None:
    await metadata_store.add_file(FIRST_SDIST, "demo-pkg", None)
    await metadata_store.delete_files("demo-pkg", [FIRST_SDIST.filename])
    replacement = sdist("demo_pkg-7.0.0.tar.gz", "7.0.0", "f" * 64)
    assert await metadata_store.add_file(replacement, "demo-pkg", None) is True

    with pytest.raises(SdistExists) as caught:
        await metadata_store.add_file(sdist("demo_pkg-7.zip", "7", "1" * 64), "demo-pkg", None)
    assert replacement.filename in caught.value.message
    assert await metadata_store.list_files("demo-pkg") == [replacement]


@pytest_twisted.ensureDeferred
async def test_concurrent_sdists_of_one_release_have_one_winner(
    metadata_store: IMetadataStore, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Claims sent at once, half through a second instance (another process), race."""
    other = request.node.callspec.params["metadata_store"](tmp_path)  # same data, own instance
    await maybeDeferred(other.startService)
    candidates = [
        sdist(filename, version, f"{i:064x}")
        for i, (filename, version) in enumerate(
            [("demo_pkg-7.0.tar.gz", "7.0"), ("demo_pkg-7.0.0.tar.gz", "7.0.0")] * 2
        )
    ]
    try:
        outcomes = await DeferredList(
            [
                store.add_file(record, "demo-pkg", None)
                for record, store in zip(candidates, [metadata_store, other] * 2, strict=True)
            ],
            consumeErrors=True,
        )
    finally:
        await maybeDeferred(other.stopService)
    won = [record for record, (ok, added) in zip(candidates, outcomes, strict=True) if ok and added]
    assert len(won) == 1
    for ok, result in outcomes:
        assert ok or result.check(SdistExists, FileExists), result
    assert await metadata_store.list_files("demo-pkg") == won
    assert await metadata_store.last_serial() == 1


@pytest_twisted.ensureDeferred
async def test_blob_keys_name_the_bytes_of_every_record(metadata_store: IMetadataStore) -> None:
    """What the collector of unclaimed bytes trusts: a key missing here may be removed."""
    assert await metadata_store.blob_keys() == set()
    other = make_record(project="other", sha256="f" * 64)
    for record in (make_record(), SDIST_RECORD, other):
        await metadata_store.add_file(record, record.project, None)
    with pytest.raises(FileExists):  # a refused claim names no bytes
        await metadata_store.add_file(make_record(sha256="9" * 64), "demo-pkg", None)
    keys = {make_record().blob_key, SDIST_RECORD.blob_key, other.blob_key}
    assert await metadata_store.blob_keys() == keys

    await metadata_store.delete_files("demo-pkg", [SDIST_RECORD.filename])
    assert await metadata_store.blob_keys() == keys - {SDIST_RECORD.blob_key}


@pytest_twisted.ensureDeferred
async def test_blob_keys_cover_more_projects_than_one_read_returns(
    metadata_store: IMetadataStore,
) -> None:
    records = [make_record(project=f"p{i:03d}", sha256=f"{i:064x}") for i in range(230)]
    for record in records:
        await metadata_store.add_file(record, record.project, None)
    assert await metadata_store.blob_keys() == {record.blob_key for record in records}


@pytest_twisted.ensureDeferred
async def test_changes_by_another_process_reach_subscribers(
    metadata_store: IMetadataStore, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """``ministry-admin`` yanks through its own store: the daemon's pages must hear of it."""
    other = request.node.callspec.params["metadata_store"](tmp_path)  # same data, own instance
    await maybeDeferred(other.startService)
    recorder = Recorder()
    metadata_store.subscribe(recorder)
    try:
        await other.add_file(make_record(), "demo-pkg", None)
        await until(lambda: recorder.names == ["demo-pkg"])
        await other.set_yanked("demo-pkg", [make_record().filename], "broken")
        await until(lambda: recorder.names == ["demo-pkg"] * 2)
        await other.delete_files("demo-pkg", [make_record().filename])
        await until(lambda: recorder.names == ["demo-pkg"] * 3)
        # And a change made here is announced once, not again when seen from outside.
        await metadata_store.add_file(SDIST_RECORD, "demo-pkg", None)
        await deferLater(reactor, 0.5, lambda: None)
        assert recorder.names == ["demo-pkg"] * 4
    finally:
        await maybeDeferred(other.stopService)


async def until(condition: Any, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await deferLater(reactor, 0.05, lambda: None)
    assert condition()


# -- users, tokens and roles -----------------------------------------------------

CREATED = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def make_user(name: str = "alice", admin: bool = False) -> UserRecord:
    return UserRecord(name, f"scrypt$hash-of-{name}", admin, CREATED)


def make_token(token_id: str, username: str = "alice", *projects: str) -> TokenRecord:
    return TokenRecord(token_id, username, f"digest-{token_id}", tuple(projects), CREATED)


@pytest_twisted.ensureDeferred
async def test_users_are_added_listed_and_changed(metadata_store: IMetadataStore) -> None:
    assert await metadata_store.list_users() == []
    assert await metadata_store.add_user(make_user("bob", admin=True)) is True
    assert await metadata_store.add_user(make_user("alice")) is True
    assert await metadata_store.add_user(make_user("alice", admin=True)) is False

    assert await metadata_store.get_user("alice") == make_user("alice")
    assert await metadata_store.get_user("Alice") is None  # names are case-sensitive
    assert await metadata_store.list_users() == [make_user("alice"), make_user("bob", True)]

    assert await metadata_store.set_password("alice", "scrypt$new") is True
    assert await metadata_store.get_user("alice") == UserRecord(
        "alice", "scrypt$new", False, CREATED
    )
    assert await metadata_store.set_password("carol", "scrypt$new") is False
    assert await metadata_store.last_serial() == 0  # users are not part of the index


@pytest_twisted.ensureDeferred
async def test_tokens_are_added_listed_and_revoked(metadata_store: IMetadataStore) -> None:
    await metadata_store.add_user(make_user("alice"))
    await metadata_store.add_user(make_user("bob"))
    first = make_token("00000000000000a1", "alice")
    limited = make_token("00000000000000a2", "alice", "demo-pkg", "other")
    bobs = make_token("00000000000000b1", "bob")
    for token in (first, limited, bobs):
        assert await metadata_store.add_token(token) is True
    assert await metadata_store.add_token(make_token("00000000000000c1", "carol")) is False

    assert await metadata_store.get_token(limited.id) == limited
    assert (await metadata_store.get_token(limited.id)).projects == ("demo-pkg", "other")
    assert await metadata_store.get_token("00000000000000c1") is None
    assert await metadata_store.list_tokens() == [first, limited, bobs]
    assert await metadata_store.list_tokens("alice") == [first, limited]

    assert await metadata_store.revoke_token(first.id) is True
    assert await metadata_store.revoke_token(first.id) is False
    assert await metadata_store.get_token(first.id) is None
    assert await metadata_store.list_tokens("alice") == [limited]


@pytest_twisted.ensureDeferred
async def test_roles_are_claimed_once_and_kept_both_ways(metadata_store: IMetadataStore) -> None:
    assert await metadata_store.get_roles("demo-pkg") == {}
    assert await metadata_store.claim_project("demo-pkg", "alice") == {"alice": OWNER}
    assert await metadata_store.claim_project("demo-pkg", "bob") == {"alice": OWNER}

    await metadata_store.set_role("demo-pkg", "bob", MAINTAINER)
    await metadata_store.set_role("other", "bob", OWNER)
    assert await metadata_store.get_roles("demo-pkg") == {"alice": OWNER, "bob": MAINTAINER}
    assert await metadata_store.user_roles("bob") == {"demo-pkg": MAINTAINER, "other": OWNER}

    await metadata_store.set_role("demo-pkg", "bob", OWNER)
    await metadata_store.set_role("demo-pkg", "alice", None)
    assert await metadata_store.get_roles("demo-pkg") == {"bob": OWNER}
    assert await metadata_store.user_roles("alice") == {}
    with pytest.raises(ValueError):
        await metadata_store.set_role("demo-pkg", "alice", "emperor")
    assert await metadata_store.last_serial() == 0


@pytest_twisted.ensureDeferred
async def test_removing_a_user_removes_their_tokens_and_roles(
    metadata_store: IMetadataStore,
) -> None:
    for name in ("alice", "bob"):
        await metadata_store.add_user(make_user(name))
        await metadata_store.add_token(make_token(f"00000000000000{name[:2].encode().hex()}", name))
    await metadata_store.claim_project("demo-pkg", "alice")
    await metadata_store.set_role("demo-pkg", "bob", MAINTAINER)
    await metadata_store.set_role("other", "alice", MAINTAINER)

    assert await metadata_store.remove_user("alice") is True
    assert await metadata_store.remove_user("alice") is False
    assert await metadata_store.get_user("alice") is None
    assert [t.username for t in await metadata_store.list_tokens()] == ["bob"]
    assert await metadata_store.get_roles("demo-pkg") == {"bob": MAINTAINER}
    assert await metadata_store.get_roles("other") == {}
    assert await metadata_store.user_roles("alice") == {}
    # A new user of the same name starts with nothing.
    assert await metadata_store.add_user(make_user("alice")) is True
    assert await metadata_store.list_tokens("alice") == []


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


@pytest_twisted.ensureDeferred
async def test_sqlite_migrates_a_version_1_database(tmp_path: Path) -> None:
    """Indexes made before users and deletions existed open with their files intact."""
    path = tmp_path / "ministry.sqlite"
    store = await started(path)
    await store.add_file(make_record(), "demo-pkg", None)
    await store.stopService()
    with sqlite3.connect(path) as conn:  # back to how version 1 left it
        for table in ("tombstones", "users", "tokens", "roles"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("UPDATE meta SET value = 1 WHERE key = 'schema_version'")

    store = await started(path)
    try:
        assert await store.list_files("demo-pkg") == [make_record()]
        assert await store.add_user(make_user()) is True
        assert await store.delete_files("demo-pkg", [make_record().filename]) == [make_record()]
    finally:
        await store.stopService()
    with sqlite3.connect(path) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert version == (SCHEMA_VERSION,) == (2,)
