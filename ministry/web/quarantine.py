"""The files of a quarantined project (PEP 792), served to its owners and administrators only.

The simple pages and the JSON API already list none of them; this guards
the ``/packages/`` URLs themselves, which lock files, ``--find-links`` and
old links still name. A request without credentials gets a 403 that says
the project is quarantined and why (pip prints it); one with the rights to
set the project's status (an owner, an administrator) gets the file, but not
through a read-only token: those are what CI installs with, and quarantine
is there to stop installs.
"""

from __future__ import annotations

from twisted.internet.defer import ensureDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET

from ministry.core.auth import Action
from ministry.core.errors import Forbidden
from ministry.core.models import ProjectRecord
from ministry.core.project_status import quarantine_notice
from ministry.web.auth import Authenticator
from ministry.web.http.responses import finish_refused

log = Logger()


class QuarantinedFile(Resource):
    """``inner`` (a file of a quarantined project) behind an owner-or-admin check."""

    isLeaf = True

    def __init__(self, auth: Authenticator, project: ProjectRecord, inner: IResource) -> None:
        super().__init__()
        self.auth = auth
        self.project = project
        self.inner = inner

    def render(self, request: IRequest) -> object:
        lost: list[object] = []
        request.notifyFinish().addErrback(lost.append)
        d = ensureDeferred(self._check(request))
        d.addCallbacks(
            lambda _: None if lost else request.render(self.inner),
            lambda failure: self._refuse(request, failure, lost),
        )
        return NOT_DONE_YET

    async def _check(self, request: IRequest) -> None:
        notice = quarantine_notice(self.project)
        identity = await self.auth.authenticate(request)
        if identity is None:
            raise Forbidden(notice)
        try:
            await self.auth.authorize(request, Action.SET_STATUS, self.project.name)
        except Forbidden:
            who = (
                "not with a read-only token (quarantine stops installs)"
                if identity.read_only
                else f"{identity.username} is neither"
            )
            raise Forbidden(
                f"{notice} Only its owners and administrators may download them, and {who}."
            ) from None

    def _refuse(self, request: IRequest, failure: Failure, lost: list[object]) -> None:
        if lost:
            return
        finish_refused(request, failure, "Checking who may download a quarantined file")
