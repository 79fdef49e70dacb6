"""Which redirects of an upstream are followed: within the requested host, or to named hosts.

An upstream (or whoever answers for it: a misconfigured proxy, a taken-over
name) that redirects a page or a file to another host would have this index
fetch from a host nobody chose. Files linked from a page to another host are
fine (the page named them, and each is checked against its sha256); a
redirect is not on the page. So a redirect is followed when it stays on the
host that was asked, or goes to a host ``--upstream-redirect-host`` names (a
company mirror that sends files to its object store, say), and is otherwise
refused with the host named.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from twisted.web.client import RedirectAgent
from twisted.web.iweb import IAgent


class RedirectRefused(Exception):
    """An upstream redirected to a host the configuration does not allow."""


def _host(uri: bytes) -> str:
    return (urlsplit(uri.decode("ascii", "replace")).hostname or "").lower()


class AllowedRedirects(RedirectAgent):
    """A RedirectAgent that follows a redirect only to the same host or an allowed one."""

    def __init__(self, agent: IAgent, allowed: frozenset[str] = frozenset()) -> None:
        super().__init__(agent)
        self.allowed = allowed

    def _resolveLocation(self, requestURI: bytes, location: bytes) -> bytes:
        resolved = super()._resolveLocation(requestURI, location)
        source, target = _host(requestURI), _host(resolved)
        if target != source and target not in self.allowed:
            raise RedirectRefused(
                f"redirected from {source} to {target}, a host --upstream-redirect-host "
                "does not name"
            )
        return resolved
