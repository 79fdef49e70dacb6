"""A release's ``Requires-Dist`` lines as a person reads them: a name to follow, then its terms.

The raw line (``requests[socks]>=2.30,<3; python_version < "3.12"``) packs
four things together, and a narrow sidebar broke it anywhere, versions
mid-number. Parsed with ``packaging``, each becomes the project's name (a
link to its page), its extras, its version range and the condition under
which it applies, shown apart. A line ``packaging`` cannot read is kept as
it was written, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement

from ministry.core.names import canonical


@dataclass(frozen=True)
class Dependency:
    """One requirement, in parts; ``project`` is empty for a line that does not parse."""

    text: str  # the line as written
    name: str = ""
    project: str = ""  # canonical: the project page to link to
    extras: tuple[str, ...] = ()
    versions: str = ""  # e.g. ">=2.30, <3"; empty: any version
    marker: str = ""  # e.g. 'python_version < "3.12"'; empty: always
    url: str = ""  # a direct reference (``name @ URL``)


def dependency(line: str) -> Dependency:
    """``line`` in parts, or as written when it is not a valid requirement."""
    try:
        requirement = Requirement(line)
    except InvalidRequirement:
        return Dependency(text=line)
    versions = ", ".join(sorted(str(spec) for spec in requirement.specifier))
    return Dependency(
        text=line,
        name=requirement.name,
        project=canonical(requirement.name),
        extras=tuple(sorted(requirement.extras)),
        versions=versions,
        marker=str(requirement.marker) if requirement.marker else "",
        url=requirement.url or "",
    )


def dependencies(lines: tuple[str, ...] | list[str]) -> list[Dependency]:
    """Every line in parts, in the order the metadata lists them."""
    return [dependency(line) for line in lines]
