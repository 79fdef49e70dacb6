"""The legacy upload API (twine, ``uv publish``, poetry, pdm, distutils).

By the time a handler runs, the body has been parsed as it arrived (see
``ministry.web.http.form``): the fields are in memory and the file is in a staging
file with its digests. What is left is the order that keeps the invariants
(the commit protocol in ``ministry.interfaces``): check everything, commit
the bytes durably, then claim the filename in the store. The bytes go again
only if the store refused the claim; a claim it could not confirm (503)
keeps them, because the record may still land, and the collector removes
them later if it did not. The same bytes again (200) put the file's bytes
back if they went missing. A refused upload leaves nothing behind, not even
its staging file.

Who may upload is asked of ``ministry.web.auth`` as soon as the project's
name is known, before the archive is opened; a first upload to a project
without owners makes the uploader its owner, just before the bytes are
committed. The PEP 740 provenance made from an ``attestations`` field
(``ministry.core.attestations``) is committed just before the bytes and
goes with them. pypiserver's ``:action=remove_pkg`` (name, version) deletes a
release, as an administrator, here too.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs

from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.web.iweb import IRequest

from ministry.catalog.readmes import Readmes
from ministry.core import audit, project_status, signatures, uploads
from ministry.core.auth import Action, Identity
from ministry.core.errors import (
    BadRequest,
    FileExists,
    FilenameReused,
    SdistExists,
    TooLarge,
)
from ministry.core.metadata import CoreMetadata, parse_core_metadata, read_core_metadata_at
from ministry.core.models import OWNER, FileRecord, utcnow
from ministry.core.names import ParsedFilename, canonical
from ministry.curation import Curator, Target
from ministry.interfaces import IBlobStore, IMetadataStore
from ministry.web.audit_page import web_actor
from ministry.web.auth import Authenticator
from ministry.web.errors import refusing_app
from ministry.web.http.form import StreamingForm
from ministry.web.metrics import Metrics

log = Logger()


def _blake2b_512(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "blake2b").hexdigest()


def _read_metadata(path: str, parsed: ParsedFilename) -> tuple[bytes, CoreMetadata]:
    """The archive's metadata, raw and parsed: in a thread, as a description may be megabytes."""
    data = read_core_metadata_at(path, parsed)
    return data, parse_core_metadata(data)


class Uploads:
    """Accepts ``:action=file_upload`` and ``:action=submit`` posts."""

    app = refusing_app()

    def __init__(
        self,
        store: IMetadataStore,
        blobs: IBlobStore,
        max_file_size: int,
        metrics: Metrics,
        auth: Authenticator,
        curator: Curator,
        readmes: Readmes | None = None,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.max_file_size = max_file_size
        self.metrics = metrics
        self.auth = auth
        self.curator = curator
        self.readmes = readmes

    @app.route("/", methods=["POST"])
    @app.route("/<any(legacy, dist):_mount>", methods=["POST"])
    @app.route("/<any(legacy, dist):_mount>/", methods=["POST"])
    async def upload(self, request: IRequest, _mount: str = "") -> bytes:
        form_body = request.content
        if not isinstance(form_body, StreamingForm):
            fields = _urlencoded_fields(request)
            if fields.get(":action") == [REMOVE_PKG]:
                return await self._remove_release(request, fields)
            raise BadRequest("Uploads must be sent as multipart/form-data.")
        # Whatever happens, twisted.web closes request.content when the
        # request ends, and that removes the staging file if it is still there.
        return await self._handle(request, form_body)

    async def _handle(self, request: IRequest, form_body: StreamingForm) -> bytes:
        fields, received = form_body.result()
        if fields.get(":action") == [REMOVE_PKG]:
            return await self._remove_release(request, fields)
        form = uploads.parse_form(fields)
        if form.action == "submit":
            name, display_name, info = uploads.registration(form)
            identity = await self.auth.authorize(request, Action.REGISTER, name, open_ok=True)
            if await self.auth.claim(identity, Action.REGISTER, name):
                await self._audit_owner(request, identity, name, "first registration")
            await self.store.register(name, display_name, info)
            log.info("Registered {name}", name=name)
            return b"OK\n"
        if received is None or form_body.staging_path is None:
            raise BadRequest("No file was sent in the 'content' field.")
        project = canonical(form.name)
        identity = await self.auth.authorize(request, Action.UPLOAD, project, open_ok=True)
        await self._refuse_if_closed(project)
        if received.size > self.max_file_size:
            raise TooLarge(
                f"File too large: {received.size} bytes is over the limit of "
                f"{self.max_file_size} bytes."
            )
        if uploads.wants_blake2b_512(form):
            digest = await deferToThread(_blake2b_512, form_body.staging_path)
            received = replace(received, blake2b_512=digest)
        parsed = uploads.check_file(form, received)
        metadata_bytes, metadata = await deferToThread(
            _read_metadata, form_body.staging_path, parsed
        )
        record, display_name = uploads.build_record(
            form, received, parsed, metadata, metadata_bytes, utcnow()
        )
        if identity is not None:  # for the project page; None: an index open to anyone
            record = record.with_changes(uploader=identity.username)
        record, provenance = uploads.provenance(form, record)
        if provenance is not None:
            record = await deferToThread(signatures.marked, record, provenance)
        existing = await self.store.get_file(record.project, record.filename)
        if existing is None:
            if await self.auth.claim(identity, Action.UPLOAD, record.project):
                await self._audit_owner(request, identity, record.project, "first upload")
            await self._commit_provenance(record, provenance)
            await self._commit(
                form_body.staging_path, record, display_name, metadata_bytes, metadata.summary
            )
            self.metrics.upload_bytes.inc(record.size)
            if self.readmes is not None:
                self.readmes.prerender(record, metadata)
            await self._audit(request, identity, record)
        elif existing.sha256 != record.sha256:
            raise FileExists.taken(record.filename, record.project, existing.sha256)
        else:
            await self._repair(form_body.staging_path, existing)
        log.info("Stored {filename}", filename=record.filename)
        return b"OK\n"

    async def _audit_owner(
        self, request: IRequest, identity: Identity | None, project: str, why: str
    ) -> None:
        """The audit entry of an uploader made owner of a project that had none."""
        assert identity is not None  # only a known user claims
        actor = web_actor(request, identity)
        await self.curator.record_role(actor, project, identity.username, OWNER, why)

    async def _audit(
        self, request: IRequest, identity: Identity | None, record: FileRecord
    ) -> None:
        """The audit entry of a new file (an upload again of the same bytes adds none)."""
        actor = web_actor(request, identity)
        await self.curator.record(
            actor, audit.UPLOAD, record.project, version=record.version, filename=record.filename
        )

    async def _refuse_if_closed(self, project: str) -> None:
        """A 403 naming the status and reason if the project is archived or quarantined.

        Checked before anything is committed (PEP 792: such a project takes no
        new distributions). A status set while an upload is under way may
        miss that one upload: the check is not part of the store's claim.
        """
        project_status.refuse_upload(await self.store.get_project(project))

    async def _commit(
        self,
        staging_path: str,
        record: FileRecord,
        display_name: str,
        metadata: bytes,
        summary: str,
    ) -> None:
        """Make the bytes durable, then claim the filename (with the release's summary,
        parsed already); undo only a refused claim."""
        await self.blobs.commit(staging_path, record.blob_key)
        try:
            added = await self.store.add_file(record, display_name, metadata, summary)
        # Confirmed: the name holds other bytes, was deleted for good, or the
        # release has its sdist.
        except (FileExists, FilenameReused, SdistExists):
            await self.blobs.delete(record.blob_key)
            if record.provenance_sha256 is not None:
                await self.blobs.delete(record.provenance_key)
            raise
        except BaseException:
            log.warn(
                "Kept the bytes of {filename}: the store did not confirm its claim",
                filename=record.filename,
            )
            raise
        if not added:
            log.info("{filename} was stored by a concurrent upload", filename=record.filename)
            await self._drop_lost_provenance(record)

    async def _drop_lost_provenance(self, record: FileRecord) -> None:
        """A concurrent upload of the same bytes won with other attestations: delete ours.

        Its record names its own provenance (keys differ by the provenance's
        sha256), so ours is claimed by nothing and would otherwise stay.
        """
        if record.provenance_sha256 is None:
            return
        stored = await self.store.get_file(record.project, record.filename)
        if stored is None or stored.provenance_sha256 != record.provenance_sha256:
            await self.blobs.delete(record.provenance_key)

    async def _commit_provenance(self, record: FileRecord, provenance: bytes | None) -> None:
        """Make the PEP 740 provenance durable beside the file, before the record names it.

        Like the file's bytes, it is committed first so that no record is
        seen without it; if the claim then fails, it goes with the bytes.
        """
        if provenance is None:
            return
        staging = self.blobs.staging_path()
        try:
            await deferToThread(Path(staging).write_bytes, provenance)
            await self.blobs.commit(staging, record.provenance_key)
        except BaseException:
            self.blobs.discard(staging)
            raise

    async def _repair(self, staging_path: str, existing: FileRecord) -> None:
        """Put back the bytes of a file uploaded again, if they are missing or cut short.

        The staged bytes have the record's sha256, so they are its bytes.
        """
        if await self.blobs.size(existing.blob_key) == existing.size:
            return
        await self.blobs.commit(staging_path, existing.blob_key)
        log.warn("Restored the missing bytes of {filename}", filename=existing.filename)

    async def _remove_release(self, request: IRequest, fields: dict[str, list[str]]) -> bytes:
        """pypiserver's ``:action=remove_pkg``: delete every file of name and version."""
        name, version = fields.get("name", [""])[0], fields.get("version", [""])[0]
        if not name or not version:
            raise BadRequest("':action' remove_pkg needs a 'name' and a 'version'.")
        target = Target.of(name, version, None)
        identity = await self.auth.authorize(request, Action.DELETE, target.project)
        await self.curator.delete(target, web_actor(request, identity))
        return b"OK\n"


#: pypiserver's action for deleting a release.
REMOVE_PKG = "remove_pkg"


def _urlencoded_fields(request: IRequest) -> dict[str, list[str]]:
    """The fields of an ``application/x-www-form-urlencoded`` body (pypiserver's
    ``remove_pkg`` is often sent so); empty for any other body."""
    content_type = request.getHeader(b"content-type") or b""
    if not content_type.lower().startswith(b"application/x-www-form-urlencoded"):
        return {}
    request.content.seek(0)
    body = request.content.read().decode("utf-8", errors="replace")
    return parse_qs(body, keep_blank_values=True)
