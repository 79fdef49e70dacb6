"""What only the Redis store has to get right: sharing one Redis between processes.

The behaviour every store shares is in ``test_store_contract.py``, the URL
parser in ``test_core_redis_url.py``. Here: the key layout, prefixes, claims
and serials raced by two store instances (two connections, as two processes
have), notifications across instances, and outages, against a real
``redis-server`` (``redis_server.py``).
A missing ``redis-server`` fails these tests: they are the only proof that
the multi-process promises hold.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from recorder import Recorder
from redis_server import RedisServer, shared_server
from servers import free_port
from twisted.internet import reactor
from twisted.internet.defer import DeferredList
from twisted.internet.task import Clock, deferLater

from ministry.core.errors import FileExists, StoreUnavailable
from ministry.core.models import WHEEL, FileRecord
from ministry.stores.redis import RedisStore
from ministry.stores.redis.store import UNAVAILABLE

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def server() -> RedisServer:
    """The session's Redis; tests keep apart by key prefix (see ``start``)."""
    return shared_server()


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A Redis of the test's own, which it may stop and start."""
    with RedisServer() as server:
        yield server


@pytest_twisted.async_yield_fixture
async def start(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., RedisStore]]:
    """``start(url, prefix=..., timeout=...)``: a started store, stopped after the test.

    The default prefix is unique to the test, so tests sharing the session's
    Redis never see each other's keys.
    """
    stores: list[RedisStore] = []

    def started(url: str, prefix: str | None = None, timeout: float = 5.0) -> RedisStore:
        store = RedisStore(url, prefix or f"test:{request.node.name}:", timeout)
        store.startService()
        stores.append(store)
        return store

    yield started
    for store in stores:
        await store.stopService()


def record(
    filename: str = "demo_pkg-1.0-py3-none-any.whl",
    project: str = "demo-pkg",
    sha256: str = "a" * 64,
) -> FileRecord:
    return FileRecord(
        project=project,
        filename=filename,
        version="1.0",
        packagetype=WHEEL,
        size=1234,
        sha256=sha256,
        blake2b_256="b" * 64,
        md5="c" * 32,
        upload_time=datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
    )


async def eventually(condition: Callable[[], Any], within: float = 15.0) -> None:
    """Wait, without blocking the reactor, until ``condition()`` is true.

    ``condition`` may return a Deferred, such as ``store.is_available()``.
    """
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if hasattr(value, "__await__"):
            value = await value
        if value:
            return
        assert time.monotonic() < deadline, f"still false after {within} s: {condition}"
        await deferLater(reactor, 0.05, lambda: None)


def subscribers(server: RedisServer, store: RedisStore) -> int:
    """How many connections listen on the store's change channel."""
    return server.command("PUBSUB", "NUMSUB", f"{store.prefix}changes")[1]


# -- construction ----------------------------------------------------------------------


def test_constructor_checks_its_settings() -> None:
    with pytest.raises(ValueError, match="expected a redis://"):
        RedisStore("localhost:6379")
    with pytest.raises(ValueError, match="timeout must be positive"):
        RedisStore("redis://localhost", timeout=0)


def test_importing_and_constructing_connect_nothing() -> None:
    """txredisapi installs the default reactor on import: twistd must choose first."""
    script = (
        "import sys\n"
        "from ministry.stores.redis import RedisStore\n"
        "RedisStore('redis://127.0.0.1:1/0')\n"
        "print(sorted(m for m in ('txredisapi', 'twisted.internet.reactor') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# -- layout and isolation --------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_keys_follow_the_documented_layout(server: RedisServer, start) -> None:
    store = start(server.url, prefix="layout:")
    await store.add_file(record(), "Demo", b"metadata")
    await store.register("other", "Other", {})

    keys = {key.decode() for key in server.command("KEYS", "layout:*")}
    assert keys == {
        "layout:serial",
        "layout:projects",
        "layout:project:demo-pkg",
        "layout:project:other",
        "layout:files:demo-pkg",
        "layout:order:demo-pkg",
        "layout:metadata:demo-pkg",
    }


@pytest_twisted.ensureDeferred
async def test_a_summary_decided_on_a_stale_read_is_decided_again(
    server: RedisServer, start
) -> None:
    """The version comparison runs in Python, between a read and the script.

    Another process's newer release lands in between: the script sees the
    kept version moved, changes nothing, and the write is decided again, so
    the older release's file is claimed without its summary winning.
    """
    store = start(server.url)
    other = start(server.url, prefix=store.prefix)  # another process on the same index
    first = record()
    middle = record("demo_pkg-1.5-py3-none-any.whl", sha256="5" * 64).with_changes(version="1.5")
    newer = record("demo_pkg-2.0-py3-none-any.whl", sha256="2" * 64).with_changes(version="2.0")
    await store.add_file(first, "demo-pkg", None, "First")
    reads = []
    command = store._command

    def racing(*args: Any) -> Any:
        read = command(*args)
        if args[0] == "HMGET" and not reads:  # the summary's read: the other lands now
            reads.append(args)
            read.addCallback(
                lambda fields: other.add_file(newer, "demo-pkg", None, "Newest").addCallback(
                    lambda _: fields
                )
            )
        return read

    store._command = racing  # type: ignore[method-assign]
    assert await store.add_file(middle, "demo-pkg", None, "Middle") is True
    assert reads
    project = await store.get_project("demo-pkg")
    assert (project.summary, project.summary_version) == ("Newest", "2.0")
    assert await store.list_files("demo-pkg") == [first, newer, middle]


@pytest_twisted.ensureDeferred
async def test_prefixes_keep_indexes_apart(server: RedisServer, start) -> None:
    first = start(server.url, prefix="first:")
    first_again = start(server.url, prefix="first:")
    second = start(server.url, prefix="second:")
    heard_by_first, heard_by_second = Recorder(), Recorder()
    first_again.subscribe(heard_by_first)
    second.subscribe(heard_by_second)

    assert await first.add_file(record(), "demo-pkg", b"first") is True
    await eventually(lambda: heard_by_first.names == ["demo-pkg"])

    assert await second.last_serial() == 0
    assert await second.list_projects() == []
    assert await second.get_file("demo-pkg", record().filename) is None
    assert await second.add_file(record(sha256="f" * 64), "demo-pkg", b"second") is True
    assert await second.last_serial() == 1
    assert await first.get_metadata("demo-pkg", record().filename) == b"first"
    assert await second.get_metadata("demo-pkg", record().filename) == b"second"
    await eventually(lambda: heard_by_second.names == ["demo-pkg"])
    assert heard_by_first.names == ["demo-pkg"]


@pytest_twisted.ensureDeferred
async def test_values_come_back_with_their_types(server: RedisServer, start) -> None:
    """Replies are bytes as Redis sent them: nothing decoded or turned into a number."""
    store = start(server.url)
    for metadata in [b"123", b"-1.5", b"\xff\xfe", b"0", b"caf\xc3\xa9"]:
        filename = f"n42-{len(metadata)}{metadata.hex()}.tar.gz"
        await store.add_file(record(filename=filename, project="42"), "123", metadata)
        stored = await store.get_metadata("42", filename)
        assert (type(stored), stored) == (bytes, metadata)

    project = await store.register("42", "ignored", {"summary": ["7"], "empty": []})
    assert project.display_name == "123"
    assert project.info == {"summary": ["7"], "empty": []}
    assert await store.get_project("42") == project
    assert [p.name for p in await store.list_projects()] == ["42"]


@pytest_twisted.ensureDeferred
async def test_databases_keep_indexes_apart_over_a_unix_socket(start) -> None:
    with RedisServer(unix_socket=True) as server:
        in_db_3 = start(f"unix://{server.socket_path}?db=3", prefix="same:")
        in_db_0 = start(f"unix://{server.socket_path}", prefix="same:")
        assert await in_db_3.add_file(record(), "demo-pkg", None) is True
        assert await in_db_3.last_serial() == 1
        assert await in_db_0.last_serial() == 0
        assert server.command("KEYS", "*") == []  # the helper talks to db 0
        await in_db_3.stopService()
        await in_db_0.stopService()


# -- atomicity across instances ----------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_one_claim_wins_a_race_for_a_filename(server: RedisServer, start) -> None:
    """Two instances claim one filename with different bytes at once: one wins."""
    first, second = start(server.url), start(server.url)
    rounds = 60
    for index in range(rounds):
        filename = f"demo_pkg-{index}.tar.gz"
        contenders = [(first, "1"), (second, "2")] if index % 2 else [(second, "2"), (first, "1")]
        claims = [
            store.add_file(record(filename, sha256=digit * 64), "demo-pkg", digit.encode())
            for store, digit in contenders
        ]
        results = await DeferredList(claims, consumeErrors=True)

        added = [digit for (ok, value), (_, digit) in zip(results, contenders, strict=True) if ok]
        refused = [value for ok, value in results if not ok]
        assert len(added) == 1 and all(value is True for ok, value in results if ok)
        assert len(refused) == 1 and refused[0].check(FileExists)
        stored = await second.get_file("demo-pkg", filename)
        assert stored.sha256 == added[0] * 64
        assert await first.get_metadata("demo-pkg", filename) == added[0].encode()

    assert await first.last_serial() == rounds
    assert len(await first.list_files("demo-pkg")) == rounds
    assert (await second.get_project("demo-pkg")).serial == rounds


@pytest_twisted.ensureDeferred
async def test_serials_are_unique_and_increasing_across_instances(
    server: RedisServer, start
) -> None:
    first, second = start(server.url), start(server.url)

    writes = []
    for index in range(100):
        for store, side in [(first, "a"), (second, "b")]:
            name = f"{side}{index}"
            if index % 10 == 0:
                writes.append(store.register(name, name, {}))
            else:
                writes.append(store.add_file(record(project=name), name, None))
    results = await DeferredList(writes, fireOnOneErrback=True)
    assert all(ok for ok, _ in results)

    serials = sorted(project.serial for project in await second.list_projects())
    assert serials == list(range(1, 201))
    assert await first.last_serial() == 200

    previous = 200
    for index in range(10):
        store = (first, second)[index % 2]
        project = await store.register(f"seq{index}", "seq", {})
        assert project.serial == previous + 1 == await (second, first)[index % 2].last_serial()
        previous = project.serial


# -- notifications across instances -------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_changes_by_another_instance_are_heard(server: RedisServer, start) -> None:
    writer, reader = start(server.url), start(server.url)
    heard_by_writer, heard_by_reader = Recorder(), Recorder()
    writer.subscribe(heard_by_writer)
    reader.subscribe(heard_by_reader)
    # Both listening first: otherwise a catch-up and a live message may
    # arrive in either order, which invalidation does not care about but
    # this test's ordered assertions would.
    await eventually(lambda: subscribers(server, reader) == 2)

    await writer.add_file(record(), "demo-pkg", None)
    await writer.register("other", "Other", {})
    await eventually(lambda: heard_by_reader.names == ["demo-pkg", "other"])
    await reader.register("third", "Third", {})
    await eventually(lambda: "third" in heard_by_writer.names)

    # The writer heard its own changes once, not again from their echo (which
    # its listener received before the reader's change).
    assert heard_by_writer.names == ["demo-pkg", "other", "third"]
    assert heard_by_reader.names == ["demo-pkg", "other", "third"]
    assert all(heard_by_writer.on_reactor_thread + heard_by_reader.on_reactor_thread)


async def writer_and_listening_reader(server: RedisServer, start):
    """Two instances on ``server``, the reader's changes recorded once both listen.

    Waiting for both subscriptions first means a message the test then sends
    is heard live, not only by a later catch-up.
    """
    writer, reader = start(server.url), start(server.url)
    heard = Recorder()
    reader.subscribe(heard)
    await eventually(lambda: subscribers(server, reader) == 2)
    return writer, reader, heard


@pytest_twisted.ensureDeferred
async def test_changes_missed_while_not_listening_are_caught_up(server: RedisServer, start) -> None:
    writer, reader, heard = await writer_and_listening_reader(server, start)

    server.command("CLIENT", "KILL", "TYPE", "pubsub")
    await writer.add_file(record(), "demo-pkg", None)
    assert subscribers(server, reader) == 0  # so nobody got the message

    await eventually(lambda: heard.names == ["demo-pkg"])
    await eventually(lambda: subscribers(server, reader) == 2)
    await writer.register("other", "Other", {})
    await eventually(lambda: heard.names == ["demo-pkg", "other"])


@pytest_twisted.ensureDeferred
async def test_cooldown_exceptions_missed_while_not_listening_are_caught_up(
    server: RedisServer, start
) -> None:
    """A proxied project has no serial of its own: its exception's change is caught up too."""
    from datetime import UTC, datetime

    from ministry.core.cooldown import CooldownException

    writer, reader, heard = await writer_and_listening_reader(server, start)
    server.command("CLIENT", "KILL", "TYPE", "pubsub")
    allowed = CooldownException("requests", None, "reviewed", "alice", datetime.now(UTC))
    await writer.allow_cooldown(allowed)
    assert subscribers(server, reader) == 0  # so nobody got the message

    await eventually(lambda: heard.names == ["requests"])


@pytest_twisted.ensureDeferred
async def test_strangers_on_the_channel_are_ignored(server: RedisServer, start) -> None:
    writer, reader, heard = await writer_and_listening_reader(server, start)

    server.command("PUBLISH", f"{reader.prefix}changes", "not a change")
    await writer.add_file(record(), "demo-pkg", None)
    await eventually(lambda: heard.names == ["demo-pkg"])


@pytest_twisted.ensureDeferred
async def test_the_listener_detects_a_vanished_host(server: RedisServer, start) -> None:
    """It only receives, so only TCP keepalive can tell that Redis is gone."""
    store = start(server.url)
    await eventually(lambda: subscribers(server, store) == 1)
    handle = store._listener.pool[0].transport.getHandle()
    assert handle.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)


# -- outages -------------------------------------------------------------------------------


async def fails_within(seconds: float, call: Callable[[], Any]) -> StoreUnavailable:
    began = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        await call()
    assert time.monotonic() - began < seconds
    assert caught.value.status == 503
    assert caught.value.message.startswith(f"{UNAVAILABLE}: ")
    return caught.value


@pytest_twisted.ensureDeferred
async def test_an_outage_fails_calls_quickly_and_a_restart_ends_it(
    own_server: RedisServer, start
) -> None:
    store = start(own_server.url, timeout=0.5)
    heard = Recorder()
    store.subscribe(heard)
    await store.add_file(record(), "demo-pkg", None)
    assert await store.is_available() is True

    own_server.stop()
    await fails_within(1.5, store.last_serial)  # maybe "Lost connection": it was sent
    error = await fails_within(1.5, lambda: store.add_file(record(sha256="f" * 64), "x", None))
    assert f"no reply from {own_server.url} within 0.5 s" in error.message
    assert await store.is_available() is False

    own_server.start()  # empty: this server keeps nothing
    await eventually(store.is_available)
    assert await store.add_file(record(sha256="f" * 64), "demo-pkg", None) is True
    assert await store.last_serial() == 1
    await eventually(lambda: subscribers(own_server, store) == 1)
    await store.register("other", "Other", {})
    assert heard.names == ["demo-pkg", "demo-pkg", "other"]


@pytest_twisted.ensureDeferred
async def test_the_store_starts_while_redis_is_down(own_server: RedisServer, start) -> None:
    own_server.stop()
    store = start(own_server.url, timeout=0.5)
    await fails_within(1.5, lambda: store.get_project("demo-pkg"))

    own_server.start()
    await eventually(store.is_available)
    assert await store.add_file(record(), "demo-pkg", None) is True


@pytest_twisted.ensureDeferred
async def test_a_hung_server_times_out_and_its_connection_is_replaced(
    own_server: RedisServer, start
) -> None:
    store = start(own_server.url, timeout=0.5)
    assert await store.last_serial() == 0

    own_server.command("CLIENT", "PAUSE", "1500", "ALL")
    await fails_within(1.5, store.last_serial)
    await eventually(store.is_available)
    assert await store.add_file(record(), "demo-pkg", None) is True


@pytest_twisted.ensureDeferred
async def test_calls_time_out_on_the_given_clock(own_server: RedisServer) -> None:
    clock = Clock()
    store = RedisStore(own_server.url, prefix="clock:", timeout=5.0, clock=clock)
    store.startService()
    try:
        assert await store.last_serial() == 0
        own_server.command("CLIENT", "PAUSE", "1000", "ALL")
        outcome: list[Any] = []
        store.last_serial().addBoth(outcome.append)
        await deferLater(reactor, 0.3, lambda: None)
        assert outcome == []  # no reply, and the real reactor's time does not count
        clock.advance(5.0)
        assert outcome[0].check(StoreUnavailable)
        assert "within 5 s" in outcome[0].value.message
    finally:
        await store.stopService()


@pytest_twisted.ensureDeferred
async def test_a_password_is_sent_and_a_wrong_one_says_so(start) -> None:
    with RedisServer("--requirepass", "s3cret") as server:
        url = f"redis://:s3cret@127.0.0.1:{server.port}/0"
        store = start(url, timeout=0.5)
        assert await store.add_file(record(), "demo-pkg", None) is True
        assert await store.is_available() is True

        wrong = start(f"redis://:wrong@127.0.0.1:{server.port}/0", timeout=0.5)
        await fails_within(1.5, wrong.last_serial)
        error = await fails_within(0.5, wrong.last_serial)
        assert "could not auth" in error.message
        assert "wrong" not in error.message
        for started in (store, wrong):
            await started.stopService()


@pytest_twisted.ensureDeferred
async def test_a_stopped_store_refuses_calls(server: RedisServer) -> None:
    store = RedisStore(server.url, prefix="stopped:")
    store.startService()
    await store.stopService()
    error = await fails_within(0.5, store.last_serial)
    assert "not running" in error.message
    assert await store.is_available() is False


@pytest_twisted.ensureDeferred
async def test_calls_in_flight_finish_before_stop(server: RedisServer) -> None:
    store = RedisStore(server.url, prefix="in-flight:")
    store.startService()
    added = store.add_file(record(), "demo-pkg", None)
    await store.stopService()
    assert await added is True


# -- TLS -----------------------------------------------------------------------------------


def write_certificates(directory: Path) -> dict[str, Path]:
    """A CA, and a certificate it signed for ``localhost`` (and no IP address)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def certificate(subject: str, key: Any, issuer: str, issuer_key: Any, *extensions: Any) -> Any:
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, server_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = certificate(
        "ministry test CA",
        ca_key,
        "ministry test CA",
        ca_key,
        (x509.BasicConstraints(ca=True, path_length=None), True),
    )
    server = certificate(
        "localhost",
        server_key,
        "ministry test CA",
        ca_key,
        (x509.SubjectAlternativeName([x509.DNSName("localhost")]), False),
    )
    paths = {"ca": directory / "ca.pem", "cert": directory / "redis.pem"}
    paths["key"] = directory / "redis.key"
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest_twisted.ensureDeferred
async def test_tls_connects_and_checks_the_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start
) -> None:
    certificates = write_certificates(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates["ca"]))  # trusted like a system CA
    tls_port = free_port()
    tls = ["--tls-port", str(tls_port), "--tls-auth-clients", "no"]
    tls += [
        "--tls-cert-file",
        str(certificates["cert"]),
        "--tls-key-file",
        str(certificates["key"]),
    ]
    with RedisServer(*tls, "--tls-ca-cert-file", str(certificates["ca"])) as server:
        store = start(f"rediss://localhost:{tls_port}/0", timeout=2)
        assert await store.add_file(record(), "demo-pkg", b"\xff\xfe") is True
        assert await store.get_metadata("demo-pkg", record().filename) == b"\xff\xfe"
        await eventually(lambda: subscribers(server, store) == 1)  # the listener too

        # the certificate names localhost, not 127.0.0.1: no connection
        stranger = start(f"rediss://127.0.0.1:{tls_port}/0", timeout=0.5)
        await fails_within(1.5, stranger.last_serial)
        for started in (store, stranger):
            await started.stopService()
