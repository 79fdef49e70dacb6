"""Apache-style directory listings of any tree (``mod_autoindex`` look-alike).

The component knows nothing of packages: it serves whatever a
:class:`Tree` says is in a directory, sorts it with Apache's ``?C=;O=``
query, renders it with the pure core and caches the bytes under the tree's
cache scope. Leaves (files) are resources the tree hands back. This is what
the original README promised: generic listings that browsers, ``wget -r``
and ``pip --find-links`` all read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from twisted.internet.defer import ensureDeferred
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource

from ministry.catalog.cache import PageCache
from ministry.core import listing
from ministry.core.errors import NotFound
from ministry.web.errors import refusing_app
from ministry.web.html import environment
from ministry.web.http.rendered import Page, PageResponse
from ministry.web.http.responses import redirect
from ministry.web.http.shortcut import Shortcut
from ministry.web.static import static_url

Path = tuple[str, ...]


class Tree(Protocol):
    """What a listing needs from a tree of directories and files."""

    async def directory(self, path: Path) -> Sequence[listing.Entry] | None:
        """The entries of a directory, or None when ``path`` is not one."""

    async def leaf(self, path: Path) -> IResource | None:
        """The resource of a file, or None when ``path`` is not one."""

    def cached_leaf(self, path: Path) -> IResource | None:
        """The resource of a file when it is known without waiting, else None."""

    def scope(self, path: Path) -> str:
        """The cache scope (project name, or "" for all) a directory depends on."""

    def canonical(self, path: Path) -> Path:
        """The canonical spelling of a path; a different one is redirected."""


def _site(directory: str) -> tuple[str, str]:
    """The stylesheet link and the site's navigation for a listing of ``directory``."""
    root = "../" * (directory.count("/") - 1) or "./"
    head = (
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<link rel="icon" href="{root}{static_url("favicon.svg")}" type="image/svg+xml">\n'
        f'<link rel="stylesheet" href="{root}{static_url("style.css")}">\n'
    )
    header = environment().get_template("_site_header.html").render(root=root, nav="files")
    return head, header


class DirectoryListing:
    """Serves a :class:`Tree` mounted at ``mount`` (e.g. ``/packages/``)."""

    app = refusing_app()

    def __init__(self, tree: Tree, mount: str, cache: PageCache) -> None:
        self.tree = tree
        self.mount = "/" + mount.strip("/") + "/"
        self.cache = cache

    def _path(self, request: IRequest) -> tuple[Path, bool]:
        """The path below the mount, and whether it names a directory (ends in "/")."""
        segments = [segment.decode("utf-8", "replace") for segment in request.postpath]
        is_directory = not segments or segments[-1] == ""
        return tuple(segment for segment in segments if segment), is_directory

    def _key(self, request: IRequest, path: Path) -> tuple:
        column, order = listing.parse_sort(request.uri.partition(b"?")[2].decode("latin-1"))
        return (self.tree.scope(path), "listing", path, column, order)

    def resource(self) -> Shortcut:
        """The tree: cached listings and files answered by :meth:`cached`, the rest routed.

        The routes only see misses (and redirects and errors), so they render
        without looking in the cache again.
        """
        return Shortcut(self.cached, self.app.resource())

    def cached(self, request: IRequest) -> IResource | None:
        """A cached listing or a file for a GET or HEAD (``ministry.web.http.shortcut``)."""
        path, is_directory = self._path(request)
        if ".." in path or self.tree.canonical(path) != path:
            return None
        if not is_directory:
            return self.tree.cached_leaf(path)
        page = self.cache.get(self._key(request, path))
        return None if page is None else PageResponse(page, vary_accept=False)

    @app.route("/", methods=["GET", "HEAD"], branch=True)
    def serve(self, request: IRequest):
        path, is_directory = self._path(request)
        if ".." in path:
            raise NotFound("No such path.")
        canonical = self.tree.canonical(path)
        if canonical != path:
            suffix = "/" if is_directory else ""
            return redirect(request, self.mount + "/".join(canonical) + suffix)
        if is_directory:
            return ensureDeferred(self._render(request, path, self._key(request, path)))
        return ensureDeferred(self._leaf(request, path))

    async def _render(self, request: IRequest, path: Path, key: tuple):
        _, _, _, column, order = key

        async def render() -> Page | None:
            entries = await self.tree.directory(path)
            if entries is None:
                return None
            title = self.mount + "".join(f"{segment}/" for segment in path)
            entries = listing.sort_entries(entries, column, order)
            body = listing.render_listing(title, entries, column, order, True, *_site(title))
            return Page.of(body, "text/html; charset=utf-8")

        page = await self.cache.fill(key, render)
        if page is None:
            if await self.tree.leaf(path) is not None:
                return redirect(request, self.mount + "/".join(path))
            raise NotFound(f"No such directory: {self.mount}{'/'.join(path)}/")
        return PageResponse(page, vary_accept=False)

    async def _leaf(self, request: IRequest, path: Path):
        found = await self.tree.leaf(path)
        if found is not None:
            return found
        if await self.tree.directory(path) is not None:
            return redirect(request, self.mount + "/".join(path) + "/")
        raise NotFound(f"No such file: {self.mount}{'/'.join(path)}")
