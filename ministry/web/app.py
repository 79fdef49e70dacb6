"""Mounts the built web components on one Site; nothing is built here.

Every object of an index (stores, catalog, page cache, authenticator,
metrics, the components) is built once, in ``ministry.tap.build_index``, for
the daemon and the tests alike. :func:`build_site` only puts each
component's resource at its place in the URL space and makes the Site
around the root.
"""

from __future__ import annotations

from dataclasses import dataclass

from ministry.config import Settings
from ministry.interfaces import IBlobStore
from ministry.web.api import CurationApi
from ministry.web.audit_page import AuditPage
from ministry.web.auth import Authenticator
from ministry.web.front import Front
from ministry.web.html import environment
from ministry.web.http.connections import ConnectionLimits
from ministry.web.http.form import FormLimits
from ministry.web.http.site import IndexSite
from ministry.web.integrity_api import IntegrityApi
from ministry.web.jsonapi import JsonApi
from ministry.web.listing import DirectoryListing
from ministry.web.metrics import Metrics
from ministry.web.mirror_status import MirrorStatusPage
from ministry.web.pages import ProjectPages
from ministry.web.root import Root
from ministry.web.search import ProjectList
from ministry.web.simple import SimpleIndex
from ministry.web.static import StaticFiles
from ministry.web.status import Status
from ministry.web.trusted_publishing import SEGMENT as TRUSTED_PUBLISHING
from ministry.web.trusted_publishing import NoTrustedPublishing
from ministry.web.upload import Uploads


@dataclass(frozen=True)
class Components:
    """The web components of one index, each served at its own path."""

    simple: SimpleIndex  # /simple/
    packages: DirectoryListing  # /packages/
    json_api: JsonApi  # /pypi/
    pages: ProjectPages  # /project/
    projects: ProjectList  # /projects/
    status: Status  # /health and /metrics
    mirror: MirrorStatusPage  # /mirror/
    curation: CurationApi  # /api/
    uploads: Uploads  # POST to /, /legacy/ or /dist
    integrity: IntegrityApi  # /integrity/ (PEP 740)
    audit: AuditPage  # /admin/audit/
    front: Front  # everything else


def build_site(
    settings: Settings,
    components: Components,
    auth: Authenticator,
    metrics: Metrics,
    blobs: IBlobStore,
) -> IndexSite:
    """The Site serving ``components``; nothing here does I/O but reading the templates.

    ``auth`` guards reads on a ``--private`` index and refuses anonymous
    uploads from their head; ``metrics`` counts every answer; uploads are
    staged where ``blobs`` commits them from.
    """
    environment()  # every template compiled now, not on a request's reactor turn
    simple_tree = components.simple.resource()
    packages_tree = components.packages.resource()
    status = components.status.app.resource()
    root = Root(
        trees={
            b"simple": simple_tree,
            b"packages": packages_tree,
            b"pypi": components.json_api.app.resource(),
            b"project": components.pages.app.resource(),
            b"projects": components.projects.app.resource(),
            b"static": StaticFiles(),
        },
        routes={
            b"health": status,
            b"metrics": status,
            b"mirror": components.mirror.app.resource(),
            b"api": components.curation.app.resource(),
            b"integrity": components.integrity.app.resource(),
            b"admin": components.audit.app.resource(),
            TRUSTED_PUBLISHING: NoTrustedPublishing(),
        },
        uploads=components.uploads.app.resource(),
        front=components.front.app.resource(),
    )
    # The body cap leaves room for the form's text fields around the file.
    max_body = settings.max_upload_size + FormLimits().max_fields_total
    site = IndexSite(
        root,
        max_body,
        blobs.staging_path,
        metrics,
        auth.read_guard,
        settings.access_log,
        ConnectionLimits.from_settings(settings),
        auth.uploads_need_credentials,
    )
    if not auth.private:  # a private index checks credentials on every read
        lane = site.use_fast_lane(
            {b"simple": simple_tree.lookup, b"packages": packages_tree.lookup}
        )
        metrics.watch_fast_lane(lane)
    return site
