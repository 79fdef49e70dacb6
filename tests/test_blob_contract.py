"""One contract for every blob store: a directory and an S3 bucket behave alike.

:class:`BlobStoreContract` holds the tests (in the style of tahoe-lafs'
mixins); each store subclasses it once and says, through a few hooks, how
to build itself, a broken copy of itself, and a stray object. The S3 store
runs on a real SeaweedFS endpoint (the session's ``s3_server``), one fresh
bucket per test. What only an object store can get wrong (multipart
uploads, memory while uploading, a stopped endpoint, refused credentials,
presigned URLs) is tested below the contract, on the S3 store alone.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
import tracemalloc
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import pytest_twisted
from servers import free_port
from twisted.internet.defer import DeferredList, maybeDeferred
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThread
from zope.interface.verify import verifyObject

from ministry.core.errors import StorageUnavailable
from ministry.core.models import FileRecord, utcnow
from ministry.core.storage_url import S3Storage
from ministry.interfaces import IBlobStore
from ministry.stores.blobs import FilesystemBlobStore
from ministry.stores.s3 import S3BlobStore

if TYPE_CHECKING:
    from recorder import Recorder
    from s3_server import S3Server

PAYLOAD = bytes(range(256)) * 1000 + b"\x00 trailing"
_MIB = 1024 * 1024


def blob_key(filename: str = "demo_pkg-1.0.tar.gz", sha256: str = "ab" * 32) -> str:
    """The key a record of ``filename`` with that sha256 has (the real key shape)."""
    record = FileRecord(
        project="demo-pkg",
        filename=filename,
        version="1.0",
        packagetype="sdist",
        size=len(PAYLOAD),
        sha256=sha256,
        blake2b_256="",
        md5="",
        upload_time=utcnow(),
    )
    return record.blob_key


def stage(blobs: IBlobStore, data: bytes = PAYLOAD) -> str:
    """A staged file holding ``data``, as an upload leaves it before commit."""
    path = blobs.staging_path()
    Path(path).write_bytes(data)
    return path


def start(blobs: IBlobStore) -> None:
    """Start a store that is a service (the S3 one owns a thread pool)."""
    if hasattr(blobs, "startService"):
        blobs.startService()


def stop(blobs: IBlobStore) -> None:
    if hasattr(blobs, "stopService"):
        pytest_twisted.blockon(maybeDeferred(blobs.stopService))


def running(store: IBlobStore) -> Iterator[IBlobStore]:
    """``store`` started for one test, stopped after it."""
    start(store)
    yield store
    stop(store)


class BlobStoreContract:
    """The tests every IBlobStore passes; subclasses implement the hooks."""

    def make_blobs(self, request: pytest.FixtureRequest) -> IBlobStore:
        """A new, empty, working store."""
        raise NotImplementedError

    def make_unwritable_blobs(self, request: pytest.FixtureRequest) -> IBlobStore:
        """A store whose staging works but whose commits fail."""
        raise NotImplementedError

    def make_broken_blobs(self, request: pytest.FixtureRequest) -> IBlobStore:
        """A store whose probe fails (its storage is gone)."""
        raise NotImplementedError

    def put_stray(self, blobs: IBlobStore, name: str) -> None:
        """Put something that is not a blob at ``name`` (a stray file, a stray object)."""
        raise NotImplementedError

    @pytest.fixture
    def blobs(self, request: pytest.FixtureRequest) -> Iterator[IBlobStore]:
        yield from running(self.make_blobs(request))

    @pytest.fixture
    def unwritable(self, request: pytest.FixtureRequest) -> Iterator[IBlobStore]:
        yield from running(self.make_unwritable_blobs(request))

    @pytest.fixture
    def broken(self, request: pytest.FixtureRequest) -> Iterator[IBlobStore]:
        yield from running(self.make_broken_blobs(request))

    def test_provides_the_interface(self, blobs: IBlobStore) -> None:
        assert verifyObject(IBlobStore, blobs)

    @pytest_twisted.ensureDeferred
    async def test_commit_then_the_same_bytes_come_back(self, blobs: IBlobStore) -> None:
        staged = stage(blobs)
        key = blob_key()
        await blobs.commit(staged, key)

        assert not os.path.exists(staged)
        assert await blobs.size(key) == len(PAYLOAD)
        copy = await blobs.local_copy(key)
        assert Path(copy.path).read_bytes() == PAYLOAD
        copy.close()
        assert await blobs.size(key) == len(PAYLOAD)  # closing a copy keeps the blob

    @pytest_twisted.ensureDeferred
    async def test_commit_of_the_same_key_again_keeps_the_bytes(self, blobs: IBlobStore) -> None:
        key = blob_key()
        await blobs.commit(stage(blobs), key)
        await blobs.commit(stage(blobs), key)
        copy = await blobs.local_copy(key)
        assert Path(copy.path).read_bytes() == PAYLOAD
        copy.close()

    @pytest_twisted.ensureDeferred
    async def test_commit_of_a_missing_staged_file_fails(self, blobs: IBlobStore) -> None:
        with pytest.raises(FileNotFoundError):
            await blobs.commit(blobs.staging_path(), blob_key())

    @pytest_twisted.ensureDeferred
    async def test_a_failed_commit_keeps_the_staged_file(self, unwritable: IBlobStore) -> None:
        staged = stage(unwritable)
        with pytest.raises(StorageUnavailable, match="cannot store a file in"):
            await unwritable.commit(staged, blob_key())
        assert Path(staged).read_bytes() == PAYLOAD
        unwritable.discard(staged)
        assert not os.path.exists(staged)

    def test_discard_never_raises(self, blobs: IBlobStore) -> None:
        staged = stage(blobs)
        blobs.discard(staged)
        assert not os.path.exists(staged)
        blobs.discard(staged)
        blobs.discard(blobs.staging_path())

    @pytest.mark.parametrize(
        "key",
        ["/etc/passwd", "../outside", "ab/../../outside", "ab//cd", "", "ab/./cd", ".staging/x"],
    )
    @pytest_twisted.ensureDeferred
    async def test_keys_that_could_escape_are_refused(self, blobs: IBlobStore, key: str) -> None:
        staged = stage(blobs)
        with pytest.raises(ValueError, match="Refusing blob key"):
            await blobs.commit(staged, key)
        assert os.path.exists(staged)
        with pytest.raises(ValueError, match="Refusing blob key"):
            await blobs.delete(key)

    @pytest_twisted.ensureDeferred
    async def test_delete_removes_only_that_blob(self, blobs: IBlobStore) -> None:
        kept, deleted = blob_key("demo_pkg-1.0.tar.gz"), blob_key("demo_pkg-2.0.tar.gz")
        await blobs.commit(stage(blobs), kept)
        await blobs.commit(stage(blobs), deleted)

        await blobs.delete(deleted)

        assert await blobs.size(deleted) is None
        assert await blobs.size(kept) == len(PAYLOAD)
        await blobs.delete(deleted)  # missing is fine

    @pytest_twisted.ensureDeferred
    async def test_size_of_a_missing_blob_is_none(self, blobs: IBlobStore) -> None:
        assert await blobs.size(blob_key()) is None

    @pytest_twisted.ensureDeferred
    async def test_list_blobs_lists_only_blob_shaped_keys(self, blobs: IBlobStore) -> None:
        first, second = blob_key("a-1.0.tar.gz"), blob_key("b-1.0.tar.gz", sha256="cd" * 32)
        before = time.time()
        await blobs.commit(stage(blobs), first)
        await blobs.commit(stage(blobs, b"small"), second)
        for stray in ("README", "ab/cd/short/x.tar.gz", f"ab/ab/{'ab' * 30}/.hidden"):
            self.put_stray(blobs, stray)
        await blobs.probe()

        found = {blob.key: blob for blob in await blobs.list_blobs()}

        assert sorted(found) == sorted([first, second])
        assert found[first].size == len(PAYLOAD)
        assert found[second].size == len(b"small")
        assert before - 2 <= found[first].mtime <= time.time() + 2

    @pytest_twisted.ensureDeferred
    async def test_list_blobs_of_an_empty_store(self, blobs: IBlobStore) -> None:
        assert await blobs.list_blobs() == []

    @pytest_twisted.ensureDeferred
    async def test_remove_stale_keeps_fresh_bytes_and_removes_old(self, blobs: IBlobStore) -> None:
        key = blob_key()
        await blobs.commit(stage(blobs), key)

        assert await blobs.remove_stale(key, cutoff=time.time() - 3600) is False
        assert await blobs.size(key) == len(PAYLOAD)

        assert await blobs.remove_stale(key, cutoff=time.time() + 5) is True
        assert await blobs.size(key) is None
        assert await blobs.remove_stale(key, cutoff=time.time() + 5) is False

    @pytest_twisted.ensureDeferred
    async def test_local_copy_of_a_missing_blob(self, blobs: IBlobStore) -> None:
        with pytest.raises(FileNotFoundError):
            await blobs.local_copy(blob_key())

    @pytest_twisted.ensureDeferred
    async def test_probe_of_a_working_store(self, blobs: IBlobStore) -> None:
        await blobs.probe()
        assert await blobs.list_blobs() == []  # the probe leaves nothing behind

    @pytest_twisted.ensureDeferred
    async def test_probe_of_a_broken_store_says_where(self, broken: IBlobStore) -> None:
        with pytest.raises(StorageUnavailable) as refused:
            await broken.probe()
        assert broken.location.removeprefix("file:") in refused.value.message

    @pytest_twisted.ensureDeferred
    async def test_a_broken_store_refuses_changes_with_a_503(self, broken: IBlobStore) -> None:
        # A 503 with the reason, never an OSError or botocore error (a 500).
        with pytest.raises(StorageUnavailable, match="cannot delete a file"):
            await broken.delete(blob_key())

    def test_cleanup_staging_removes_only_old_leftovers(self, blobs: IBlobStore) -> None:
        assert blobs.cleanup_staging(older_than_seconds=0) == 0  # nothing staged yet
        old, new = stage(blobs), stage(blobs)
        an_hour_ago = time.time() - 3600
        os.utime(old, (an_hour_ago, an_hour_ago))

        assert blobs.cleanup_staging(older_than_seconds=600) == 1
        assert not os.path.exists(old)
        assert os.path.exists(new)


class TestFilesystemBlobStore(BlobStoreContract):
    """The directory store (the default)."""

    def make_blobs(self, request: pytest.FixtureRequest) -> IBlobStore:
        return FilesystemBlobStore(str(request.getfixturevalue("tmp_path") / "blobs"))

    def make_unwritable_blobs(self, request: pytest.FixtureRequest) -> IBlobStore:
        """A file where the keys' first directory must go (running as root, chmod is moot)."""
        root = request.getfixturevalue("tmp_path") / "blobs"
        root.mkdir()
        (root / blob_key()[:2]).write_bytes(b"in the way")
        return FilesystemBlobStore(str(root))

    def make_broken_blobs(self, request: pytest.FixtureRequest) -> IBlobStore:
        """A root below a regular file: no directory can ever be made there."""
        not_a_directory = request.getfixturevalue("tmp_path") / "file"
        not_a_directory.write_bytes(b"")
        return FilesystemBlobStore(str(not_a_directory / "blobs"))

    def put_stray(self, blobs: IBlobStore, name: str) -> None:
        path = Path(blobs.location.removeprefix("file:"), name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"stray")


class TestS3BlobStore(BlobStoreContract):
    """The bucket store on a real SeaweedFS, a fresh bucket (and a prefix) per test."""

    def make_blobs(self, request: pytest.FixtureRequest) -> IBlobStore:
        self.server = request.getfixturevalue("s3_server")
        storage = S3Storage(
            request.getfixturevalue("s3_bucket"), "index/files", self.server.endpoint
        )
        return S3BlobStore(storage, str(request.getfixturevalue("tmp_path") / "staging"))

    def make_unwritable_blobs(self, request: pytest.FixtureRequest) -> IBlobStore:
        """A bucket that does not exist: staging still works, nothing can be stored."""
        request.getfixturevalue("s3_bucket")  # the credentials, and a running server
        storage = S3Storage(
            "no-such-bucket", "files", request.getfixturevalue("s3_server").endpoint
        )
        return S3BlobStore(storage, str(request.getfixturevalue("tmp_path") / "staging"))

    def make_broken_blobs(self, request: pytest.FixtureRequest) -> IBlobStore:
        return self.make_unwritable_blobs(request)

    def put_stray(self, blobs: IBlobStore, name: str) -> None:
        assert isinstance(blobs, S3BlobStore)
        key = f"{blobs.storage.prefix}/{name}"
        self.server.client().put_object(Bucket=blobs.storage.bucket, Key=key, Body=b"stray")


# -- what only an object store can get wrong ----------------------------------


def s3_store(server: S3Server, bucket: str, tmp_path: Path, **where: str | None) -> S3BlobStore:
    """An S3BlobStore on ``bucket`` (``where`` overrides prefix or endpoint), started."""
    storage = S3Storage(
        bucket, where.get("prefix", "files"), where.get("endpoint", server.endpoint)
    )
    store = S3BlobStore(storage, str(tmp_path / "staging"))
    store.startService()
    return store


@pytest.fixture
def s3_blobs(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> Iterator[S3BlobStore]:
    store = s3_store(s3_server, s3_bucket, tmp_path)
    yield store
    stop(store)


def write_random(path: Path, size: int) -> None:
    with open(path, "wb") as out:
        for _ in range(size // _MIB):
            out.write(os.urandom(_MIB))


@pytest_twisted.ensureDeferred
async def test_a_large_commit_goes_up_in_parts_with_bounded_memory(
    s3_blobs: S3BlobStore, s3_server: S3Server
) -> None:
    size = 20 * _MIB
    staged = s3_blobs.staging_path()
    write_random(Path(staged), size)
    key = blob_key("big-1.0.tar.gz")

    tracemalloc.start()
    try:
        await s3_blobs.commit(staged, key)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    head = s3_server.client().head_object(Bucket=s3_blobs.storage.bucket, Key=f"files/{key}")
    assert head["ETag"].strip('"').endswith("-3")  # three 8 MiB parts (the last one short)
    assert head["ContentLength"] == size
    assert peak < size / 2, f"a {size} byte commit allocated {peak} bytes at its peak"


@pytest_twisted.ensureDeferred
async def test_a_stopped_endpoint_fails_in_bounded_time(
    s3_blobs: S3BlobStore, s3_server: S3Server
) -> None:
    key = blob_key()
    await s3_blobs.commit(stage(s3_blobs), key)  # connections are open and warm
    staged = stage(s3_blobs)
    s3_server.pause()
    began = time.monotonic()
    try:
        results = await DeferredList(
            [s3_blobs.size(key), s3_blobs.commit(staged, blob_key("other-1.0.tar.gz"))],
            consumeErrors=True,
        )
    finally:
        s3_server.resume()
    elapsed = time.monotonic() - began

    assert elapsed < 15
    for succeeded, failure in results:
        assert not succeeded
        failure.trap(StorageUnavailable)
        assert "timed out" in failure.value.message
        assert s3_blobs.location in failure.value.message
    assert os.path.exists(staged)
    assert await s3_blobs.size(key) == len(PAYLOAD)  # and back by itself


@pytest_twisted.ensureDeferred
async def test_nothing_listening_is_named(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    store = s3_store(s3_server, s3_bucket, tmp_path, endpoint=endpoint)
    try:
        began = time.monotonic()
        with pytest.raises(StorageUnavailable, match="nothing listens at the endpoint"):
            await store.probe()
        assert time.monotonic() - began < 15
        # Signing a download is local: it works whether the endpoint answers or not.
        url = await store.presigned_url(blob_key())
        assert url.startswith(f"{endpoint}/{s3_bucket}/files/ab/ab/")
        assert "X-Amz-Signature=" in url
    finally:
        await store.stopService()


@pytest_twisted.ensureDeferred
async def test_refused_credentials_are_named_and_the_secret_never(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-at-all")
    store = s3_store(s3_server, s3_bucket, tmp_path)
    try:
        with pytest.raises(StorageUnavailable, match="credentials were refused") as refused:
            await store.probe()
        staged = stage(store)
        with pytest.raises(StorageUnavailable, match="credentials were refused"):
            await store.commit(staged, blob_key())
        assert os.path.exists(staged)
    finally:
        await store.stopService()
    assert "not-the-secret-at-all" not in refused.value.message


@pytest_twisted.ensureDeferred
async def test_a_missing_bucket_is_named(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    store = S3BlobStore(
        S3Storage("no-such-bucket", "files", s3_server.endpoint), str(tmp_path / "staging")
    )
    store.startService()
    try:
        with pytest.raises(StorageUnavailable, match="the bucket does not exist"):
            await store.probe()
    finally:
        await store.stopService()


@pytest_twisted.ensureDeferred
async def test_a_failed_probe_at_start_is_one_line_in_the_log(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, logged: Recorder
) -> None:
    store = S3BlobStore(
        S3Storage("no-such-bucket", "files", s3_server.endpoint), str(tmp_path / "staging")
    )
    store.startService()
    await store.stopService()  # waits for the start's probe to finish

    warnings = [text for text in logged.texts if "no-such-bucket" in text]
    assert len(warnings) == 1
    assert "the bucket does not exist" in warnings[0]
    assert "\n" not in warnings[0]
    assert logged.failures == []
    assert store.running == 0


@pytest_twisted.ensureDeferred
async def test_a_presigned_url_serves_the_bytes_and_ranges(s3_blobs: S3BlobStore) -> None:
    key = blob_key()
    await s3_blobs.commit(stage(s3_blobs), key)
    url = await s3_blobs.presigned_url(key, expires=60)
    assert await deferToThread(read_url, url) == (200, PAYLOAD)
    assert await deferToThread(read_url, url, {"Range": "bytes=10-19"}) == (206, PAYLOAD[10:20])


def read_url(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """(status, body) of a GET of ``url``, blocking: for a thread."""
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {})) as response:
        return response.status, response.read()


#: A credential_process whose credentials expire within a minute: boto3 runs it
#: again (taking a second) whenever it signs, as it refreshes an AssumeRole's.
_SLOW_CREDENTIALS = """\
import datetime, json, sys, time
time.sleep(1)
expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=60)
json.dump({"Version": 1, "AccessKeyId": sys.argv[1], "SecretAccessKey": sys.argv[2],
           "Expiration": expires.isoformat()}, sys.stdout)
"""


@pytest_twisted.ensureDeferred
async def test_signing_with_refreshing_credentials_leaves_the_reactor_free(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    """A refresh over the network happens on the store's pool, never on the reactor."""
    script = tmp_path / "credentials.py"
    script.write_text(_SLOW_CREDENTIALS)
    config = tmp_path / "aws-config"
    access, secret = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
    config.write_text(
        f"[profile slow]\ncredential_process = {sys.executable} {script} {access} {secret}\n"
    )
    with pytest.MonkeyPatch.context() as environment:  # the client keeps its credentials
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            environment.delenv(name)
        environment.setenv("AWS_CONFIG_FILE", str(config))
        environment.setenv("AWS_PROFILE", "slow")
        store = s3_store(s3_server, s3_bucket, tmp_path)
    try:
        key = blob_key()
        await store.commit(stage(store), key)
        ticks: list[float] = []
        ticking = LoopingCall(lambda: ticks.append(time.monotonic()))
        ticking.start(0.05)
        began = time.monotonic()
        try:
            url = await store.presigned_url(key)
        finally:
            ticking.stop()
        assert time.monotonic() - began >= 0.9  # the credentials were refreshed
        assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.5
        assert await deferToThread(read_url, url) == (200, PAYLOAD)  # signed with fresh keys
    finally:
        await store.stopService()


@pytest_twisted.ensureDeferred
async def test_prefixes_keep_stores_in_one_bucket_apart(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    """The tap puts uploads and proxied files side by side: neither lists the other."""
    uploads = s3_store(s3_server, s3_bucket, tmp_path, prefix="index/files")
    upstream = s3_store(s3_server, s3_bucket, tmp_path, prefix="index/upstream")
    try:
        await uploads.commit(stage(uploads), blob_key("mine-1.0.tar.gz"))
        await upstream.commit(stage(upstream), blob_key("theirs-1.0.tar.gz"))
        assert [blob.key for blob in await uploads.list_blobs()] == [blob_key("mine-1.0.tar.gz")]
        assert await upstream.size(blob_key("mine-1.0.tar.gz")) is None
    finally:
        await uploads.stopService()
        await upstream.stopService()


@pytest_twisted.ensureDeferred
async def test_remove_stale_leaves_bytes_replaced_after_they_were_judged(
    s3_blobs: S3BlobStore, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The delete is conditional on the ETag judged: other bytes committed since stay."""
    key = blob_key()
    await s3_blobs.commit(stage(s3_blobs), key)
    judged = s3_blobs._head(f"files/{key}")
    await s3_blobs.commit(stage(s3_blobs, b"other bytes, committed meanwhile"), key)
    monkeypatch.setattr(s3_blobs, "_head", lambda object_key: judged)

    assert await s3_blobs.remove_stale(key, cutoff=time.time() + 5) is False
    head = s3_server.client().head_object(Bucket=s3_blobs.storage.bucket, Key=f"files/{key}")
    assert head["ContentLength"] == len(b"other bytes, committed meanwhile")


def test_location_is_the_url_without_credentials(tmp_path: Path) -> None:
    storage = S3Storage("bucket", "a/b", "http://127.0.0.1:9", "eu-west-1")
    store = S3BlobStore(storage, str(tmp_path / "staging"))
    assert store.location == "s3://bucket/a/b?endpoint=http://127.0.0.1:9&region=eu-west-1"
    assert list(tmp_path.iterdir()) == []  # construction touches nothing
