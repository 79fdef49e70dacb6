"""Who a request comes from: the TCP peer, or the client a trusted proxy names.

Behind nginx every connection comes from nginx, so the rules keyed by client
address (the failed-login throttle, the access log) would see one client.
A proxy named with ``--trusted-proxy`` says whom it forwards for in
``X-Forwarded-For``, each hop appending the address it saw: the client is
the right-most address that is not itself a trusted proxy. The header is
believed only from a trusted peer; from any other, it is ignored, since a
client can write anything in it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress

from ministry.core.setting_values import UNIX_PROXY

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _ip(text: str) -> IPAddress | None:
    """The address in ``text`` (an IPv4-mapped IPv6 address as IPv4), or None."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """The ``--trusted-proxy`` entries: addresses, networks, or ``unix``."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        entries = tuple(entries)
        self.unix = UNIX_PROXY in entries
        self.networks = tuple(
            ipaddress.ip_network(entry, strict=False) for entry in entries if entry != UNIX_PROXY
        )

    def __bool__(self) -> bool:
        return self.unix or bool(self.networks)

    def trusts(self, peer: object) -> bool:
        """Whether ``peer`` (a Twisted address) is one of the trusted proxies."""
        if isinstance(peer, UNIXAddress):
            return self.unix
        host = getattr(peer, "host", None)
        return host is not None and self._trusts(_ip(host))

    def _trusts(self, address: IPAddress | None) -> bool:
        return address is not None and any(address in network for network in self.networks)

    def client(self, peer: object, forwarded: Sequence[bytes] | None) -> object:
        """The client's address: ``peer``, or whom a trusted ``peer`` forwards for.

        ``forwarded`` holds the ``X-Forwarded-For`` lines in order. Read from
        the right, every trusted hop is passed over; the first other address
        is the client. A hop that is not an address ends the walk at the last
        good one (a proxy would not write it, so someone before it did).
        """
        if not forwarded or not self or not self.trusts(peer):
            return peer
        hops = [hop for line in forwarded for hop in line.decode("latin-1").split(",")]
        client = None
        for hop in reversed(hops):
            address = _ip(hop)
            if address is None:
                break
            client = address
            if not self._trusts(address):
                break
        if client is None:
            return peer
        kind = IPv4Address if client.version == 4 else IPv6Address
        return kind("TCP", str(client), 0)
