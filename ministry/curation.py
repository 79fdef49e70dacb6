"""Yank, un-yank and delete files or whole releases, set a project's
PEP 792 status, and allow or revoke cooldown exceptions: one implementation
for ``ministry-admin`` and for the HTTP API (``/api/*``, ``:action=remove_pkg``).

Callers decide who may do it (the web layer asks ``ministry.web.auth``; the
admin command runs with the store's own rights); this decides what a target
means and keeps the order that protects the invariants: a deleted file's
bytes go only after the store has committed the deletion (and its
tombstone), so a file is never listed without its bytes.

Audit log. Every change made here (and every upload and role change, through
:meth:`Curator.record`) leaves one ``AuditEvent`` naming the caller's
:class:`~ministry.core.audit.Actor`, at the time of ``now``. The entry is
written after the change has committed, and a failure to write it does not
undo or fail the change: the change has happened, and a 503 would make a
client retry something done (twine would then meet "file exists"). It is
not silent either: the whole entry is logged at CRITICAL level as JSON, so
an operator is alerted and can put it back from the log. A store that
cannot take the entry usually could not take the change either, so this is
rare.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from packaging.version import InvalidVersion, Version
from twisted.logger import Logger, LogLevel

from ministry.core import audit
from ministry.core.audit import Actor, AuditEvent
from ministry.core.cooldown import CooldownException, parse_spec
from ministry.core.errors import BadRequest, NotFound
from ministry.core.models import FileRecord, ProjectRecord, utcnow
from ministry.core.names import canonical
from ministry.core.project_status import check_reason, check_status
from ministry.interfaces import IBlobStore, IMetadataStore

log = Logger()


@dataclass(frozen=True)
class Target:
    """What to act on: a whole release (``version``) or one file (``filename``)."""

    project: str  # canonical
    version: str | None = None
    filename: str | None = None

    @classmethod
    def of(cls, project: str, version: str | None, filename: str | None) -> Target:
        if (version is None) == (filename is None):
            raise BadRequest("Name either a version (a whole release) or a filename, not both.")
        return cls(canonical(project), version, filename)

    def __str__(self) -> str:
        return f"{self.filename}" if self.filename else f"{self.project} {self.version}"


def select_files(files: list[FileRecord], target: Target) -> list[FileRecord]:
    """The files a target names: a release's by PEP 440 equality (``1.0`` is ``1.0.0``)."""
    if target.filename is not None:
        return [record for record in files if record.filename == target.filename]
    return [record for record in files if _same_version(record.version, target.version or "")]


def _same_version(left: str, right: str) -> bool:
    try:
        return Version(left) == Version(right)
    except InvalidVersion:
        return left == right


class Curator:
    """Acts on the files a :class:`Target` names, or says there are none (404)."""

    def __init__(
        self, store: IMetadataStore, blobs: IBlobStore, now: Callable[[], datetime] = utcnow
    ) -> None:
        """``now`` dates the audit entries: a test's clock, or the wall clock."""
        self.store = store
        self.blobs = blobs
        self.now = now

    async def select(self, target: Target) -> list[FileRecord]:
        chosen = select_files(await self.store.list_files(target.project), target)
        if not chosen:
            raise NotFound(f"No such file or release: {target}.")
        return chosen

    async def yank(self, target: Target, actor: Actor, reason: str = "") -> list[str]:
        """Yank the target's files with ``reason``; the filenames whose state changed."""
        chosen = await self.select(target)
        changed = await self.store.set_yanked(target.project, [r.filename for r in chosen], reason)
        log.info("Yanked {target}: {reason!r}", target=target, reason=reason)
        await self._record_target(actor, audit.YANK, target, changed, reason)
        return changed

    async def unyank(self, target: Target, actor: Actor) -> list[str]:
        chosen = await self.select(target)
        changed = await self.store.set_yanked(target.project, [r.filename for r in chosen], None)
        log.info("Un-yanked {target}", target=target)
        await self._record_target(actor, audit.UNYANK, target, changed, "")
        return changed

    async def delete(self, target: Target, actor: Actor) -> list[str]:
        """Delete the target's files, then their bytes; the filenames deleted."""
        chosen = await self.select(target)
        removed = await self.store.delete_files(target.project, [r.filename for r in chosen])
        for record in removed:
            await self.blobs.delete(record.blob_key)
        log.info("Deleted {target}", target=target)
        deleted = [record.filename for record in removed]
        await self._record_target(actor, audit.DELETE, target, deleted, "")
        return deleted

    async def set_status(
        self, name: str, status: str, reason: str | None, actor: Actor
    ) -> ProjectRecord:
        """Give a hosted project (canonical ``name``) a status; 400 or 404 if it cannot.

        Setting the status it has already changes nothing, and leaves no entry.
        """
        status, reason = check_status(status), check_reason(reason)
        before = await self.store.get_project(name)
        project = await self.store.set_project_status(name, status, reason)
        if project is None:
            raise NotFound(f"No such project hosted here: {name}.")
        if before is not None and (before.status, before.status_reason) == (status, reason):
            return project
        log.info("{name} is now {status}: {reason!r}", name=name, status=status, reason=reason)
        detail = status if reason is None else f"{status}: {reason}"
        await self.record(actor, audit.STATUS, name, detail=detail)
        return project

    async def set_role(
        self, project: str, username: str, role: str | None, actor: Actor, why: str = ""
    ) -> bool:
        """Give ``username`` a role in ``project`` (None: take it away); False if it had it.

        A role given again changes nothing, and leaves no entry; ``why``
        follows the entry's detail (``bob: owner (first upload)``).
        """
        if (await self.store.get_roles(project)).get(username) == role:
            return False
        await self.store.set_role(project, username, role)
        await self.record_role(actor, project, username, role, why)
        return True

    async def record_role(
        self, actor: Actor, project: str, username: str, role: str | None, why: str = ""
    ) -> None:
        """The entry of a role given or taken away: ``bob: owner``, ``bob: no role``."""
        detail = f"{username}: {role or 'no role'}" + (f" ({why})" if why else "")
        await self.record(actor, audit.ROLE, project, detail=detail)

    async def allow_cooldown(
        self, spec: str, reason: str | None, actor: Actor
    ) -> CooldownException:
        """Release ``spec`` (``NAME`` or ``NAME==VERSION``) from the cooldown; a reason is required.

        The project need not be known here: an exception is for the proxy,
        and may be written before the release it names reaches the upstream.
        """
        project, version = parse_spec(spec)
        reason = check_reason(reason)
        if reason is None:
            raise BadRequest("A cooldown exception needs a reason (--reason): it is audited.")
        exception = CooldownException(project, version, reason, actor.name, self.now())
        await self.store.allow_cooldown(exception)
        log.info("Cooldown exception for {spec}: {reason!r}", spec=exception.spec, reason=reason)
        await self.record(
            actor, audit.COOLDOWN, project, version=version, detail=f"allowed: {reason}"
        )
        return exception

    async def revoke_cooldown(self, spec: str, actor: Actor) -> None:
        """Withdraw the exception ``spec`` names; 404 if there is none."""
        project, version = parse_spec(spec)
        if not await self.store.revoke_cooldown(project, version):
            raise NotFound(f"No cooldown exception for {spec.strip()}.")
        await self.record(actor, audit.COOLDOWN, project, version=version, detail="revoked")

    async def _record_target(
        self, actor: Actor, action: str, target: Target, changed: list[str], reason: str
    ) -> None:
        """One entry for a change of files, if any changed: a no-op alters no install.

        Its detail lists the files that changed, then the reason if there is one.
        """
        if not changed:
            return
        detail = ", ".join(changed) + (f": {reason}" if reason else "")
        await self.record(
            actor,
            action,
            target.project,
            version=target.version,
            filename=target.filename,
            detail=detail,
        )

    async def record(self, actor: Actor, action: str, project: str, **rest: Any) -> None:
        """Keep an audit entry of ``actor``'s change now (see the module docstring)."""
        event = AuditEvent.by(actor, self.now(), action, project, **rest)
        try:
            await self.store.append_audit(event)
        except Exception:
            log.failure(
                "AUDIT ENTRY NOT STORED, the change stands: {entry}",
                entry=event.to_json(),
                level=LogLevel.critical,
            )
