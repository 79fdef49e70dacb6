"""Browser pages: the Jinja2 environment, and how an HTML page is sent.

Autoescaping is on for every template, so text from uploads (names,
summaries, versions, filenames, URLs) can only ever be text. The single
exception is a README, which readme_renderer has sanitised already and which
the pages hand over as ``Markup``.

Every page goes out with a Content-Security-Policy allowing nothing but this
server's own files: there is no inline script or style anywhere, so even an
escaping mistake could not run a script.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined
from twisted.web.iweb import IRequest

from ministry import __version__
from ministry.core.models import format_time
from ministry.web.http.rendered import Page, PageResponse
from ministry.web.static import static_url

SECURITY_HEADERS = {
    b"content-security-policy": (
        b"default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"same-origin",
}

#: How each ``FileRecord.origin`` is described to people.
ORIGIN_LABELS = {"upload": "uploaded here", "proxy": "cached from upstream", "mirror": "mirrored"}


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _segment(text: str) -> str:
    """A URL path segment: everything but unreserved characters percent-encoded."""
    return quote(text, safe="")


@cache
def environment() -> Environment:
    """The template environment, with every template compiled.

    Compiling the project page's template takes tens of milliseconds, which
    on the first request would stall the reactor for every other client;
    the site calls this once while it is built, before it listens.
    """
    env = Environment(
        loader=PackageLoader("ministry", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static_url"] = static_url
    env.globals["version"] = __version__
    env.filters["when"] = _when
    env.filters["iso"] = format_time
    env.filters["segment"] = _segment
    env.filters["origin"] = lambda origin: ORIGIN_LABELS.get(origin, origin)
    for name in env.list_templates(extensions=["html"]):
        env.get_template(name)  # compiled and kept in the environment's cache
    return env


def render_html(template: str, serial: int | None = None, **context: Any) -> Page:
    """Render a template once, into the bytes the cache keeps."""
    body = environment().get_template(template).render(**context)
    return Page.of(body.encode("utf-8"), "text/html; charset=utf-8", serial)


def send_html(request: IRequest, page: Page) -> PageResponse:
    """Send a rendered page with the security headers (ETag and 304 as usual)."""
    for name, value in SECURITY_HEADERS.items():
        request.setHeader(name, value)
    return PageResponse(page, vary_accept=False)
