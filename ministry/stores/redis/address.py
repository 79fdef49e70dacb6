"""The endpoint (TCP, TLS or unix) a parsed ``--redis`` URL names.

Parsing the URL is pure and lives in the core (:mod:`ministry.core.redis_url`),
where the settings check it too; only the Twisted endpoint is built here.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint, wrapClientTLS
from twisted.internet.interfaces import IStreamClientEndpoint

from ministry.core.redis_url import RedisAddress


def endpoint(reactor: Any, address: RedisAddress, timeout: float) -> IStreamClientEndpoint:
    """The endpoint for ``address``: a unix socket, TCP, or TCP with verified TLS."""
    if address.path is not None:
        return UNIXClientEndpoint(reactor, address.path, timeout=timeout)
    tcp = HostnameEndpoint(reactor, address.host, address.port, timeout=timeout)
    if not address.tls:
        return tcp
    # txredisapi's own TLS option does not check the certificate; this does.
    from twisted.internet.ssl import optionsForClientTLS

    return wrapClientTLS(optionsForClientTLS(address.host), tcp)
