"""The access log written in batches, off the request path, with the lines it always had.

twisted.web writes one line a response to ``Site.logFile``. By default
that is twistd's log, through one log event a line: some 75 µs of CPU a
request, two thirds of what a cached page costs. Here ``logFile`` is an
:class:`AccessLog` instead: ``write`` only appends the line to a list, and
the lines of one reactor turn go out together in one write at the end of
the turn (``callLater(0)``), so a busy daemon writes dozens of lines a
call and an idle one still writes each line at once.

Where they go, unchanged:

- by default, the file twistd's own observer writes to (stdout under
  ``-n``, else ``twistd.log``, rotated by twistd as before), each line
  prefixed exactly as that observer would (its timestamp, formatted once a
  second, and ``[twisted.python.log#info]``). twistd does not say which
  file that is, so it is found among the global log publisher's observers
  (:func:`twistd_log_file`); when there is none to find (another runner, a
  custom ``--logger``), each line is a log event as before, batched.
- with ``--access-log PATH``, that file, appended to, never rotated here
  (logrotate's ``copytruncate`` does it).

Each line is twisted.web's Combined Log Format, made by
:func:`combined_line`: the same text as ``combinedLogFormatter``, in half
the time, as the escaped forms of the values that repeat (the client's
address, the path, the user agent) are remembered.

Nothing is lost at shutdown: twistd closes the port first on SIGTERM,
which flushes (:meth:`AccessLog.close`) but keeps the log, as answers to
requests already read still go out; after the reactor has stopped,
:meth:`AccessLog.shut` writes what is left, and any later line at once. A line may follow
another log event of the same turn that happened after it: the batch is
written at the turn's end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import FileLogObserver, formatTime, globalLogPublisher
from twisted.python import log
from twisted.web.iweb import IRequest

#: What twistd's observer puts between the timestamp and a twisted.web line:
#: the namespace and level of the event ``twisted.python.log.logfile`` makes.
SYSTEM = "twisted.python.log#info"


#: Escaped values remembered at most (then forgotten all at once), and the
#: longest value remembered: a client cannot make the memory grow.
_REMEMBERED = 4096
_LONGEST_REMEMBERED = 512
_escaped: dict[bytes | str, str] = {}


def escape(value: bytes | str) -> str:
    """``value`` as twisted.web's log writes it: Python's repr, as if in double quotes."""
    found = _escaped.get(value)
    if found is not None:
        return found
    raw = value if isinstance(value, bytes) else value.encode("ascii")
    text = repr(raw)[1:]  # without the b
    if text.startswith("'"):
        text = text[1:-1].replace('"', '\\"').replace("\\'", "'")
    else:
        text = text[1:-1]
    if len(value) <= _LONGEST_REMEMBERED:
        if len(_escaped) >= _REMEMBERED:
            _escaped.clear()
        _escaped[value] = text
    return text


def combined_line(timestamp: str, request: IRequest) -> str:
    """One request in the Combined Log Format, exactly as ``combinedLogFormatter`` writes it.

    A ``logFormatter`` for twisted.web's Site.
    """
    client = request.getClientAddress()  # behind a trusted proxy, whom it names
    ip = client.host if isinstance(client, (IPv4Address, IPv6Address)) else b"-"
    return (
        f'"{escape(ip)}" - - {timestamp} '
        f'"{escape(request.method)} {escape(request.uri)} {escape(request.clientproto)}" '
        f"{request.code} {request.sentLength or '-'} "
        f'"{escape(request.getHeader(b"referer") or b"-")}" '
        f'"{escape(request.getHeader(b"user-agent") or b"-")}"'
    )


class AccessLog:
    """A ``logFile`` for a Site: lines kept until the end of the reactor turn."""

    def __init__(self, out: Callable[[str], None], clock: IReactorTime, prefixed: bool) -> None:
        """``out`` takes a batch of lines; ``prefixed``: as twistd's observer writes them."""
        self.out = out
        self.clock = clock
        self.prefixed = prefixed
        self._pending: list[str] = []
        self._flush: IDelayedCall | None = None
        self._second = -1
        self._prefix = ""
        self._direct = False

    def write(self, line: str) -> None:
        """Keep one line (ending in a newline); written at the end of this turn."""
        if self.prefixed:
            line = self._stamp() + line
        if self._direct:
            self.out(line)
            return
        self._pending.append(line)
        if self._flush is None:
            self._flush = self.clock.callLater(0, self.flush)

    def flush(self) -> None:
        """Write every pending line, in one call."""
        if self._flush is not None and self._flush.active():
            self._flush.cancel()
        self._flush = None
        if self._pending:
            batch, self._pending = "".join(self._pending), []
            self.out(batch)

    def close(self) -> None:
        """What twisted.web's ``stopFactory`` calls: only a flush, as lines may follow."""
        self.flush()

    def shut(self) -> None:
        """After the reactor stopped (no turn ends any more): flush, then write at once."""
        self.flush()
        self._direct = True

    def _stamp(self) -> str:
        """``<timestamp> [twisted.python.log#info] ``, as twistd's observer formats it."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = f"{formatTime(now)} [{SYSTEM}] "
        return self._prefix


def twistd_log_file() -> TextIO | None:
    """The file twistd's log observer writes to, or None if no such observer is found.

    twistd (``AppLogger.start``) gives the global log beginner one
    ``FileLogObserver`` on stdout or on its ``LogFile``; neither it nor the
    publisher names it publicly, hence the private attributes, read once.
    """
    for observer in getattr(globalLogPublisher, "_observers", ()):
        if isinstance(observer, FileLogObserver):
            out = getattr(observer, "_outFile", None)
            if out is not None and callable(getattr(out, "write", None)):
                return out
    return None


def default_access_log(clock: IReactorTime) -> AccessLog:
    """The default: twistd's log file, or log events when it cannot be found."""
    out = twistd_log_file()
    if out is None:
        return AccessLog(_as_events, clock, prefixed=False)
    return AccessLog(_flushed(out), clock, prefixed=True)


def file_access_log(path: str, clock: IReactorTime) -> AccessLog:
    """``--access-log PATH``: appended to, flushed after each batch.

    Never closed: a line may come until the process ends, and each batch is
    flushed, so the exit loses nothing.
    """
    out = open(path, "a", encoding="utf-8", newline="\n")  # noqa: SIM115 - open for good
    return AccessLog(_flushed(out), clock, prefixed=False)


def _flushed(out: TextIO) -> Callable[[str], None]:
    """Write a batch to ``out`` and flush it, so a crash loses no written line."""

    def write(batch: str) -> None:
        out.write(batch)
        out.flush()

    return write


def _as_events(batch: str) -> None:
    for line in batch.splitlines(keepends=True):
        log.logfile.write(line)
