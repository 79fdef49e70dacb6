"""The selection grown by the build requirements of the sdists a run fetched.

A release the mirror holds with no wheel for some target is built from its
sdist there, and pip, uv or build first install the sdist's
``[build-system] requires`` from the index: offline, from the mirror. So
after a release's files are fetched, its sdist's build requirements (read
from the cached archive in a thread by :mod:`ministry.core.build_requires`)
become needs of the run, on the targets that would build it, and are
mirrored with their own dependencies like any other need.

Growth is bounded: a build requirement already added in this run (same
requirement, same targets) is not added again, the run's ``seen`` keys end
cycles (an sdist whose backend is built from an sdist whose backend...),
and one run adds at most :data:`MAX_BUILD_NEEDS`; past that the rest are
left out and the run reports it as an error.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

from ministry.core.build_requires import build_needs, building_targets, read_build_requires
from ministry.core.errors import MinistryError
from ministry.core.mirror_plan import Release
from ministry.core.mirror_targets import Need
from ministry.core.models import SDIST
from ministry.mirror.status import MirrorStatus
from ministry.upstream.cache import FileCache

log = Logger()

#: Build-requirement needs one run may add.
MAX_BUILD_NEEDS = 200


def _read(path: str, filename: str) -> list[str]:
    with open(path, "rb") as handle:
        return read_build_requires(handle, filename)


class BuildRequirements:
    """One run's build requirements: read from cached sdists, each added once, at most a bound."""

    def __init__(self, cache: FileCache, status: MirrorStatus) -> None:
        self.cache = cache
        self.status = status
        self.added: set[Any] = set()

    async def needs(self, need: Need, release: Release) -> list[Need]:
        """The new needs from the build requirements of ``release``'s sdist, if it is built."""
        targets = building_targets(release, need.targets)
        sdists = [record for record in release.files if record.packagetype == SDIST]
        if not targets or not sdists:
            return []
        sdist = sdists[0]
        try:
            requires = await self.cache.read_held(sdist, _read)
        except (MinistryError, OSError) as exc:
            message = exc.message if isinstance(exc, MinistryError) else str(exc)
            self.status.error(need.project, f"build requirements of {sdist.filename}: {message}")
            return []
        found, bad = build_needs(requires, targets)
        for line in bad:
            log.warn(
                "Mirror: {file}: ignoring build requirement {line!r}",
                file=sdist.filename,
                line=line,
            )
        new = [item for item in found if item.key not in self.added]
        room = MAX_BUILD_NEEDS - len(self.added)
        if len(new) > room:
            left = ", ".join(str(item.requirement) for item in new[room:])
            self.status.error(
                need.project,
                f"more than {MAX_BUILD_NEEDS} build requirements in one run; left out: {left}",
            )
            new = new[:room]
        self.added.update(item.key for item in new)
        if new:
            log.info(
                "Mirror: {file} builds with {requires}",
                file=sdist.filename,
                requires=", ".join(str(item.requirement) for item in new),
            )
        return new
