"""``/integrity/<project>/<version>/<filename>/provenance``: PEP 740's Integrity API.

Serves the provenance object stored beside an uploaded file when it came
with attestations (``ministry.core.attestations``), or the one the upstream
offers for a proxied or mirrored file (fetched and kept by the proxy, see
``ministry.upstream.downloads``), as ``application/vnd.pypi.integrity.v1+json``;
a 404 for a file without one, or any file of a quarantined project (PEP 792
hides them all from installers). The document is what the uploader's attestations said,
checked for shape and for naming this file; what the check of their
signatures found is in the file's record (``ministry.core.signatures``).
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet.threads import deferToThread
from twisted.web.iweb import IRequest

from ministry.catalog.views import Catalog, ProjectView
from ministry.core.attestations import INTEGRITY_V1
from ministry.core.errors import NotFound
from ministry.core.models import FileRecord
from ministry.core.names import canonical
from ministry.core.project_status import hides_files
from ministry.interfaces import IBlobStore
from ministry.web.errors import refusing_app


class IntegrityApi:
    """The ``/integrity/`` tree."""

    app = refusing_app()

    def __init__(self, catalog: Catalog, blobs: IBlobStore) -> None:
        self.catalog = catalog
        self.blobs = blobs

    @app.route("/integrity/<project>/<version>/<filename>/provenance", methods=["GET", "HEAD"])
    async def provenance(
        self, request: IRequest, project: str, version: str, filename: str
    ) -> bytes:
        view, record = await self._record(canonical(project), version, filename)
        source = view.sources.get(filename)
        if source is not None:
            assert self.catalog.proxy is not None  # proxied views exist only with a proxy
            body = await self.catalog.proxy.downloads.provenance(record, source)
        else:
            body = await self._stored(record)
        request.setHeader(b"content-type", INTEGRITY_V1.encode())
        return body

    async def _stored(self, record: FileRecord) -> bytes:
        try:
            copy = await self.blobs.local_copy(record.provenance_key)
        except FileNotFoundError:
            raise NotFound(
                f"The provenance of {record.filename} is missing from storage."
            ) from None
        try:
            return await deferToThread(Path(copy.path).read_bytes)
        finally:
            copy.close()

    async def _record(
        self, project: str, version: str, filename: str
    ) -> tuple[ProjectView, FileRecord]:
        """The served file of that release that has a provenance, else NotFound."""
        view = await self.catalog.project(project)
        record = None
        if view is not None and not hides_files(view.project):
            record = view.by_filename.get(filename)
        if view is None or record is None or record.version != version or not record.has_provenance:
            raise NotFound(f"No provenance for {filename} in {project} {version}.")
        return view, record
