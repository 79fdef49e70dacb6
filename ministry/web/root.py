"""The root resource: a dictionary dispatch on the first path segment.

The hot trees (``/simple/``, ``/packages/``, ``/pypi/``) are children found
by one dictionary look-up, with no routing table in front of them. Other
first segments go to the component named for them in ``routes`` (``health``,
``metrics``), to the uploads for a POST to an upload path, or else to the
front pages; the segment is put back so their own Klein routes see the full
path.
"""

from __future__ import annotations

from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource

from ministry.web.http.bodies import UPLOAD_SEGMENTS
from ministry.web.http.responses import redirect


class _AddSlash(Resource):
    """``/simple`` -> 301 ``/simple/``: a tree is only served below its slash."""

    isLeaf = True

    def render(self, request: IRequest) -> bytes:
        path, _, query = request.uri.decode("latin-1").partition("?")
        return redirect(request, path + "/" + (f"?{query}" if query else ""))


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
        return self.routes.get(path, self.front)

    def render(self, request: IRequest):  # pragma: no cover - "/" always has a child
        return self.getChild(b"", request).render(request)
