"""``/_/oidc/audience``: the answer that tells uploaders trusted publishing is not offered.

uv (and the publishing actions of CI services) ask the index for the
audience of an OIDC token before an upload without credentials. A quick
404 with a reason lets them fall back to credentials at once; anything slow
or ambiguous there makes them retry. Every other path under ``/_/`` is
refused the same way, as this index has nothing there.
"""

from __future__ import annotations

from twisted.web.iweb import IRequest
from twisted.web.resource import Resource

from ministry.core.errors import NotFound
from ministry.web.http.responses import refuse

#: The first path segment of the trusted-publishing endpoints.
SEGMENT = b"_"
#: The reason given for ``/_/oidc/audience`` (and anything else below ``/_/``).
NOT_OFFERED = (
    "Not Found: trusted publishing (OIDC) is not offered by this index; "
    "upload with a user name and password or an API token."
)


class NoTrustedPublishing(Resource):
    """Everything under ``/_/``: a 404 saying trusted publishing is not offered."""

    isLeaf = True

    def render(self, request: IRequest) -> bytes:
        return refuse(request, NotFound(NOT_OFFERED))
