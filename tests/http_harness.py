"""The whole web Site in memory, over treq.testing, with the real stores.

``treq.testing.StubTreq`` connects a real HTTP client to a resource through
in-memory transports. We hand it our own ``IndexSite`` (its request class is
what streams and caps bodies), and real SQLite and filesystem stores in a
temporary directory: only the sockets are simulated. Store calls finish on
the real reactor's thread pool, so :meth:`InMemoryIndex.request` pumps the
in-memory connection until the response has arrived.
"""

from __future__ import annotations

import hashlib
import urllib.request
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import treq
from treq.testing import RequestTraversalAgent
from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH

from ministry.config import load_settings
from ministry.tap import build_index

BASE = "http://index.test"


@dataclass
class Response:
    code: int
    phrase: str
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def multipart(
    fields: Iterable[tuple[str, str]], files: Iterable[tuple[str, str, bytes]] = ()
) -> tuple[bytes, str]:
    """Encode a multipart/form-data body as upload clients do."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    for name, filename, data in files:
        parts.append(
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def upload_fields(name: str, version: str, filename: str, data: bytes) -> list[tuple[str, str]]:
    """The fields twine sends for one file (with the sha256 and blake2 digests)."""
    filetype = "bdist_wheel" if filename.endswith(".whl") else "sdist"
    return [
        (":action", "file_upload"),
        ("protocol_version", "1"),
        ("metadata_version", "2.1"),
        ("name", name),
        ("version", version),
        ("filetype", filetype),
        ("pyversion", "py3" if filetype == "bdist_wheel" else "source"),
        ("sha256_digest", hashlib.sha256(data).hexdigest()),
        ("blake2_256_digest", hashlib.blake2b(data, digest_size=32).hexdigest()),
    ]


def post_file(
    url: str, name: str, version: str, filename: str, data: bytes, timeout: float = 60
) -> None:
    """Upload one distribution to a daemon at ``url`` with a plain HTTP POST, as twine would.

    Blocking (urllib), for tests and benchmarks that run a real daemon in
    another process; anything but a 200 fails the caller.
    """
    body, content_type = multipart(
        upload_fields(name, version, filename, data), [("content", filename, data)]
    )
    request = urllib.request.Request(
        url + "/", data=body, headers={"Content-Type": content_type}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()
        assert response.status == 200, response.status


class _BodyProducer:
    """Hands the whole body over at once, as the in-memory transport wants."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.length = len(body) if body else UNKNOWN_LENGTH

    def startProducing(self, consumer) -> Deferred:
        consumer.write(self.body)
        return succeed(None)

    def stopProducing(self) -> None:
        pass


class InMemoryIndex:
    """A started store, blob store and Site, and a client for them.

    Built by ``ministry.tap.build_index``, as the daemon is, on ``clock``
    (the reactor unless a test brings its own).
    """

    def __init__(self, data_dir: str, clock: IReactorTime = reactor, **options: object) -> None:
        self.settings = load_settings({"data-dir": data_dir, **options})
        built = build_index(self.settings, clock)
        self.store, self.blobs, self.auth = built.store, built.blobs, built.auth
        self.readme_worker, self.site, self.proxy = built.readme_worker, built.site, built.proxy
        self.services = built.services  # only the store is started here
        # treq.testing's agent (not StubTreq's client, which would decode a
        # gzip Content-Encoding and hide it from the tests). It builds a plain
        # Site around the resource; ours, with its request class, must serve.
        self.agent = RequestTraversalAgent(self.site.resource)
        self.agent._serverFactory = self.site

    async def start(self) -> None:
        await self.store.startService()

    async def stop(self) -> None:
        await self.readme_worker.stopService()
        await self.store.stopService()

    async def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> Response:
        sent = self.agent.request(
            method.encode(),
            (BASE + path).encode(),
            Headers({key: [value] for key, value in (headers or {}).items()}),
            _BodyProducer(body) if body else None,
        )
        response = await self._settle(sent)
        content = await self._settle(treq.content(response))
        return Response(
            response.code,
            response.phrase.decode("latin-1"),
            {
                key.decode().lower(): values[-1].decode("latin-1")
                for key, values in response.headers.getAllRawHeaders()
            },
            content,
        )

    async def _settle(self, waiting: Deferred):
        """Pump the in-memory connection until ``waiting`` has its result."""
        settled: list[object] = []

        def note(result: object) -> object:
            settled.append(result)
            return result

        waiting.addBoth(note)
        for _ in range(10_000):
            self.agent.flush()
            if settled:
                break
            await deferLater(reactor, 0.001, lambda: None)
        return await waiting

    async def upload(
        self, name: str, version: str, filename: str, data: bytes, path: str = "/", **extra: str
    ) -> Response:
        fields = upload_fields(name, version, filename, data) + list(extra.items())
        body, content_type = multipart(fields, [("content", filename, data)])
        return await self.request("POST", path, {"Content-Type": content_type}, body)


async def assert_redirects(index: InMemoryIndex, redirects: dict[str, str]) -> None:
    """Each path of ``redirects`` answers a permanent redirect to the location it maps to.

    Every row is asked before failing, so a failure names all the wrong ones
    (this module is not rewritten by pytest: the message is spelled out).
    """
    wrong = {}
    for path, location in redirects.items():
        response = await index.request("GET", path)
        answer = (response.code, response.header("location"))
        if answer != (301, location):
            wrong[path] = f"{answer} instead of {(301, location)}"
    assert not wrong, f"wrong redirects: {wrong}"
