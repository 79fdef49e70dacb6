"""The storage interfaces every backend implements, and the lease stores offer.

Metadata (projects, file records, serials) and blobs (the distribution bytes)
are separate because they scale separately: several processes share one
Redis for metadata and one bucket (or one mounted directory) for blobs.

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

from ministry.core.audit import DEFAULT_LIMIT


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

    def add_file(record, display_name: str, metadata: bytes | None, summary: str | None = None):
        """Claim ``record.filename`` in its project, atomically.

        Creates the project (with ``display_name``) if needed and bumps the
        global serial and the project's serial. ``summary`` is the ``Summary``
        of ``metadata`` (which the uploader has parsed already; None: not
        known): in the same step it becomes the project's summary if
        ``record.version`` is at least the release the summary kept came
        from (``ministry.core.summaries``). Fires with ``True`` when the
        record was added, ``False`` when the same filename with the same
        sha256 was already there (nothing changes); fails with
        :class:`ministry.core.errors.FileExists` when the filename is taken
        by other bytes, and with :class:`ministry.core.errors.SdistExists`
        when ``record`` is an sdist and its release (``release_version``)
        has another one: one sdist per release, decided in the same step.
        """

    def blob_keys():
        """Deferred[set[str]]: every blob key of every file record (``stored_keys``).

        What the collector of unclaimed bytes and ``ministry-admin check``
        compare the blob store against. Not one snapshot across projects: a
        record added meanwhile may be missing, which is why only bytes older
        than a grace period are ever collected.
        """

    def register(name: str, display_name: str, info: dict):
        """Create or update a project's registered metadata.

        Fires with the updated ProjectRecord; bumps the serials. An ``info``
        with a ``summary`` offers it as release ``info["version"]``, by the
        rule ``add_file`` follows, in the same step.
        """

    def offer_summary(name: str, summary: str, version: str | None):
        """Deferred[bool]: make ``summary`` a hosted project's if release ``version`` is its latest.

        The rule of ``add_file`` and ``register`` (``ministry.core.summaries``),
        for what restores an export. False when the project is not hosted (it
        is never created here) or nothing changed; a change bumps the
        serials once and is announced, as a registration is.
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

    def tombstones(name: str):
        """Deferred[dict[str, str]]: a project's deleted files, filename -> their sha256."""

    def add_tombstone(name: str, filename: str, sha256: str):
        """Deferred[None]: remember a deleted file, as a backup restored says: the filename
        is refused from now on. A file stored under that name now is left as it is."""

    def set_project_status(name: str, status: str, reason: str | None):
        """Set a hosted project's PEP 792 status (one of ``models.STATUSES``) and its reason.

        Fires with the ProjectRecord afterwards, or None when no such project
        is hosted; fails with ValueError for an unknown status. When status
        or reason changed, the serials are bumped once and subscribers told,
        as for a yank: every cached page of the project goes stale.
        """

    # -- users, tokens and project roles (not part of the index: no serials) -----

    def add_user(user):
        """Deferred[bool]: store a UserRecord; False if the name is taken."""

    def get_user(name: str):
        """Deferred[UserRecord | None]."""

    def list_users():
        """Deferred[list[UserRecord]], by name."""

    def has_users():
        """Deferred[bool]: whether any user exists (asked on every upload to an open index)."""

    def set_password(name: str, password_hash: str):
        """Deferred[bool]: replace a user's password hash; False if no such user."""

    def remove_user(name: str):
        """Deferred[bool]: remove a user, their tokens, roles and memberships; False if absent."""

    def add_token(token):
        """Deferred[bool]: store a TokenRecord; False if its user does not exist."""

    def get_token(token_id: str):
        """Deferred[TokenRecord | None]."""

    def list_tokens(username: str | None = None):
        """Deferred[list[TokenRecord]]: every token, or one user's, by creation time."""

    def revoke_token(token_id: str):
        """Deferred[bool]: remove a token; False if there was none by that id."""

    def get_roles(name: str):
        """Deferred[dict[str, str]]: a project's holders (users, ``@team``s) -> role."""

    def user_roles(username: str):
        """Deferred[dict[str, str]]: a holder's project names -> role."""

    def set_role(name: str, username: str, role: str | None):
        """Deferred[None]: give a holder a role in a project, or take it away (None)."""

    def add_team(team):
        """Deferred[bool]: store a TeamRecord (members too); False if the name is taken."""

    def remove_team(name: str):
        """Deferred[bool]: remove a team, its memberships and roles; False if absent."""

    def list_teams():
        """Deferred[list[TeamRecord]], by name, each with its members sorted."""

    def set_member(name: str, username: str, member: bool):
        """Deferred[bool]: add a user to a team or remove them; False if no such team."""

    def user_teams(username: str):
        """Deferred[frozenset[str]]: the teams a user is a member of (asked per request)."""

    def claim_project(name: str, username: str):
        """Make ``username`` the owner of a project that has no roles yet, atomically.

        Fires with the project's roles afterwards: whoever claimed first is
        the owner, and a loser of a race sees the winner's roles.
        """

    def append_audit(event):
        """Deferred[None]: keep an ``AuditEvent`` (``ministry.core.audit``) for good.

        Audit entries are not changes of the index: no serial, no subscriber.
        """

    def list_audit(project: str | None = None, limit: int = DEFAULT_LIMIT):
        """Deferred[list[AuditEvent]]: the latest ``limit`` entries, newest first.

        Only those of ``project`` (canonical) when it is given.
        """

    def allow_cooldown(exception):
        """Deferred[None]: keep a ``CooldownException`` (``ministry.core.cooldown``).

        It replaces one for the same project and release. The project is
        announced to subscribers as changed (its cached pages go stale),
        though it need not be hosted: exceptions are about proxied projects.
        """

    def revoke_cooldown(name: str, version: str | None):
        """Deferred[bool]: remove the exception for one release (None: the whole project's).

        False when there was none; otherwise announced as ``allow_cooldown`` is.
        """

    def cooldown_exceptions(name: str | None = None):
        """Deferred[list[CooldownException]]: one project's, or all, by project then version."""

    def refresh_upstream(name: str):
        """Deferred[None]: tell every process that the proxied ``name`` changed upstream.

        Announced as ``allow_cooldown`` is: caches drop its views and the
        proxy asks the upstream again at the next request, whatever its TTL.
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
    """Distribution bytes, addressed by ``FileRecord.blob_key``.

    Two implementations: a directory (:mod:`ministry.stores.blobs`, the
    default, possibly a shared mount) and an S3-compatible bucket
    (:mod:`ministry.stores.s3`). Both stage new bytes in a local file first
    (their sha256 is checked there, before anything is committed), so the
    only thing that differs is where ``commit`` puts them and how they are
    read back. Serving is not part of this interface: the web layer picks
    the way bytes leave from the kind of store (sendfile or X-Accel for a
    directory; a stream or a presigned redirect for a bucket).
    ``tests/test_blob_contract.py`` runs one suite against both.
    """

    location = Attribute(
        "Where the blobs live, for logs and /health: ``file:DIR`` or "
        "``s3://BUCKET/PREFIX?endpoint=...`` (no credentials ever)."
    )

    def staging_path():
        """A fresh local path for a new file's bytes (the file is not created)."""

    def commit(staging_path: str, key: str):
        """Deferred: make the staged file durable as ``key``; the staging file is gone after.

        On failure the staging file stays (the caller discards it) and
        nothing is visible under ``key`` that was not there before. A store
        that cannot be written (a full or read-only disk, a bucket that is
        down or refuses) fails with
        :class:`ministry.core.errors.StorageUnavailable` (a 503 with the
        reason), as do ``delete``, ``size`` and ``local_copy``.
        """

    def discard(staging_path: str):
        """Remove a staged file that will not be committed (never raises)."""

    def cleanup_staging(older_than_seconds: float):
        """Remove staged files older than that (crashed uploads); return how many.

        Synchronous, for a thread: the collector calls it.
        """

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

    def local_copy(key: str):
        """Deferred[LocalCopy]: the blob as a local file, for code that reads it whole.

        Export, ``check --rehash`` and reading a wheel's metadata need a
        seekable file; a directory store hands out the blob's own path, a
        bucket downloads it to staging. Call ``close()`` on the result when
        done (it removes a downloaded copy). Fails with FileNotFoundError
        when the blob is missing.
        """

    def probe():
        """Deferred[None]: check that blobs can be written now; else StorageUnavailable saying why.

        For ``/health`` and start-up: a directory that is gone or
        read-only, a bucket that is missing, refuses the credentials or
        does not answer (in bounded time).
        """
