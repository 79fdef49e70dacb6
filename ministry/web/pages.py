"""``/project/<name>/`` and ``/project/<name>/<version>/``: a project and its releases.

The project page is where the JSON API's ``package_url`` points. Pages are
rendered once per project change and kept as bytes under the project's
cache scope, so an upload to the project drops them. The README comes from
``ministry.catalog.readmes`` (rendered off the reactor, once per file), and the
install commands print the server's URL, spliced in per request
(``ministry.web.urls``): one cached page serves every ``Host``. The page
names the project's owners and maintainers (teams as teams) and each file's
uploader: on a ``--private`` index only logged-in users see any page.
The list of versions beside it comes 50 to a page (``?page=N``; a release
page opens it at its own version), so a project of thousands of releases
has pages of kilobytes, not megabytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from markupsafe import Markup
from twisted.internet.defer import ensureDeferred
from twisted.internet.threads import deferToThread
from twisted.web.iweb import IRequest

from ministry.catalog.readmes import Readmes
from ministry.catalog.views import Catalog, ProjectView
from ministry.core.attestations import integrity_path
from ministry.core.commands import install_commands
from ministry.core.dependencies import dependencies
from ministry.core.errors import BadRequest, MinistryError, NotFound
from ministry.core.metadata import CoreMetadata, parse_core_metadata, registered_metadata
from ministry.core.models import FileRecord
from ministry.core.names import canonical
from ministry.core.project_links import project_links
from ministry.core.project_status import page_notice
from ministry.core.releases import (
    Release,
    current_release,
    find_release,
    group_releases,
    newer_release,
    versions_page,
)
from ministry.core.teams import Person, people
from ministry.web.errors import refusing_app
from ministry.web.html import render_html, send_html
from ministry.web.http.rendered import Page, ServerPage
from ministry.web.http.responses import redirect
from ministry.web.search import page_number
from ministry.web.simple import BIG_PROJECT_FILES
from ministry.web.urls import Urls

#: README headings start at h3: the page has the h1, its sections the h2s.
README_HEADING_OFFSET = 2


def _releases(
    files: Sequence[FileRecord], version: str | None
) -> tuple[list[Release], Release | None]:
    """The project's releases, newest first, and the one shown: ``version``'s, or the latest."""
    releases = group_releases(files)
    if version is None:
        return releases, current_release(releases)
    return releases, find_release(releases, version)


class ProjectPages:
    """The ``/project/`` tree."""

    app = refusing_app()

    def __init__(self, catalog: Catalog, urls: Urls, readmes: Readmes) -> None:
        self.catalog = catalog
        self.urls = urls
        self.readmes = readmes

    @app.route("/", methods=["GET", "HEAD"])
    def to_list(self, request: IRequest) -> bytes:
        return redirect(request, "/projects/")

    @app.route("/<name>", methods=["GET", "HEAD"])
    @app.route("/<name>/", methods=["GET", "HEAD"])
    @app.route("/<name>/<version>", methods=["GET", "HEAD"])
    @app.route("/<name>/<version>/", methods=["GET", "HEAD"])
    def page(self, request: IRequest, name: str, version: str | None = None):
        normal = canonical(name)
        if normal != name or not request.path.endswith(b"/"):
            tail = f"{quote(version, safe='')}/" if version else ""
            query = request.uri.partition(b"?")[2].decode("ascii", "replace")
            return redirect(request, f"/project/{normal}/{tail}" + (f"?{query}" if query else ""))
        # The version list's page; none: the one listing the release shown.
        given = request.args.get(b"page", [b""])[0].decode("utf-8", "replace")
        number = page_number(given) if given else None
        return ensureDeferred(self._serve(request, normal, version, number))

    async def _serve(
        self, request: IRequest, name: str, version: str | None, number: int | None
    ) -> bytes:
        # Roles are not part of the index (no serial): asked per request, and
        # part of the key, so a role given or taken shows on the next view.
        roles = people(await self.catalog.store.get_roles(name))
        key = (name, "page", version, roles, number)
        page = await self.catalog.cache.get_or_fill(
            key, lambda: self._render(name, version, roles, number)
        )
        if page is None:
            return await self._no_page(request, name, version)
        return send_html(request, self.urls.for_request(page, request))

    async def _no_page(self, request: IRequest, name: str, version: str | None) -> bytes:
        """Why there is no page: no such project or release (404), or a version
        spelled another way (301 to the release's own spelling)."""
        view = await self.catalog.project(name)
        if view is None:
            raise NotFound(f"No such project: {name}")
        if version is not None:
            release = find_release(group_releases(view.files), version)
            if release is None:
                raise NotFound(f"{view.project.display_name} has no release {version!r}.")
            if release.version != version:
                return redirect(request, f"/project/{name}/{quote(release.version, safe='')}/")
        raise NotFound(f"No such page: /project/{name}/{version or ''}")

    async def _render(
        self, name: str, version: str | None, roles: tuple[Person, ...], number: int | None
    ) -> Page | ServerPage | None:
        # The view is read again inside the fill, so an upload landing while
        # the page renders makes the cache discard it rather than keep it.
        view = await self.catalog.project(name)
        if view is None:
            return None
        if len(view.files) < BIG_PROJECT_FILES:
            releases, release = _releases(view.files, version)
        else:  # sorting thousands of versions takes 100 ms and more: not on the reactor
            releases, release = await deferToThread(_releases, view.files, version)
        if version is not None and (release is None or release.version != version):
            return None
        # Raises NotFound past the last page: a 404 that says how many there are.
        versions = versions_page(releases, number, release if version is not None else None)
        source, meta = await self._metadata(view, release)
        readme = await self.readmes.html(self.readmes.key_of(source or view.project), meta)
        page = render_html(
            "project.html",
            view.project.serial,
            root="../../" if version is None else "../../../",
            project=view.project,
            meta=meta,
            release=release,
            versions=versions,
            is_release_page=version is not None,
            newer=None if version is None or release is None else newer_release(releases, release),
            requires=dependencies(meta.requires_dist),
            readme=Markup(readme),
            links=project_links(meta),
            commands=install_commands(self.urls.render_root(), view.project.name, version),
            status_notice=page_notice(view.project),
            held_back=view.held_back,
            exceptions=view.exceptions,
            released_early=view.released_early,
            dated=view.upload_time_known,
            integrity_path=integrity_path,
            people=roles,
            nav="projects",
        )
        return self.urls.rendered(page)

    async def _metadata(
        self, view: ProjectView, release: Release | None
    ) -> tuple[FileRecord | None, CoreMetadata]:
        """The release's core metadata, and the file it is from (None: the registration's).

        The first file that has metadata gives it, parsed off the reactor
        thread (a description may be megabytes long).

        A proxied project's comes from the upstream's ``.metadata`` file
        (PEP 658), fetched once and kept by the proxy; if the upstream cannot
        give it, the page shows what the file records say rather than fail.
        """
        if release is None:
            return None, registered_metadata(view.project)
        for record in release.files:
            if record.metadata_sha256 is None:
                continue
            try:
                data = await self.catalog.file_metadata(view, record)
            except MinistryError:
                if not view.sources:  # the store's error is the answer (a 503)
                    raise
                continue  # the upstream could not give it
            if data is None:
                continue
            try:
                return record, await deferToThread(parse_core_metadata, data)
            except BadRequest:
                continue
        python = next((r.requires_python for r in release.files if r.requires_python), None)
        fallback = CoreMetadata(view.project.display_name, release.version, requires_python=python)
        return None, fallback
