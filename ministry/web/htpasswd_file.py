"""``--htpasswd``: an Apache htpasswd file, read again when it changes, with no restart."""

from __future__ import annotations

import os

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from ministry.core.auth import Htpasswd, parse_htpasswd

log = Logger()

#: How often, at most, the htpasswd file is looked at for changes.
HTPASSWD_CHECK_SECONDS = 3.0


class HtpasswdFile:
    """An Apache htpasswd file, read again when it changes.

    Its modification time and size are looked at on use, at most every
    :data:`HTPASSWD_CHECK_SECONDS`: a request never waits on more than one
    ``stat``, and an edited file is picked up within seconds, with no
    restart. A file that cannot be read keeps the entries last read (none
    at first), and says why in the log.
    """

    def __init__(self, path: str, clock: IReactorTime) -> None:
        self.path = path
        self._clock = clock
        self._checked: float | None = None
        self._signature: tuple[int, int] | None = None
        self._current = Htpasswd({})

    def entries(self) -> Htpasswd:
        now = self._clock.seconds()
        if self._checked is None or now - self._checked >= HTPASSWD_CHECK_SECONDS:
            self._checked = now
            self._reload_if_changed()
        return self._current

    def _reload_if_changed(self) -> None:
        try:
            status = os.stat(self.path)
            signature = (status.st_mtime_ns, status.st_size)
            if signature == self._signature:
                return
            with open(self.path, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as error:
            if self._signature != (-1, -1):
                log.error("Cannot read --htpasswd {path}: {error}", path=self.path, error=error)
            self._signature = (-1, -1)
            return
        self._signature = signature
        self._current = parse_htpasswd(text)
        log.info("Read {count} users from {path}", count=len(self._current.entries), path=self.path)
        for problem in self._current.problems:
            log.warn("{path}: {problem}; ignored", path=self.path, problem=problem)
