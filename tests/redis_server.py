"""A real ``redis-server`` for tests, on a free loopback port in a temporary directory.

The Redis store is only worth testing against the real thing: its
atomicity comes from Lua scripts and its notifications from pub/sub. This
starts the server Debian installs (no persistence, nothing outside a temp
dir), and can stop it and start it again on the same port, which is how
tests simulate an outage::

    with RedisServer() as server:
        store = RedisStore(server.url)
        server.stop()   # Redis goes away...
        server.start()  # ...and comes back on the same port

:func:`shared_server` is one server for the whole test session, for tests
that only need a Redis and isolate themselves with a key prefix.

Everything here is blocking, on purpose: starting a server takes a few
milliseconds, and a helper that used the reactor would show up in the
reactor-hygiene checks of the tests it serves.
"""

from __future__ import annotations

import atexit
import shutil
import signal
import socket
import subprocess
import time
from typing import Any

from servers import ChildServer, free_port

REDIS_SERVER = "redis-server"


def find_redis_server() -> str | None:
    """The path of the ``redis-server`` binary, or None if it is not installed."""
    return shutil.which(REDIS_SERVER) or shutil.which(REDIS_SERVER, path="/usr/sbin:/usr/bin")


class RedisServer(ChildServer):
    """One ``redis-server`` process: started on construction, stopped by :meth:`close`.

    ``extra_args`` are passed on the command line (``"--requirepass",
    "secret"``). With ``unix_socket=True`` it also listens on
    :attr:`socket_path`. A missing binary raises ``FileNotFoundError``, so
    that tests needing Redis fail rather than skip.
    """

    def __init__(self, *extra_args: str, unix_socket: bool = False) -> None:
        missing = f"{REDIS_SERVER} is not installed (apt-get install redis)"
        super().__init__(find_redis_server(), missing, "ministry-redis-")
        self.port = free_port()
        self.socket_path = str(self.directory / "redis.sock") if unix_socket else None
        self.extra_args = extra_args
        self._start_or_close()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _command_line(self) -> list[str]:
        line = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        line += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        if self.socket_path is not None:
            line += ["--unixsocket", self.socket_path, "--unixsocketperm", "700"]
        return line + list(self.extra_args)

    def start(self, timeout: float = 10.0) -> None:
        """Start the server (again, on the same port) and wait until it answers PING."""
        if self._process is not None:
            raise RuntimeError(f"redis-server is already running on port {self.port}")
        with open(self.directory / "redis.log", "ab") as log:
            self._process = subprocess.Popen(
                self._command_line(), stdout=log, stderr=subprocess.STDOUT, cwd=self.directory
            )
        deadline = time.monotonic() + timeout
        while not self._answers_ping():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                output = (self.directory / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{output}")
            time.sleep(0.02)

    def _answers_ping(self) -> bool:
        # NOAUTH counts: a server with --requirepass is up all the same.
        try:
            reply = self.command("PING")
        except OSError:
            return False
        return reply == b"PONG" or (
            isinstance(reply, RedisReplyError) and reply.startswith("NOAUTH")
        )

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and wait until it has exited."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def pause(self) -> None:
        """SIGSTOP the server: connections stay open and nothing is answered (a stall)."""
        assert self._process is not None, "redis-server is not running"
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused server: it then runs whatever was queued meanwhile."""
        assert self._process is not None, "redis-server is not running"
        self._process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def command(self, *args: str | bytes | int, password: str | None = None) -> Any:
        """Send one command on a fresh blocking connection and return its reply.

        For tests to look at or poke the server behind the store's back
        (``KEYS``, ``CLIENT KILL``, ``PUBSUB NUMSUB``). Replies are bytes,
        ints, lists or None; an error reply is returned as
        :class:`RedisReplyError`, not raised.
        """
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            reader = conn.makefile("rb")
            if password is not None:
                conn.sendall(_encode("AUTH", password))
                _read_reply(reader)
            conn.sendall(_encode(*args))
            return _read_reply(reader)


class RedisReplyError(str):
    """An error reply (``-ERR ...``), kept as a value so tests can inspect it."""


def _encode(*args: str | bytes | int) -> bytes:
    parts = [arg if isinstance(arg, bytes) else str(arg).encode() for arg in args]
    return b"".join(
        [f"*{len(parts)}\r\n".encode()] + [b"$%d\r\n%s\r\n" % (len(part), part) for part in parts]
    )


def _read_reply(reader: Any) -> Any:
    line = reader.readline()
    if not line:
        raise ConnectionError("redis-server closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest
    if kind == b"-":
        return RedisReplyError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        length = int(rest)
        return None if length < 0 else reader.read(length + 2)[:-2]
    if kind == b"*":
        count = int(rest)
        return None if count < 0 else [_read_reply(reader) for _ in range(count)]
    raise ValueError(f"unexpected reply from redis-server: {line!r}")


_shared: RedisServer | None = None


def shared_server() -> RedisServer:
    """One server for the whole test session, started on first use, stopped at exit."""
    global _shared
    if _shared is None:
        _shared = RedisServer()
        atexit.register(_shared.close)
    return _shared
