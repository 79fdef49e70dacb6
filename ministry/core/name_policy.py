"""Which names may come from the upstream, and which are kept for this index alone.

Dependency confusion: a team's private ``acme-billing`` is installed from
here, until someone publishes ``acme-billing`` upstream with a higher
version, or a machine asks for a private name before anyone uploaded it.
Hosted names already hide the upstream's (``ministry.catalog.views``); this
adds the names that must never be asked of the upstream at all:

- **reserved** patterns (``--reserve``): the names the team keeps for
  itself. They are never fetched upstream, even before anyone uploads one,
  and only an administrator may create such a project (the first owner of a
  reserved name is never whoever uploads first).
- **upstream-allow** and **upstream-deny** patterns: with an allow list,
  only matching names are proxied or mirrored; deny wins over allow.

Patterns are fnmatch-style globs (``*`` any run of characters, ``?`` one)
matched against the PEP 503 canonical name, and normalised the same way
first, so ``acme-*``, ``acme_*``, ``ACME.*`` are one pattern and match
``acme_billing`` and ``Acme.Billing`` alike. Character classes (``[...]``)
are refused: their contents cannot be normalised as a name can.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from ministry.core.names import canonical

_PATTERN_CHARS = frozenset(string.ascii_letters + string.digits + "._-*?")


def parse_name_pattern(value: Any) -> str:
    """A name pattern in its canonical form (lower case, ``-`` for any run of ``-_.``)."""
    text = str(value).strip()
    if not text:
        raise ValueError("a name pattern must not be empty")
    unexpected = sorted(set(text) - _PATTERN_CHARS)
    if unexpected:
        raise ValueError(
            f"{text!r} holds {''.join(unexpected)!r}: a name pattern holds ASCII letters, "
            "digits, '.', '_', '-' and the wildcards '*' and '?'"
        )
    return re.sub(r"[-_.]+", "-", text).lower()


def _first_match(name: str, patterns: tuple[str, ...]) -> str | None:
    return next((pattern for pattern in patterns if fnmatchcase(name, pattern)), None)


@dataclass(frozen=True)
class NamePolicy:
    """The reserved, allowed and denied patterns, each already :func:`parse_name_pattern`'d."""

    reserved: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    def reserved_by(self, name: str) -> str | None:
        """The reserved pattern ``name`` matches, or None."""
        return _first_match(canonical(name), self.reserved)

    def upstream_refusal(self, name: str) -> str | None:
        """Why ``name`` is never asked of the upstream, or None when it may be."""
        name = canonical(name)
        pattern = self.reserved_by(name)
        if pattern is not None:
            return (
                f"{name} is reserved for this index (reserved pattern {pattern!r}): "
                "it is never fetched from the upstream, only uploaded here."
            )
        pattern = _first_match(name, self.deny)
        if pattern is not None:
            return f"{name} is not proxied from the upstream (upstream-deny {pattern!r})."
        if self.allow and _first_match(name, self.allow) is None:
            return f"{name} is not proxied from the upstream: it matches no upstream-allow pattern."
        return None

    def claim_refusal(self, name: str, admin: bool) -> str | None:
        """Why whoever asks may not become the first owner of ``name``, or None.

        Creating a project (or claiming one nobody owns) under a reserved
        name is for administrators: otherwise the first machine to upload
        ``acme-billing`` would own it. Owners and maintainers named later
        by an administrator upload as to any project.
        """
        pattern = self.reserved_by(name)
        if pattern is None or admin:
            return None
        return (
            f"{canonical(name)} is reserved for this index (reserved pattern {pattern!r}): "
            "only an administrator may create it; ask one to create it and make you an owner."
        )
