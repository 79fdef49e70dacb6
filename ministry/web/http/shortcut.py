"""The hot requests answered before Klein routes them.

Profiles of a cached ``/simple/<project>/`` showed about half of the time in
Klein's routing: werkzeug's URL matching, a Deferred chain and two finish
notifications per request. A component with cached answers gives a
synchronous look-up that recognises its hot requests from
``request.postpath`` with dictionary look-ups (a cached page, a hosted
file) and returns their resource; anything else (a miss, a redirect, an
error, another method) goes to the component's Klein routes unchanged, and
they give the same answer for the same request.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource

#: Methods a look-up may answer; the routes handle the rest.
READS = (b"GET", b"HEAD")

#: A look-up reads only ``method``, ``uri``, ``postpath``, ``args`` and
#: ``getHeader`` of the request: the fast lane (``ministry.web.http.fastlane``)
#: calls the same look-ups with a parsed request that has just those.
Lookup = Callable[[IRequest], IResource | None]


class Shortcut(Resource):
    """A component's routes behind its look-up (see the module docstring)."""

    isLeaf = True

    def __init__(self, lookup: Lookup, routes: IResource) -> None:
        super().__init__()
        self.lookup = lookup
        self.routes = routes

    def render(self, request: IRequest) -> bytes | int:
        found = self.lookup(request) if request.method in READS else None
        return (self.routes if found is None else found).render(request)
