"""``pylock.toml`` lock files (PEP 751) as the mirror's root requirements.

Pure: TOML text in, requirements out. The file is parsed with ``tomllib``
and validated by ``packaging.pylock`` (the PyPA's reader of the format), so
a lock that an installer would refuse is refused here too, with its reason.
Each ``[[packages]]`` entry from an index (an ``sdist`` or ``wheels``) is
pinned as ``name==version`` with the entry's ``marker``; entries from a VCS,
a directory or an archive URL are skipped: no index serves them. The file
hashes are not compared with the upstream's (see :mod:`ministry.core.requirements`).
"""

from __future__ import annotations

import tomllib
from pathlib import PurePosixPath

from packaging.pylock import Pylock, PylockValidationError, is_valid_pylock_path
from packaging.requirements import Requirement


def is_pylock_path(path: str) -> bool:
    """``pylock.toml`` or ``pylock.<name>.toml``, the names PEP 751 gives lock files."""
    return is_valid_pylock_path(PurePosixPath(path))


def read_pylock(text: str) -> list[Requirement]:
    """The pinned index packages of a lock file; ValueError saying what is wrong."""
    try:
        lock = Pylock.from_dict(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"not valid TOML: {exc}") from None
    except PylockValidationError as exc:
        raise ValueError(f"not a valid lock file: {exc}") from None
    requirements = []
    for package in lock.packages:
        if package.version is None or not (package.sdist or package.wheels):
            continue
        requirement = Requirement(f"{package.name}=={package.version}")
        requirement.marker = package.marker
        requirements.append(requirement)
    return requirements
