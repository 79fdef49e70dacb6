"""The ``/packages/`` tree: one directory per project, its files inside.

Built from the catalog's records, never by listing the disk: the listing,
the file URLs of the simple index and ``pip --find-links`` all read this.
``<file>.metadata`` leaves serve a wheel's core metadata (PEP 658).
Projects proxied from an upstream have the same layout; their files and
metadata come through the proxy's file cache (``ministry.web.proxied_files``).
A quarantined project's files (PEP 792) are listed, but downloaded only by
its owners and administrators (``ministry.web.quarantine``).
"""

from __future__ import annotations

from twisted.web.resource import IResource

from ministry.catalog.cache import ALL
from ministry.catalog.views import Catalog, ProjectView
from ministry.core.listing import Entry
from ministry.core.models import METADATA_SUFFIX
from ministry.core.names import canonical
from ministry.core.project_status import hides_files
from ministry.interfaces import IBlobStore
from ministry.web.auth import Authenticator
from ministry.web.http.files import Delivery, InlineBytes, content_type_for, sha256_etag
from ministry.web.proxied_files import ProxiedFile
from ministry.web.quarantine import QuarantinedFile


class PackagesTree:
    """A :class:`ministry.web.listing.Tree` over the hosted projects."""

    def __init__(
        self, catalog: Catalog, blobs: IBlobStore, delivery: Delivery, auth: Authenticator
    ) -> None:
        self.catalog = catalog
        self.blobs = blobs
        self.delivery = delivery
        self.auth = auth

    def scope(self, path: tuple[str, ...]) -> str:
        return path[0] if path else ALL

    def canonical(self, path: tuple[str, ...]) -> tuple[str, ...]:
        return (canonical(path[0]), *path[1:]) if path else path

    async def directory(self, path: tuple[str, ...]) -> list[Entry] | None:
        if not path:
            index = await self.catalog.index()
            return [
                Entry(project.name, True, None, project.created)
                for project in (*index.projects, *index.cached)
            ]
        if len(path) != 1:
            return None
        view = await self.catalog.project(path[0])
        if view is None:
            return None
        # A size of 0 is a proxied file whose upstream did not say (HTML pages).
        return [
            Entry(record.filename, False, record.size or None, record.upload_time)
            for record in view.files
        ]

    async def leaf(self, path: tuple[str, ...]) -> IResource | None:
        if len(path) != 2:
            return None
        view = await self.catalog.project(path[0])
        if view is None:
            return None
        return self._guarded(view, await self._leaf(view, path[1]))

    async def _leaf(self, view: ProjectView, filename: str) -> IResource | None:
        """A file of the view, or its ``.metadata``, or None."""
        found = self._file(view, filename)
        if found is not None:
            return found
        record = view.by_filename.get(filename.removesuffix(METADATA_SUFFIX))
        if record is None or not filename.endswith(METADATA_SUFFIX) or not record.serves_metadata:
            return None
        data = await self.catalog.file_metadata(view, record)
        if data is None:
            return None
        return InlineBytes(data, b"text/plain; charset=utf-8", sha256_etag(record.metadata_sha256))

    def cached_leaf(self, path: tuple[str, ...]) -> IResource | None:
        view = self.catalog.cached_project(path[0]) if len(path) == 2 else None
        return None if view is None else self._guarded(view, self._file(view, path[1]))

    def _guarded(self, view: ProjectView, found: IResource | None) -> IResource | None:
        """``found``, behind the owner-or-admin check when the project is quarantined."""
        if found is None or not hides_files(view.project):
            return found
        return QuarantinedFile(self.auth, view.project, found)

    def _file(self, view: ProjectView, filename: str) -> IResource | None:
        """A distribution file of the view (not its ``.metadata``), or None."""
        record = view.by_filename.get(filename)
        if record is None:
            return None
        source = view.sources.get(filename)
        if source is not None:
            assert self.catalog.proxy is not None  # proxied views exist only with a proxy
            return ProxiedFile(self.catalog.proxy, self.delivery, record, source)
        built = view.file_resources.get(filename)
        if built is None:
            built = view.file_resources[filename] = self.delivery.file(
                self.blobs,
                record.blob_key,
                record.size,
                content_type_for(filename),
                sha256_etag(record.sha256),
                record.upload_time,
            )
        return built
