"""The outgoing connections of the daemon: one persistent pool per client, quiet in the log.

Twisted's connection pool makes a client factory per connection, and a
factory logs "Starting factory" and "Stopping factory" as it comes and goes:
two lines per upstream or object-store connection, which bury the access log
of a busy proxy. The pool's factory class is the documented place to say
``noisy = False``.
"""

from __future__ import annotations

from typing import Any

from twisted.web.client import Agent, HTTPConnectionPool, _HTTP11ClientFactory


class _QuietClientFactory(_HTTP11ClientFactory):
    """A connection's factory that does not log its start and stop."""

    noisy = False


def pooled_agent(
    reactor: Any, *, timeout: float, per_host: int
) -> tuple[Agent, HTTPConnectionPool]:
    """An Agent over a persistent pool of its own, keeping ``per_host`` idle connections a host.

    The caller closes the pool (``closeCachedConnections``) when it stops.
    """
    pool = HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = per_host
    pool._factory = _QuietClientFactory
    return Agent(reactor, connectTimeout=timeout, pool=pool), pool
