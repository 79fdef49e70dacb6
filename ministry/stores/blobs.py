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
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from zope.interface import implementer

from ministry.interfaces import IBlobStore

STAGING = ".staging"

#: How often commit retries when a concurrent delete pruned the directory it
#: just created; one retry is almost always enough.
_COMMIT_ATTEMPTS = 3


@implementer(IBlobStore)
class FilesystemBlobStore:
    """:class:`IBlobStore` on a local or shared directory."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.staging = os.path.join(self.root, STAGING)

    def staging_path(self) -> str:
        """A new, unused path in the staging directory (created if missing).

        The file itself is not created: the uploader opens it for writing.
        """
        os.makedirs(self.staging, exist_ok=True)
        return os.path.join(self.staging, f"{uuid.uuid4().hex}.part")

    def local_path(self, key: str) -> str:
        """The path of ``key`` under the root.

        Keys come from records, which come from uploaded filenames, so a key
        that could leave the root is refused rather than cleaned: ``ValueError``
        for absolute keys, empty parts, and any part starting with a dot
        (``..``, ``.`` and the staging directory among them).
        """
        parts = key.split("/")
        if key.startswith("/") or any(not part or part.startswith(".") for part in parts):
            raise ValueError(f"Refusing blob key {key!r}: it would leave the blob root")
        return os.path.join(self.root, *parts)

    def commit(self, staging_path: str, key: str) -> Deferred[None]:
        """Fsync the staged file, rename it to ``key`` and fsync the directory."""
        return deferToThread(self._commit, staging_path, key)

    def discard(self, staging_path: str) -> None:
        """Remove a staged file; an upload that failed must not fail twice."""
        with contextlib.suppress(OSError):
            os.remove(staging_path)

    def delete(self, key: str) -> Deferred[None]:
        """Remove a committed blob and the directories it leaves empty."""
        return deferToThread(self._delete, key)

    def cleanup_staging(self, older_than_seconds: float) -> int:
        """Remove staged files older than ``older_than_seconds``; return how many.

        Leftovers come from crashed uploads. The age limit spares uploads in
        flight in other processes sharing the root. Synchronous: meant to be
        called once at start-up, before the reactor serves anything.
        """
        cutoff = time.time() - older_than_seconds
        removed = 0
        try:
            entries = list(os.scandir(self.staging))
        except FileNotFoundError:
            return 0
        for entry in entries:
            with contextlib.suppress(FileNotFoundError):
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                    os.remove(entry.path)
                    removed += 1
        return removed

    def _commit(self, staging_path: str, key: str) -> None:
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
        _fsync_directory(os.path.dirname(target))

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
            _fsync_directory(os.path.dirname(directory))

    def _delete(self, key: str) -> None:
        path = self.local_path(key)
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        directory = os.path.dirname(path)
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
