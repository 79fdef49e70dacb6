"""Which requests may send a body, of what type and size, decided from the head alone.

twisted.web reads whatever body a request declares before any resource sees
it: a 250 MB form posted without credentials was held in memory whole. So
the channel asks :func:`plan_body` as soon as a head with a body is
complete, before reading a byte of it (and before twisted.web sends
``100 Continue``), and a request that could only be refused is refused then:

- only uploads (``POST`` to ``/``, ``/legacy/``, ``/dist/``) and the
  ``/api/`` calls take a body; anything else with one is a 400 or 405;
- uploads are ``multipart/form-data`` (streamed to a staging file, up to
  ``--max-upload-size`` plus room for the fields) or a small
  ``application/x-www-form-urlencoded`` form (pypiserver's ``remove_pkg``);
  the ``/api/`` calls take a small body that is not multipart; other types
  are a 415;
- a request that needs credentials and has no ``Authorization`` header is
  a 401 with the challenge (whether the password is right is checked later,
  by the handler);
- a declared ``Content-Length`` over the limit is a 413. A chunked body has
  no declared length: it is refused as soon as it grows past the limit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from multipart import parse_options_header
from twisted.web.http_headers import Headers

from ministry.core.errors import BadRequest, MinistryError, TooLarge, Unauthorized

#: The first path segments clients post uploads to: twine and friends use
#: "/" or "/legacy/", the original README used "/dist" (``ministry.web.upload``).
UPLOAD_SEGMENTS = (b"", b"legacy", b"dist")

#: The largest body that is not a multipart upload (held in memory up to 100 KB,
#: beyond that in a temporary file, by twisted.web).
SMALL_BODY_MAX = 1024 * 1024

_FORM = "multipart/form-data"
_URLENCODED = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class BodyPlan:
    """How a request's body is received: its cap, and the form boundary if it is a form."""

    limit: int
    #: Why the limit is what it is, for the 413.
    limit_reason: str
    #: A ``multipart/form-data`` body's boundary: it goes to a StreamingForm.
    boundary: str | None = None

    def check(self, size: int) -> None:
        """Refuse a body of ``size`` bytes if it is over the limit."""
        if size > self.limit:
            raise TooLarge(
                f"Request body too large: {size} bytes is over the limit of {self.limit} "
                f"bytes ({self.limit_reason})."
            )


def plan_body(
    method: bytes,
    path: bytes,
    headers: Headers,
    length: int | None,
    max_form: int,
    uploads_need_credentials: Callable[[], bool],
) -> BodyPlan:
    """The plan for the body of this request; raises the refusal if there is none.

    ``length`` is the declared ``Content-Length`` (None: chunked); ``max_form``
    the cap of a multipart upload; ``uploads_need_credentials`` says whether
    the index refuses anonymous uploads (``Authenticator.uploads_need_credentials``).
    """
    target = path.partition(b"?")[0]
    first = unquote_to_bytes(target[1:].partition(b"/")[0]) if target.startswith(b"/") else None
    kind, options = _content_type(headers)
    if method != b"POST":
        raise BadRequest(f"A {_text(method)} request takes no body, and this one has one.")
    if first in UPLOAD_SEGMENTS:
        plan = _upload_plan(kind, options, max_form)
        anonymous_ok = plan.boundary is not None and not uploads_need_credentials()
    elif first == b"api":
        if kind == _FORM:
            raise _unsupported("Send the request as JSON (Content-Type: application/json).")
        plan, anonymous_ok = BodyPlan(SMALL_BODY_MAX, "the most an /api/ call takes"), False
    else:
        raise MinistryError(
            f"POST is not accepted at {_text(target)}: uploads go to / or /legacy/, "
            "curation calls to /api/.",
            status=405,
        )
    if not anonymous_ok and not headers.hasHeader(b"authorization"):
        raise Unauthorized("This needs credentials: a username and password, or a token.")
    if length is not None:
        plan.check(length)
    return plan


def _upload_plan(kind: str, options: dict[str, str], max_form: int) -> BodyPlan:
    if kind == _FORM and options.get("boundary"):
        return BodyPlan(
            max_form, "--max-upload-size plus room for the form's fields", options["boundary"]
        )
    if kind == _URLENCODED:
        return BodyPlan(SMALL_BODY_MAX, "the most a form that is not multipart may hold")
    raise _unsupported("Uploads must be sent as multipart/form-data.")


def _content_type(headers: Headers) -> tuple[str, dict[str, str]]:
    values = headers.getRawHeaders(b"content-type")
    if not values:
        return "", {}
    kind, options = parse_options_header(values[0].decode("latin-1"))
    return kind.lower(), options


def _unsupported(message: str) -> MinistryError:
    return MinistryError(message, status=415)


def _text(value: bytes) -> str:
    """A request's bytes for a message: printable, and short."""
    return value[:200].decode("latin-1").encode("ascii", "backslashreplace").decode()
