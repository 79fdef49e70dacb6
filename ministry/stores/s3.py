"""Distribution bytes as objects in an S3-compatible bucket (``--storage s3://...``).

Layout: ``<prefix>/<key>`` for committed blobs, where ``key`` is a
``FileRecord.blob_key``; ``<prefix>/.probe/`` for the health probe's
short-lived objects. New bytes are staged in local files (under the
daemon's data directory: nothing else of a distribution is ever kept on
disk), checked there, then uploaded by :meth:`S3BlobStore.commit`. S3 makes
an object visible only once its upload is complete (a multipart upload
included), so a record claimed after ``commit`` never points at partial
bytes, which is the commit protocol of :mod:`ministry.interfaces`.

boto3 blocks, so every call runs on this store's own bounded thread pool,
never on the reactor; its timeouts and retries are bounded too, so a dead
endpoint answers :class:`StorageUnavailable` within seconds instead of
holding a request (and a pool thread) for minutes. Large files go up in
8 MiB parts, two at a time: memory stays bounded whatever the file size.

Removing unclaimed bytes (:meth:`S3BlobStore.remove_stale`) cannot move the
object aside as the directory store does; S3 has no rename. The delete is
conditional on the ETag judged (``If-Match``, which SeaweedFS and AWS
honour), so different bytes committed meanwhile stay. Identical bytes have
the identical ETag, though (the key carries their sha256), so a commit of
the very same bytes landing between the HEAD and the DELETE (milliseconds,
for bytes no record has claimed for the whole grace period) is lost; its
record is repaired by uploading again, and ``ministry-admin check`` reports
it. Neither SeaweedFS nor AWS's general-purpose buckets honour a delete
conditional on the modification time, which is what would close it.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import boto3
from boto3.exceptions import Boto3Error, RetriesExceededError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.threads import deferToThread, deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from ministry.core.errors import StorageUnavailable
from ministry.core.storage_url import S3Storage
from ministry.interfaces import IBlobStore
from ministry.stores.blobs import (
    LocalCopy,
    LocalStaging,
    StoredBlob,
    is_blob_key,
    key_parts,
    storage_unavailable,
    unavailable,
)

_MIB = 1024 * 1024

#: Parts of 8 MiB, two in flight: a commit holds about 16 MiB, whatever the size.
TRANSFER = TransferConfig(
    multipart_threshold=8 * _MIB,
    multipart_chunksize=8 * _MIB,
    max_concurrency=2,
    num_download_attempts=1,  # the client's own retries are the bound (see below)
)

#: Bounded waits: a stopped endpoint fails a call in about 2 x 5 s, never minutes
#: (downloads too: ``num_download_attempts=1`` above, so s3transfer adds no
#: retries of its own). The read timeout is the longest silence of one socket
#: read, so a healthy endpoint answers a part of 8 MiB well within it; AWS keeps
#: a slow CompleteMultipartUpload alive with whitespace.
_CLIENT_CONFIG = Config(
    s3={"addressing_style": "path"},
    signature_version="s3v4",
    connect_timeout=2,
    read_timeout=5,
    retries={"total_max_attempts": 2, "mode": "standard"},
)

#: Error codes that mean the credentials (or their rights) were refused.
_REFUSED = frozenset(
    {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken"}
)
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


@implementer(IBlobStore)
class S3BlobStore(LocalStaging, Service):
    """:class:`IBlobStore` on a bucket; a Service because it owns a thread pool.

    The tap starts it before its users and stops it after them.
    """

    _log = Logger()

    def __init__(self, storage: S3Storage, staging_dir: str, max_threads: int = 4) -> None:
        self.storage = storage
        self.staging = os.path.abspath(staging_dir)
        self.location = storage.url
        self._max_threads = max_threads
        self._pool: ThreadPool | None = None
        self._client: Any = None

    # -- the service ---------------------------------------------------------

    def startService(self) -> None:
        """Start the pool and build the client, then probe once (logged, never fatal).

        A bucket that is down at start must not stop the daemon: ``/health``
        reports it, and the store recovers by itself when the bucket answers.
        """
        super().startService()
        self._pool = ThreadPool(minthreads=0, maxthreads=self._max_threads, name=self.location)
        self._pool.start()
        self._client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.storage.endpoint,
            region_name=self.storage.region or "us-east-1",
            config=_CLIENT_CONFIG,
        )
        self.probe().addErrback(self._log_probe_failure)

    def stopService(self) -> Deferred[None]:
        """Stop the pool off the reactor: it waits for calls in flight (bounded by timeouts)."""
        super().stopService()
        pool, self._pool = self._pool, None
        return succeed(None) if pool is None else deferToThread(pool.stop)

    def _log_probe_failure(self, failure: Failure) -> None:
        if not failure.check(StorageUnavailable):
            self._log.failure("Probing {location} at start failed", failure, location=self.location)
            return
        self._log.warn(
            "{message} The daemon runs on; /health reports the storage until it answers.",
            message=failure.value.message,
        )

    # -- what is local -------------------------------------------------------

    def object_key(self, key: str) -> str:
        """The object key of blob ``key``: under the prefix; ValueError for unsafe keys."""
        parts = key_parts(key)
        return "/".join([self.storage.prefix, *parts] if self.storage.prefix else parts)

    def presigned_url(
        self, key: str, expires: int = 300, content_type: str | None = None
    ) -> Deferred[str]:
        """A GET URL for blob ``key``, valid ``expires`` seconds, signed on the pool.

        What ``--storage-redirect`` sends downloads to, and what a streamed
        download fetches. Signing sends no request to the bucket, but it
        reads the credentials, and refreshable ones (AssumeRole, web
        identity, instance metadata) are refreshed then, over the network
        and under a lock the pool's threads take too: never on the reactor.
        ``content_type`` is signed in as the answer's type
        (``response-content-type``).
        """
        params = {"Bucket": self.storage.bucket, "Key": self.object_key(key)}
        if content_type is not None:
            params["ResponseContentType"] = content_type
        return self._call("sign a download", self._presign, params, expires)

    # -- what goes to the bucket ---------------------------------------------

    def commit(self, staging_path: str, key: str) -> Deferred[None]:
        """Upload the staged file (multipart when large), then remove it."""
        return self._call("store a file", self._commit, staging_path, self.object_key(key))

    def delete(self, key: str) -> Deferred[None]:
        """Remove the object (S3 answers a delete of a missing key with success)."""
        return self._call("delete a file", self._delete, self.object_key(key))

    def size(self, key: str) -> Deferred[int | None]:
        """The object's size from a HEAD, None when it is missing."""
        return self._call("read a file's size", self._size, self.object_key(key))

    def list_blobs(self) -> Deferred[list[StoredBlob]]:
        """Every blob-shaped object under the prefix (probes and strays left out)."""
        return self._call("list files", self._list_blobs)

    def remove_stale(self, key: str, cutoff: float) -> Deferred[bool]:
        """Remove the object if last written before ``cutoff``, only if still the one judged."""
        return self._call("remove a file", self._remove_stale, self.object_key(key), cutoff)

    def local_copy(self, key: str) -> Deferred[LocalCopy]:
        """Download the object to staging; ``close()`` removes the copy."""
        return self._call("read a file", self._local_copy, key, self.object_key(key))

    def probe(self) -> Deferred[None]:
        """Write and delete a tiny object under the prefix: the bucket takes writes now."""
        return self._call("write", self._probe)

    # -- on the pool ----------------------------------------------------------

    def _call(self, action: str, function: Any, *args: Any) -> Deferred[Any]:
        """Run ``function`` on the pool; botocore errors become StorageUnavailable."""

        def guarded() -> Any:
            try:
                return function(*args)
            except (BotoCoreError, ClientError, Boto3Error) as exc:
                raise self._unavailable(action, exc) from exc
            except FileNotFoundError:  # a missing blob or staging file: the caller's case
                raise
            except OSError as exc:  # the staging disk: full, read-only
                raise unavailable(action, self.staging, exc) from exc

        from twisted.internet import reactor

        if self._pool is None:  # stopping (or never started): refuse, do not crash
            return fail(
                StorageUnavailable(f"File storage unavailable: {self.location} is stopped.")
            )
        return deferToThreadPool(reactor, self._pool, guarded)

    def _s3(self) -> Any:
        if self._client is None:
            raise RuntimeError(f"{self.location}: the blob store is used before it started")
        return self._client

    def _commit(self, staging_path: str, object_key: str) -> None:
        if not os.path.isfile(staging_path):  # a bug upstream, not the bucket
            raise FileNotFoundError(staging_path)
        self._s3().upload_file(staging_path, self.storage.bucket, object_key, Config=TRANSFER)
        self.discard(staging_path)

    def _delete(self, object_key: str) -> None:
        self._s3().delete_object(Bucket=self.storage.bucket, Key=object_key)

    def _head(self, object_key: str) -> dict[str, Any] | None:
        try:
            return self._s3().head_object(Bucket=self.storage.bucket, Key=object_key)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise

    def _size(self, object_key: str) -> int | None:
        head = self._head(object_key)
        return None if head is None else head["ContentLength"]

    def _list_blobs(self) -> list[StoredBlob]:
        prefix = f"{self.storage.prefix}/" if self.storage.prefix else ""
        pages = self._s3().get_paginator("list_objects_v2")
        found = []
        for page in pages.paginate(Bucket=self.storage.bucket, Prefix=prefix):
            for item in page.get("Contents", ()):
                key = item["Key"].removeprefix(prefix)
                if is_blob_key(key):
                    found.append(StoredBlob(key, item["Size"], item["LastModified"].timestamp()))
        return found

    def _remove_stale(self, object_key: str, cutoff: float) -> bool:
        """Judge the object by a HEAD, then delete it only if its ETag is still the one judged."""
        head = self._head(object_key)
        if head is None or head["LastModified"].timestamp() >= cutoff:
            return False
        try:
            self._s3().delete_object(
                Bucket=self.storage.bucket, Key=object_key, IfMatch=head["ETag"]
            )
        except ClientError as exc:
            if _code(exc) in ("PreconditionFailed", "412", *_MISSING):
                return False  # replaced (or removed) since it was judged
            raise
        return True

    def _local_copy(self, key: str, object_key: str) -> LocalCopy:
        path = self.staging_path()
        try:
            self._s3().download_file(self.storage.bucket, object_key, path, Config=TRANSFER)
        except ClientError as exc:
            self.discard(path)
            if _code(exc) in _MISSING:
                raise FileNotFoundError(f"No blob {key} in {self.location}") from None
            raise
        except BaseException:
            self.discard(path)
            raise
        return LocalCopy(path, close=lambda: self.discard(path))

    def _presign(self, params: dict[str, str], expires: int) -> str:
        return self._s3().generate_presigned_url("get_object", Params=params, ExpiresIn=expires)

    def _probe(self) -> None:
        probe_key = f"{self.storage.prefix}/.probe/{uuid.uuid4().hex}".lstrip("/")
        self._s3().put_object(Bucket=self.storage.bucket, Key=probe_key, Body=b"ok")
        self._s3().delete_object(Bucket=self.storage.bucket, Key=probe_key)

    def _unavailable(self, action: str, error: Exception) -> StorageUnavailable:
        """The 503 for a bucket that cannot be used, with a reason a user can act on."""
        return storage_unavailable(action, self.location, _reason(error))


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _reason(error: Exception) -> str:
    """What went wrong, in words: missing bucket, refused credentials, nothing answering.

    botocore's messages never carry the secret key, but they can be long; a
    code we know gets our own words.
    """
    error = _unwrapped(error)
    if isinstance(error, NoCredentialsError):
        return "no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
    if isinstance(error, ConnectTimeoutError | ReadTimeoutError):
        return "the endpoint timed out (it accepts no connection or does not answer)"
    if isinstance(error, EndpointConnectionError):
        return "nothing listens at the endpoint"
    if isinstance(error, ConnectionClosedError):
        return "the endpoint closed the connection"
    if isinstance(error, ClientError):
        code = _code(error)
        if code == "NoSuchBucket":
            return "the bucket does not exist"
        if code in _REFUSED:
            return f"the credentials were refused ({code})"
        message = error.response.get("Error", {}).get("Message", "")
        return f"{code} {message}".strip()
    return str(error)


def _unwrapped(error: Exception) -> Exception:
    """The botocore error inside boto3's transfer wrappers (which only say "failed")."""
    if isinstance(error, RetriesExceededError) and error.last_exception is not None:
        return error.last_exception
    if isinstance(error, Boto3Error) and isinstance(error.__context__, Exception):
        return error.__context__
    return error
