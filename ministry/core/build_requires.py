"""The build requirements of a mirrored sdist, so it can be built from the mirror alone.

An installer that builds an sdist in isolation (pip, uv, build) first
installs the sdist's ``[build-system] requires`` from the index. For a
release with no wheel for some target, that build happens offline against
the mirror, so the mirror must hold the backend too (setuptools, hatchling,
flit_core...). Pure: the archive is read from a file object the caller
opened, never extracted, never executed.

- ``pyproject.toml`` is the one directly inside the sdist's top directory;
  without one, or without a ``[build-system]`` table, pip builds with the
  legacy setuptools backend and installs ``setuptools>=40.8.0`` for it
  (pip once added ``wheel`` too; current pip does not, and setuptools
  70.1 and later build wheels without it, so ``wheel`` is not added);
- requirements a backend asks for at build time
  (``get_requires_for_build_wheel``) are only known by running it: they
  are not followed;
- markers are evaluated per target, as for ``Requires-Dist``.
"""

from __future__ import annotations

import gzip
import tarfile
import tomllib
import zipfile
from collections.abc import Iterable
from typing import BinaryIO

from packaging.requirements import InvalidRequirement, Requirement

from ministry.core.archives import CappedReads
from ministry.core.errors import BadRequest
from ministry.core.mirror_plan import Release
from ministry.core.mirror_targets import Need, Target, file_targets
from ministry.core.models import SDIST, WHEEL
from ministry.core.names import ParsedFilename, parse_filename

#: What pip installs to build an sdist that declares no build system.
LEGACY_REQUIRES = ("setuptools>=40.8.0",)
#: Members looked at before giving up on finding pyproject.toml, and its largest size.
MAX_MEMBERS = 20_000
MAX_PYPROJECT = 1024**2


def building_targets(release: Release, targets: Iterable[Target]) -> frozenset[Target]:
    """The targets that would build this release's sdist: those no selected wheel serves."""
    if not any(record.packagetype == SDIST for record in release.files):
        return frozenset()
    served: set[Target] = set()
    for record in release.files:
        if record.packagetype == WHEEL:
            served |= file_targets(record, targets)
    return frozenset(targets) - served


def build_needs(
    requires: Iterable[str], targets: frozenset[Target]
) -> tuple[list[Need], list[str]]:
    """(needs, unparseable lines) of ``requires`` on the targets whose markers accept each."""
    needs, bad = [], []
    for line in requires:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            bad.append(line)
            continue
        if requirement.url:
            bad.append(line)
            continue
        marker, requirement.marker = requirement.marker, None
        wanted = frozenset(
            target for target in targets if marker is None or marker.evaluate(target.environment())
        )
        if wanted:
            needs.append(Need(requirement, wanted))
    return needs, bad


def read_build_requires(fileobj: BinaryIO, filename: str) -> list[str]:
    """The ``[build-system] requires`` of the sdist in ``fileobj`` (the legacy default if none).

    Raises :class:`~ministry.core.errors.BadRequest` for an archive or a
    pyproject.toml that cannot be read (pip could not build it either).
    """
    parsed = parse_filename(filename)
    try:
        if parsed.extension == ".tar.gz":
            data = _from_tar_gz(fileobj, parsed)
        else:
            data = _from_zip(fileobj)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise BadRequest(f"{filename}: not a readable sdist ({exc})") from None
    if data is None:
        return list(LEGACY_REQUIRES)
    try:
        system = tomllib.loads(data.decode("utf-8")).get("build-system")
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BadRequest(f"{filename}: its pyproject.toml is not valid TOML ({exc})") from None
    if not isinstance(system, dict) or "requires" not in system:
        return list(LEGACY_REQUIRES)
    requires = system["requires"]
    if not isinstance(requires, list) or not all(isinstance(item, str) for item in requires):
        raise BadRequest(f"{filename}: build-system.requires is not a list of strings")
    return requires


def _is_pyproject(name: str) -> bool:
    parts = [part for part in name.split("/") if part not in ("", ".")]
    return len(parts) == 2 and parts[1] == "pyproject.toml"


def _from_tar_gz(fileobj: BinaryIO, parsed: ParsedFilename) -> bytes | None:
    with (
        gzip.GzipFile(fileobj=fileobj, mode="rb") as stream,
        tarfile.open(fileobj=CappedReads(stream, MAX_PYPROJECT + tarfile.BLOCKSIZE, parsed)) as tar,
    ):
        for count, info in enumerate(tar, 1):
            if count > MAX_MEMBERS:
                return None
            if info.isfile() and _is_pyproject(info.name):
                return _bounded(tar.extractfile(info), info.size)
    return None


def _from_zip(fileobj: BinaryIO) -> bytes | None:
    with zipfile.ZipFile(fileobj) as archive:
        for info in archive.infolist()[:MAX_MEMBERS]:
            if not info.is_dir() and _is_pyproject(info.filename):
                with archive.open(info) as member:
                    return _bounded(member, info.file_size)
    return None


def _bounded(member: BinaryIO | None, size: int) -> bytes:
    if member is None or size > MAX_PYPROJECT:
        raise ValueError(f"pyproject.toml is larger than {MAX_PYPROJECT} bytes")
    data = member.read(MAX_PYPROJECT + 1)
    if len(data) > MAX_PYPROJECT:
        raise ValueError(f"pyproject.toml is larger than {MAX_PYPROJECT} bytes")
    return data
