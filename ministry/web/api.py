"""``POST /api/yank``, ``/api/unyank``, ``/api/delete`` and ``/api/status``: curation over HTTP.

A small JSON API for scripts and CI, authenticated like uploads (HTTP Basic,
or ``__token__`` and a token)::

    curl -u alice -H 'Content-Type: application/json' \\
         -d '{"project": "demo", "version": "1.0", "reason": "broken build"}' \\
         https://index.example/api/yank

The body names a ``project`` and either a ``version`` (every file of the
release) or a ``filename``; ``reason`` is for yanking only. Owners,
maintainers and administrators may yank and un-yank; only administrators
may delete. The answer lists the files acted on and those whose state
changed. Refusals are 4xx with the reason, as everywhere else.

``/api/status`` sets a project's PEP 792 status, for its owners and
administrators: ``{"project": "demo", "status": "quarantined", "reason":
"malware"}`` (``reason`` optional); the answer is the project's status
afterwards, in PEP 792's JSON form (``project-status``).
"""

from __future__ import annotations

import json
from typing import Any

from twisted.web.iweb import IRequest

from ministry.core.audit import Actor
from ministry.core.auth import Action
from ministry.core.errors import BadRequest, TooLarge
from ministry.core.names import check_project_name
from ministry.core.project_status import status_json
from ministry.curation import Curator, Target
from ministry.web.audit_page import web_actor
from ministry.web.auth import Authenticator
from ministry.web.errors import refusing_app
from ministry.web.http.form import StreamingForm

#: A request body is a few names; anything bigger is a mistake.
MAX_BODY = 64 * 1024


class CurationApi:
    """The ``/api/`` routes."""

    app = refusing_app()

    def __init__(self, auth: Authenticator, curator: Curator) -> None:
        self.auth = auth
        self.curator = curator

    @app.route("/api/yank", methods=["POST"])
    async def yank(self, request: IRequest) -> bytes:
        body = _json_body(request)
        target, actor = await self._allowed(request, body, Action.YANK)
        reason = _text(body, "reason") or ""
        files = [record.filename for record in await self.curator.select(target)]
        changed = await self.curator.yank(target, actor, reason)
        return _answer(request, target, files, changed)

    @app.route("/api/unyank", methods=["POST"])
    async def unyank(self, request: IRequest) -> bytes:
        target, actor = await self._allowed(request, _json_body(request), Action.YANK)
        files = [record.filename for record in await self.curator.select(target)]
        return _answer(request, target, files, await self.curator.unyank(target, actor))

    @app.route("/api/delete", methods=["POST"])
    async def delete(self, request: IRequest) -> bytes:
        target, actor = await self._allowed(request, _json_body(request), Action.DELETE)
        deleted = await self.curator.delete(target, actor)
        return _answer(request, target, deleted, deleted)

    @app.route("/api/status", methods=["POST"])
    async def status(self, request: IRequest) -> bytes:
        body = _json_body(request)
        project, status = _text(body, "project"), _text(body, "status")
        if project is None or status is None:
            raise BadRequest("The JSON body needs a 'project' and a 'status'.")
        name = check_project_name(project)
        identity = await self.auth.authorize(request, Action.SET_STATUS, name)
        actor = web_actor(request, identity)
        record = await self.curator.set_status(name, status, _text(body, "reason"), actor)
        return _json(request, {"project": name, "project-status": status_json(record)})

    async def _allowed(
        self, request: IRequest, body: dict[str, Any], action: Action
    ) -> tuple[Target, Actor]:
        """The target, if the caller may act on it, and the caller for the audit log."""
        project = _text(body, "project")
        if project is None:
            raise BadRequest("The JSON body needs a 'project'.")
        target = Target.of(project, _text(body, "version"), _text(body, "filename"))
        identity = await self.auth.authorize(request, action, target.project)
        return target, web_actor(request, identity)


def _json_body(request: IRequest) -> dict[str, Any]:
    content = request.content
    if isinstance(content, StreamingForm):
        raise BadRequest("Send the request as JSON (Content-Type: application/json).")
    content.seek(0)
    data = content.read(MAX_BODY + 1)
    if len(data) > MAX_BODY:
        raise TooLarge(f"The JSON body is over {MAX_BODY} bytes.")
    try:
        body = json.loads(data)
    except ValueError as error:
        raise BadRequest(f"The body is not valid JSON: {error}.") from None
    if not isinstance(body, dict):
        raise BadRequest("The JSON body must be an object.")
    return body


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"'{key}' must be a string.")
    return value


def _answer(request: IRequest, target: Target, files: list[str], changed: list[str]) -> bytes:
    return _json(request, {"project": target.project, "files": files, "changed": changed})


def _json(request: IRequest, answer: dict[str, Any]) -> bytes:
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps(answer).encode() + b"\n"
