"""Project names and distribution filenames: normalised, validated, parsed.

Every name that reaches a store or a URL passes through here first, so that
``Foo.Bar``, ``foo_bar`` and ``FOO-bar`` are one project everywhere, and a
filename can never be used to step outside a project's directory.
``packaging.utils`` does the actual parsing: hand-rolled regexes drift from
what pip and uv accept.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from packaging.tags import Tag
from packaging.utils import (
    BuildTag,
    InvalidName,
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    canonicalize_version,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from ministry.core.errors import BadRequest
from ministry.core.models import SDIST, WHEEL

#: Extensions we accept, mapped to the package type they mean. Order matters
#: only for readability; none is a suffix of another.
EXTENSIONS = {".whl": WHEEL, ".tar.gz": SDIST, ".zip": SDIST}

#: Filesystems commonly refuse longer names, so we refuse them up front.
MAX_FILENAME_BYTES = 255

#: Every character a distribution filename can need: names (PEP 503),
#: versions in any PEP 440 spelling ('!' epochs, '+' local parts), wheel tags
#: and the extensions. Anything else ('$', quotes, '<', '?', '#', '%', a
#: space) could only serve to attack a shell, a page or a URL.
_FILENAME_CHARS = frozenset(string.ascii_letters + string.digits + "._-+!")

#: What one wheel tag (python, abi or platform) and a build tag's suffix may
#: hold, per the binary distribution format; '.' only joins compressed tag sets.
_TAG_CHARS = frozenset(string.ascii_letters + string.digits + "_")

#: How much of a rejected filename to echo back: enough to recognise it,
#: not enough to flood a status line.
_SHOWN_CHARS = 80


def canonical(name: str) -> str:
    """The PEP 503 normalised form, used as the key for a project everywhere."""
    return canonicalize_name(name)


def release_version(version: str | Version) -> str:
    """The key of a release within its project, so that 7, 7.0 and 7.0.0 are one.

    PEP 440 calls versions equal when they differ only in spelling or in
    trailing zeros; the rules that count files per release (one sdist per
    release) compare this form, which a store can compare as plain text.
    """
    return canonicalize_version(version, strip_trailing_zero=True)


def check_project_name(name: str) -> str:
    """Return the canonical form of a valid project name; refuse anything else.

    Normalisation alone would turn ``-foo-`` or ``foo!`` into a key that no
    installer can ask for, so the name is validated before it is trusted.
    """
    try:
        return canonicalize_name(name, validate=True)
    except InvalidName:
        raise BadRequest(
            f"Invalid project name {shown(name)}: use ASCII letters, digits, '.', '_' and '-', "
            "starting and ending with a letter or digit."
        ) from None


@dataclass(frozen=True)
class ParsedFilename:
    """What a distribution's filename says about it."""

    project: str  # canonical
    version: Version
    packagetype: str  # models.WHEEL or models.SDIST
    extension: str  # ".whl", ".tar.gz" or ".zip"
    filename: str  # as uploaded, so later refusals can name the file


def parse_filename(filename: str) -> ParsedFilename:
    """Parse a wheel or sdist filename, refusing anything unsafe or unsupported.

    The safety checks run before parsing because the filename ends up in a
    storage path and in URLs: it must be a single, plain path component.
    """
    _check_safe(filename)
    extension = _extension(filename)
    packagetype = EXTENSIONS[extension]
    try:
        if packagetype == WHEEL:
            project, version, build, tags = parse_wheel_filename(filename)
            _check_wheel_tags(filename, build, tags)
        else:
            project, version = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename):
        raise BadRequest(
            f"Invalid distribution filename {shown(filename)}: expected "
            f"{_expected_form(packagetype, extension)} with a PEP 440 version."
        ) from None
    try:
        canonicalize_name(project, validate=True)
    except InvalidName:
        raise BadRequest(
            f"Invalid distribution filename {shown(filename)}: "
            f"{project!r} is not a valid project name."
        ) from None
    return ParsedFilename(project, version, packagetype, extension, filename)


def _check_wheel_tags(filename: str, build: BuildTag, tags: frozenset[Tag]) -> None:
    """Refuse tag characters the wheel format does not allow.

    ``parse_wheel_filename`` splits the tags but takes any character in them;
    the filename check has already refused the dangerous ones, so what is
    left to refuse here is '+' and '!', which only versions may hold.
    """
    parts = {part for tag in tags for part in (tag.interpreter, tag.abi, tag.platform)}
    bad = sorted(part for part in parts if not set(part) <= _TAG_CHARS)
    if bad:
        raise BadRequest(
            f"Invalid distribution filename {shown(filename)}: the tag {shown(bad[0])} may "
            "only contain ASCII letters, digits and '_' (tag sets are joined with '.')."
        )
    if build and not set(build[1]) <= _TAG_CHARS:
        raise BadRequest(
            f"Invalid distribution filename {shown(filename)}: a build tag is digits "
            "followed by ASCII letters, digits or '_'."
        )


def _check_safe(filename: str) -> None:
    """Refuse names that could escape a directory or confuse a shell or a URL."""
    problem = _unsafe_because(filename)
    if problem:
        raise BadRequest(f"Invalid filename {shown(filename)}: {problem}.")


def _unsafe_because(filename: str) -> str | None:
    if not filename:
        return "it is empty"
    if len(filename.encode("utf-8", "surrogatepass")) > MAX_FILENAME_BYTES:
        return f"it is longer than {MAX_FILENAME_BYTES} bytes"
    if "/" in filename or "\\" in filename:
        return "it must not contain a path separator ('/' or '\\')"
    if any(ord(char) < 32 or ord(char) == 127 for char in filename):
        return "it contains control characters"
    if not filename.isascii():
        # Distribution filenames are ASCII by specification; anything else is
        # a look-alike (a Kelvin sign lower-cases to 'k').
        return "it contains non-ASCII characters"
    unexpected = sorted(set(filename) - _FILENAME_CHARS)
    if unexpected:
        return (
            f"it contains {''.join(unexpected)!r}; a distribution filename holds only "
            "ASCII letters, digits and '.', '_', '-', '+', '!'"
        )
    if ".." in filename:
        return "it must not contain '..'"
    if filename[0] in ".-":
        return "it must not start with '.' or '-'"
    return None


def _extension(filename: str) -> str:
    for extension in EXTENSIONS:
        if filename.endswith(extension):
            return extension
    raise BadRequest(
        f"Invalid file extension in {shown(filename)}: use .whl, .tar.gz or .zip (sdist)."
    )


def _expected_form(packagetype: str, extension: str) -> str:
    if packagetype == WHEEL:
        return "'{name}-{version}[-{build}]-{python}-{abi}-{platform}.whl'"
    return f"'{{name}}-{{version}}{extension}'"


def shown(text: str) -> str:
    """A quoted, escaped, shortened copy of untrusted text for a message."""
    if len(text) > _SHOWN_CHARS:
        text = text[:_SHOWN_CHARS] + "..."
    return repr(text)
