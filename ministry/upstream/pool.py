"""The outgoing connections of the daemon: one persistent pool per client, quiet in the log.

Twisted's connection pool makes a client factory per connection, and a
factory logs "Starting factory" and "Stopping factory" as it comes and goes:
two lines per upstream or object-store connection, which bury the access log
of a busy proxy. The pool's factory class is the documented place to say
``noisy = False``.

And Agent asks its endpoint factory for an endpoint on every request, even
one a pooled connection then serves, and a ``HostnameEndpoint`` IDNA-encodes
its host as it is made: 2% of a first mirror pass's GIL time went there
(issue 17). An endpoint holds no connection of its own, so the pool's Agent
keeps one per address, made as Twisted's Agent makes them.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.web.client import (
    URI,
    Agent,
    BrowserLikePolicyForHTTPS,
    HTTPConnectionPool,
    _HTTP11ClientFactory,
    _StandardEndpointFactory,
)
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

#: Addresses whose endpoint is kept; past this many (a page linking files on
#: many hosts), the kept ones are dropped and made again as asked for.
KEPT_ENDPOINTS = 64


class _QuietClientFactory(_HTTP11ClientFactory):
    """A connection's factory that does not log its start and stop."""

    noisy = False


@implementer(IAgentEndpointFactory)
class _KeptEndpoints:
    """Twisted's own endpoint for each scheme, host and port, made once (see above)."""

    def __init__(self, reactor: Any, timeout: float) -> None:
        self._standard = _StandardEndpointFactory(
            reactor, BrowserLikePolicyForHTTPS(), timeout, None
        )
        self._kept: dict[tuple[bytes, bytes, int], IStreamClientEndpoint] = {}

    def endpointForURI(self, uri: URI) -> IStreamClientEndpoint:
        address = (uri.scheme, uri.host, uri.port)
        endpoint = self._kept.get(address)
        if endpoint is None:
            if len(self._kept) >= KEPT_ENDPOINTS:
                self._kept.clear()
            endpoint = self._kept[address] = self._standard.endpointForURI(uri)
        return endpoint


def pooled_agent(
    reactor: Any, *, timeout: float, per_host: int
) -> tuple[Agent, HTTPConnectionPool]:
    """An Agent over a persistent pool of its own, keeping ``per_host`` idle connections a host.

    The caller closes the pool (``closeCachedConnections``) when it stops.
    """
    pool = HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = per_host
    pool._factory = _QuietClientFactory
    return Agent.usingEndpointFactory(reactor, _KeptEndpoints(reactor, timeout), pool), pool
