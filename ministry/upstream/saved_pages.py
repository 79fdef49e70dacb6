"""Fetched upstream pages kept on disk, one JSON file per project.

Each page is kept as ``<data-dir>/upstream/pages/<project>.json``
(:meth:`UpstreamPage.to_dict`: the parsed files with their upstream URLs, the
ETag, the upstream it came from and when it was fetched), written to a
temporary file and renamed, so that any process sharing the data directory
reads a whole page, last writer wins, and a restart keeps the cache. A page
is read by path (one ``open``); the directory is listed only at start-up,
for ``/simple/``'s list of cached projects. All disk work runs in threads.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid

from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from ministry.core.upstream_pages import UpstreamPage

log = Logger()

_SUFFIX = ".json"


def _list_pages(directory: str) -> dict[str, float]:
    """Cached page names -> mtime (start-up only: never on a read path)."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return {}
    found = {}
    for entry in entries:
        if entry.name.endswith(_SUFFIX) and not entry.name.startswith("."):
            with contextlib.suppress(FileNotFoundError):
                found[entry.name.removesuffix(_SUFFIX)] = entry.stat().st_mtime
    return found


def _load_page(path: str) -> UpstreamPage:
    with open(path, "rb") as handle:
        return UpstreamPage.from_dict(json.load(handle))


def _save_page(path: str, page: UpstreamPage) -> None:
    """Write whole-or-nothing: a temporary file renamed over the old page."""
    directory, name = os.path.split(path)
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".{name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(page.to_dict(), handle, separators=(",", ":"))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


class SavedPages:
    """The page files under one directory (see the module docstring)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    async def names(self) -> dict[str, float]:
        """Every saved project name -> the mtime of its page (a directory scan)."""
        return await deferToThread(_list_pages, self.directory)

    async def read(self, name: str) -> UpstreamPage | None:
        """The saved page of ``name``, or None (a damaged page is logged and ignored)."""
        try:
            return await deferToThread(_load_page, self._path(name))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warn("Ignoring damaged cached page of {project}: {error}", project=name, error=exc)
            return None

    async def write(self, page: UpstreamPage) -> None:
        """Save ``page``; a failure is logged (a cache: serving goes on without it)."""
        try:
            await deferToThread(_save_page, self._path(page.project), page)
        except OSError as exc:
            log.error("Could not keep the page of {name}: {error}", name=page.project, error=exc)

    async def remove(self, name: str) -> None:
        await deferToThread(_remove, self._path(name))

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name + _SUFFIX)
