"""Small readings of an upstream's responses, for :mod:`ministry.upstream.client`.

A header's last value, a reason phrase, and Twisted's nested client errors
in one line: apart so that the client module keeps to the requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall
from twisted.web.iweb import IResponse


def cancelling(timer: IDelayedCall) -> Callable[[Any], Any]:
    """A callback that cancels ``timer`` if it has not fired, passing the result on."""

    def cancel(result: Any) -> Any:
        if timer.active():
            timer.cancel()
        return result

    return cancel


def header(response: IResponse, name: bytes) -> str | None:
    """The last value of header ``name`` (a repeated one: the last word counts), or None."""
    values = response.headers.getRawHeaders(name)
    return values[-1].decode("latin-1") if values else None


def phrase(response: IResponse) -> str:
    return response.phrase.decode("latin-1", "replace")


def describe(exc: Exception) -> str:
    """A one-line reason from Twisted's nested client errors."""
    reasons = getattr(exc, "reasons", None)
    if reasons:
        return "; ".join(reason.getErrorMessage() or reason.type.__name__ for reason in reasons)
    return str(exc) or type(exc).__name__
