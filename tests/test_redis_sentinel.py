"""Redis through Sentinel (``--redis redis+sentinel://...``): failovers followed, no restart.

Real processes (``sentinel_servers.SentinelCluster``: three sentinels, a
primary and a replica on loopback), and ``kill -9`` of the primary: the
store fails calls within its timeout while the sentinels promote the
replica, then works on the new primary with everything acknowledged before,
and its change listener subscribes there too. A planned failover (the old
primary alive, demoted only later) is followed at once. A real daemon keeps serving
cached pages throughout, answers uploads 503 in bounded time, and takes them
again after. The URL itself is parsed in ``test_core_redis_url.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from archive_factory import make_wheel, wheel_filename
from recorder import Recorder
from redis_server import RedisServer
from sentinel_servers import SentinelCluster
from servers import MinistryProcess, free_port
from store_records import make_record
from test_multiprocess import call, files_on, upload
from test_redis_store import eventually, fails_within, start, subscribers  # noqa: F401 - fixtures too
from twisted.internet import reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater

from ministry.core.errors import StoreUnavailable
from ministry.core.models import FileRecord
from ministry.stores.redis import RedisStore

#: The store timeout of these tests (seconds): every call fails within it.
TIMEOUT = 0.5
#: How long a failover may take, seen from the store: the issue's promise.
RECOVERY = 30.0


def wheel_record(name: str, version: str) -> FileRecord:
    return make_record(filename=wheel_filename(name, version), project=name, version=version)


# -- the store follows a failover ------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_the_store_follows_a_failover(
    sentinel_cluster: SentinelCluster,
    start,  # noqa: F811 - the fixture imported above
) -> None:
    writer = start(sentinel_cluster.url, timeout=TIMEOUT)
    reader = start(sentinel_cluster.url, timeout=TIMEOUT)
    heard = Recorder()
    reader.subscribe(heard)
    await eventually(lambda: subscribers(sentinel_cluster.primary(), reader) == 2)
    acknowledged = [wheel_record("before", f"1.{i}") for i in range(5)]
    for record in acknowledged:
        assert await writer.add_file(record, "before", None) is True

    old = sentinel_cluster.kill_primary()
    killed = time.monotonic()
    failures = 0
    while True:
        began = time.monotonic()
        try:
            await writer.last_serial()
            break
        except StoreUnavailable as unavailable:
            failures += 1
            # Bounded: never a hang, whatever the state of the failover.
            assert time.monotonic() - began < TIMEOUT + 0.5, unavailable
        assert time.monotonic() - killed < RECOVERY, "the store did not follow the failover"
        await deferLater(reactor, 0.05, lambda: None)
    assert failures > 0  # the kill was seen: the calls above did fail meanwhile
    print(
        f"\nfailover seen by the store: {time.monotonic() - killed:.2f} s, {failures} failed calls"
    )
    assert sentinel_cluster.wait_failover(old) is not old

    # Everything acknowledged before the kill is on the new primary (the reader
    # follows the failover on its own clock: it may still be switching).
    await eventually(reader.is_available, RECOVERY)
    listed = [record.filename for record in await reader.list_files("before")]
    assert listed == [record.filename for record in acknowledged]
    assert await writer.last_serial() == len(acknowledged)
    # Both listeners subscribed again, on the new primary; a change made
    # there reaches the other instance.
    await eventually(lambda: subscribers(sentinel_cluster.primary(), reader) == 2, RECOVERY)
    assert await writer.add_file(wheel_record("after", "2.0"), "after", None) is True
    await eventually(lambda: "after" in heard.names, 5)


@pytest_twisted.ensureDeferred
async def test_the_store_follows_a_planned_failover_at_once(
    sentinel_cluster: SentinelCluster,
    start,  # noqa: F811
) -> None:
    """``SENTINEL FAILOVER``: the old primary keeps taking writes until it is demoted.

    That is some ten seconds after the switch, and whatever it acknowledged
    meanwhile is lost when it copies the new primary. The store hears the
    switch announced by the sentinels and moves both connections at once.
    """
    store = start(sentinel_cluster.url, timeout=TIMEOUT)
    await eventually(lambda: subscribers(sentinel_cluster.primary(), store) == 1)
    assert await store.add_file(wheel_record("before", "1.0"), "before", None) is True

    old, new = sentinel_cluster.switch_over()
    switched = time.monotonic()
    await eventually(lambda: subscribers(new, store) == 1, 5)
    await eventually(store.is_available, 5)
    assert await store.add_file(wheel_record("after", "2.0"), "after", None) is True
    assert new.command("EXISTS", f"{store.prefix}files:after") == 1
    assert old.command("ROLE")[0] == b"master"  # not demoted yet: the store did not wait for it
    assert [record.filename for record in await store.list_files("before")] == [
        wheel_filename("before", "1.0")
    ]
    print(f"\nplanned failover followed {time.monotonic() - switched:.2f} s after the switch")


# -- what the sentinels say, and what the store makes of it ----------------------------------


class _FakeSentinel(Protocol):
    """Answers ``SENTINEL get-master-addr-by-name`` with its factory's ``answer``.

    ``answer`` None: it accepts the connection and never answers (a hung sentinel).
    Named as the primary (its own address as ``answer``), it hangs up on
    ``ROLE``, or never answers it, as its ``on_role`` says.
    """

    def dataReceived(self, data: bytes) -> None:
        if b"ROLE" in data:  # named as the primary itself: it hangs up, or stalls
            self.factory.checked += 1
            if self.factory.on_role == "hangs up":
                self.transport.loseConnection()
            return
        answer = self.factory.answer
        if b"get-master-addr-by-name" in data and answer is not None:
            host, port = answer[0].encode(), str(answer[1]).encode()
            self.transport.write(
                b"*2\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(host), host, len(port), port)
            )


@pytest_twisted.async_yield_fixture
async def fake_sentinel() -> AsyncIterator[Any]:
    """A sentinel on a loopback port that names whatever the test sets as ``answer``."""
    factory = Factory.forProtocol(_FakeSentinel)
    factory.answer, factory.on_role, factory.checked, factory.noisy = None, "", 0, False
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    factory.address = ("127.0.0.1", port.getHost().port)
    factory.url = f"redis+sentinel://127.0.0.1:{port.getHost().port}/mymaster/0"
    yield factory
    await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_a_replica_is_never_taken_for_the_primary(
    fake_sentinel: Any,
    start,  # noqa: F811
    logged: Recorder,
) -> None:
    """A sentinel may name a demoted server; the store then asks again until it names a primary."""
    with (
        RedisServer() as primary,
        RedisServer("--replicaof", "127.0.0.1", str(primary.port)) as replica,
    ):
        fake_sentinel.answer = ("127.0.0.1", replica.port)
        store = start(fake_sentinel.url, timeout=TIMEOUT)
        await fails_within(TIMEOUT + 0.5, store.last_serial)  # not the replica's stale answer
        refused = f"127.0.0.1:{replica.port} is not the primary (ROLE: b'slave')"
        await eventually(lambda: any(refused in text for text in logged.texts))

        fake_sentinel.answer = ("127.0.0.1", primary.port)
        await eventually(store.is_available, RECOVERY)
        assert await store.add_file(make_record(), "demo-pkg", None) is True
        assert primary.command("EXISTS", f"{store.prefix}files:demo-pkg") == 1


@pytest.mark.parametrize("on_role", ["hangs up", "stalls"])
@pytest_twisted.ensureDeferred
async def test_a_primary_failing_its_role_check_is_tried_again(
    fake_sentinel: Any,
    start,  # noqa: F811
    on_role: str,
) -> None:
    """Dying, or hung, while its role is checked: the connections still ask the sentinels again."""
    fake_sentinel.answer, fake_sentinel.on_role = fake_sentinel.address, on_role
    with RedisServer() as primary:
        store = start(fake_sentinel.url, timeout=TIMEOUT)
        await eventually(lambda: fake_sentinel.checked >= 2)  # each connection once
        fake_sentinel.answer = ("127.0.0.1", primary.port)
        await eventually(store.is_available, RECOVERY)
        await eventually(lambda: subscribers(primary, store) == 1, RECOVERY)


@pytest_twisted.ensureDeferred
async def test_sentinels_that_do_not_answer_fail_calls_in_bounded_time(
    fake_sentinel: Any,
    start,  # noqa: F811
    logged: Recorder,
) -> None:
    refusing = free_port()
    hung = fake_sentinel.url.removeprefix("redis+sentinel://")
    store = start(f"redis+sentinel://127.0.0.1:{refusing},{hung}", timeout=TIMEOUT)
    error = await fails_within(TIMEOUT + 0.5, store.last_serial)
    assert f"within {TIMEOUT:g} s" in error.message

    def warned() -> str:
        return next((t for t in logged.texts if "no sentinel named the primary" in t), "")

    await eventually(warned)
    assert f"sentinel 127.0.0.1:{refusing}: Connection was refused" in warned()
    assert f"sentinel {hung.split('/')[0]}: no answer within {TIMEOUT:g} s" in warned()


@pytest_twisted.ensureDeferred
async def test_stopping_while_the_sentinels_are_asked_is_quiet(
    fake_sentinel: Any, logged: Recorder
) -> None:
    store = RedisStore(fake_sentinel.url, "quiet:", TIMEOUT)  # a sentinel that never answers
    store.startService()
    await deferLater(reactor, 0.1, lambda: None)
    await store.stopService()
    assert [text for text in logged.texts if "sentinel" in text] == []


@pytest_twisted.ensureDeferred
async def test_a_password_reaches_the_primary_and_is_never_shown(
    start,  # noqa: F811
    logged: Recorder,
) -> None:
    """The sentinels have none here: the password they are offered and refuse does no harm."""
    with SentinelCluster(password="s3cret-pw") as cluster:
        url = cluster.url.replace("redis+sentinel://", "redis+sentinel://:s3cret-pw@")
        store = start(url, timeout=TIMEOUT)
        assert await store.add_file(make_record(), "demo-pkg", None) is True

        wrong = start(url.replace("s3cret-pw", "wr0ng-pw"), timeout=TIMEOUT)
        await fails_within(TIMEOUT + 0.5, wrong.last_serial)
        error = await fails_within(TIMEOUT + 0.5, wrong.last_serial)
        assert "could not auth" in error.message

        unknown = start(url.replace("/mymaster/", "/nosuch/"), timeout=TIMEOUT)
        await fails_within(TIMEOUT + 0.5, unknown.last_serial)
        await eventually(lambda: any("knows no primary named 'nosuch'" in t for t in logged.texts))
        for started in (store, wrong, unknown):
            await started.stopService()
    shown = "\n".join([error.message, *logged.texts, *map(str, logged.failures)])
    assert "s3cret-pw" not in shown and "wr0ng-pw" not in shown


# -- a daemon through a failover ---------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One request of a client loop: when it began, how long it took, what it got."""

    began: float
    seconds: float
    status: int
    reason: str = ""
    version: str = ""


class ClientLoop(threading.Thread):
    """Makes one request after another with ``step()`` (an :class:`Attempt`) until stopped."""

    def __init__(self, step: Callable[[], Attempt]) -> None:
        super().__init__(daemon=True)
        self.step, self.stopping, self.attempts = step, threading.Event(), []

    def run(self) -> None:
        while not self.stopping.is_set():
            self.attempts.append(self.step())
            time.sleep(0.05)

    def stop(self) -> list[Attempt]:
        self.stopping.set()
        self.join(60)
        return self.attempts


def first_success_after_a_failure(attempts: list[Attempt]) -> Attempt | None:
    failed = [attempt.began for attempt in attempts if attempt.status != 200]
    after = [a for a in attempts if failed and a.status == 200 and a.began > failed[0]]
    return after[0] if after else None


@pytest.mark.e2e
def test_a_daemon_keeps_serving_through_a_failover(
    sentinel_cluster: SentinelCluster, tmp_path: Path
) -> None:
    timeout = 1.0
    args = ("--redis", sentinel_cluster.url, "--redis-timeout", f"{timeout:g}")
    with MinistryProcess(tmp_path / "data", *args) as server:
        assert upload(server.url, "steady", "1.0", make_wheel("steady", "1.0"))[0] == 200
        assert call(server.url, "GET", "/simple/steady/")[0] == 200  # now cached
        versions = (f"1.{n}" for n in range(1000))

        def read() -> Attempt:
            began = time.monotonic()
            status = call(server.url, "GET", "/simple/steady/")[0]
            return Attempt(began, time.monotonic() - began, status)

        def upload_next() -> Attempt:
            began, version = time.monotonic(), next(versions)
            status, reason, _ = upload(server.url, "busy", version, make_wheel("busy", version))
            return Attempt(began, time.monotonic() - began, status, reason, version)

        readers, uploaders = ClientLoop(read), ClientLoop(upload_next)
        readers.start(), uploaders.start()
        time.sleep(1.0)
        sentinel_cluster.kill_primary()
        killed = time.monotonic()
        while not first_success_after_a_failure(uploaders.attempts):
            assert time.monotonic() - killed < RECOVERY, "uploads did not succeed again"
            time.sleep(0.1)
        time.sleep(1.0)
        reads, uploads = readers.stop(), uploaders.stop()

        failed = [attempt for attempt in uploads if attempt.status != 200]
        recovered = first_success_after_a_failure(uploads)
        assert failed and recovered, "the failover was not seen"
        assert {attempt.status for attempt in failed} == {503}
        for attempt in failed:  # refused with a reason, in bounded time: never a hang
            assert "Redis" in attempt.reason and attempt.seconds < 4 * timeout, attempt
        # The cached page was served all along, during the failover too.
        assert {attempt.status for attempt in reads} == {200}
        assert max(attempt.seconds for attempt in reads) < 2
        assert any(failed[0].began < attempt.began < recovered.began for attempt in reads)
        acknowledged = {wheel_filename("busy", a.version) for a in uploads if a.status == 200}
        assert acknowledged <= set(files_on(server.url, "busy"))
        print(
            f"\nfailover seen by the daemon: first 503 {failed[0].began - killed:.2f} s after "
            f"the kill, first 200 {recovered.began + recovered.seconds - failed[0].began:.2f} s "
            f"after that; {len(failed)} uploads refused (slowest "
            f"{max(attempt.seconds for attempt in failed):.2f} s), {len(reads)} reads all 200"
        )
