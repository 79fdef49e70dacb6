"""The one way a component turns a domain error into its refusal.

Every Klein component answers a :class:`MinistryError` the same way: its
status and reason in the status line and in the body
(``ministry.web.http.responses.refuse``). Each component's class-level app is
made with :func:`refusing_app`, so that rule is written once and no
component can forget it.
"""

from __future__ import annotations

from klein import Klein
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest

from ministry.core.errors import MinistryError
from ministry.web.http.responses import refuse


def _refuse(component: object, request: IRequest, failure: Failure) -> bytes:
    """Klein's handler for a MinistryError raised by any route of ``component``."""
    return refuse(request, failure.value)


def refusing_app() -> Klein:
    """A component's Klein app, with the domain-error handler already registered."""
    app = Klein()
    app.handle_errors(MinistryError)(_refuse)
    return app
