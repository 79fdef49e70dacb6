"""``--redis`` URLs parsed into an address: one server, or a service found through Sentinel.

Accepted: ``redis://`` (TCP), ``rediss://`` (TLS), ``unix://`` (a socket
path) and ``redis+sentinel://`` (a primary found through Redis Sentinel,
followed across failovers). Pure, so that the settings can check a URL at
start-up without the store and its Twisted machinery (which builds the
endpoint from the address, in :mod:`ministry.stores.redis.address`). A
:class:`RedisAddress` prints without its password, so it is safe in logs,
``/health`` and error messages; the errors of :func:`parse_redis_url` quote
the URL as given, password and all, so whoever shows them passes them
through :func:`ministry.core.redaction.redact` first.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

#: Where a sentinel listens when its address names no port (Redis's default).
SENTINEL_PORT = 26379


@dataclass(frozen=True)
class RedisAddress:
    """Where Redis listens and how to log in.

    One of: a TCP ``host`` and ``port``; a socket ``path``; or ``sentinels``
    (host, port pairs) to ask for the primary of ``service``. The
    credentials and ``db`` are those of the Redis server itself.
    """

    host: str | None = None
    port: int = 6379
    path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str | None = None

    def __str__(self) -> str:
        """The address for messages and logs: never the password."""
        if self.path is not None:
            return f"unix://{self.path}?db={self.db}"
        if self.service is not None:
            hosts = ",".join(f"{_bracketed(host)}:{port}" for host, port in self.sentinels)
            return f"redis+sentinel://{hosts}/{self.service}/{self.db}"
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{_bracketed(self.host)}:{self.port}/{self.db}"


def parse_redis_url(url: str) -> RedisAddress:
    """Parse ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS),
    ``unix://[[user]:password@]/path/redis.sock[?db=N]`` or
    ``redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]``.

    Strict on purpose: a typo in the URL should stop the daemon at start-up
    with a message, not connect somewhere unexpected. Raises ``ValueError``.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:  # an unclosed "[" of an IPv6 host
        raise ValueError(f"bad Redis URL {url!r}: {exc}") from None
    if parts.scheme == "rediss+sentinel":
        raise ValueError(
            f"TLS through Sentinel is not supported, in {url!r}: the sentinels name the "
            "primary by an address its certificate rarely covers; use redis+sentinel:// "
            "on a trusted network, or rediss:// to one server"
        )
    if parts.scheme not in ("redis", "rediss", "unix", "redis+sentinel"):
        raise ValueError(
            f"expected a redis://, rediss://, unix:// or redis+sentinel:// URL, not {url!r}"
        )
    if parts.fragment:
        raise ValueError(f"unexpected #fragment in Redis URL {url!r}")
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    credentials = {
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
    }
    if parts.scheme == "redis+sentinel":
        _refuse_options(query, url)
        return _sentinel_address(parts, url, credentials)
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"bad port in Redis URL {url!r}") from None
    if parts.scheme == "unix":
        if parts.hostname or port is not None or not parts.path:
            raise ValueError(f"expected unix:///path/to/redis.sock, not {url!r}")
        db = query.pop("db", ["0"])
        _refuse_options(query, url)
        return RedisAddress(path=unquote(parts.path), db=_db(db[-1], url), **credentials)
    _refuse_options(query, url)
    if not parts.hostname:
        raise ValueError(f"no host in Redis URL {url!r}")
    return RedisAddress(
        host=parts.hostname,
        port=6379 if port is None else port,
        db=_db(parts.path.strip("/") or "0", url),
        tls=parts.scheme == "rediss",
        **credentials,
    )


def _sentinel_address(
    parts: SplitResult, url: str, credentials: dict[str, str | None]
) -> RedisAddress:
    """The sentinels (``host[:port]``, comma-separated), the service and the db of ``url``."""
    hosts = parts.netloc.rpartition("@")[2]
    if not hosts:
        raise ValueError(f"no Sentinel host in Redis URL {url!r}")
    sentinels = tuple(_sentinel(text, url) for text in hosts.split(","))
    service, _, db = parts.path.removeprefix("/").partition("/")
    if not service:
        raise ValueError(f"no Sentinel service name (the path: /SERVICE[/DB]) in {url!r}")
    return RedisAddress(
        sentinels=sentinels, service=unquote(service), db=_db(db or "0", url), **credentials
    )


def _sentinel(text: str, url: str) -> tuple[str, int]:
    """One ``host[:port]`` of the sentinels' list (IPv6 hosts in brackets)."""
    if not text:
        raise ValueError(f"empty Sentinel address in the list of {url!r}")
    try:
        one = urlsplit(f"//{text}")
        host, port = one.hostname, one.port
    except ValueError as exc:
        what = "bad port" if "port" in str(exc).lower() else "bad Sentinel address"
        raise ValueError(f"{what} {text!r} in Redis URL {url!r}") from None
    # What urlsplit lets through and ignores, such as "[::1]x", is refused.
    if not host or text.lower() not in (_bracketed(host), f"{_bracketed(host)}:{port}"):
        raise ValueError(f"bad Sentinel address {text!r} in Redis URL {url!r}")
    if port == 0:
        raise ValueError(f"bad port {text!r} in Redis URL {url!r}")
    return host, SENTINEL_PORT if port is None else port


def _bracketed(host: str | None) -> str | None:
    return f"[{host}]" if host and ":" in host else host


def _db(text: str, url: str) -> int:
    if not text.isdigit():
        raise ValueError(f"expected a database number in Redis URL {url!r}, not {text!r}")
    return int(text)


def _refuse_options(query: dict[str, list[str]], url: str) -> None:
    if query:
        raise ValueError(f"unsupported option(s) {', '.join(sorted(query))} in {url!r}")
