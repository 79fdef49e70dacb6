"""How each setting's text (from the command line or TOML) becomes its typed value.

Pure functions, one per kind of value, each raising ValueError with a
message that never echoes a secret; :mod:`ministry.config` names the
setting in front of it.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from ministry.core.redaction import redact, redact_url
from ministry.core.redis_url import parse_redis_url
from ministry.core.storage_url import parse_storage_url


def parse_endpoint(value: Any) -> str:
    """A bare port number becomes ``tcp:N``; a strports description is kept."""
    text = str(value).strip()
    if text.isdigit():
        if not 0 <= int(text) <= 65535:
            raise ValueError(f"port {text} is out of range")
        return f"tcp:{text}"
    if not re.fullmatch(r"[a-z0-9]+:\S+", text):
        raise ValueError(f"expected a port number or a description such as tcp:8080, not {text!r}")
    return text


def parse_url(value: Any) -> str:
    """An http(s) URL, maybe with ``user:password@`` (never echoed: see ministry.core.redaction)."""
    text = str(value).strip()
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", text):
        raise ValueError(f"expected an http:// or https:// URL, not {redact_url(text)!r}")
    return text.rstrip("/")


def parse_host(value: Any) -> str:
    """A host name or address as a URL names it (``files.example.test``), lowercased."""
    text = str(value).strip().lower()
    if not re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\]", text):
        raise ValueError(f"expected a host name such as files.example.test, not {text!r}")
    return text.strip("[]")


def parse_flag(value: Any) -> bool:
    """A TOML boolean, or ``true``/``false``/``yes``/``no``/``on``/``off``/``1``/``0``."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected true or false, not {value!r}")


def parse_text(value: Any) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError("must not be empty")
    return text


def parse_uri_prefix(value: Any) -> str:
    """A path prefix such as ``/_ministry/``; the closing slash is added if missing."""
    text = parse_text(value)
    if not re.fullmatch(r"/[A-Za-z0-9._~/-]*", text) or "//" in text or "/../" in f"{text}/":
        raise ValueError(f"expected a path such as /_ministry/, not {text!r}")
    return text.rstrip("/") + "/"


#: ``--access-log off``: no access log at all.
ACCESS_LOG_OFF = "off"


def parse_access_log(value: Any) -> str:
    """``off``, or the path of a file to append the access log to."""
    text = parse_text(value)
    return ACCESS_LOG_OFF if text.lower() == ACCESS_LOG_OFF else text


#: ``--trusted-proxy unix``: the peers of a Unix socket (a proxy on the same host).
UNIX_PROXY = "unix"


def parse_trusted_proxy(value: Any) -> str:
    """An IP address, a network such as ``10.0.0.0/8``, or ``unix``; normalised."""
    text = parse_text(value)
    if text.lower() == UNIX_PROXY:
        return UNIX_PROXY
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise ValueError(
            f"expected an address, a network such as 10.0.0.0/8, or 'unix', not {text!r}"
        ) from None


def parse_redis(value: Any) -> str:
    """A Redis URL, checked now so that a typo stops start-up, not the first request."""
    text = parse_text(value)
    try:
        parse_redis_url(text)
    except ValueError as exc:  # its message quotes the URL, password and all
        raise ValueError(redact(str(exc), [text])) from None
    return text


def parse_storage(value: Any) -> str:
    """A ``--storage`` URL, checked now (see :mod:`ministry.core.storage_url`)."""
    text = parse_text(value)
    return parse_storage_url(text).url
