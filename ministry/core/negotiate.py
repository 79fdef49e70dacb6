"""PEP 691 content negotiation for the simple repository API.

One page, three representations: the PEP 691 JSON and HTML media types, and
plain ``text/html`` for clients from before PEP 691. The choice follows
RFC 9110 (q-values, wildcards, the most specific range deciding an offer's
q-value) with two tie-breaks that the real clients need:

* A client that *names* a type beats wildcards at the same q-value, and among
  named types JSON is preferred: pip, uv and poetry all name JSON first and
  get the richer document.
* A client that names none of our types, and so is matched through wildcards
  alone (curl, wget, ``requests``' default ``*/*``, no header at all), gets
  HTML, the format every client could read before PEP 691. Poetry up to 2.2
  fetches private indexes with ``requests``' default ``Accept: */*`` and
  parses whatever comes back as HTML; answering JSON there would show it an
  empty project. Warehouse also answers ``*/*`` with ``text/html``.

Garbage in an ``Accept`` header never raises: a part that cannot be parsed is
treated as absent, and a header with nothing usable left as no header.

The same parser and ranking serve every other page with more than one
form (:func:`choose_among`: ``/mirror/`` in HTML or JSON) and the one
question that is not about formats (:func:`from_browser`: does ``/<name>/``
get a person's project page or an installer's simple page).
"""

from __future__ import annotations

from dataclasses import dataclass

from ministry.core.errors import NotAcceptable

JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"
APPLICATION_JSON = "application/json"
#: What browsers name for a page load and no installer does.
XHTML = "application/xhtml+xml"

#: What we serve, most preferred first when a client names several at one q.
OFFERS = (JSON_V1, HTML_V1, TEXT_HTML)
#: Our preference when only wildcards matched: the pre-PEP 691 format first.
_WILDCARD_PREFERENCE = (TEXT_HTML, HTML_V1, JSON_V1)

_EXACT, _SUBTYPE_WILDCARD, _FULL_WILDCARD = 2, 1, 0
#: How much of a refused header or parameter the 406 message repeats.
_MAX_ECHO = 200
#: RFC 9110 token characters besides letters and digits.
_TCHARS = "!#$%&'*+-.^_`|~"


@dataclass(frozen=True)
class MediaRange:
    """One parsed element of an ``Accept`` header."""

    type: str
    subtype: str
    q: float

    def specificity(self, offer: str) -> int | None:
        """How precisely this range names ``offer``; None when it does not match."""
        offer_type, offer_subtype = offer.split("/", 1)
        if self.type == "*":
            return _FULL_WILDCARD
        if self.type != offer_type:
            return None
        if self.subtype == "*":
            return _SUBTYPE_WILDCARD
        return _EXACT if self.subtype == offer_subtype else None


#: What no header, or a header with nothing usable in it, means (RFC 9110 12.5.1).
_ANYTHING = MediaRange("*", "*", 1.0)


def choose(accept: str | None, format_param: str | None = None) -> str:
    """The Content-Type to answer with; raise NotAcceptable when nothing fits.

    ``format_param`` is the ``?format=`` query value. When given (non-empty) it
    overrides the header, because a person typing it into a browser's address
    bar means exactly that type; it must name one of ours.
    """
    if format_param:
        return _chosen_by_format(format_param)
    return choose_among(accept, OFFERS, _WILDCARD_PREFERENCE)


def choose_among(accept: str | None, named: tuple[str, ...], by_wildcard: tuple[str, ...]) -> str:
    """The best of ``named`` for this header; raise NotAcceptable when none fits.

    ``named`` is the order of preference among types the client names at one
    q-value; ``by_wildcard`` the order when only wildcards matched (the
    same types). A page that has an HTML and a JSON form passes
    ``(APPLICATION_JSON, TEXT_HTML), (TEXT_HTML, APPLICATION_JSON)``: tools
    that ask for JSON get it, browsers, curl and no header get HTML.
    """
    ranges = parse_accept(accept or "") or [_ANYTHING]
    ranked = [
        (rank, offer)
        for offer in named
        if (rank := _rank(offer, ranges, named, by_wildcard)) is not None
    ]
    if not ranked:
        raise NotAcceptable(_refusal(f"Accept: {accept}", named))
    return max(ranked)[1]


def from_browser(accept: str | None) -> bool:
    """Whether a request for a page comes from a person's browser rather than a tool.

    ``/<name>/`` is both the project page of a person who typed the index's
    URL and the simple page of ``pip install -i http://host/``. Every
    browser's page load names ``application/xhtml+xml``; no installer
    (pip, uv, poetry, pdm, old pip's bare ``text/html``) and no command
    line tool (``*/*``) does, so that one type decides.
    """
    return any(r.specificity(XHTML) == _EXACT and r.q > 0 for r in parse_accept(accept or ""))


def parse_accept(header: str) -> list[MediaRange]:
    """Parse an ``Accept`` header, dropping any part that is malformed."""
    ranges = []
    for part in header.split(","):
        media_range = _parse_part(part)
        if media_range is not None:
            ranges.append(media_range)
    return ranges


def _parse_part(part: str) -> MediaRange | None:
    """One ``type/subtype;param=value`` element, or None if it is not one."""
    media, *params = part.split(";")
    media_type, slash, subtype = media.strip().lower().partition("/")
    if not slash or not _is_token(media_type) or not _is_token(subtype):
        return None
    if media_type == "*" and subtype != "*":
        return None
    q = 1.0
    for param in params:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            parsed = _parse_q(value.strip())
            if parsed is None:
                return None
            q = parsed
    return MediaRange(media_type, subtype, q)


def _parse_q(value: str) -> float | None:
    """A q-value in [0, 1], or None for anything else ("nan", "2", "")."""
    try:
        q = float(value)
    except ValueError:
        return None
    return q if 0.0 <= q <= 1.0 else None


def _is_token(text: str) -> bool:
    """Whether ``text`` can be a media type or subtype (RFC 9110 token chars)."""
    return bool(text) and all(c.isascii() and (c.isalnum() or c in _TCHARS) for c in text)


def _rank(
    offer: str,
    ranges: list[MediaRange],
    named: tuple[str, ...],
    by_wildcard: tuple[str, ...],
) -> tuple[float, int, int] | None:
    """Sort key of ``offer`` for these ranges: (q, specificity, preference).

    The most specific matching range sets the q-value (``text/html;q=0, */*``
    refuses text/html); None means the offer is not acceptable.
    """
    matches = [(s, r.q) for r in ranges if (s := r.specificity(offer)) is not None]
    if not matches:
        return None
    specificity = max(s for s, _ in matches)
    q = max(q for s, q in matches if s == specificity)
    if q <= 0:
        return None
    order = named if specificity == _EXACT else by_wildcard
    return (q, specificity, -order.index(offer))


def _chosen_by_format(format_param: str) -> str:
    """The type named by ``?format=``, which must be one we offer."""
    wanted = format_param.strip().lower()
    if wanted not in OFFERS:
        raise NotAcceptable(_refusal(f"format={format_param}", OFFERS))
    return wanted


def _refusal(asked: str, offers: tuple[str, ...]) -> str:
    """The 406 message: what was asked and what is on offer, so it can be fixed.

    The message also goes into the status line, so the client's text is cut
    short and ``repr``-quoted: no CR/LF from a query string reaches a header.
    """
    if len(asked) > _MAX_ECHO:
        asked = asked[:_MAX_ECHO] + "..."
    return f"Not Acceptable: {asked!r} matches none of: {', '.join(offers)}."
