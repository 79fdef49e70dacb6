"""The fixtures of the proxy tests: a scripted upstream on loopback, proxies in front of it.

Shared by every module that tests the proxy over HTTP. Import the fixtures
by their function names (``upstream_fixture``, ``start_proxy_fixture``) and
ask for them by their fixture names (``upstream``, ``start_proxy``): the
parameter then shadows no import.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest_twisted
from accept_headers import UV
from http_harness import InMemoryIndex
from scripted_upstream import Upstream
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.web.server import Site


class TrackingSite(Site):
    """A Site that can cut its connections, so no socket outlives a test."""

    def __init__(self, resource) -> None:
        super().__init__(resource)
        self.channels: list = []

    def buildProtocol(self, addr):
        channel = super().buildProtocol(addr)
        self.channels.append(channel)
        return channel


@pytest_twisted.async_yield_fixture(name="upstream")
async def upstream_fixture():
    """An :class:`Upstream` listening on 127.0.0.1, every connection to it cut afterwards."""
    resource = Upstream()
    site = TrackingSite(resource)
    site.noisy = False
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    resource.url = f"http://127.0.0.1:{port.getHost().port}"
    yield resource
    if resource.gate is not None and not resource.gate.called:
        resource.gate.callback(None)
    await port.stopListening()
    for channel in site.channels:
        transport = getattr(channel, "transport", None)
        if transport is not None and transport.connected:
            transport.abortConnection()
    await deferLater(reactor, 0.01, lambda: None)


class ProxyIndex(InMemoryIndex):
    """The in-memory index with a proxy (built from ``upstream=``), its services
    started and stopped here."""

    async def start(self) -> None:
        await super().start()
        self.proxy.client.startService()
        await self.proxy.startService()

    async def stop(self) -> None:
        self.proxy.stopService()
        await self.proxy.client.stopService()
        await super().stop()

    def cached_blobs(self) -> list[str]:
        root = Path(self.proxy.cache.blobs.root)
        return sorted(
            path.name for path in root.rglob("*") if path.is_file() and ".staging" not in path.parts
        )

    def staged(self) -> list[Path]:
        return [path for path in Path(self.proxy.cache.blobs.root, ".staging").glob("*")]


@pytest_twisted.async_yield_fixture(name="start_proxy")
async def start_proxy_fixture(tmp_path):
    """``start(upstreams, data="data", **options)`` starts a :class:`ProxyIndex`; all stop after."""
    started: list[ProxyIndex] = []

    async def start(upstreams: list[str], data: str = "data", **options) -> ProxyIndex:
        index = ProxyIndex(str(tmp_path / data), upstream=upstreams, **options)
        await index.start()
        started.append(index)
        return index

    yield start
    for index in started:
        await index.stop()


async def kept(index: ProxyIndex) -> None:
    """Wait until downloads in flight are committed (clients are answered before that)."""
    for _ in range(200):
        if not index.proxy.downloads.in_flight():
            return
        await deferLater(reactor, 0.01, lambda: None)
    raise AssertionError("a download never finished")


async def files_of(index: ProxyIndex, project: str = "demo") -> dict[str, dict]:
    response = await index.request("GET", f"/simple/{project}/", {"Accept": UV})
    assert response.code == 200, response.body
    return {item["filename"]: item for item in json.loads(response.body)["files"]}
