"""``--redis`` URLs (``redis://``, ``rediss://`` for TLS, ``unix://``) parsed into an address.

Pure, so that the settings can check a URL at start-up without the store
and its Twisted machinery (which builds the endpoint from the address, in
:mod:`ministry.stores.redis.address`). A :class:`RedisAddress` prints
without its password, so it is safe in logs, ``/health`` and error
messages; the errors of :func:`parse_redis_url` quote the URL as given,
password and all, so whoever shows them passes them through
:func:`ministry.core.redaction.redact` first.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass(frozen=True)
class RedisAddress:
    """Where Redis listens and how to log in: a TCP host and port, or a socket path."""

    host: str | None = None
    port: int = 6379
    path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False

    def __str__(self) -> str:
        """The address for messages and logs: never the password."""
        if self.path is not None:
            return f"unix://{self.path}?db={self.db}"
        scheme = "rediss" if self.tls else "redis"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/{self.db}"


def parse_redis_url(url: str) -> RedisAddress:
    """Parse ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS)
    or ``unix://[[user]:password@]/path/redis.sock[?db=N]``.

    Strict on purpose: a typo in the URL should stop the daemon at start-up
    with a message, not connect somewhere unexpected. Raises ``ValueError``.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"expected a redis://, rediss:// or unix:// URL, not {url!r}")
    if parts.fragment:
        raise ValueError(f"unexpected #fragment in Redis URL {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"bad port in Redis URL {url!r}") from None
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    credentials = {
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
    }
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


def _db(text: str, url: str) -> int:
    if not text.isdigit():
        raise ValueError(f"expected a database number in Redis URL {url!r}, not {text!r}")
    return int(text)


def _refuse_options(query: dict[str, list[str]], url: str) -> None:
    if query:
        raise ValueError(f"unsupported option(s) {', '.join(sorted(query))} in {url!r}")
