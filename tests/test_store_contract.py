"""The one behaviour every IMetadataStore (and its lease) must have, run against each.

The design promises that nothing depends on which store is configured; this
suite is where that promise is kept. The tests are written once, in mixins
(:class:`MetadataStoreContract`, :class:`LeaseContract`), and each
``Test...`` class at the bottom runs them against one implementation, so an
implementation passes only if it behaves identically.

Adding an implementation is one class here: mix the contracts with a
``make_store(self, tmp_path, clock=None)`` that returns the store
*unstarted* and isolated from other tests (a fresh key prefix or
database), calling ``pytest.skip`` if its server is absent. Two calls with
one ``tmp_path`` must give two instances over the same data, as two
processes would have. ``clock`` is the ``task.Clock`` the lease tests
advance; a store whose leases expire on its server's clock ignores it and
sets ``server_clock``.

The fixtures start the store (``startService``), hand it to the test and
stop it afterwards; a store whose ``startService`` returns a Deferred is
awaited. Tests of one implementation alone live in its own file
(``test_sqlite_store.py``, ``test_redis_store.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from recorder import Recorder
from store_records import (
    CREATED,
    SDIST_RECORD,
    make_record,
    make_token,
    make_user,
    sdist,
)
from twisted.internet import reactor
from twisted.internet.defer import DeferredList, maybeDeferred
from twisted.internet.task import Clock, deferLater
from zope.interface.verify import verifyObject

from ministry.core.errors import FileExists, FilenameReused, SdistExists
from ministry.core.models import MAINTAINER, OWNER, FileRecord, ProjectRecord, UserRecord
from ministry.interfaces import ILease, IMetadataStore
from ministry.stores.sqlite import SQLiteStore
from ministry.stores.sqlite import store as sqlite_store
from ministry.stores.timed import TimedStore


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SQLite store looks for other processes' changes ten times as often here."""
    monkeypatch.setattr(sqlite_store, "POLL_INTERVAL", 0.1)


@asynccontextmanager
async def running(store: Any) -> AsyncIterator[Any]:
    """``store`` started (a Deferred awaited, if it returns one), then stopped."""
    await maybeDeferred(store.startService)
    try:
        yield store
    finally:
        await maybeDeferred(store.stopService)


@pytest_twisted.async_yield_fixture
async def metadata_store(request: pytest.FixtureRequest, tmp_path: Path):
    """The test class's store, started, on the real reactor."""
    async with running(request.instance.make_store(tmp_path)) as store:
        yield store


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest_twisted.async_yield_fixture
async def lease_store(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock):
    """The test class's store, started, its leases timed by ``clock`` if it has a say."""
    async with running(request.instance.make_store(tmp_path, clock)) as store:
        yield store


FIRST_SDIST = sdist("demo_pkg-7.0.tar.gz", "7.0")


async def until(condition: Any, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await deferLater(reactor, 0.05, lambda: None)
    assert condition()


class MetadataStoreContract:
    """Every IMetadataStore method, as the callers above the store rely on it."""

    def make_store(self, tmp_path: Path, clock: Clock | None = None) -> IMetadataStore:
        raise NotImplementedError  # the Test class mixes in its store's factory

    def another_instance(self, tmp_path: Path) -> AbstractAsyncContextManager[IMetadataStore]:
        """A second store over the same data, started: what another process would see."""
        return running(self.make_store(tmp_path))

    # -- the contract ----------------------------------------------------------

    def test_provides_the_interface(self, metadata_store: IMetadataStore) -> None:
        assert verifyObject(IMetadataStore, metadata_store)

    @pytest_twisted.ensureDeferred
    async def test_empty_store(self, metadata_store: IMetadataStore) -> None:
        assert await metadata_store.last_serial() == 0
        assert await metadata_store.list_projects() == []
        assert await metadata_store.get_project("demo-pkg") is None
        assert await metadata_store.list_files("demo-pkg") == []

    @pytest_twisted.ensureDeferred
    async def test_add_file_creates_the_project(self, metadata_store: IMetadataStore) -> None:
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
    async def test_second_file_joins_the_project(self, metadata_store: IMetadataStore) -> None:
        await metadata_store.add_file(make_record(), "Demo_Pkg", None)
        assert await metadata_store.add_file(SDIST_RECORD, "demo.pkg", None) is True

        project = await metadata_store.get_project("demo-pkg")
        assert project.display_name == "Demo_Pkg"  # the first one stays
        assert project.serial == 2
        assert [p.name for p in await metadata_store.list_projects()] == ["demo-pkg"]
        assert await metadata_store.list_files("demo-pkg") == [make_record(), SDIST_RECORD]

    @pytest_twisted.ensureDeferred
    async def test_same_filename_same_bytes_is_a_no_op(
        self, metadata_store: IMetadataStore
    ) -> None:
        await metadata_store.add_file(make_record(), "demo-pkg", b"original")
        project = await metadata_store.get_project("demo-pkg")

        again = make_record(upload_time=datetime(2030, 1, 1, tzinfo=UTC))
        assert await metadata_store.add_file(again, "Other", b"other") is False

        assert await metadata_store.last_serial() == 1
        assert await metadata_store.get_project("demo-pkg") == project
        assert await metadata_store.get_file("demo-pkg", again.filename) == make_record()
        assert await metadata_store.get_metadata("demo-pkg", again.filename) == b"original"

    @pytest_twisted.ensureDeferred
    async def test_same_filename_other_bytes_is_refused(
        self, metadata_store: IMetadataStore
    ) -> None:
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
        self,
        metadata_store: IMetadataStore,
    ) -> None:
        await metadata_store.add_file(make_record(), "demo-pkg", None)
        other = make_record(project="other", sha256="f" * 64)
        assert await metadata_store.add_file(other, "other", None) is True
        assert await metadata_store.get_file("other", other.filename) == other

    @pytest_twisted.ensureDeferred
    async def test_serials_increase_and_projects_keep_their_last(
        self,
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
    async def test_projects_are_listed_by_canonical_name(
        self, metadata_store: IMetadataStore
    ) -> None:
        for name in ["zeta", "alpha", "mid-name"]:
            await metadata_store.add_file(make_record(project=name), name.upper(), None)
        names = [p.name for p in await metadata_store.list_projects()]
        assert names == ["alpha", "mid-name", "zeta"]

    @pytest_twisted.ensureDeferred
    async def test_files_are_listed_in_upload_order(self, metadata_store: IMetadataStore) -> None:
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
    async def test_missing_things_are_none(self, metadata_store: IMetadataStore) -> None:
        await metadata_store.add_file(make_record(), "demo-pkg", b"x")
        assert await metadata_store.get_file("demo-pkg", "nope-1.0.tar.gz") is None
        assert await metadata_store.get_file("nope", make_record().filename) is None
        assert await metadata_store.get_metadata("demo-pkg", "nope-1.0.tar.gz") is None
        assert await metadata_store.get_metadata("nope", make_record().filename) is None
        assert await metadata_store.list_files("nope") == []
        assert await metadata_store.get_project("nope") is None

    @pytest_twisted.ensureDeferred
    async def test_file_stored_without_metadata(self, metadata_store: IMetadataStore) -> None:
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
        self, metadata_store: IMetadataStore, metadata: bytes
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
        ids=[
            "wheel",
            "sdist",
            "yanked-no-reason",
            "yanked-reason",
            "mirror-microsecond",
            "unicode",
        ],
    )
    @pytest_twisted.ensureDeferred
    async def test_file_record_round_trips(
        self, metadata_store: IMetadataStore, record: FileRecord
    ) -> None:
        await metadata_store.add_file(record, record.project, None)
        stored = await metadata_store.get_file(record.project, record.filename)
        assert stored == record
        assert stored.yanked == record.yanked  # "" and None are different states
        assert stored.upload_time.microsecond == record.upload_time.microsecond
        assert await metadata_store.list_files(record.project) == [record]

    @pytest_twisted.ensureDeferred
    async def test_register_creates_then_updates(self, metadata_store: IMetadataStore) -> None:
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
        self,
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
    async def test_the_summary_is_the_latest_releases(self, metadata_store: IMetadataStore) -> None:
        async def summary() -> tuple[str, str | None]:
            project = await metadata_store.get_project("demo-pkg")
            (listed,) = await metadata_store.list_projects()
            assert (listed.summary, listed.summary_version) == (
                project.summary,
                project.summary_version,
            )
            return project.summary, project.summary_version

        def wheel(version: str) -> FileRecord:
            return make_record(f"demo_pkg-{version}-py3-none-any.whl", version=version)

        await metadata_store.add_file(wheel("1.0"), "demo-pkg", None, "First\n  line")
        assert await summary() == ("First line", "1.0")
        await metadata_store.add_file(wheel("0.9"), "demo-pkg", None, "A backport")
        assert await summary() == ("First line", "1.0")
        await metadata_store.add_file(wheel("1.0.0"), "demo-pkg", None, "Ünïcode <b>")
        assert await summary() == ("Ünïcode <b>", "1.0.0")  # an equal version wins
        await metadata_store.add_file(wheel("1.1rc1"), "demo-pkg", None, "x" * 600)
        assert await summary() == ("x" * 512, "1.1rc1")
        await metadata_store.add_file(wheel("2.0"), "demo-pkg", None)  # not known: kept
        assert await summary() == ("x" * 512, "1.1rc1")
        again = wheel("3.0")
        await metadata_store.add_file(again, "demo-pkg", None, "")
        assert await summary() == ("", "3.0")  # the latest has none
        assert await metadata_store.add_file(again, "demo-pkg", None, "Same bytes") is False
        assert await summary() == ("", "3.0")

        registered = await metadata_store.register(
            "demo-pkg", "demo-pkg", {"summary": ["Old"], "version": ["2.5"]}
        )
        assert (registered.summary, registered.summary_version) == ("", "3.0")
        await metadata_store.register("demo-pkg", "demo-pkg", {"summary": ["No version"]})
        assert await summary() == ("", "3.0")
        registered = await metadata_store.register(
            "demo-pkg", "demo-pkg", {"summary": ["Registered"], "version": ["4.0"]}
        )
        assert (registered.summary, registered.summary_version) == ("Registered", "4.0")
        assert await summary() == ("Registered", "4.0")

    @pytest_twisted.ensureDeferred
    async def test_a_summary_offered_is_taken_by_the_same_rule(
        self, metadata_store: IMetadataStore
    ) -> None:
        recorder = Recorder()
        metadata_store.subscribe(recorder)
        assert await metadata_store.offer_summary("demo-pkg", "Nobody", "1.0") is False
        assert await metadata_store.get_project("demo-pkg") is None  # never created

        await metadata_store.register("demo-pkg", "demo-pkg", {"summary": ["Unversioned"]})
        project = await metadata_store.get_project("demo-pkg")
        assert (project.summary, project.summary_version) == ("Unversioned", None)
        assert await metadata_store.offer_summary("demo-pkg", "Restored", "2.0") is True
        project = await metadata_store.get_project("demo-pkg")
        assert (project.summary, project.summary_version, project.serial) == (
            "Restored",
            "2.0",
            2,
        )
        assert await metadata_store.offer_summary("demo-pkg", "Older", "1.0") is False
        assert await metadata_store.offer_summary("demo-pkg", "Restored", "2.0") is False
        assert await metadata_store.last_serial() == 2  # no change, no serial
        assert recorder.names == ["demo-pkg", "demo-pkg"]

    @pytest_twisted.ensureDeferred
    async def test_subscribers_hear_of_every_change(self, metadata_store: IMetadataStore) -> None:
        first, second = Recorder(), Recorder()
        metadata_store.subscribe(first)
        metadata_store.subscribe(second)

        await metadata_store.add_file(make_record(), "Demo_Pkg", None)
        await metadata_store.register("other", "Other", {})
        assert first.names == second.names == ["demo-pkg", "other"]
        assert all(first.on_reactor_thread)

    @pytest_twisted.ensureDeferred
    async def test_subscribers_do_not_hear_of_no_ops_or_refusals(
        self,
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
    async def test_subscribers_run_before_the_caller_hears(
        self, metadata_store: IMetadataStore
    ) -> None:
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
    async def test_a_failing_subscriber_breaks_nothing(
        self, metadata_store: IMetadataStore
    ) -> None:
        def broken(name: str) -> None:
            raise RuntimeError(f"subscriber bug for {name}")

        recorder = Recorder()
        metadata_store.subscribe(broken)
        metadata_store.subscribe(recorder)
        with Recorder().watching_log() as logged:
            assert await metadata_store.add_file(make_record(), "demo-pkg", None) is True
            assert (await metadata_store.register("demo-pkg", "x", {})).name == "demo-pkg"

        assert recorder.names == ["demo-pkg", "demo-pkg"]
        failures = logged.failures
        assert len(failures) == 2
        assert all(f.check(RuntimeError) for f in failures)
        assert await metadata_store.last_serial() == 2
        assert await metadata_store.add_file(SDIST_RECORD, "demo-pkg", None) is True

    # -- yanking and deleting ----------------------------------------------------

    @pytest_twisted.ensureDeferred
    async def test_yank_and_unyank_change_records_and_serials(
        self, metadata_store: IMetadataStore
    ) -> None:
        await metadata_store.add_file(make_record(), "demo-pkg", b"m")
        await metadata_store.add_file(SDIST_RECORD, "demo-pkg", None)
        recorder = Recorder()
        metadata_store.subscribe(recorder)
        filenames = [make_record().filename, SDIST_RECORD.filename]

        changed = await metadata_store.set_yanked(
            "demo-pkg", [*filenames, "nope-1.0.tar.gz"], "bad"
        )
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
        self,
        metadata_store: IMetadataStore,
    ) -> None:
        record = make_record(filename="Ünïcode_pkg-1.0-py3-none-any.whl", project="ünïcode-pkg")
        await metadata_store.add_file(record, "Ünïcode", None)
        assert await metadata_store.set_yanked(record.project, [record.filename], "café ✓") == [
            record.filename
        ]
        assert await metadata_store.get_file(
            record.project, record.filename
        ) == record.with_changes(yanked="café ✓")
        assert await metadata_store.set_yanked("nope", [record.filename], "x") == []
        assert await metadata_store.delete_files("nope", [record.filename]) == []
        assert await metadata_store.last_serial() == 2

    @pytest_twisted.ensureDeferred
    async def test_delete_removes_files_and_keeps_the_rest_in_order(
        self,
        metadata_store: IMetadataStore,
    ) -> None:
        records = [
            SDIST_RECORD.with_changes(
                filename=f"demo_pkg-{v}.tar.gz", sha256=f"{i:064x}", version=v
            )
            for i, v in enumerate(["1.0", "2.0", "3.0"])
        ]
        for record in records:
            await metadata_store.add_file(record, "demo-pkg", b"meta " + record.filename.encode())
        recorder = Recorder()
        metadata_store.subscribe(recorder)

        removed = await metadata_store.delete_files(
            "demo-pkg", [records[1].filename, "nope.tar.gz"]
        )
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
        assert (
            len(await metadata_store.delete_files("demo-pkg", [r.filename for r in records])) == 2
        )
        assert await metadata_store.list_files("demo-pkg") == []
        assert (await metadata_store.get_project("demo-pkg")).serial == 5

    @pytest.mark.parametrize("same_bytes", [True, False], ids=["same-bytes", "other-bytes"])
    @pytest_twisted.ensureDeferred
    async def test_a_deleted_filename_is_never_reused(
        self, metadata_store: IMetadataStore, same_bytes: bool
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

    @pytest_twisted.ensureDeferred
    async def test_tombstones_are_listed_and_a_restored_one_refuses_its_filename(
        self, metadata_store: IMetadataStore
    ) -> None:
        await metadata_store.add_file(make_record(), "demo-pkg", None)
        await metadata_store.delete_files("demo-pkg", [make_record().filename])
        assert await metadata_store.tombstones("demo-pkg") == {
            make_record().filename: make_record().sha256
        }
        assert await metadata_store.tombstones("other") == {}

        await metadata_store.add_tombstone("other", "other-1.0.tar.gz", "e" * 64)
        assert await metadata_store.tombstones("other") == {"other-1.0.tar.gz": "e" * 64}
        serial = await metadata_store.last_serial()
        restored = make_record(filename="other-1.0.tar.gz", project="other")
        with pytest.raises(FilenameReused):
            await metadata_store.add_file(restored, "other", None)
        assert await metadata_store.last_serial() == serial  # no page changed

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
        self, metadata_store: IMetadataStore, filename: str, version: str
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
        self,
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
        self,
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
        self, metadata_store: IMetadataStore, tmp_path: Path
    ) -> None:
        """Claims sent at once, half through a second instance (another process), race."""
        candidates = [
            sdist(filename, version, f"{i:064x}")
            for i, (filename, version) in enumerate(
                [("demo_pkg-7.0.tar.gz", "7.0"), ("demo_pkg-7.0.0.tar.gz", "7.0.0")] * 2
            )
        ]
        async with self.another_instance(tmp_path) as other:
            outcomes = await DeferredList(
                [
                    store.add_file(record, "demo-pkg", None)
                    for record, store in zip(candidates, [metadata_store, other] * 2, strict=True)
                ],
                consumeErrors=True,
            )
        won = [
            record for record, (ok, added) in zip(candidates, outcomes, strict=True) if ok and added
        ]
        assert len(won) == 1
        for ok, result in outcomes:
            assert ok or result.check(SdistExists, FileExists), result
        assert await metadata_store.list_files("demo-pkg") == won
        assert await metadata_store.last_serial() == 1

    @pytest_twisted.ensureDeferred
    async def test_blob_keys_name_the_bytes_of_every_record(
        self, metadata_store: IMetadataStore
    ) -> None:
        """What the collector of unclaimed bytes trusts: a key missing here may be removed."""
        assert await metadata_store.blob_keys() == set()
        other = make_record(project="other", sha256="f" * 64, provenance_sha256="a" * 64)
        for record in (make_record(), SDIST_RECORD, other):
            await metadata_store.add_file(record, record.project, None)
        with pytest.raises(FileExists):  # a refused claim names no bytes
            await metadata_store.add_file(make_record(sha256="9" * 64), "demo-pkg", None)
        keys = {make_record().blob_key, SDIST_RECORD.blob_key, *other.stored_keys}
        assert other.provenance_key in keys  # the provenance is claimed with its file
        assert await metadata_store.blob_keys() == keys

        await metadata_store.delete_files("demo-pkg", [SDIST_RECORD.filename])
        assert await metadata_store.blob_keys() == keys - {SDIST_RECORD.blob_key}

    @pytest_twisted.ensureDeferred
    async def test_blob_keys_cover_more_projects_than_one_read_returns(
        self,
        metadata_store: IMetadataStore,
    ) -> None:
        records = [make_record(project=f"p{i:03d}", sha256=f"{i:064x}") for i in range(230)]
        for record in records:
            await metadata_store.add_file(record, record.project, None)
        assert await metadata_store.blob_keys() == {record.blob_key for record in records}

    @pytest_twisted.ensureDeferred
    async def test_changes_by_another_process_reach_subscribers(
        self, metadata_store: IMetadataStore, tmp_path: Path
    ) -> None:
        """``ministry-admin`` yanks through its own store: the daemon's pages must hear of it."""
        async with self.another_instance(tmp_path) as other:
            recorder = Recorder()
            metadata_store.subscribe(recorder)
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

    # -- project status (PEP 792) -------------------------------------------------

    @pytest_twisted.ensureDeferred
    async def test_project_status_is_set_with_its_reason_and_bumps_once(
        self, metadata_store: IMetadataStore
    ) -> None:
        await metadata_store.add_file(make_record(), "Demo_Pkg", None)
        project = await metadata_store.get_project("demo-pkg")
        assert (project.status, project.status_reason) == ("active", None)
        recorder = Recorder()
        metadata_store.subscribe(recorder)

        marked = await metadata_store.set_project_status("demo-pkg", "quarantined", "malware ✓")
        assert marked == ProjectRecord(
            name="demo-pkg",
            display_name="Demo_Pkg",
            serial=2,
            created=project.created,
            status="quarantined",
            status_reason="malware ✓",
        )
        assert await metadata_store.get_project("demo-pkg") == marked
        assert await metadata_store.list_projects() == [marked]
        assert await metadata_store.last_serial() == 2
        assert recorder.names == ["demo-pkg"]
        # The same status and reason again change nothing and bump nothing.
        assert await metadata_store.set_project_status("demo-pkg", "quarantined", "malware ✓") == (
            marked
        )
        assert await metadata_store.last_serial() == 2
        # Another reason, or none, is a change; so is going back to active.
        dropped = await metadata_store.set_project_status("demo-pkg", "quarantined", None)
        assert (dropped.status_reason, dropped.serial) == (None, 3)
        active = await metadata_store.set_project_status("demo-pkg", "active", None)
        assert (active.status, active.serial) == ("active", 4)
        assert recorder.names == ["demo-pkg"] * 3

    @pytest_twisted.ensureDeferred
    async def test_project_status_survives_uploads_and_registration(
        self, metadata_store: IMetadataStore
    ) -> None:
        await metadata_store.add_file(make_record(), "demo-pkg", None)
        await metadata_store.set_project_status("demo-pkg", "deprecated", "use other-pkg")
        await metadata_store.add_file(SDIST_RECORD, "demo-pkg", None)
        registered = await metadata_store.register("demo-pkg", "demo-pkg", {"summary": ["s"]})
        assert (registered.status, registered.status_reason) == ("deprecated", "use other-pkg")
        assert (await metadata_store.get_project("demo-pkg")).status == "deprecated"

    @pytest_twisted.ensureDeferred
    async def test_project_status_of_unknown_projects_and_statuses(
        self, metadata_store: IMetadataStore
    ) -> None:
        assert await metadata_store.set_project_status("nope", "archived", "x") is None
        assert await metadata_store.get_project("nope") is None
        assert await metadata_store.last_serial() == 0
        await metadata_store.add_file(make_record(), "demo-pkg", None)
        with pytest.raises(ValueError, match="unknown project status"):
            await metadata_store.set_project_status("demo-pkg", "haunted", None)
        assert (await metadata_store.get_project("demo-pkg")).status == "active"

    @pytest_twisted.ensureDeferred
    async def test_project_status_set_by_another_process_reaches_subscribers(
        self, metadata_store: IMetadataStore, tmp_path: Path
    ) -> None:
        """``ministry-admin project status`` runs in its own process: pages must hear of it."""
        await metadata_store.add_file(make_record(), "demo-pkg", None)
        async with self.another_instance(tmp_path) as other:
            recorder = Recorder()
            metadata_store.subscribe(recorder)
            await other.set_project_status("demo-pkg", "archived", "done")
            await until(lambda: recorder.names == ["demo-pkg"])
        project = await metadata_store.get_project("demo-pkg")
        assert (project.status, project.status_reason) == ("archived", "done")

    # -- users, tokens and roles -------------------------------------------------

    @pytest_twisted.ensureDeferred
    async def test_users_are_added_listed_and_changed(self, metadata_store: IMetadataStore) -> None:
        assert await metadata_store.list_users() == []
        assert await metadata_store.has_users() is False
        assert await metadata_store.add_user(make_user("bob", admin=True)) is True
        assert await metadata_store.has_users() is True
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
    async def test_tokens_are_added_listed_and_revoked(
        self, metadata_store: IMetadataStore
    ) -> None:
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
    async def test_roles_are_claimed_once_and_kept_both_ways(
        self, metadata_store: IMetadataStore
    ) -> None:
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
        self,
        metadata_store: IMetadataStore,
    ) -> None:
        for name in ("alice", "bob"):
            await metadata_store.add_user(make_user(name))
            await metadata_store.add_token(
                make_token(f"00000000000000{name[:2].encode().hex()}", name)
            )
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
        assert await metadata_store.remove_user("bob") is True
        assert await metadata_store.remove_user("alice") is True
        assert await metadata_store.has_users() is False  # the index is open again


class LeaseContract:
    """``store.lease(name)``: one holder at a time, lapsing unless renewed, freed by its holder."""

    #: Whether the store's leases expire on its server's clock rather than ``clock``.
    server_clock = False
    #: Lease durations here: long enough to outlive a call, short enough to wait out.
    DURATION = 0.3

    async def pass_time(self, clock: Clock, seconds: float) -> None:
        """Let ``seconds`` pass for the lease: on ``clock``, or for real on a server's."""
        if self.server_clock:
            await deferLater(reactor, seconds, lambda: None)
        else:
            clock.advance(seconds)

    def test_a_lease_provides_the_interface(self, lease_store: IMetadataStore) -> None:
        assert verifyObject(ILease, lease_store.lease("mirror"))

    @pytest_twisted.ensureDeferred
    async def test_one_holder_at_a_time(self, lease_store: IMetadataStore) -> None:
        lease, same = lease_store.lease("mirror"), lease_store.lease("mirror")
        assert await lease.acquire("a", self.DURATION) is True
        assert await same.acquire("b", self.DURATION) is False  # one name, one holder
        assert await lease.acquire("a", self.DURATION) is True  # its holder takes it again
        assert await lease_store.lease("other").acquire("b", self.DURATION) is True
        await lease.release("a")
        await lease_store.lease("other").release("b")

    @pytest_twisted.ensureDeferred
    async def test_a_lease_not_renewed_expires(
        self, lease_store: IMetadataStore, clock: Clock
    ) -> None:
        lease = lease_store.lease("mirror")
        assert await lease.acquire("a", self.DURATION) is True
        await self.pass_time(clock, self.DURATION * 2)  # a died
        assert await lease.renew("a", self.DURATION) is False  # too late: it lapsed
        assert await lease.acquire("b", self.DURATION) is True
        assert await lease.renew("a", self.DURATION) is False  # b's now
        assert await lease.release("b") is True

    @pytest_twisted.ensureDeferred
    async def test_renewing_keeps_the_lease(
        self, lease_store: IMetadataStore, clock: Clock
    ) -> None:
        lease = lease_store.lease("mirror")
        assert await lease.renew("a", self.DURATION) is False  # nobody holds it
        assert await lease.acquire("a", self.DURATION) is True
        for _ in range(3):  # longer in all than one duration
            await self.pass_time(clock, self.DURATION / 2)
            assert await lease.renew("a", self.DURATION) is True
        assert await lease.acquire("b", self.DURATION) is False
        assert await lease.release("a") is True

    @pytest_twisted.ensureDeferred
    async def test_only_its_holder_releases_a_lease(self, lease_store: IMetadataStore) -> None:
        lease = lease_store.lease("mirror")
        assert await lease.release("a") is False  # nobody holds it
        assert await lease.acquire("a", self.DURATION) is True
        assert await lease.release("b") is False
        assert await lease.acquire("b", self.DURATION) is False  # still a's
        assert await lease.release("a") is True
        assert await lease.release("a") is False  # once
        assert await lease.acquire("b", self.DURATION) is True  # free at once
        assert await lease.release("b") is True


# -- the implementations ---------------------------------------------------------


class SQLiteFactory:
    def make_store(self, tmp_path: Path, clock: Clock | None = None) -> IMetadataStore:
        return SQLiteStore(str(tmp_path / "db" / "ministry.sqlite"), clock)


class RedisFactory:
    """The session's redis-server (tests/redis_server.py); a key prefix per test."""

    server_clock = True  # Redis expires its keys itself (PX)

    def make_store(self, tmp_path: Path, clock: Clock | None = None) -> IMetadataStore:
        from redis_server import find_redis_server, shared_server

        from ministry.stores.redis import RedisStore

        if find_redis_server() is None:
            pytest.skip("redis-server is not installed (test_redis_store.py fails for it)")
        return RedisStore(shared_server().url, prefix=f"contract:{tmp_path.name}:")


class Timed:
    """The store wrapped in the TimedStore the web layer uses: timing changes nothing."""

    def make_store(self, tmp_path: Path, clock: Clock | None = None) -> IMetadataStore:
        self.timings: list[tuple[str, float]] = getattr(self, "timings", [])
        store = super().make_store(tmp_path, clock)  # type: ignore[misc]
        return TimedStore(store, lambda name: lambda took: self.timings.append((name, took)))

    @pytest_twisted.ensureDeferred
    async def test_every_call_is_timed_under_its_name(self, metadata_store: IMetadataStore) -> None:
        await metadata_store.add_file(make_record(), "demo-pkg", None)
        with pytest.raises(FileExists):  # failures are timed too
            await metadata_store.add_file(make_record(sha256="f" * 64), "demo-pkg", None)
        assert [name for name, _ in self.timings] == ["add_file", "add_file"]
        assert all(took >= 0 for _, took in self.timings)


class TestSQLiteStore(SQLiteFactory, MetadataStoreContract, LeaseContract):
    pass


class TestRedisStore(RedisFactory, MetadataStoreContract, LeaseContract):
    pass


class TestTimedSQLiteStore(Timed, SQLiteFactory, MetadataStoreContract, LeaseContract):
    pass


class TestTimedRedisStore(Timed, RedisFactory, MetadataStoreContract, LeaseContract):
    pass


# -- the audit log (issue 16) ----------------------------------------------------


def audit_event(action: str, project: str = "demo-pkg", minute: int = 0, **rest: Any) -> Any:
    from ministry.core.audit import AuditEvent

    when = datetime(2026, 12, 1, 12, minute, 0, 123456, tzinfo=UTC)
    return AuditEvent(when, "alice", "192.0.2.7", action, project, **rest)


class AuditContract:
    """Every store keeps audit entries for good and lists them newest first."""

    @pytest_twisted.ensureDeferred
    async def test_audit_entries_are_listed_newest_first(
        self, metadata_store: IMetadataStore
    ) -> None:
        upload = audit_event("upload", version="1.0", filename="demo_pkg-1.0.tar.gz")
        yank = audit_event("yank", minute=1, version="1.0", detail="broken")
        other = audit_event("status", project="other", minute=2, detail="archived")
        assert await metadata_store.list_audit() == []
        for event in (upload, yank, other):
            assert await metadata_store.append_audit(event) is None
        assert await metadata_store.list_audit() == [other, yank, upload]
        assert await metadata_store.list_audit("demo-pkg") == [yank, upload]
        assert await metadata_store.list_audit(limit=2) == [other, yank]
        assert await metadata_store.list_audit("demo-pkg", limit=0) == []
        assert await metadata_store.list_audit("nothing-here") == []

    @pytest_twisted.ensureDeferred
    async def test_audit_entries_are_not_changes_of_the_index(
        self, metadata_store: IMetadataStore
    ) -> None:
        recorder = Recorder()
        metadata_store.subscribe(recorder)
        await metadata_store.append_audit(audit_event("role", detail="bob: owner"))
        assert await metadata_store.last_serial() == 0
        assert recorder.names == []

    @pytest_twisted.ensureDeferred
    async def test_audit_entries_are_shared_by_two_instances(self, tmp_path: Path) -> None:
        make = self.make_store  # type: ignore[attr-defined]
        async with running(make(tmp_path)) as one, running(make(tmp_path)) as two:
            await one.append_audit(audit_event("delete", filename="demo_pkg-1.0.tar.gz"))
            assert await two.list_audit() == await one.list_audit()
            assert len(await two.list_audit()) == 1


class TestSQLiteAudit(SQLiteFactory, AuditContract):
    pass


class TestRedisAudit(RedisFactory, AuditContract):
    pass


class TestTimedSQLiteAudit(Timed, SQLiteFactory, AuditContract):
    pass


class TestTimedRedisAudit(Timed, RedisFactory, AuditContract):
    pass
