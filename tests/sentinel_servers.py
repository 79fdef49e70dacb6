"""Redis with failover for tests: a primary, a replica and three real sentinels.

Everything is Debian's ``redis-server`` on free loopback ports (a sentinel
is ``redis-server FILE --sentinel``). ``../shared/ENGINES.md`` has the
timings: sentinels started after the replica is in sync agree in 2-3 s, and
after ``kill -9`` of the primary the replica is promoted in about 2.5 s::

    with SentinelCluster() as cluster:
        url = cluster.url             # redis+sentinel://127.0.0.1:S1,.../mymaster/0
        old = cluster.kill_primary()  # waits until the replica is in step first
        cluster.wait_failover(old)
        # or a planned failover (SENTINEL FAILOVER), the old primary living on:
        old, new = cluster.switch_over()

``SentinelCluster(password="pw")`` protects the primary and the replica
(not the sentinels, which are given the password to watch them).

Blocking on purpose, like ``redis_server``.
"""

from __future__ import annotations

import time
from pathlib import Path

from redis_server import RedisServer

SERVICE = "mymaster"


class _Sentinel(RedisServer):
    """One sentinel: ``redis-server sentinel.conf --sentinel`` watching ``primary_port``."""

    def __init__(self, primary_port: int, password: str | None) -> None:
        self.primary_port = primary_port
        self.password = password
        super().__init__()

    def _command_line(self) -> list[str]:
        config = Path(self.directory) / "sentinel.conf"
        if not config.exists():  # sentinel rewrites its file: write it once
            config.write_text(
                f"port {self.port}\nbind 127.0.0.1\ndir {self.directory}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
                + (f"sentinel auth-pass {SERVICE} {self.password}\n" if self.password else "")
            )
        return [self.binary, str(config), "--sentinel"]


def _info(server: RedisServer, section: str, password: str | None = None) -> dict[str, str]:
    reply = server.command("INFO", section, password=password)
    text = reply.decode() if isinstance(reply, bytes) else ""
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _wait(predicate, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


class SentinelCluster:
    """A primary, one replica and three sentinels that agree on them."""

    def __init__(self, password: str | None = None) -> None:
        self.password = password
        self.servers: list[RedisServer] = []
        self.sentinels: list[_Sentinel] = []
        protected = ("--requirepass", password, "--masterauth", password) if password else ()
        try:
            primary = RedisServer("--repl-diskless-sync-delay", "0", *protected)
            self.servers.append(primary)
            replica = RedisServer("--replicaof", "127.0.0.1", str(primary.port), *protected)
            self.servers.append(replica)
            _wait(
                lambda: self._info(replica).get("master_link_status") == "up",
                "the replica to sync",
                20,
            )
            self.sentinels = [_Sentinel(primary.port, password) for _ in range(3)]
            _wait(self._agreed, "the sentinels to agree", 30)
        except BaseException:
            self.close()
            raise

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def primary(self) -> RedisServer:
        """The server the sentinels name as primary now."""
        _host, port = self.sentinels[0].command("SENTINEL", "get-master-addr-by-name", SERVICE)
        return next(server for server in self.servers if server.port == int(port))

    def _info(self, server: RedisServer) -> dict[str, str]:
        """The replication section of ``server``'s INFO (a primary or the replica)."""
        return _info(server, "replication", self.password)

    def _agreed(self) -> bool:
        for sentinel in self.sentinels:
            state = _info(sentinel, "sentinel")
            master = state.get("master0", "")
            if "status=ok" not in master or "slaves=1" not in master or "sentinels=3" not in master:
                return False
        return True

    def _caught_up(self, primary: RedisServer) -> None:
        """Wait until the replica has everything ``primary`` has replicated so far."""
        replica = next(server for server in self.servers if server is not primary)
        offset = int(self._info(primary)["master_repl_offset"])
        _wait(
            lambda: int(self._info(replica).get("slave_repl_offset", -1)) >= offset,
            "the replica to catch up",
            10,
        )

    def kill_primary(self) -> RedisServer:
        """``kill -9`` the primary once the replica has every acknowledged write.

        Writes are paused on the primary first (``CLIENT PAUSE ... WRITE``), so
        that none is acknowledged between the replica catching up and the
        kill: replication is asynchronous, and the tests check that nothing
        acknowledged is lost by the store, not by Redis. The paused writes
        are never run; their clients see the connection die.
        """
        primary = self.primary()
        primary.command("CLIENT", "PAUSE", 30_000, "WRITE", password=self.password)
        self._caught_up(primary)
        assert primary._process is not None
        primary._process.kill()
        primary._process.wait()
        primary._process = None
        return primary

    def switch_over(self) -> tuple[RedisServer, RedisServer]:
        """A planned failover (``SENTINEL FAILOVER``): the old primary lives on, still one.

        Sentinel demotes it only some ten seconds after the switch. Returns
        (old, new) once the sentinels name the new primary.
        """
        old = self.primary()
        self._caught_up(old)
        reply = self.sentinels[0].command("SENTINEL", "FAILOVER", SERVICE)
        assert reply == b"OK", reply
        return old, self.wait_failover(old)

    def wait_failover(self, old: RedisServer, timeout: float = 30.0) -> RedisServer:
        """Wait until the sentinels name another primary; return it."""
        _wait(lambda: self.primary() is not old, "the failover", timeout)
        return self.primary()

    def close(self) -> None:
        for server in [*self.sentinels, *self.servers]:
            server.close()

    def __enter__(self) -> SentinelCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
