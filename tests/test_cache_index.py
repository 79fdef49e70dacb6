"""The index of proxied files (ICacheIndex) and the file cache on top of it, shared by daemons.

:class:`CacheIndexContract` is the behaviour both indexes must have (the
in-process one of the embedded store, the Redis one), run against each by a
``Test...`` class at its end: ``make_indexes(tmp_path)`` returns two indexes
over the same data, as two processes would see it (in-process: the same
index twice). The Redis one runs on the session's real redis-server.

The tests after it run :class:`~ministry.upstream.cache.FileCache` over a
real blob directory, as one daemon, and as two daemons sharing a Redis and
the blob store (a directory, or a bucket on a real SeaweedFS): what one
fetched the other serves without fetching it, and eviction is coordinated,
bounded and never takes a pinned (mirrored) file.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from store_records import sdist
from twisted.internet import reactor
from twisted.internet.defer import DeferredList, fail, gatherResults, maybeDeferred, succeed
from twisted.internet.task import Clock, deferLater
from zope.interface.verify import verifyObject

from ministry.core.errors import StorageUnavailable, StoreUnavailable
from ministry.core.models import METADATA_SUFFIX, PROVENANCE_SUFFIX, FileRecord
from ministry.core.storage_url import S3Storage
from ministry.core.upstream_pages import UpstreamFile
from ministry.interfaces import IBlobStore, ILease
from ministry.interfaces.cache_index import ICacheIndex
from ministry.stores.blobs import FilesystemBlobStore
from ministry.stores.cache_index import EVICTION_LEASE, LocalCacheIndex
from ministry.stores.lease import LocalLease
from ministry.stores.s3 import S3BlobStore
from ministry.stores.sqlite import SQLiteStore
from ministry.upstream import cache as cache_module
from ministry.upstream.cache import FileCache
from ministry.upstream.downloads import Downloads
from ministry.upstream.eviction import LEASE_DURATION


@asynccontextmanager
async def redis_stores(prefix: str, count: int) -> AsyncIterator[list[Any]]:
    """``count`` started RedisStores on the session's redis-server, one key prefix: daemons."""
    from redis_server import shared_server

    from ministry.stores.redis import RedisStore

    stores = [RedisStore(shared_server().url, prefix=prefix) for _ in range(count)]
    for store in stores:
        await maybeDeferred(store.startService)
    try:
        yield stores
    finally:
        for store in stores:
            await maybeDeferred(store.stopService)


@pytest_twisted.async_yield_fixture
async def indexes(request: Any, tmp_path: Path):
    """The test class's two indexes over the same data."""
    async with request.instance.make_indexes(tmp_path) as pair:
        yield pair


class CacheIndexContract:
    """Every ICacheIndex method, as the file cache relies on it."""

    def make_indexes(self, tmp_path: Path) -> Any:
        raise NotImplementedError  # the Test class mixes in its factory

    def test_provides_the_interface(self, indexes: tuple[ICacheIndex, ICacheIndex]) -> None:
        index, _ = indexes
        assert verifyObject(ICacheIndex, index)
        assert verifyObject(ILease, index.lease)

    @pytest_twisted.ensureDeferred
    async def test_added_keys_are_held_with_their_sizes_by_every_instance(self, indexes) -> None:
        index, other = indexes
        assert await index.size("a") is None
        assert await index.add("a", 10, 1.0) == 10
        assert await index.add("b", 5, 2.0) == 15
        assert await other.size("a") == 10
        assert await other.held() == {"a": 10, "b": 5}
        assert await other.add("a", 12, 3.0) == 17  # again: its size replaced, counted once
        assert await index.total() == 17

    @pytest_twisted.ensureDeferred
    async def test_oldest_follow_last_use_and_touch_only_moves_it_later(self, indexes) -> None:
        index, other = indexes
        for key, used in (("a", 1.0), ("b", 2.0), ("c", 3.0)):
            await index.add(key, 1, used)
        await other.touch("a", 4.5)
        await other.touch("c", 0.5)  # earlier than its last use: no change
        await other.touch("missing", 9.0)  # not held: nothing
        assert await index.oldest(10) == [("b", 1, 2.0), ("c", 1, 3.0), ("a", 1, 4.5)]
        assert await index.oldest(1) == [("b", 1, 2.0)]
        assert await index.size("missing") is None

    @pytest_twisted.ensureDeferred
    async def test_pinned_keys_are_out_of_the_lru_and_the_total(self, indexes) -> None:
        index, other = indexes
        await index.add("mirrored", 100, 1.0)
        await index.add("proxied", 10, 2.0)
        await other.pin("mirrored")
        await other.pin("later")  # pinned before it is held
        assert await index.add("later", 1000, 0.5) == 10
        await index.touch("mirrored", 5.0)
        assert await index.total() == 10
        assert await index.oldest(10) == [("proxied", 10, 2.0)]
        assert await index.held() == {"mirrored": 100, "proxied": 10, "later": 1000}
        assert await index.remove("mirrored", 1.0) is False  # eviction never takes it
        assert await index.remove("mirrored") is True  # gone from storage: forgotten
        assert await index.add("mirrored", 100, 6.0) == 10  # the pin outlived it

    @pytest_twisted.ensureDeferred
    async def test_a_key_used_since_it_was_chosen_is_not_removed(self, indexes) -> None:
        index, other = indexes
        await index.add("a", 10, 1.0)
        await index.add("b", 20, 2.0)
        ((key, size, used),) = await index.oldest(1)
        await other.touch(key, 3.0)  # another process's hit
        assert await index.remove(key, used) is False
        assert await index.size("a") == 10
        ((key, size, used),) = await index.oldest(1)
        assert (key, size) == ("b", 20)
        assert await index.remove(key, used) is True
        assert await index.remove(key, used) is False  # once
        assert (await index.total(), await other.held()) == (10, {"a": 10})

    @pytest_twisted.ensureDeferred
    async def test_seeding_adds_only_what_is_not_held(self, indexes) -> None:
        index, other = indexes
        await index.add("known", 10, 50.0)
        await other.seed([("known", 999, 1.0), ("found", 7, 2.0), ("old", 3, 0.5)])
        assert await index.held() == {"known": 10, "found": 7, "old": 3}
        assert await index.oldest(3) == [("old", 3, 0.5), ("found", 7, 2.0), ("known", 10, 50.0)]
        assert await index.total() == 20

    @pytest_twisted.ensureDeferred
    async def test_totals_stay_exact_under_concurrent_changes(self, indexes) -> None:
        index, other = indexes
        keys = [f"k{n}" for n in range(60)]
        await DeferredList(
            [(index if n % 2 else other).add(key, n + 1, float(n)) for n, key in enumerate(keys)]
        )
        changes = [other.remove(key) for key in keys[:20]]
        changes += [index.pin(key) for key in keys[20:30]]
        changes += [index.add(key, 1, 100.0) for key in keys[30:40]]
        await DeferredList(changes)
        held = await other.held()
        expected = sum(held[key] for key in keys[30:])
        assert await index.total() == expected == 10 + sum(range(41, 61))


class TestLocalCacheIndex(CacheIndexContract):
    @asynccontextmanager
    async def make_indexes(self, tmp_path: Path) -> AsyncIterator[tuple[Any, Any]]:
        index = LocalCacheIndex(pins=str(tmp_path / "upstream" / "pinned.txt"))
        yield index, index  # one process: every user has the same index


@pytest_twisted.ensureDeferred
async def test_the_local_index_keeps_its_pins_across_a_restart(tmp_path: Path) -> None:
    pins = str(tmp_path / "upstream" / "pinned.txt")
    before = LocalCacheIndex(pins=pins)
    await before.pin("mirrored")
    await before.pin("mirrored")  # pinned again by the next pass: kept once
    after = LocalCacheIndex(pins=pins)  # the process restarted: only the pins are kept
    await after.seed([("mirrored", 100, 1.0), ("proxied", 10, 2.0)])
    assert (await after.total(), await after.oldest(5)) == (10, [("proxied", 10, 2.0)])
    assert Path(pins).read_text() == "mirrored\n"


@pytest_twisted.ensureDeferred
async def test_pins_made_together_are_written_together_and_each_waits_for_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mirror pass pins thousands of keys: not one thread call and one open each."""
    from ministry.stores import cache_index

    appends: list[list[str]] = []
    append = cache_index._append_pins

    def counted(path: str, keys: list[str]) -> None:
        appends.append(keys)
        append(path, keys)

    monkeypatch.setattr(cache_index, "_append_pins", counted)
    pins = tmp_path / "pinned.txt"
    index = LocalCacheIndex(pins=str(pins))
    keys = [f"k{n}" for n in range(100)]
    written: list[str] = []
    pinned = [index.pin(key).addCallback(lambda _, key=key: written.append(key)) for key in keys]
    await gatherResults([*pinned, index.pin("k5")])
    assert sorted(written) == sorted(keys)  # each fired, once its line was in the file
    assert pins.read_text().split() == [key for batch in appends for key in batch]
    assert set(pins.read_text().split()) == set(keys)
    assert len(appends) <= 3, [len(batch) for batch in appends]


@pytest_twisted.ensureDeferred
async def test_while_its_pins_cannot_be_read_the_local_index_says_so(tmp_path: Path) -> None:
    pins = tmp_path / "pinned.txt"
    pins.mkdir()  # unreadable as a file
    index = LocalCacheIndex(pins=str(pins))
    with pytest.raises(StoreUnavailable, match="pinned files"):
        await index.total()  # not 0: nothing is evicted while the pins are unknown
    pins.rmdir()
    assert await index.total() == 0  # read again at the next call


class TestRedisCacheIndex(CacheIndexContract):
    @asynccontextmanager
    async def make_indexes(self, tmp_path: Path) -> AsyncIterator[tuple[Any, Any]]:
        async with redis_stores(f"cache-index:{tmp_path.name}:", 2) as (one, two):
            yield one.cache_index(), two.cache_index()


# -- the file cache over a blob store and an index ------------------------------------


def proxied(n: int, data: bytes) -> FileRecord:
    """The record of a proxied sdist holding ``data``."""
    return sdist(f"demo_pkg-{n}.0.tar.gz", f"{n}.0", hashlib.sha256(data).hexdigest())


async def keep(cache: FileCache, record: FileRecord, data: bytes) -> None:
    """What a verified download does at its end: stage the bytes, commit them."""
    staging = cache.stage()
    Path(staging).write_bytes(data)
    await cache.commit(staging, record.blob_key, len(data))


async def until(condition: Callable[[], Any], timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if await condition():
            return
        await deferLater(reactor, 0.02, lambda: None)
    raise AssertionError("never happened")


def unoffered(record: FileRecord) -> UpstreamFile:
    """Where the upstream would have the file, with no provenance offered."""
    return UpstreamFile(record, f"http://upstream.invalid/{record.filename}")


class _NoUpstream:
    """An upstream client that fails the test if anything is fetched."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the upstream was asked ({name})")


BlobsFor = Callable[[int], IBlobStore]


@pytest.fixture(params=["directory", "bucket"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> BlobsFor:
    """How the n-th daemon reaches the shared blob store: one directory, or a real bucket."""
    if request.param == "directory":
        return lambda n: FilesystemBlobStore(str(tmp_path / "upstream" / "files"))
    server, bucket = request.getfixturevalue("s3_server"), request.getfixturevalue("s3_bucket")
    shared = S3Storage(bucket, "index/upstream", server.endpoint)
    return lambda n: S3BlobStore(shared, str(tmp_path / f"staging-{n}"))


@pytest_twisted.async_yield_fixture
async def caches(tmp_path: Path):
    """``await caches(indexes, max_size, storage)``: started FileCaches (daemons), one blob store.

    Without ``storage``, the daemons share one directory.
    """
    started: list[FileCache] = []
    clock = Clock()
    clock.advance(1000)

    def directory(n: int) -> IBlobStore:
        return FilesystemBlobStore(str(tmp_path / "upstream" / "files"))

    async def start(
        indexes: list[ICacheIndex], max_size: int | None = None, storage: BlobsFor = directory
    ) -> list[FileCache]:
        made = []
        for n, index in enumerate(indexes):
            blobs = storage(n)
            if hasattr(blobs, "startService"):  # the bucket's thread pool
                blobs.startService()
            made.append(FileCache(blobs, index, max_size=max_size, clock=clock))
            await made[-1].start()
            started.append(made[-1])
        return made

    start.clock = clock  # type: ignore[attr-defined]
    yield start
    for cache in started:
        cache.stop()
        if hasattr(cache.blobs, "stopService"):
            await maybeDeferred(cache.blobs.stopService)
    assert clock.getDelayedCalls() == [], "a timer outlived the test"


@pytest_twisted.ensureDeferred
async def test_a_file_one_daemon_fetched_is_served_by_another_without_fetching(
    caches, storage: BlobsFor, tmp_path: Path
) -> None:
    data = b"sdist bytes" * 100
    record = proxied(1, data)
    async with redis_stores(f"cache-share:{tmp_path.name}:", 2) as (one, two):
        (first,) = await caches([one.cache_index()], storage=storage)
        await keep(first, record, data)
        (second,) = await caches(
            [two.cache_index()], storage=lambda n: storage(n + 1)
        )  # started after: its view has it
        held = await second.find(record, served=True)
        assert held is not None and held.size == len(data)
        downloads = Downloads(_NoUpstream(), second, offline=False)
        assert await downloads.fetch(record, unoffered(record)) == 0
        assert second.hits == 1
        assert second.as_served(record.with_changes(size=0), held_only=True).size == len(data)


@pytest_twisted.ensureDeferred
async def test_an_entry_whose_bytes_are_gone_is_dropped_and_a_miss(caches) -> None:
    data = b"x" * 300
    record = proxied(1, data)
    (cache,) = await caches([LocalCacheIndex()])
    await keep(cache, record, data)
    await cache.blobs.delete(record.blob_key)  # removed behind the index's back
    assert await cache.find(record, served=True) is None
    assert await cache.index.size(record.blob_key) is None
    assert (cache.hits, cache.cached_files) == (0, 0)


@pytest_twisted.ensureDeferred
async def test_files_already_in_storage_are_added_to_the_index_at_start(
    caches, tmp_path: Path
) -> None:
    data = b"kept from before the index" * 10
    record = proxied(1, data)
    await already_stored(tmp_path, {1: data})
    index = LocalCacheIndex()
    (cache,) = await caches([index])
    assert await index.held() == {record.blob_key: len(data)}
    assert cache.as_served(record, held_only=True) is not None
    assert (await cache.find(record, served=False)).size == len(data)


@pytest_twisted.ensureDeferred
async def test_files_in_storage_are_held_while_the_start_up_scan_runs(tmp_path: Path) -> None:
    """A restart must not fetch again what is on disk because the scan has not reached it."""
    data = b"kept from before the restart" * 10
    record = proxied(1, data)
    blobs = await already_stored(tmp_path, {1: data})
    index = LocalCacheIndex()
    cache = FileCache(blobs, index, max_size=None, clock=Clock())  # not started: no scan yet
    held = await cache.find(record, served=False)
    assert held is not None and held.size == len(data)
    downloads = Downloads(_NoUpstream(), cache, offline=False)
    assert await downloads.fetch(record, unoffered(record)) == 0
    assert await index.held() == {record.blob_key: len(data)}


@pytest_twisted.ensureDeferred
async def test_metadata_is_read_through_the_blob_store_and_checked(caches) -> None:
    wheel = proxied(1, b"wheel").with_changes(
        filename="demo_pkg-1.0-py3-none-any.whl", metadata_sha256=hashlib.sha256(b"M").hexdigest()
    )
    (cache,) = await caches([LocalCacheIndex()])
    assert await cache.metadata(wheel) is None
    await cache.keep_small(wheel.blob_key + METADATA_SUFFIX, b"M")
    assert await cache.metadata(wheel) == b"M"
    assert await cache.metadata(wheel.with_changes(metadata_sha256="0" * 64)) is None


@pytest_twisted.ensureDeferred
async def test_a_kept_provenance_is_read_through_the_blob_store_and_pinned_with_its_file(
    caches,
) -> None:
    wheel = proxied(1, b"wheel").with_changes(provenance_upstream=True)
    index = LocalCacheIndex()
    (cache,) = await caches([index])
    assert await cache.provenance(wheel) is None
    await cache.keep_small(wheel.blob_key + PROVENANCE_SUFFIX, b"P")
    assert await cache.provenance(wheel) == b"P"
    await cache.pin(wheel)
    assert await index.total() == 0  # pinned: out of the total eviction counts


@pytest_twisted.ensureDeferred
async def test_two_daemons_evict_least_recently_used_files_never_pinned_ones(
    caches, storage: BlobsFor, tmp_path: Path
) -> None:
    files = {n: bytes([n]) * 1000 for n in range(5)}
    records = {n: proxied(n, data) for n, data in files.items()}
    bound = 3500  # three files and a half; eviction goes down to 90% of it
    async with redis_stores(f"cache-evict:{tmp_path.name}:", 2) as (one, two):
        a, b = await caches([one.cache_index(), two.cache_index()], bound, storage)
        clock = caches.clock
        await a.pin(records[0])  # the mirror's: the oldest, yet never evicted
        for n, daemon in ((0, a), (1, b), (2, a), (3, b)):
            await keep(daemon, records[n], files[n])
            clock.advance(1)
        assert await a.find(records[1], served=True) is not None  # 1 used again, by a
        clock.advance(1)
        await keep(b, records[4], files[4])  # 4000 unpinned bytes: over the bound

        async def under_the_bound() -> bool:
            return await one.cache_index().total() <= bound

        await until(under_the_bound)
        for daemon in (a, b):
            assert await daemon.find(records[2], served=False) is None  # the LRU one went
        kept = {n for n in records if await b.find(records[n], served=False) is not None}
        assert kept == {0, 1, 3, 4}
        assert await one.cache_index().total() == 3000
        assert a.evicted + b.evicted == 1
        listed = {blob.key for blob in await a.blobs.list_blobs()}
        assert listed == {records[n].blob_key for n in kept}


@pytest_twisted.ensureDeferred
async def test_one_daemon_evicts_at_a_time(caches, monkeypatch) -> None:
    monkeypatch.setattr(cache_module, "REFRESH_INTERVAL", 60.0)
    index = LocalCacheIndex()
    (cache,) = await caches([index], max_size=1500)
    assert await index.lease.acquire("another daemon", 3600) is True
    files = {n: bytes([n]) * 1000 for n in range(2)}
    for n, data in files.items():
        await keep(cache, proxied(n, data), data)
        caches.clock.advance(1)
    assert (await index.total(), cache.evicted) == (2000, 0)  # the other one evicts
    await index.lease.release("another daemon")  # ...and died, or finished
    caches.clock.advance(60)  # the next refresh finds the cache over its bound

    async def evicted() -> bool:
        return cache.evicted == 1

    await until(evicted)
    assert await index.total() == 1000
    assert await cache.find(proxied(0, files[0]), served=False) is None


class _DownIndex(LocalCacheIndex):
    """An index whose store stopped answering (Redis down, failing over)."""

    def size(self, key: str) -> Any:
        return fail(StoreUnavailable("Metadata store (Redis) unavailable: no reply."))


@pytest_twisted.ensureDeferred
async def test_while_the_index_is_down_the_blob_store_says_what_is_held(caches) -> None:
    data = b"y" * 200
    record = proxied(1, data)
    index = _DownIndex()
    (cache,) = await caches([index])
    await keep(cache, record, data)
    assert (await cache.find(record, served=True)).size == len(data)
    assert await cache.find(proxied(2, b"never fetched"), served=True) is None


async def already_stored(tmp_path: Path, files: dict[int, bytes]) -> FilesystemBlobStore:
    """Bytes in the cache's directory before a daemon starts (from before a restart)."""
    blobs = FilesystemBlobStore(str(tmp_path / "upstream" / "files"))
    for n, data in files.items():
        staging = blobs.staging_path()
        Path(staging).write_bytes(data)
        await blobs.commit(staging, proxied(n, data).blob_key)
    return blobs


def eviction_ended(logged) -> Callable[[], Any]:
    """For :func:`until`: an eviction run logged its end."""
    return lambda: succeed(any(text.startswith("Evicted ") for text in logged.texts))


@pytest_twisted.ensureDeferred
async def test_a_restart_with_the_embedded_store_never_evicts_mirrored_files(
    caches, tmp_path: Path, logged
) -> None:
    files = {n: bytes([n]) * 1000 for n in range(2)}
    database = str(tmp_path / "ministry.sqlite3")
    (before,) = await caches([SQLiteStore(database).cache_index()])
    await before.pin(proxied(0, files[0]))  # the mirror's
    for n, data in files.items():
        await keep(before, proxied(n, data), data)
    # Restarted with a bound: the scan finds 2000 bytes, only the proxied 1000 count.
    (after,) = await caches([SQLiteStore(database).cache_index()], max_size=900)
    await until(eviction_ended(logged))
    assert after.evicted == 1
    assert await after.find(proxied(0, files[0]), served=False) is not None
    assert await after.find(proxied(1, files[1]), served=False) is None
    assert await after.index.total() == 0


class _TimedDeletes(FilesystemBlobStore):
    """The shared directory; each delete takes ``seconds`` on the clock, then calls ``during``."""

    def __init__(self, root: str, clock: Clock, seconds: float, during: Callable[[], None]) -> None:
        super().__init__(root)
        self.clock, self.seconds, self.during = clock, seconds, during

    def delete(self, key: str) -> Any:
        self.clock.advance(self.seconds)
        self.during()
        return super().delete(key)


async def evicting_slowly(
    caches, tmp_path: Path, seconds: float, during: Callable[[LocalCacheIndex], None]
) -> tuple[FileCache, LocalCacheIndex]:
    """A daemon started over five stored files, bound to one, each delete taking ``seconds``."""
    await already_stored(tmp_path, {n: bytes([n]) * 1000 for n in range(5)})
    index = LocalCacheIndex(LocalLease(EVICTION_LEASE, caches.clock))
    root = str(tmp_path / "upstream" / "files")
    slow = _TimedDeletes(root, caches.clock, seconds, lambda: during(index))
    (cache,) = await caches([index], max_size=1000, storage=lambda n: slow)
    return cache, index


@pytest_twisted.ensureDeferred
async def test_a_long_eviction_keeps_its_lease_so_no_other_daemon_evicts_meanwhile(
    caches, tmp_path: Path
) -> None:
    taken: list[bool] = []  # another daemon tries to take the lease at every delete

    def another_daemon(index: LocalCacheIndex) -> None:
        index.lease.acquire("another daemon", LEASE_DURATION).addCallback(taken.append)

    # Five deletes of 40 s: 200 s, beyond the lease's 120 s.
    cache, index = await evicting_slowly(caches, tmp_path, 40.0, another_daemon)

    async def evicted() -> bool:
        return cache.evicted == 5

    await until(evicted)
    assert taken == [False] * 5
    assert await index.lease.acquire("another daemon", LEASE_DURATION) is True  # released


@pytest_twisted.ensureDeferred
async def test_eviction_stops_once_another_daemon_has_taken_its_lapsed_lease(
    caches, tmp_path: Path, logged
) -> None:
    def another_daemon(index: LocalCacheIndex) -> None:
        index.lease.acquire("another daemon", 3600)  # the lease lapsed during the delete

    # One delete outlasts the lease: the others are left to its new holder.
    cache, index = await evicting_slowly(caches, tmp_path, LEASE_DURATION + 10, another_daemon)

    await until(eviction_ended(logged))
    assert cache.evicted == 1
    assert len(await index.held()) == 4


class _FailingDeletes(FilesystemBlobStore):
    def delete(self, key: str) -> Any:
        return fail(StorageUnavailable("File storage unavailable: no reply."))


class _AddsFail(LocalCacheIndex):
    """An index that stops answering additions (Redis failing over during an eviction)."""

    def add(self, key: str, size: int, used: float) -> Any:
        return fail(StoreUnavailable("Metadata store (Redis) unavailable: no reply."))


@pytest_twisted.ensureDeferred
async def test_bytes_an_eviction_could_neither_delete_nor_count_are_counted_at_the_next_start(
    caches, tmp_path: Path, logged
) -> None:
    data = b"z" * 1000
    await already_stored(tmp_path, {1: data})
    index = _AddsFail()
    root = str(tmp_path / "upstream" / "files")
    await caches([index], max_size=500, storage=lambda n: _FailingDeletes(root))
    await until(lambda: succeed(any("uncounted until" in text for text in logged.texts)))
    assert await index.held() == {}  # the bytes are still stored, unknown to the index
    await caches([index])  # a daemon starts, sharing the index: its scan finds them
    assert await index.held() == {proxied(1, data).blob_key: len(data)}
