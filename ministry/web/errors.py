"""The one way a component turns an error into its refusal.

Every Klein component answers a :class:`MinistryError` the same way: its
status and reason in the status line and in the body
(``ministry.web.http.responses.refuse``). Each component's class-level app is
made with :func:`refusing_app`, so that rule is written once and no
component can forget it. A path no route matches is a 404 and a failure
nobody expected a logged 500, in the same words.

Installers and command-line tools read the status line and a plain-text
body; a person's browser (``ministry.core.negotiate.from_browser``) gets the
same status and message as a page with the site's navigation, so a mistyped
URL is not a dead end.
"""

from __future__ import annotations

from http import HTTPStatus

from klein import Klein
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from werkzeug.exceptions import HTTPException

from ministry.core.errors import MinistryError
from ministry.core.negotiate import from_browser
from ministry.web.html import SECURITY_HEADERS, environment
from ministry.web.http.rendered import accept_of
from ministry.web.http.responses import refuse

log = Logger()


def _root(request: IRequest) -> str:
    """The relative way from the requested path's directory to the site's root."""
    depth = request.path.count(b"/") - 1
    return "../" * depth or "./"


def _phrase(status: int) -> str:
    """HTTP's name for ``status`` ("Not Found"), for the page's heading."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Refused"


def answer_refusal(request: IRequest, error: MinistryError) -> bytes:
    """``error``'s refusal: plain text for tools, the site's error page for a browser."""
    body = refuse(request, error)
    if not from_browser(accept_of(request)):
        return body
    for name, value in SECURITY_HEADERS.items():
        request.setHeader(name, value)
    request.setHeader(b"content-type", b"text/html; charset=utf-8")
    template = environment().get_template("error.html")
    context = {"status": error.status, "phrase": _phrase(error.status), "root": _root(request)}
    context["nav"] = None
    return template.render(message=error.message, **context).encode("utf-8")


def _refuse(component: object, request: IRequest, failure: Failure) -> bytes:
    """Klein's handler for a MinistryError raised by any route of ``component``."""
    return answer_refusal(request, failure.value)


def _unrouted(component: object, request: IRequest, failure: Failure) -> bytes | Failure:
    """No route for the path (404) or the method (405); a redirect goes on to Klein's default."""
    error = failure.value
    if error.code < 400:
        return failure
    if error.code == 404:
        message = f"No page at {request.path.decode('utf-8', 'replace')}"
    else:
        message = f"{_phrase(error.code)}: {request.method.decode('latin-1')}"
    return answer_refusal(request, MinistryError(message, status=error.code))


def _failed(component: object, request: IRequest, failure: Failure) -> bytes | Failure:
    """A failure no route expected: logged whole, answered with a 500 that leaks nothing."""
    if failure.check(HTTPException):
        return failure  # a redirect _unrouted passed on: Klein's default sends it
    log.failure("{method} {path} failed", failure, method=request.method, path=request.path)
    message = "Internal error: this index logged what went wrong."
    return answer_refusal(request, MinistryError(message, status=500))


def refusing_app() -> Klein:
    """A component's Klein app, with the error handlers already registered, in this order."""
    app = Klein()
    app.handle_errors(MinistryError)(_refuse)
    app.handle_errors(HTTPException)(_unrouted)
    app.handle_errors(Exception)(_failed)
    return app
