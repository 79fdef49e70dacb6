"""``/admin/audit/``: the audit log, for administrators only; and who a web change is by.

HTML (a table, newest first) by default, JSON lines (the export, one
``AuditEvent.to_dict()`` a line) with ``?format=jsonl``; ``?project=NAME``
narrows it to one project, ``?limit=N`` sets how many (100 unless said).
Anyone else is refused: 401 without credentials, 403 for a user who is not
an administrator, since the log names users and their addresses.

:func:`web_actor` is how every web change names its author for the log:
the authenticated user (``anonymous`` on an open index) and the client's
address as the access log has it, that is after ``--trusted-proxy``.
"""

from __future__ import annotations

from html import escape

from twisted.web.iweb import IRequest

from ministry.core import audit
from ministry.core.audit import Actor, AuditEvent, json_lines
from ministry.core.auth import Identity
from ministry.core.errors import BadRequest, Forbidden
from ministry.core.names import canonical
from ministry.interfaces import IMetadataStore
from ministry.web.auth import Authenticator, _address
from ministry.web.errors import refusing_app

COLUMNS = ("when", "actor", "address", "action", "project", "version", "filename", "detail")


def web_actor(request: IRequest, identity: Identity | None) -> Actor:
    """Who makes a change over HTTP, and from which client address."""
    return Actor(identity.username if identity else "anonymous", _address(request))


class AuditPage:
    """The ``/admin/audit/`` route."""

    app = refusing_app()

    def __init__(self, auth: Authenticator, store: IMetadataStore) -> None:
        self.auth = auth
        self.store = store

    @app.route("/admin/audit/", methods=["GET"])
    async def audit(self, request: IRequest) -> bytes:
        identity = await self.auth.require(request)
        if not identity.admin:
            raise Forbidden("Only administrators may read the audit log.")
        project = _arg(request, b"project")
        limit = _limit(_arg(request, b"limit"))
        events = await self.store.list_audit(canonical(project) if project else None, limit)
        request.setHeader(b"cache-control", b"no-store")
        if _arg(request, b"format") == "jsonl":
            request.setHeader(b"content-type", b"application/jsonl; charset=utf-8")
            return json_lines(events).encode()
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return render_html(events)


def _arg(request: IRequest, name: bytes) -> str | None:
    values = request.args.get(name)
    return values[0].decode("utf-8", "replace") if values else None


def _limit(text: str | None) -> int:
    if text is None:
        return audit.DEFAULT_LIMIT
    if not text.isdigit() or int(text) < 1:
        raise BadRequest(f"limit must be a positive whole number, not {text!r}.")
    return int(text)


def render_html(events: list[AuditEvent]) -> bytes:
    """A plain page: one row per entry, newest first."""
    head = "".join(f"<th>{name}</th>" for name in COLUMNS)
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{escape(str(event.to_dict()[name] or ''))}</td>" for name in COLUMNS)
        + "</tr>"
        for event in events
    )
    body = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Audit log</title>'
        '<link rel="stylesheet" href="/static/style.css"></head><body><main>'
        f"<h1>Audit log</h1><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
        + ("" if events else "<p>No entries.</p>")
        + "</main></body></html>\n"
    )
    return body.encode()
