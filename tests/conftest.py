"""Shared fixtures: a real daemon, built sample distributions, reactor hygiene.

Imports stay light on purpose: no klein or txredisapi here (they would be
imported before pytest-twisted chose the reactor), and the Twisted imports
of the hygiene check happen inside the fixture.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest
from servers import MinistryProcess, build_sample_project

if TYPE_CHECKING:
    from http_harness import InMemoryIndex
    from recorder import Recorder
    from s3_server import S3Server
    from sentinel_servers import SentinelCluster

#: Session fixtures of the publishing-client tests (two daemons they share).
pytest_plugins = ["publisher_fixtures"]

SAMPLE_NAME = "ministry-sample"
SAMPLE_README = (
    "# ministry-sample\n\nA sample project for the **MinistryOfPackages** end-to-end tests.\n"
)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    """Under ``CI=true`` a skipped test fails: a skip there hides a missing install step.

    Everything a test needs is installed by ``.ci/run``; a test that skips in
    CI would report green while proving nothing.
    """
    report = yield
    if report.skipped and os.environ.get("CI") == "true" and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which is a failure: {report.longrepr}"
    return report


@pytest.fixture
def ministry_server(tmp_path: Path) -> Iterator[MinistryProcess]:
    """A fresh ``twistd ministry`` on a loopback port, data in ``tmp_path/data``."""
    with MinistryProcess(tmp_path / "data") as server:
        yield server


@pytest.fixture
def logged() -> Iterator[Recorder]:
    """A :class:`recorder.Recorder` of every event of Twisted's global log during the test."""
    from recorder import Recorder

    with Recorder().watching_log() as recorder:
        yield recorder


@pytest.fixture
def index(tmp_path: Path) -> Iterator[InMemoryIndex]:
    """An empty :class:`http_harness.InMemoryIndex` on ``tmp_path``, started and then stopped.

    Written as a plain fixture that blocks on the reactor, with its imports
    inside, so that this module still imports neither pytest_twisted nor the
    web stack: pytest-twisted must choose the reactor first. A module that
    needs the index filled overrides ``index`` and asks for this one.
    """
    import pytest_twisted
    from http_harness import InMemoryIndex
    from twisted.internet.defer import ensureDeferred

    served = InMemoryIndex(str(tmp_path))
    pytest_twisted.blockon(ensureDeferred(served.start()))
    yield served
    pytest_twisted.blockon(ensureDeferred(served.stop()))


@pytest.fixture
def sentinel_cluster() -> Iterator[SentinelCluster]:
    """Redis through Sentinel (``sentinel_servers.py``): 3 sentinels, a primary, a replica.

    One per test, as the tests that use it kill the primary (about 2 s to start).
    """
    from sentinel_servers import SentinelCluster

    with SentinelCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def sample_dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    """``ministry-sample`` 1.0 and 1.1, each a wheel and an sdist, built once.

    Both declare ``Requires-Python: >=3.8`` and carry a Markdown README.
    Keyed by version: ``sample_dists["1.0"]["wheel"]``.
    """
    where = tmp_path_factory.mktemp("sample-dists")
    return {
        version: build_sample_project(
            where, SAMPLE_NAME, version, requires_python=">=3.8", readme=SAMPLE_README
        )
        for version in ("1.0", "1.1")
    }


def _uses_pytest_twisted(module: ModuleType | None) -> bool:
    """Whether a test module imported pytest_twisted or something from it."""
    if module is None:
        return False
    for value in vars(module).values():
        origin = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", None)
        if isinstance(origin, str) and origin.split(".")[0] == "pytest_twisted":
            return True
    return False


@pytest.fixture(autouse=True)
def reactor_left_clean(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a reactor test that leaves timers, sockets or processes behind.

    Applies to the tests of modules that import ``pytest_twisted`` (as a
    module, or any name from it): those are the tests that run on the
    shared reactor; every other test never touches it, and checking them
    would only cost time. Being autouse in conftest, this fixture is set up
    before and torn down after the test's own fixtures, so a server fixture
    has closed its port by the time the reactor is inspected. One reactor
    turn runs first, so that ``callLater(0, ...)`` clean-up work is done.
    """
    yield
    if not _uses_pytest_twisted(getattr(request, "module", None)):
        return
    import pytest_twisted
    from reactor_hygiene import assert_reactor_clean
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    pytest_twisted.blockon(deferLater(reactor, 0, lambda: None))
    assert_reactor_clean(reactor)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One SeaweedFS S3 endpoint (``s3_server.py``) for the session: it takes ~4 s to start.

    Tests keep apart by bucket (``s3_bucket``) or key prefix, never by restarting it.
    """
    from s3_server import S3Server

    with S3Server() as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, empty bucket on ``s3_server``, with its credentials in the environment.

    The AWS variables are set for this test only, as the daemon's users set
    them; boto3's default credential chain then finds them. The bucket is
    deleted with its contents after the test: SeaweedFS gives each bucket
    volumes of its own, and ``-volume.max`` runs out after three live buckets.
    """
    import uuid

    from s3_server import s3_environment

    for name, value in s3_environment().items():
        monkeypatch.setenv(name, value)
    bucket = f"test-{uuid.uuid4().hex[:20]}"
    s3_server.create_bucket(bucket)
    yield bucket
    s3_server.client().delete_bucket(Bucket=bucket)  # weed deletes a full one too
