"""Distribution bytes as plain files under one directory.

Layout: ``<root>/<key>`` for committed blobs (``FileRecord.blob_key``:
``ab/cd/<rest of sha256>/<filename>``) and ``<root>/.staging/`` for uploads
in progress. Staging inside the root keeps it on the same filesystem, so
committing is a rename: a reader sees either no file or the whole file, and
a file is renamed into place only after its bytes are fsynced (the invariant
that an index never lists bytes that a crash could lose).

Several processes may share the root (a network mount): nothing here keeps
state in memory, and two processes committing the same key write the same
bytes, because the key contains their sha256.

Bytes that no record claims (an upload whose claim timed out, a crash
between commit and claim) are found by :meth:`FilesystemBlobStore.list_blobs`
and removed by :meth:`FilesystemBlobStore.remove_stale`, which moves the
file aside before judging its age, so that a concurrent commit of the same
key is never lost (see ``ministry.integrity``).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from zope.interface import implementer

from ministry.core.errors import StorageUnavailable
from ministry.interfaces import IBlobStore

STAGING = ".staging"

#: The directories of a blob key (``ab/cd/<rest of sha256>``): anything else
#: under the root is not a blob, and is never listed (nor collected).
_KEY_DIRECTORIES = tuple(re.compile(f"[0-9a-f]{{{n}}}") for n in (2, 2, 60))

#: Staging names: this process's random token and a counter. A name costs
#: no system call (a uuid4 reads the kernel's random source); the pid keeps
#: a forked child's names apart from its parent's, the token another host's
#: on a shared directory.
_STAGING_TOKEN = uuid.uuid4().hex[:16]
_STAGED = itertools.count()

#: How often commit retries when a concurrent delete pruned the directory it
#: just created; one retry is almost always enough.
_COMMIT_ATTEMPTS = 3


@dataclass(frozen=True)
class StoredBlob:
    """A committed blob as found on disk."""

    key: str
    size: int
    mtime: float  # seconds since the epoch, as time.time()


@dataclass(frozen=True)
class LocalCopy:
    """A committed blob as a local file (see ``IBlobStore.local_copy``).

    ``close`` removes the file when it is a downloaded copy; for a directory
    store it does nothing, since ``path`` is the blob itself.
    """

    path: str
    close: Callable[[], None] = field(default=lambda: None)


def unavailable(action: str, where: str, error: OSError) -> StorageUnavailable:
    """The 503 for a directory that cannot be written: full, read-only, gone."""
    return storage_unavailable(action, where, error.strerror or str(error))


def storage_unavailable(action: str, where: str, reason: str) -> StorageUnavailable:
    """The 503 for storage that cannot be used now: what failed, where, and why.

    The one wording of every such refusal, whether a directory, a bucket or
    the delivery of an object from it refuses: a user sees the same words
    and the same location whichever host or path answered.
    """
    return StorageUnavailable(f"File storage unavailable: cannot {action} in {where}: {reason}.")


def key_parts(key: str) -> list[str]:
    """The ``/``-separated parts of a key; ValueError for one that could leave its root.

    Keys come from records, which come from uploaded filenames: absolute
    keys, empty parts and parts starting with a dot (``..``, ``.``, the
    staging directory, a probe's folder) are refused by every store alike.
    """
    parts = key.split("/")
    if key.startswith("/") or any(not part or part.startswith(".") for part in parts):
        raise ValueError(f"Refusing blob key {key!r}: it would leave the blob root")
    return parts


def is_blob_key(key: str) -> bool:
    """Whether ``key`` has the shape of a ``FileRecord.blob_key``: only those are listed.

    ``ab/cd/<rest of sha256>/<filename>``; anything else in a store (a probe,
    a stray file) is neither listed nor collected.
    """
    *directories, filename = key.split("/")
    return (
        len(directories) == len(_KEY_DIRECTORIES)
        and all(map(re.Pattern.fullmatch, _KEY_DIRECTORIES, directories))
        and bool(filename)
        and not filename.startswith(".")
    )


def remove_old_files(directory: str, older_than_seconds: float) -> int:
    """Remove the files in ``directory`` older than that; return how many (staging clean-up)."""
    cutoff = time.time() - older_than_seconds
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for entry in entries:
        with contextlib.suppress(FileNotFoundError):
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                os.remove(entry.path)
                removed += 1
    return removed


class LocalStaging:
    """New bytes staged in local files under ``self.staging``: both blob stores stage alike.

    A directory store stages inside its root (a commit is then a rename); a
    bucket stages under the data directory and uploads from there.
    """

    staging: str
    _staging_made = False

    def staging_path(self) -> str:
        """A new, unused path in the staging directory (made at the first call).

        The file itself is not created: the uploader opens it for writing.
        Called on the reactor for every upload and download, so it makes
        no system call after the first: the staging directory is never
        removed while the store runs (the collector removes files only).
        """
        if not self._staging_made:
            os.makedirs(self.staging, exist_ok=True)
            self._staging_made = True
        name = f"{_STAGING_TOKEN}-{os.getpid()}-{next(_STAGED)}.part"
        return os.path.join(self.staging, name)

    def discard(self, staging_path: str) -> None:
        """Remove a staged file; an upload that failed must not fail twice."""
        with contextlib.suppress(OSError):
            os.remove(staging_path)

    def cleanup_staging(self, older_than_seconds: float) -> int:
        """Remove staged files older than ``older_than_seconds``; return how many.

        Leftovers come from crashed uploads (and a bucket's downloaded
        copies). The age limit spares uploads in flight in other processes
        sharing the directory (an upload writes to its staging file until its
        body ends). Synchronous: the collector calls it on a thread.
        """
        return remove_old_files(self.staging, older_than_seconds)


@implementer(IBlobStore)
class FilesystemBlobStore(LocalStaging):
    """:class:`IBlobStore` on a local or shared directory.

    ``refetchable``: its bytes can be fetched again and are checked when
    they are (the proxy's cache, ``upstream/files``). A commit still fsyncs
    the file before renaming it into place, so a file found after a crash
    is whole, but not the directories: a crash may lose a file just kept,
    which is a miss, fetched again (the cache asks the blob store about a
    held file at its first use in a process). A mirror pass of small files
    spent a tenth of its time in those directory fsyncs. Uploads, which
    nothing can fetch again, keep every fsync.
    """

    def __init__(self, root: str, *, refetchable: bool = False) -> None:
        self.root = os.path.abspath(root)
        self.refetchable = refetchable
        self.staging = os.path.join(self.root, STAGING)
        self.location = f"file:{self.root}"

    def local_path(self, key: str) -> str:
        """The path of ``key`` under the root.

        Keys come from records, which come from uploaded filenames, so a key
        that could leave the root is refused rather than cleaned: ``ValueError``
        for absolute keys, empty parts, and any part starting with a dot
        (``..``, ``.`` and the staging directory among them).
        """
        return os.path.join(self.root, *key_parts(key))

    def commit(self, staging_path: str, key: str) -> Deferred[None]:
        """Fsync the staged file, rename it to ``key`` and fsync the directory."""
        return self._in_thread("store a file", self._rename_into_place, staging_path, key)

    def local_copy(self, key: str) -> Deferred[LocalCopy]:
        """The blob's own path (nothing to copy): FileNotFoundError if it is missing."""
        return self._in_thread("read a file", self._local_copy, key)

    def probe(self) -> Deferred[None]:
        """Create, write, fsync and remove a file where uploads are staged."""
        return deferToThread(self._probe)

    def delete(self, key: str) -> Deferred[None]:
        """Remove a committed blob and the directories it leaves empty."""
        return self._in_thread("delete a file", self._delete, key)

    def size(self, key: str) -> Deferred[int | None]:
        """The committed blob's size, or None when it is missing."""
        return self._in_thread("read a file", self._size, key)

    def list_blobs(self) -> Deferred[list[StoredBlob]]:
        """Every committed blob under the root (staging and strays left out)."""
        return self._in_thread("list files", lambda: list(self._walk(self.root, 0)))

    def remove_stale(self, key: str, cutoff: float) -> Deferred[bool]:
        """Remove the blob ``key`` if it was last written before ``cutoff``."""
        return self._in_thread("delete a file", self._remove_stale, key, cutoff)

    def _local_copy(self, key: str) -> LocalCopy:
        path = self.local_path(key)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No blob {key} in {self.location}")
        return LocalCopy(path)

    def _probe(self) -> None:
        path = os.path.join(self.staging, f"health-{os.getpid()}-{uuid.uuid4().hex}.probe")
        try:
            os.makedirs(self.staging, exist_ok=True)
            with open(path, "wb") as probe:
                probe.write(b"ok")
                probe.flush()
                os.fsync(probe.fileno())
            os.unlink(path)
        except OSError as exc:
            raise unavailable("write", self.root, exc) from exc

    def _size(self, key: str) -> int | None:
        try:
            return os.stat(self.local_path(key)).st_size
        except FileNotFoundError:
            return None

    def _walk(self, directory: str, depth: int) -> Iterator[StoredBlob]:
        """The blobs below ``directory``, ``depth`` levels under the root."""
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:  # pruned by a concurrent delete
            return
        for entry in entries:
            if depth < len(_KEY_DIRECTORIES):
                if _KEY_DIRECTORIES[depth].fullmatch(entry.name) and entry.is_dir(
                    follow_symlinks=False
                ):
                    yield from self._walk(entry.path, depth + 1)
                continue
            with contextlib.suppress(FileNotFoundError):
                if not entry.name.startswith(".") and entry.is_file(follow_symlinks=False):
                    stat = entry.stat(follow_symlinks=False)
                    key = os.path.relpath(entry.path, self.root).replace(os.sep, "/")
                    yield StoredBlob(key, stat.st_size, stat.st_mtime)

    def _remove_stale(self, key: str, cutoff: float) -> bool:
        """Move the blob aside, then judge the file moved: put it back if it is fresh.

        Judging the path and then removing it would race with an upload
        committing the same key in between (a rename over it): its fresh
        file would be removed and its record left without bytes. The file
        moved aside is exactly the file judged.
        """
        path = self.local_path(key)
        os.makedirs(self.staging, exist_ok=True)
        aside = os.path.join(self.staging, f"{uuid.uuid4().hex}.stale")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return False
        if os.stat(aside).st_mtime >= cutoff:
            self._make_parents(path)
            os.replace(aside, path)  # same key, same bytes, whatever came meanwhile
            return False
        os.remove(aside)
        self._prune(os.path.dirname(path))
        return True

    def _in_thread(self, action: str, function: Callable[..., Any], *args: Any) -> Deferred[Any]:
        """Run ``function`` in a thread; a failing disk becomes StorageUnavailable.

        FileNotFoundError stays itself: a missing blob or staging file is
        the caller's case (None, a bug), not the disk's.
        """

        def guarded() -> Any:
            try:
                return function(*args)
            except FileNotFoundError:
                raise
            except OSError as exc:
                raise unavailable(action, self.root, exc) from exc

        return deferToThread(guarded)

    def _rename_into_place(self, staging_path: str, key: str) -> None:
        target = self.local_path(key)
        _fsync_file(staging_path)
        for attempt in range(1, _COMMIT_ATTEMPTS + 1):
            try:
                self._make_parents(target)
                os.replace(staging_path, target)
                break
            except FileNotFoundError:
                # Either the staged file is gone (a real error) or a concurrent
                # delete pruned a directory between mkdir and rename: retry.
                if attempt == _COMMIT_ATTEMPTS or not os.path.exists(staging_path):
                    raise
        self._fsync_names(os.path.dirname(target))

    def _make_parents(self, target: str) -> None:
        """Create ``target``'s missing parents, durably: each new entry fsynced."""
        missing = []
        directory = os.path.dirname(target)
        while not os.path.isdir(directory):
            missing.append(directory)
            directory = os.path.dirname(directory)
        for directory in reversed(missing):
            with contextlib.suppress(FileExistsError):
                os.mkdir(directory)
            self._fsync_names(os.path.dirname(directory))

    def _fsync_names(self, directory: str) -> None:
        """Make a directory's new entries durable, unless its files can be fetched again."""
        if not self.refetchable:
            _fsync_directory(directory)

    def _delete(self, key: str) -> None:
        path = self.local_path(key)
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        self._prune(os.path.dirname(path))

    def _prune(self, directory: str) -> None:
        """Remove ``directory`` and its parents below the root while they are empty."""
        while directory != self.root:
            try:
                os.rmdir(directory)
            except OSError:  # not empty (another blob), or already gone
                return
            directory = os.path.dirname(directory)


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(path: str) -> None:
    """Make a directory's entries (a rename, a new subdirectory) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
