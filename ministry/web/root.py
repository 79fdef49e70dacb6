"""The root resource: a dictionary dispatch on the first path segment.

The hot trees (``/simple/``, ``/packages/``, ``/pypi/``) are children found
by one dictionary look-up, with no routing table in front of them. Other
first segments go to the component named for them in ``routes`` (``health``,
``metrics``), to the uploads for a POST to an upload path, or else to the
front pages; the segment is put back so their own Klein routes see the full
path.

Two more first segments are the URLs clients are told to use:

- ``/<name>/`` is a project, as ``pip install -i http://host/ NAME`` (the
  index URL without ``/simple/``) and a person typing it both expect: the
  simple page for an installer, the project page for a browser
  (``ministry.core.negotiate.from_browser``), answered with ``Vary: Accept``.
  A simple page's file links (``../../packages/...``) resolve from one
  level deep as from two.
- ``//<name>``, ``/legacy/<name>`` and ``/legacy/<name>/<version>/``, the
  "view at" links flit and hatch print after a publish (the repository URL
  joined with the name), are redirected to ``/project/<name>/`` (and the
  release's page).
"""

from __future__ import annotations

from urllib.parse import quote

from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource

from ministry.core.negotiate import from_browser
from ministry.web.http.bodies import UPLOAD_SEGMENTS
from ministry.web.http.rendered import accept_of
from ministry.web.http.responses import redirect

#: First segments the front pages own: never taken for a project's name.
FRONT_SEGMENTS = frozenset({b"help"})
#: The upload path whose "view" links (``/legacy/<name>``) clients print.
_LEGACY = b"legacy"


class _AddSlash(Resource):
    """``/simple`` -> 301 ``/simple/``: a tree is only served below its slash."""

    isLeaf = True

    def render(self, request: IRequest) -> bytes:
        path, _, query = request.uri.decode("latin-1").partition("?")
        return redirect(request, path + "/" + (f"?{query}" if query else ""))


class _Redirect(Resource):
    """A redirect to one place, whatever the rest of the path."""

    isLeaf = True

    def __init__(self, location: str) -> None:
        super().__init__()
        self.location = location

    def render(self, request: IRequest) -> bytes:
        return redirect(request, self.location)


def publisher_link(segments: list[bytes]) -> str | None:
    """Where a flit or hatch "view" link belongs below ``/project/``, if it is one.

    flit prints ``//NAME``; hatch ``/legacy/NAME`` or ``/legacy/NAME/VERSION/``
    (a repository URL joined with the name, and the version): ``NAME/`` or
    ``NAME/VERSION/``, quoted.
    """
    if segments and segments[-1] == b"":
        segments = segments[:-1]
    if len(segments) == 3 and segments[:2] == [_LEGACY, b""]:
        segments = [_LEGACY, segments[2]]
    if not 2 <= len(segments) <= 3 or segments[0] not in (b"", _LEGACY):
        return None
    if len(segments) == 3 and segments[0] != _LEGACY:
        return None
    try:
        parts = [segment.decode("utf-8") for segment in segments[1:]]
    except UnicodeDecodeError:
        return None
    if not all(parts):
        return None
    return "".join(f"{quote(part, safe='')}/" for part in parts)


class Root(Resource):
    """Dispatches to the component resources."""

    def __init__(
        self,
        trees: dict[bytes, IResource],
        routes: dict[bytes, IResource],
        uploads: IResource,
        front: IResource,
    ) -> None:
        super().__init__()
        for name, child in trees.items():
            self.putChild(name, child)
        self.routes = routes
        self.uploads = uploads
        self.front = front

    def getChildWithDefault(self, path: bytes, request: IRequest) -> IResource:
        if path in self.children and not request.postpath:
            return _AddSlash()
        return super().getChildWithDefault(path, request)

    def getChild(self, path: bytes, request: IRequest) -> IResource:
        request.postpath.insert(0, request.prepath.pop())
        if request.method == b"POST" and path in UPLOAD_SEGMENTS:
            return self.uploads
        if path in self.routes:
            return self.routes[path]
        if request.method in (b"GET", b"HEAD"):
            if path and path not in FRONT_SEGMENTS and request.postpath[1:] == [b""]:
                return self._project_alias(request)
            below = publisher_link(request.postpath)
            if below is not None:
                return _Redirect(f"/project/{below}")
        return self.front

    def _project_alias(self, request: IRequest) -> IResource:
        """``/<name>/``: the simple tree for installers, the project pages for browsers."""
        request.setHeader(b"vary", b"Accept")
        return self.children[b"project" if from_browser(accept_of(request)) else b"simple"]

    def render(self, request: IRequest):  # pragma: no cover - "/" always has a child
        return self.getChild(b"", request).render(request)
