"""An upstream's project serials, from its PEP 691 ``/simple/`` index and its pages.

PyPI, and a ministry in front of its own store, give each project a serial
that moves whenever anything about the project changes (a file added,
yanked or deleted, its status set): ``_last-serial`` beside each name of
the JSON index, and ``X-PyPI-Last-Serial`` on each project page. A mirror
run that reads the index once can then leave out every project whose
serial has not moved since its kept page, instead of revalidating each one
(500 round trips for 500 projects); bandersnatch works the same way.

Only what the upstream plainly said is taken: a positive integer. A
ministry lists the upstream projects it proxies with serial 0 (it keeps no
serial for them), and such a project changes without its 0 moving, so 0 or
anything but an integer means "unknown", and the project is revalidated.
Pure: bytes and strings in, a dictionary out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from packaging.utils import InvalidName, canonicalize_name

from ministry.core.upstream_links import PageError, pep691_document


def serial_of(value: Any) -> int | None:
    """A serial as the upstream gave it (an int, or a header's text), if it is a usable one."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def parse_serials(body: bytes, content_type: str, keep: Callable[[str], bool]) -> dict[str, int]:
    """Canonical name -> serial of the index's projects that ``keep(name)`` wants.

    ``keep`` bounds the result by what the caller can use (the projects whose
    page it holds), not by the size of the upstream: PyPI lists some
    700,000 projects. Raises :class:`PageError` for anything but a PEP 691
    JSON index (an HTML index carries no serials).
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not media_type.endswith(("+json", "/json")):
        raise PageError(f"the index is not PEP 691 JSON ({content_type!r})")
    document = pep691_document(body, "projects", "index")
    serials: dict[str, int] = {}
    for entry in document["projects"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        try:
            name = canonicalize_name(entry["name"], validate=True)
        except InvalidName:
            continue
        serial = serial_of(entry.get("_last-serial"))
        if serial is not None and keep(name):
            serials[name] = serial
    return serials
