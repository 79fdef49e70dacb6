"""The pages of ``/simple/`` kept on disk across a restart, for a first answer that does not wait.

At 100,000 projects, the first ``/simple/`` after a start read every project
from the store and rendered 4.5 MB: over a second before the first answer,
most of it building records (issue 17). So when the daemon stops, each index
page it has cached is written to ``<data-dir>/pages/`` with its serial, and
at the next start a saved page is served for as long as the store's last
serial is still the page's: nothing changed meanwhile, in this process or in
any other on the same store. :class:`~ministry.web.simple.SimpleIndex` makes
that check inside the page cache's fill, so a change landing meanwhile
discards the saved page as it would a render. A page is saved with the
digest of the module that renders it, so a new version of ministry never
serves an old rendering.

Not for an index with an upstream: its ``/simple/`` also lists the proxied
projects it has cached, which change without a serial. A daemon that is
killed saves nothing (its next start renders), and a saved page is written
to a temporary file and renamed, so a reader never sees half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid

from twisted.application.service import Service
from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from ministry.catalog.cache import ALL, PageCache
from ministry.core import negotiate, simple
from ministry.web.http.rendered import Page

log = Logger()


def renderer_digest() -> str:
    """The digest of the module that renders the index: a saved page names it."""
    with open(simple.__file__, "rb") as source:
        return hashlib.sha256(source.read()).hexdigest()


def _path(directory: str, content_type: str) -> str:
    return os.path.join(directory, "index." + content_type.replace("/", "_") + ".page")


def _write(directory: str, renderer: str, pages: list[Page]) -> None:
    os.makedirs(directory, exist_ok=True)
    for page in pages:
        content_type = page.content_type.decode()
        head = {"renderer": renderer, "serial": page.serial, "content_type": content_type}
        target = _path(directory, content_type)
        temporary = os.path.join(directory, f".{uuid.uuid4().hex}.tmp")
        try:
            with open(temporary, "wb") as out:
                out.write(json.dumps(head).encode() + b"\n" + page.body)
            os.replace(temporary, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(temporary)


def _read(directory: str, renderer: str) -> dict[str, Page]:
    """The saved pages this version rendered; a page is read once (and removed)."""
    found = {}
    for content_type in negotiate.OFFERS:
        path = _path(directory, content_type)
        try:
            with open(path, "rb") as saved:
                head_line, body = saved.read().split(b"\n", 1)
            os.remove(path)  # a page serves one start: the next stop saves afresh
            head = json.loads(head_line)
            mine = head["renderer"] == renderer and head["content_type"] == content_type
            serial = int(head["serial"])
        except (OSError, ValueError, KeyError, TypeError):  # none, or not one of ours
            continue
        if mine:
            found[content_type] = Page.of(body, content_type, serial)
    return found


class SavedIndex(Service):
    """The index pages saved by the last stop, offered once each to the first render."""

    def __init__(self, directory: str, cache: PageCache) -> None:
        self.directory = directory
        self.cache = cache
        self._renderer = ""
        self._saved: dict[str, Page] = {}
        #: Fires (with None) once the saved pages are read.
        self.loaded: Deferred[None] | None = None

    def startService(self) -> None:
        super().startService()
        self.loaded = ensureDeferred(self._load())

    async def _load(self) -> None:
        try:
            self._renderer = await deferToThread(renderer_digest)
            self._saved = await deferToThread(_read, self.directory, self._renderer)
        except Exception:  # never fatal: the index is rendered from the store instead
            log.failure("Saved index pages not read")

    async def take(self, content_type: str) -> Page | None:
        """The saved page of this form, once; the caller checks its serial.

        Waits for the pages to be read: a client asking as soon as the port
        opens would otherwise find none, and wait for the full render.
        """
        if self.loaded is not None:
            await self.loaded
        return self._saved.pop(content_type, None)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        self._saved = {}
        cached = [self.cache.get((ALL, "simple", form)) for form in negotiate.OFFERS]
        pages = [page for page in cached if isinstance(page, Page) and page.serial is not None]
        if not pages or not self._renderer:
            return succeed(None)
        saved = deferToThread(_write, self.directory, self._renderer, pages)
        return saved.addErrback(lambda failure: log.failure("Saving the index pages", failure))
