"""``/mirror/``: the scheduled mirror's progress, as a page for people and JSON for tools.

JSON when the client asks for it (``Accept: application/json`` preferred
over HTML, or ``?format=json``); HTML otherwise, chosen by the one Accept
parser every page uses (``ministry.core.negotiate``); a header that
accepts neither is a 406. Never cached: it changes
with every file a run fetches. Without a ``[mirror]`` table it is a 404 that
says so.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from twisted.web.iweb import IRequest

from ministry.core.negotiate import APPLICATION_JSON, TEXT_HTML, choose_among
from ministry.mirror.service import MirrorService
from ministry.web.errors import refusing_app
from ministry.web.http.rendered import accept_of


def _wants_json(request: IRequest) -> bool:
    if request.args.get(b"format") == [b"json"]:
        return True
    forms = (APPLICATION_JSON, TEXT_HTML)
    return choose_among(accept_of(request), forms, forms[::-1]) == APPLICATION_JSON


def _row(label: str, value: Any) -> str:
    return (
        f"<tr><th>{escape(label)}</th><td>{escape('—' if value is None else str(value))}</td></tr>"
    )


def render_html(report: dict[str, Any]) -> bytes:
    """A plain page: the facts in a table, then the errors and skips with their project."""
    done, total = report["projects_done"], report["projects_total"]
    rows = [
        _row("State", report["state"]),
        _row("Projects", f"{done} of {total}"),
        _row("Current project", report["current_project"]),
        _row("Files fetched", report["files_fetched"]),
        _row("Bytes fetched", report["bytes_fetched"]),
        _row("Files already here", report["files_present"]),
        _row("Run started", report["run_started"]),
        _row("Run finished", report["run_finished"]),
        _row("Last success", report["last_success"]),
        _row("Next run", report["next_run"]),
        _row(
            "Runs (failed, skipped)",
            f"{report['runs']} ({report['failed_runs']}, {report['skipped_runs']})",
        ),
    ]
    body = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Mirror</title>'
        '<link rel="stylesheet" href="/static/style.css"></head><body><main>'
        "<h1>Mirror</h1><table>"
        + "".join(rows)
        + "</table>"
        + _by_project("Errors of the last run", report["errors"], "error")
        + _by_project("Skipped by the name policy", report["skipped"], "reason")
        + "</main></body></html>\n"
    )
    return body.encode()


def _by_project(title: str, items: list[dict[str, str]], key: str) -> str:
    """A heading with the count, then each project and what was said of it."""
    listed = "".join(
        f"<li><strong>{escape(item['project'])}</strong>: {escape(item[key])}</li>"
        for item in items
    )
    return f"<h2>{title} ({len(items)})</h2>" + (f"<ul>{listed}</ul>" if listed else "<p>None.</p>")


class MirrorStatusPage:
    """The ``/mirror/`` component."""

    app = refusing_app()

    def __init__(self, mirror: MirrorService | None) -> None:
        self.mirror = mirror

    @app.route("/mirror", methods=["GET", "HEAD"])
    def bare(self, request: IRequest) -> bytes:
        request.redirect(b"/mirror/")
        return b""

    @app.route("/mirror/", methods=["GET", "HEAD"])
    def status(self, request: IRequest) -> bytes:
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"vary", b"Accept")
        as_json = _wants_json(request)
        if self.mirror is None:
            request.setResponseCode(404)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"No mirror is configured (no [mirror] table in the config file).\n"
        report = self.mirror.status.to_dict()
        if as_json:
            request.setHeader(b"content-type", b"application/json")
            return json.dumps(report, indent=2).encode() + b"\n"
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return render_html(report)
