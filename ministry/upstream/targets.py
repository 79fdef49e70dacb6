"""The request target of an upstream URL: the bytes an HTTP request names it by.

A file URL comes from an upstream page as the page wrote it, which may be an
IRI (non-ASCII characters, a space) that must be percent-encoded before it
can be sent. hyperlink does that, but parsing and re-serialising a URL costs
more than the rest of the request's preparation, and almost every URL is a
URI already: those are sent as they are, the bytes hyperlink would give
but for the host's case (a first mirror pass of 1,500 files spent 5% of its
CPU in hyperlink; issue 17).
"""

from __future__ import annotations

import re

from hyperlink import EncodedURL

#: A URI as RFC 3986 allows it: unreserved and reserved characters, and
#: percent-encodings. Anything else (non-ASCII, spaces, quotes) is encoded.
_AS_IS = r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]*"
_URI = re.compile(f"{_AS_IS}(?:%[0-9A-Fa-f]{{2}}{_AS_IS})*")


def request_target(url: str) -> bytes:
    """``url`` as a URI, in ASCII: as it is when it is one already, else percent-encoded."""
    if _URI.fullmatch(url):
        return url.encode("ascii")
    return EncodedURL.from_text(url).to_uri().to_text().encode("ascii")
