"""Requirements files as teams keep them, read into the mirror's root requirements.

Pure: file text comes from the caller's ``read_text(path)``. The grammar is
pip's, so the lines are split by ``pip-requirements-parser`` (pip's own
parsing code, kept as a library): backslash continuations, comments,
environment markers, per-requirement ``--hash`` options (``uv export`` and
``pip-compile --generate-hashes`` output), and every pip option line. This
module keeps what the mirror needs from a parsed file (names, specifiers,
extras and markers) and decides the rest:

- ``-r other.txt`` is followed, relative to the including file; a cycle or
  an include that cannot be read names the including file and line;
- option lines that say where or how pip installs (``--index-url``,
  ``--find-links``, ``--require-hashes``, ``--pre``...) are ignored: the
  mirror's upstream and filters are its own configuration;
- ``-c constraints.txt`` is refused: a constraint narrows versions the
  mirror would otherwise choose itself, so ignoring one could leave out
  the version an install picks;
- editable lines (``-e .``, which ``uv export`` writes for the project
  itself) are skipped: they are not on any index;
- a URL or path requirement, an unknown option or a line pip could not
  parse is an error naming file and line.

Pinned ``--hash`` values are accepted and not compared with the upstream's
digests: every mirrored file is already checked against the upstream
page's sha256, and the installer checks the lock's hashes itself.

``pylock.toml`` files (PEP 751) are read by :mod:`ministry.core.pylock`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable

from packaging.requirements import InvalidRequirement, Requirement
from pip_requirements_parser import (
    CommentLine,
    InstallRequirement,
    InvalidRequirementLine,
    OptionLine,
    ParsedLine,
    RequirementLine,
    build_req_from_parsedreq,
    get_line_parser,
    handle_line,
    preprocess,
)

from ministry.core.pylock import is_pylock_path, read_pylock

#: Include depth at which a chain of ``-r`` files is refused (a cycle is caught before).
MAX_INCLUDE_DEPTH = 20


class RequirementsError(ValueError):
    """A requirements file is wrong; the message names the file and line."""


def read_requirements(path: str, read_text: Callable[[str], str]) -> list[Requirement]:
    """The index requirements of the file at ``path`` and of the files it includes.

    ``path`` is as the config names it; included paths are joined to the
    including file's directory, and ``read_text`` gets them that way.
    """
    requirements: list[Requirement] = []
    _read(path, read_text, (), set(), requirements, "")
    return requirements


def _read(
    path: str,
    read_text: Callable[[str], str],
    including: tuple[str, ...],
    done: set[str],
    found: list[Requirement],
    included_at: str,
) -> None:
    """Read ``path`` into ``found``; ``included_at`` is "file:line: " of its -r, or empty."""
    done.add(path)
    try:
        text = read_text(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise RequirementsError(f"{included_at}cannot read {path}: {exc}") from None
    if is_pylock_path(path):
        try:
            found += read_pylock(text)
        except ValueError as exc:
            raise RequirementsError(f"{path}: {exc}") from None
        return
    lines, options = _parse(text.removeprefix("\ufeff"), path)  # a BOM, as Windows editors write
    found += [_requirement(line, path) for line in lines if not line.is_editable]
    for option in options:
        where = f"{path}:{option.line_number}"
        if option.options.get("constraints"):
            raise RequirementsError(
                f"{where}: constraints files (-c) are not supported by the mirror; "
                "list the pins as requirements instead"
            )
        for included in option.options.get("requirements") or []:
            target = posixpath.normpath(posixpath.join(posixpath.dirname(path), included))
            chain = (*including, path)
            if target in chain:
                cycle = " -> ".join((*chain[chain.index(target) :], target))
                raise RequirementsError(f"{where}: -r {included} includes itself ({cycle})")
            if len(chain) >= MAX_INCLUDE_DEPTH:
                raise RequirementsError(
                    f"{where}: -r {included}: more than {MAX_INCLUDE_DEPTH} nested includes"
                )
            if target not in done:
                _read(target, read_text, chain, done, found, f"{where}: -r {included}: ")


def _parse(text: str, path: str) -> tuple[list[InstallRequirement], list[OptionLine]]:
    """The requirement and option lines of a file, by the library's pipeline for pip's grammar.

    The library's own entry points read a file from disk (and its
    ``from_string`` is broken in 32.0.1), so its steps are called here on
    the text: join continuations and split comments, parse each line's
    options as pip does, build the requirement.
    """
    requirements: list[InstallRequirement] = []
    options: list[OptionLine] = []
    parse_line = get_line_parser()
    for logical in preprocess(text):
        if isinstance(logical, CommentLine):
            continue
        number, line = logical
        where = f"{path}:{number}"
        origin = RequirementLine(line=line, line_number=number, filename=path)
        try:
            string, values, arguments = parse_line(line)
            parsed = ParsedLine(origin, string, values, is_constraint=False, arguments=arguments)
            for item in handle_line(parsed):
                if isinstance(item, InvalidRequirementLine):
                    raise RequirementsError(f"{where}: {item.error_message}")
                if isinstance(item, OptionLine):
                    options.append(item)
                    continue
                built = build_req_from_parsedreq(item)
                if built.invalid_options:
                    raise RequirementsError(f"{where}: options not allowed on a requirement line")
                requirements.append(built)
        except RequirementsError:
            raise
        except Exception as exc:  # the library reports pip's errors as whatever pip raised
            raise RequirementsError(f"{where}: {str(exc).strip()}") from None
    return requirements, options


def _requirement(line: InstallRequirement, path: str) -> Requirement:
    """The line's requirement with its marker, refusing what no index serves (a URL, a path)."""
    where = f"{path}:{line.line_number}"
    if line.req is None or line.req.url:
        shown = line.requirement_line.line.split(" --", 1)[0]
        raise RequirementsError(f"{where}: {shown!r} is a URL or a path, not an index requirement")
    text = str(line.req) if line.marker is None else f"{line.req}; {line.marker}"
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise RequirementsError(f"{where}: {exc}") from None
