"""The storage interfaces every backend implements, and the lease stores offer.

Metadata (projects, file records, serials) and blobs (the distribution bytes)
are separate because they scale separately: several processes share one
Redis for metadata and one mounted directory for blobs.

Every metadata method returns a Deferred, whatever the backend, so that code
above the store never learns whether a call went to a thread or a socket.
``tests/test_store_contract.py`` runs one suite against every implementation.

The commit protocol, which both stores and everything that writes hold to:
a file record is never visible without its bytes in the blob store.

- Bytes are committed (fsynced, renamed into place) before the record is
  claimed with ``add_file``.
- An outcome the store could not confirm (a timeout, a lost connection:
  :class:`ministry.core.errors.StoreUnavailable`) never deletes the bytes,
  because the write may still land: Redis runs a queued script when it
  resumes, after the caller gave up.
- Bytes are removed only when the store has confirmed that no record needs
  them: the claim was refused (``FileExists``, ``FilenameReused``), the
  record was deleted (``delete_files`` fired), or a read (``blob_keys``)
  found no record for bytes older than a grace period
  (:class:`ministry.integrity.BlobCollector`).
- Re-uploading the same bytes puts them back if they went missing, so a
  record left without bytes can always be repaired by its uploader.
"""

from __future__ import annotations

from collections.abc import Callable

from zope.interface import Attribute, Interface


class IMetadataStore(Interface):
    """Projects, their files and the serials that version them."""

    def last_serial():
        """Deferred[int]: the global serial, bumped by every change (0 when empty)."""

    def list_projects():
        """Deferred[list[ProjectRecord]]: every hosted project, by canonical name."""

    def get_project(name: str):
        """Deferred[ProjectRecord | None] for a canonical name."""

    def list_files(name: str):
        """Deferred[list[FileRecord]]: a project's files in upload order."""

    def get_file(name: str, filename: str):
        """Deferred[FileRecord | None]."""

    def get_metadata(name: str, filename: str):
        """Deferred[bytes | None]: the core metadata bytes stored with a file."""

    def add_file(record, display_name: str, metadata: bytes | None):
        """Claim ``record.filename`` in its project, atomically.

        Creates the project (with ``display_name``) if needed and bumps the
        global serial and the project's serial. Fires with ``True`` when the
        record was added, ``False`` when the same filename with the same
        sha256 was already there (nothing changes); fails with
        :class:`ministry.core.errors.FileExists` when the filename is taken
        by other bytes, and with :class:`ministry.core.errors.SdistExists`
        when ``record`` is an sdist and its release (``release_version``)
        has another one: one sdist per release, decided in the same step.
        """

    def blob_keys():
        """Deferred[set[str]]: the ``blob_key`` of every file record, in every project.

        What the collector of unclaimed bytes and ``ministry-admin check``
        compare the blob store against. Not one snapshot across projects: a
        record added meanwhile may be missing, which is why only bytes older
        than a grace period are ever collected.
        """

    def register(name: str, display_name: str, info: dict):
        """Create or update a project's registered metadata.

        Fires with the updated ProjectRecord; bumps the serials.
        """

    # -- yanking and deleting (each change bumps the serials and notifies) ------

    def set_yanked(name: str, filenames: list[str], reason: str | None):
        """Yank (``reason`` a string, possibly empty) or un-yank (None) files, atomically.

        Files not in the project are ignored, and so are files already in
        the asked state. Fires with the filenames that changed; if any did,
        the serials are bumped once and subscribers told.
        """

    def delete_files(name: str, filenames: list[str]):
        """Remove files from a project, atomically, leaving a tombstone for each.

        Fires with the removed FileRecords (so that the caller can delete
        their blobs, after this has committed). The project itself stays,
        with its owners. A tombstoned filename can never be added again:
        ``add_file`` fails with :class:`ministry.core.errors.FilenameReused`.
        """

    # -- users, tokens and project roles (not part of the index: no serials) -----

    def add_user(user):
        """Deferred[bool]: store a UserRecord; False if the name is taken."""

    def get_user(name: str):
        """Deferred[UserRecord | None]."""

    def list_users():
        """Deferred[list[UserRecord]], by name."""

    def set_password(name: str, password_hash: str):
        """Deferred[bool]: replace a user's password hash; False if no such user."""

    def remove_user(name: str):
        """Deferred[bool]: remove a user with their tokens and roles; False if absent."""

    def add_token(token):
        """Deferred[bool]: store a TokenRecord; False if its user does not exist."""

    def get_token(token_id: str):
        """Deferred[TokenRecord | None]."""

    def list_tokens(username: str | None = None):
        """Deferred[list[TokenRecord]]: every token, or one user's, by creation time."""

    def revoke_token(token_id: str):
        """Deferred[bool]: remove a token; False if there was none by that id."""

    def get_roles(name: str):
        """Deferred[dict[str, str]]: a project's user names -> OWNER or MAINTAINER."""

    def user_roles(username: str):
        """Deferred[dict[str, str]]: a user's project names -> role."""

    def set_role(name: str, username: str, role: str | None):
        """Deferred[None]: give a user a role in a project, or take it away (None)."""

    def claim_project(name: str, username: str):
        """Make ``username`` the owner of a project that has no roles yet, atomically.

        Fires with the project's roles afterwards: whoever claimed first is
        the owner, and a loser of a race sees the winner's roles.
        """

    def subscribe(callback: Callable[[str], None]):
        """Call ``callback(project_name)`` after every change to a project.

        Changes made by this process and, for shared stores, by other
        processes, so that page caches can drop exactly what went stale.
        """

    def lease(name: str):
        """The ILease called ``name``, for work only one process may do at a time.

        As wide as the store is shared: the Redis store's lease holds across
        every process on that Redis, the embedded store's within this one.
        Every call with one name returns a lease over the same holder.
        """


class ILease(Interface):
    """A named right to do something alone (a mirror run), that lapses if not renewed.

    A holder that dies stops renewing, so another takes over after at most
    the duration it asked for. Holders are strings unique to each taker.
    """

    def acquire(holder: str, duration: float):
        """Deferred[bool]: take the lease for ``duration`` seconds.

        True if ``holder`` holds it now: it was free or expired, or
        ``holder`` held it already (then it is renewed); False if another does.
        """

    def renew(holder: str, duration: float):
        """Deferred[bool]: extend the lease to ``duration`` seconds from now.

        False (and nothing changes) when ``holder`` no longer holds it: it
        expired, or was taken by another since.
        """

    def release(holder: str):
        """Deferred[bool]: give the lease up now; False if ``holder`` did not hold it.

        Only its holder releases a lease: an expired one may be another's.
        """


class IBlobStore(Interface):
    """Distribution bytes, addressed by ``FileRecord.blob_key``."""

    root = Attribute("The directory under which blobs live (str).")

    def staging_path():
        """A fresh path in the same filesystem as the blobs, for a new file."""

    def commit(staging_path: str, key: str):
        """Deferred: fsync the staged file and rename it to ``key``."""

    def discard(staging_path: str):
        """Remove a staged file that will not be committed (never raises)."""

    def delete(key: str):
        """Deferred: remove a committed blob (missing is fine)."""

    def size(key: str):
        """Deferred[int | None]: a committed blob's size in bytes, None if it is missing."""

    def list_blobs():
        """Deferred[list[StoredBlob]]: every committed blob, with its size and mtime."""

    def remove_stale(key: str, cutoff: float):
        """Deferred[bool]: remove a blob last written before ``cutoff`` (a time.time()).

        Checked on the very file removed, so that bytes a concurrent upload
        committed again meanwhile (fresh, under the same key) stay. Fires
        with whether it removed anything.
        """

    def local_path(key: str):
        """The filesystem path of a committed blob, for serving it."""
