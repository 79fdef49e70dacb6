"""READMEs rendered once, in a child process, within a time and a size budget.

A project page shows its README as HTML, and readme_renderer can take
seconds per hundred kilobytes of reStructuredText (a 3 MB one took 20 s).
Run on the reactor thread, or in a thread that holds the interpreter, that
froze every other request, ``/health`` included. So each README goes to one
child process (``ministry.catalog.readme_worker``), one at a time; the reactor only
waits for the answer. A render past :data:`TIME_BUDGET` gets the child
killed (it cannot be interrupted otherwise) and a fresh one started for the
next README; a text over :data:`SIZE_BUDGET` is never sent. Either way the
page shows the text escaped as plain text instead of failing.

The result is kept in the page cache by what it is made from (the file's
digest, or the project's serial for a registered description), not by
request: a README is rendered once, on upload or on the first view of a
proxied project, and no request can make it render again.
"""

from __future__ import annotations

import html
import json
import os
import struct
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorProcess, IReactorTime
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.python.failure import Failure

from ministry.catalog.cache import CONTENT, Key, PageCache
from ministry.catalog.readme_worker import READY, frame
from ministry.core.metadata import CoreMetadata
from ministry.core.models import FileRecord, ProjectRecord

log = Logger()

#: Longest one README may render for before it is shown as plain text.
TIME_BUDGET = 3.0
#: Longest a fresh child may take to import its renderers.
STARTUP_BUDGET = 30.0
#: Characters of README rendered as markup; beyond, the start is shown as text.
SIZE_BUDGET = 1024**2
#: Largest answer accepted from the child: past it, it is killed.
ANSWER_LIMIT = 64 * 1024**2

_LENGTH = struct.Struct(">I")


@dataclass
class _Job:
    header: bytes
    text: bytes
    done: Deferred = field(default_factory=Deferred)


class _Child(ProcessProtocol):
    """One renderer process: frames its answers for the worker."""

    def __init__(self, on_frame: Callable[[_Child, bytes], None], on_end: Callable[[_Child], None]):
        self.on_frame = on_frame
        self.on_end = on_end
        self.ready = False
        self.ended: Deferred[None] = Deferred()
        self._buffer = bytearray()

    def outReceived(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self._buffer)
            if length > ANSWER_LIMIT:
                self.kill()
                return
            if len(self._buffer) < _LENGTH.size + length:
                return
            payload = bytes(self._buffer[_LENGTH.size : _LENGTH.size + length])
            del self._buffer[: _LENGTH.size + length]
            self.on_frame(self, payload)

    def errReceived(self, data: bytes) -> None:
        """Dropped: what docutils says about a README is not the daemon's news."""

    def kill(self) -> None:
        if self.transport is not None and self.transport.pid is not None:
            self.transport.signalProcess("KILL")

    def processEnded(self, reason: Failure) -> None:
        self.on_end(self)
        self.ended.callback(None)


class _ProcessesAndTime(IReactorProcess, IReactorTime):
    """What the worker needs of the reactor: child processes, and time for their budgets."""


class ReadmeWorker(Service):
    """Renders READMEs in a child process, one at a time, killed past its budget.

    The child starts with the first README, not with the daemon, and is
    replaced after each kill. :meth:`render` fires with the HTML, or with
    None when the render ran out of time, failed or could not be run.
    ``reactor`` starts the child and times its budgets (the daemon's clock).
    """

    def __init__(self, reactor: _ProcessesAndTime, time_budget: float = TIME_BUDGET):
        self._reactor = reactor
        self.time_budget = time_budget
        self._jobs: deque[_Job] = deque()
        self._child: _Child | None = None
        self._busy: _Job | None = None
        self._timer: IDelayedCall | None = None
        self._living: set[_Child] = set()
        self._closed = False
        #: Renders stopped for running out of time, since start.
        self.overruns = 0

    def render(self, text: str, content_type: str, heading_offset: int) -> Deferred[str | None]:
        if self._closed:
            return succeed(None)
        header = json.dumps({"content_type": content_type, "heading_offset": heading_offset})
        job = _Job(header.encode(), text.encode("utf-8", "replace"))
        self._jobs.append(job)
        self._next()
        return job.done

    def _next(self) -> None:
        if self._busy is not None or not self._jobs:
            return
        if self._child is None:
            self._spawn()
        elif self._child.ready:
            job = self._busy = self._jobs.popleft()
            self._child.transport.write(frame(job.header) + frame(job.text))
            self._start_timer(self.time_budget, self._overran)

    def _spawn(self) -> None:
        child = self._child = _Child(self._received, self._ended)
        self._living.add(child)
        args = [sys.executable, "-m", "ministry.catalog.readme_worker"]
        self._reactor.spawnProcess(child, sys.executable, args, env=dict(os.environ))
        self._start_timer(STARTUP_BUDGET, child.kill)

    def _start_timer(self, delay: float, action: Callable[[], object]) -> None:
        self._stop_timer()
        self._timer = self._reactor.callLater(delay, action)

    def _stop_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _received(self, child: _Child, payload: bytes) -> None:
        if child is not self._child:
            return
        if not child.ready:
            if payload != READY:
                child.kill()
                return
            child.ready = True
            self._stop_timer()
            self._next()
            return
        job, self._busy = self._busy, None
        self._stop_timer()
        if job is not None:
            ok = payload[:1] == b"+"
            job.done.callback(payload[1:].decode("utf-8", "replace") if ok else None)
        self._next()

    def _overran(self) -> None:
        """The render is over its budget: kill the child, give up on this README."""
        self._timer = None
        self.overruns += 1
        if self._child is not None:
            self._child.kill()

    def _ended(self, child: _Child) -> None:
        self._living.discard(child)
        if child is not self._child:
            return
        self._child = None
        self._stop_timer()
        job, self._busy = self._busy, None
        if job is not None:
            job.done.callback(None)
        elif not child.ready:  # it never started: do not start one per waiting README
            log.error("The README renderer could not start; READMEs are shown as text.")
            self._fail_waiting()
        self._next()

    def _fail_waiting(self) -> None:
        while self._jobs:
            self._jobs.popleft().done.callback(None)

    def stopService(self) -> Deferred[object]:
        """Stop the child; from now on every README is shown as text."""
        super().stopService()
        self._closed = True
        self._stop_timer()
        self._fail_waiting()
        ending = [child.ended for child in self._living]
        for child in list(self._living):
            if child.transport is not None:
                child.transport.closeStdin()  # it ends by itself at the end of its input
            child.kill()
        return DeferredList(ending)


def plain(text: str, limit: int = SIZE_BUDGET) -> str:
    """A README as escaped text, cut at ``limit`` characters with a note saying so."""
    shown = html.escape(text[:limit])
    note = ""
    if len(text) > limit:
        note = (
            f'<p class="notice">The description is {len(text):,} characters long: the first '
            f"{limit:,} are shown. The whole of it is in the release's metadata.</p>"
        )
    return f'<pre class="readme-text">{shown}</pre>{note}'


class Readmes:
    """Rendered READMEs, cached by what they are rendered from."""

    def __init__(self, cache: PageCache, worker: ReadmeWorker, heading_offset: int = 0) -> None:
        self.cache = cache
        self.worker = worker
        self.heading_offset = heading_offset

    @staticmethod
    def key_of(source: FileRecord | ProjectRecord) -> Key:
        """The cache key of the README of a file's metadata, or of a project's registration."""
        if isinstance(source, FileRecord):
            return (CONTENT, "readme", source.sha256)
        return (source.name, "readme", source.serial)

    def html(self, key: Key, meta: CoreMetadata) -> Deferred[str]:
        """The README of ``meta`` as safe HTML; empty when it has none."""
        if not meta.description.strip():
            return succeed("")
        return self.cache.get_or_fill(key, lambda: self._render(meta))

    async def _render(self, meta: CoreMetadata) -> str:
        text = meta.description
        if len(text) <= SIZE_BUDGET:
            rendered = await self.worker.render(
                text, meta.description_content_type, self.heading_offset
            )
            if rendered is not None:
                return rendered
        # Escaping a megabyte takes longer than any request should wait behind it.
        return await deferToThread(plain, text)

    def prerender(self, record: FileRecord, meta: CoreMetadata) -> None:
        """Start rendering a new file's README now, so its page need not wait for it."""
        done = self.html(self.key_of(record), meta)
        done.addErrback(lambda failure: log.failure("Rendering a README", failure))
