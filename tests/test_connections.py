"""Connections a slow or hostile peer cannot hold for ever, against real daemons.

Trickling peers are raw sockets that send a request head a byte at a time;
each comes from its own loopback address (127.0.0.0/8 all reaches the
daemon), so the per-client caps see distinct clients. A "normal client" is
one plain GET from 127.0.0.1 that must be answered within a second.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import pytest_twisted
from http_harness import InMemoryIndex
from rawhttp import closed_by_peer, connect, exchange, read_response
from servers import TWISTD, MinistryProcess
from twisted.internet.address import IPv4Address, UNIXAddress

from ministry.web.http.clients import TrustedProxies
from ministry.web.http.connections import ConnectionLimits, Connections

GET = b"GET /simple/ HTTP/1.1\r\nHost: x\r\n\r\n"


class Trickler:
    """Sockets that each send a byte of a request head every ``interval`` seconds."""

    def __init__(self, port: int, interval: float = 0.2) -> None:
        self.port = port
        self.interval = interval
        self.sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def open(self, source: str) -> socket.socket:
        sock = connect(self.port, source)
        self.sockets.append(sock)
        return sock

    def _run(self) -> None:
        offset = 0
        while not self._stop.wait(self.interval):
            byte = GET[offset % 16 : offset % 16 + 1]  # never the end of the head
            offset += 1
            for sock in list(self.sockets):
                try:
                    sock.send(byte)
                except OSError:
                    self.sockets.remove(sock)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def trickler() -> Iterator[Callable[..., Trickler]]:
    made: list[Trickler] = []

    def make(port: int, interval: float = 0.2) -> Trickler:
        made.append(Trickler(port, interval))
        return made[-1]

    yield make
    for each in made:
        each.close()


def served_promptly(daemon: MinistryProcess) -> bool:
    started = time.monotonic()
    return exchange(daemon.port, GET).status == 200 and time.monotonic() - started < 1


def test_a_trickled_head_gets_408_at_the_deadline(tmp_path, trickler):
    with MinistryProcess(tmp_path / "data", "--header-timeout", "1") as daemon:
        sock = trickler(daemon.port, 0.1).open("127.0.0.2")
        started = time.monotonic()
        response = read_response(sock)
        assert response.status == 408
        assert "did not arrive within 1 s" in response.body.decode()
        assert 0.9 < time.monotonic() - started < 2.5


def test_a_silent_connection_is_closed_at_the_deadline_and_keep_alive_is_not(tmp_path):
    with MinistryProcess(tmp_path / "data", "--header-timeout", "1") as daemon:
        silent, kept = connect(daemon.port), connect(daemon.port)
        with silent, kept:
            for _ in range(2):  # twisted.web's answer, then the fast lane's
                kept.sendall(GET)
                assert read_response(kept).status == 200
            assert closed_by_peer(silent, 2.5)
            # Idle between requests is not a head arriving: the next request is served.
            time.sleep(0.5)
            kept.sendall(GET)
            assert read_response(kept).status == 200


def test_one_client_at_its_cap_makes_room_from_its_own_waiting_connections(tmp_path, trickler):
    """A trickler cannot hold more than its cap, and its newcomer costs only its own oldest."""
    with MinistryProcess(tmp_path / "data", "--max-connections-per-client", "3") as daemon:
        slow = trickler(daemon.port)
        first = slow.open("127.0.0.2")
        time.sleep(0.1)
        for _ in range(2):
            slow.open("127.0.0.2")
        other = slow.open("127.0.0.3")  # another client, waiting longer than two of them
        time.sleep(0.3)
        assert exchange(daemon.port, GET, source="127.0.0.2").status == 200
        assert closed_by_peer(first, 1)
        assert served_promptly(daemon)
        assert not closed_by_peer(other, 0.3)  # only 127.0.0.2's connections were candidates


def test_at_the_total_cap_the_longest_waiting_connection_makes_room(tmp_path, trickler):
    args = ("--max-connections", "4", "--max-connections-per-client", "100")
    with MinistryProcess(tmp_path / "data", *args) as daemon:
        slow = trickler(daemon.port)
        first = slow.open("127.0.0.2")
        time.sleep(0.1)
        for n in range(3, 6):
            slow.open(f"127.0.0.{n}")
        time.sleep(0.3)
        assert served_promptly(daemon)
        assert closed_by_peer(first, 1)


class LowFdDaemon(MinistryProcess):
    """A daemon whose open-file limit is 100, as in the report of issue 13."""

    def command(self) -> list[str]:
        command = super().command()
        setup = "import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (100, 100)); "
        assert command[: len(TWISTD)] == TWISTD
        return [TWISTD[0], "-c", setup + TWISTD[2], *command[len(TWISTD) :]]


def test_87_trickling_connections_at_100_descriptors_lock_no_one_out(tmp_path, trickler):
    with LowFdDaemon(tmp_path / "data") as daemon:
        slow = trickler(daemon.port, 0.5)
        for n in range(87):
            with contextlib.suppress(OSError):  # refused at once: allowed too
                slow.open(f"127.0.1.{n % 3 + 1}")
        time.sleep(0.5)
        assert all(served_promptly(daemon) for _ in range(5))
        assert "At most 18 connections" in daemon.log_text()


def test_x_forwarded_for_names_the_client_only_from_a_trusted_proxy(tmp_path):
    forwarded = b"GET /simple/ HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.7\r\n\r\n"
    with MinistryProcess(tmp_path / "data", "--trusted-proxy", "127.0.0.1") as daemon:
        for _ in range(2):  # the second answer is the fast lane's
            assert exchange(daemon.port, forwarded).status == 200
        assert exchange(daemon.port, forwarded, source="127.0.0.2").status == 200
        deadline = time.monotonic() + 5
        while '"127.0.0.2" - - ' not in daemon.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)  # the line is written just after the answer
        log = daemon.log_text()
    assert log.count('"198.51.100.7" - - ') == 2, log
    assert log.count('"127.0.0.2" - - ') == 1, log


async def failed_login(index: InMemoryIndex, forwarded_for: str) -> float:
    """Seconds a wrong password from ``forwarded_for`` took to be refused."""
    headers = {
        "Authorization": "Basic " + base64.b64encode(b"nobody:wrong").decode(),
        "Content-Type": "application/json",
        "X-Forwarded-For": forwarded_for,
    }
    started = time.monotonic()
    response = await index.request(
        "POST", "/api/yank", headers, b'{"project": "demo", "version": "1.0"}'
    )
    assert response.code == 401
    return time.monotonic() - started


@pytest.mark.parametrize("trusted", [True, False], ids=["behind a trusted proxy", "untrusted"])
@pytest_twisted.ensureDeferred
async def test_the_login_throttle_is_keyed_by_the_forwarded_client(tmp_path, trusted):
    options = {"trusted-proxy": ["127.0.0.1"]} if trusted else {}
    index = InMemoryIndex(str(tmp_path), **options)  # its peer is 127.0.0.1
    await index.start()
    try:
        for _ in range(5):
            await failed_login(index, "198.51.100.7")
        assert await failed_login(index, "198.51.100.7") >= 0.45  # the 6th waits 0.5 s
        other = await failed_login(index, "198.51.100.8")
    finally:
        await index.stop()
    assert (other < 0.3) == trusted


class Waiting:
    """A stand-in channel for the tracker: waiting since a time, or busy (None)."""

    def __init__(self, host: str, since: float | None = None) -> None:
        self.host = host
        self.since = since
        self.evicted = False
        self.transport = self

    def getPeer(self) -> Waiting:
        return self

    def waiting_since(self) -> float | None:
        return self.since

    def evict(self) -> None:
        self.evicted = True


@pytest.mark.parametrize(
    ("open_since", "evicted", "refused"),
    [
        pytest.param([None, None], None, True, id="all busy: the newcomer is refused"),
        pytest.param([5.0, None, 2.0], 2, False, id="the longest waiting makes room"),
    ],
)
def test_the_tracker_at_its_cap(open_since, evicted, refused):
    connections = Connections(ConnectionLimits(total=len(open_since), per_client=99))
    channels = [Waiting(f"10.0.0.{n}", since) for n, since in enumerate(open_since)]
    for channel in channels:
        connections.opened(channel)
    assert (connections.admit(Waiting("10.0.0.99")) is not None) == refused
    assert [channel.evicted for channel in channels] == [n == evicted for n in range(len(channels))]


@pytest.mark.parametrize(
    ("own_since", "evicted", "refused"),
    [
        pytest.param([None, None], None, True, id="all of its own busy: refused"),
        pytest.param([None, 4.0, 3.0], 2, False, id="its own longest waiting makes room"),
    ],
)
def test_the_tracker_at_a_clients_cap(own_since, evicted, refused):
    """Another client's idle connection, waiting longer still, is never closed for it."""
    connections = Connections(ConnectionLimits(total=99, per_client=len(own_since)))
    others = Waiting("10.0.0.2", 1.0)
    connections.opened(others)
    own = [Waiting("10.0.0.1", since) for since in own_since]
    for channel in own:
        connections.opened(channel)
    assert (connections.admit(Waiting("10.0.0.1")) is not None) == refused
    assert [channel.evicted for channel in own] == [n == evicted for n in range(len(own))]
    assert not others.evicted


def test_a_trusted_proxy_is_not_capped_per_client_but_others_are():
    limits = ConnectionLimits(per_client=1, proxies=TrustedProxies(["10.0.0.0/24"]))
    connections = Connections(limits)
    for host in ("10.0.0.1", "10.0.0.1", "192.0.2.1"):
        assert connections.admit(Waiting(host)) is None
        connections.opened(Waiting(host))
    assert connections.admit(Waiting("192.0.2.1")) is not None


PROXIES = TrustedProxies(["10.0.0.0/8", "unix"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        pytest.param("192.0.2.1", [b"198.51.100.7"], "192.0.2.1", id="untrusted peer: ignored"),
        pytest.param("10.0.0.1", None, "10.0.0.1", id="trusted peer, no header"),
        pytest.param("10.0.0.1", [b"198.51.100.7"], "198.51.100.7", id="one hop"),
        pytest.param("10.0.0.1", [b"198.51.100.7, 10.0.0.2"], "198.51.100.7", id="two proxies"),
        pytest.param("10.0.0.1", [b"6.6.6.6, 198.51.100.7"], "198.51.100.7", id="spoofed left"),
        pytest.param("10.0.0.1", [b"6.6.6.6", b"198.51.100.7"], "198.51.100.7", id="two lines"),
        pytest.param("10.0.0.1", [b"junk, 10.0.0.3"], "10.0.0.3", id="junk ends the walk"),
        pytest.param("10.0.0.1", [b"198.51.100.7, junk"], "10.0.0.1", id="junk right-most"),
        pytest.param("10.0.0.1", [b"10.0.0.4, 10.0.0.3"], "10.0.0.4", id="all trusted"),
        pytest.param("10.0.0.1", [b"2001:db8::7"], "2001:db8::7", id="IPv6 client"),
        pytest.param("::ffff:10.0.0.1", [b"198.51.100.7"], "198.51.100.7", id="mapped peer"),
    ],
)
def test_the_client_address_behind_trusted_proxies(peer, forwarded, client):
    found = PROXIES.client(IPv4Address("TCP", peer, 1234), forwarded)
    assert found.host == client


def test_a_unix_socket_peer_is_trusted_only_when_named():
    peer = UNIXAddress(None)
    assert PROXIES.client(peer, [b"198.51.100.7"]).host == "198.51.100.7"
    assert TrustedProxies(["10.0.0.1"]).client(peer, [b"198.51.100.7"]) is peer
