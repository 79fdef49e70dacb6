"""Credentials in configured URLs: they work, reach only their host, and are never shown.

The upstream is the scripted one of ``scripted_upstream``, on loopback, asked to
require Basic auth from requests to ``127.0.0.1``; the same server asked as
``localhost`` is another origin (another host, to the client), which must
never see the credentials, whether a page links there or a redirect leads
there.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
import pytest_twisted
from proxy_fixtures import files_of, start_proxy_fixture, upstream_fixture  # noqa: F401
from scripted_upstream import METADATA, SDIST, SDIST_NAME, WHEEL, WHEEL_NAME, entry

from ministry.config import ConfigError, load_settings
from ministry.core.auth import hash_password
from ministry.core.models import UserRecord

PASSWORD = "s3cr%3Ait"  # percent-encoded in the URL: "s3cr:it" goes over the wire
SENT = "Basic " + base64.b64encode(b"mirror-user:s3cr:it").decode()
SECRETS = ("s3cr%3Ait", "s3cr:it")


def with_credentials(url: str) -> str:
    return url.replace("http://", f"http://mirror-user:{PASSWORD}@") + "/simple"


def assert_no_secret(text: str | bytes) -> None:
    shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    for secret in SECRETS:
        assert secret not in shown


@pytest_twisted.ensureDeferred
async def test_an_upstream_url_with_credentials_logs_in_to_that_upstream(upstream, start_proxy):
    upstream.authorization = SENT
    upstream.publish("demo", [entry(upstream, WHEEL_NAME, WHEEL)])
    index = await start_proxy([with_credentials(upstream.url)])
    assert set(await files_of(index)) == {WHEEL_NAME}
    assert (await index.request("GET", f"/packages/demo/{WHEEL_NAME}")).body == WHEEL
    metadata = await index.request("GET", f"/packages/demo/{WHEEL_NAME}.metadata")
    assert metadata.body == METADATA
    assert {authorization for _, _, authorization in upstream.received} == {SENT}


@pytest_twisted.ensureDeferred
async def test_credentials_never_go_to_another_host(upstream, start_proxy):
    upstream.authorization = SENT
    elsewhere = upstream.url.replace("127.0.0.1", "localhost")
    sdist = entry(upstream, SDIST_NAME, SDIST, url=f"{elsewhere}/files/{SDIST_NAME}")
    wheel = entry(upstream, WHEEL_NAME, WHEEL, url=f"../../moved/{WHEEL_NAME}")
    upstream.redirects[f"/moved/{WHEEL_NAME}"] = f"{elsewhere}/files/{WHEEL_NAME}"
    upstream.publish("demo", [sdist, wheel])
    index = await start_proxy(
        [with_credentials(upstream.url)], **{"upstream-redirect-host": ["localhost"]}
    )
    await files_of(index)
    assert (await index.request("GET", f"/packages/demo/{SDIST_NAME}")).body == SDIST
    assert (await index.request("GET", f"/packages/demo/{WHEEL_NAME}")).body == WHEEL
    by_host = {(host.split(":")[0], path): auth for path, host, auth in upstream.received}
    assert by_host == {
        ("127.0.0.1", "/simple/demo/"): SENT,
        ("127.0.0.1", f"/moved/{WHEEL_NAME}"): SENT,  # same origin: then redirected away
        ("localhost", f"/files/{WHEEL_NAME}"): None,
        ("localhost", f"/files/{SDIST_NAME}"): None,
    }


@pytest_twisted.ensureDeferred
async def test_no_password_in_health_metrics_logs_or_error_bodies(upstream, start_proxy, logged):
    upstream.authorization = SENT
    upstream.publish("demo", [entry(upstream, SDIST_NAME, SDIST)])
    index = await start_proxy([with_credentials(upstream.url)], **{"upstream-timeout": "0.5"})
    await files_of(index)
    upstream.mode = "500"
    failed = await index.request("GET", "/simple/other/")
    assert failed.code == 502 and b"answered 500" in failed.body
    assert (await index.request("GET", f"/packages/demo/{SDIST_NAME}")).code == 502
    health = await index.request("GET", "/health")
    shown = json.loads(health.body)["upstream"]["upstreams"]
    assert shown == [f"http://mirror-user:***@{upstream.url.removeprefix('http://')}/simple"]
    metrics = await index.request("GET", "/metrics")
    for text in (failed.body, health.body, metrics.body, "\n".join(logged.texts)):
        assert_no_secret(text)


@pytest_twisted.ensureDeferred
async def test_health_of_a_private_index_says_only_ok_without_credentials(upstream, start_proxy):
    index = await start_proxy([with_credentials(upstream.url)], private="true")
    hashed = hash_password("alice-pw", n=2**4, r=1, p=1)
    assert await index.store.add_user(UserRecord("alice", hashed, False, datetime.now(UTC)))
    for headers in ({}, {"Authorization": "Basic " + base64.b64encode(b"alice:wrong").decode()}):
        response = await index.request("GET", "/health", headers)
        assert response.code == 200
        assert json.loads(response.body) == {"status": "ok"}
    login = {"Authorization": "Basic " + base64.b64encode(b"alice:alice-pw").decode()}
    report = json.loads((await index.request("GET", "/health", login)).body)
    assert report["status"] == "ok" and report["store"]["ok"] is True
    assert report["upstream"]["upstreams"][0].startswith("http://mirror-user:***@")


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"redis": "redis://:hunter2@redis.example.test:port/0"}, "--redis: bad port"),
        ({"upstream": ["ftp://mirror:hunter2@mirror.example.test/"]}, "--upstream: expected"),
    ],
)
def test_a_bad_url_is_refused_without_echoing_its_password(given, message):
    with pytest.raises(ConfigError, match=message) as refused:
        load_settings(given)
    assert "hunter2" not in str(refused.value)
    assert "***" in str(refused.value)
