"""The name policy over HTTP, in memory, against a scripted upstream on loopback.

Reserved names (``--reserve``) and names outside ``--upstream-allow`` or
inside ``--upstream-deny`` are 404s that say why, on every page that could
show them, and the upstream is never asked; the mirror skips them with the
reason in its status; a reserved project gets its first owner only from an
administrator. Real pip and twine against real daemons: ``test_name_policy_e2e.py``.
"""

from __future__ import annotations

import json

import pytest_twisted
from accept_headers import UV
from archive_factory import make_wheel, wheel_filename
from http_harness import multipart
from packaging.requirements import Requirement
from proxy_fixtures import ProxyIndex, files_of, start_proxy_fixture, upstream_fixture  # noqa: F401
from scripted_upstream import entry
from test_auth_http import _headers, started_team
from twisted.internet import reactor

from ministry.core.mirror_config import MirrorConfig
from ministry.core.models import OWNER
from ministry.mirror.service import MirrorService
from ministry.web.mirror_status import render_html

ACME = make_wheel("acme-foo", "1.0")
ACME_NAME = wheel_filename("acme-foo", "1.0")
RESERVED = "acme-foo is reserved for this index (reserved pattern 'acme-*')"


def publish(upstream, *names: str) -> None:
    for name in names:
        upstream.publish(
            name, [entry(upstream, wheel_filename(name, "1.0"), make_wheel(name, "1.0"))]
        )


async def listed(index: ProxyIndex) -> list[str]:
    response = await index.request("GET", "/simple/", {"Accept": UV})
    return [project["name"] for project in json.loads(response.body)["projects"]]


async def assert_refused(index: ProxyIndex, name: str, why: str) -> None:
    """Every page that could show ``name`` is a 404 saying ``why``."""
    for path in (
        f"/simple/{name}/",
        f"/packages/{name}/",
        f"/packages/{name}/{wheel_filename(name, '1.0')}",
        f"/pypi/{name}/json",
        f"/project/{name}/",
    ):
        response = await index.request("GET", path, {"Accept": UV})
        assert response.code == 404, (path, response.code, response.body)
        assert why in response.body.decode(), (path, response.body)


@pytest_twisted.ensureDeferred
async def test_a_reserved_name_is_a_404_and_never_asked_of_the_upstream(upstream, start_proxy):
    publish(upstream, "acme-foo", "demo")
    index = await start_proxy([upstream.url + "/simple/"], reserve=["acme_*"])
    for spelling in ("acme-foo", "Acme_Foo", "acme.foo"):
        response = await index.request("GET", f"/simple/{spelling}/", {"Accept": UV})
        if response.code == 301:  # to the canonical name, which is refused
            response = await index.request("GET", response.header("location"), {"Accept": UV})
        assert response.code == 404
        assert response.phrase.startswith(RESERVED), response.phrase
    await assert_refused(index, "acme-foo", RESERVED)
    assert set(await files_of(index)) == {wheel_filename("demo", "1.0")}  # others still proxied
    assert [path for path, _ in upstream.requests] == ["/simple/demo/"]
    assert await listed(index) == ["demo"]


@pytest_twisted.ensureDeferred
async def test_a_page_cached_before_the_name_was_reserved_is_neither_served_nor_listed(
    upstream, tmp_path, start_proxy
):
    publish(upstream, "acme-foo")
    before = ProxyIndex(str(tmp_path / "data"), upstream=[upstream.url + "/simple/"])
    await before.start()
    try:
        assert set(await files_of(before, "acme-foo")) == {ACME_NAME}
    finally:
        await before.stop()
    upstream.requests.clear()
    index = await start_proxy([upstream.url + "/simple/"], reserve=["acme-*"], offline="true")
    await assert_refused(index, "acme-foo", RESERVED)
    assert await listed(index) == []
    assert upstream.requests == []


@pytest_twisted.ensureDeferred
async def test_only_allowed_and_not_denied_names_are_proxied(upstream, start_proxy):
    publish(upstream, "django", "django-evil", "flask")
    index = await start_proxy(
        [upstream.url + "/simple/"],
        **{"upstream-allow": ["Django*"], "upstream-deny": ["django_evil"]},
    )
    assert set(await files_of(index, "django")) == {wheel_filename("django", "1.0")}
    await assert_refused(index, "flask", "flask is not proxied from the upstream: it matches no")
    await assert_refused(index, "django-evil", "(upstream-deny 'django-evil')")
    assert [path for path, _ in upstream.asked("/simple/")] == ["/simple/django/"]
    assert await listed(index) == ["django"]


@pytest_twisted.ensureDeferred
async def test_the_mirror_skips_refused_names_with_the_reason(upstream, start_proxy):
    publish(upstream, "acme-foo", "flask", "demo")
    index = await start_proxy(
        [upstream.url + "/simple/"], reserve=["acme-*"], **{"upstream-deny": ["flask"]}
    )
    config = MirrorConfig(
        every=3600.0,
        requirements=tuple(Requirement(name) for name in ("acme-foo", "flask", "demo")),
        dependencies=False,
        python=("3.12",),
        platforms=("manylinux_2_28_x86_64",),
    )
    mirror = MirrorService(config, index.proxy, index.store, clock=reactor)
    assert await mirror.run_once()
    report = mirror.status.to_dict()
    assert report["errors"] == []
    assert report["skipped"] == [
        {
            "project": "acme-foo",
            "reason": RESERVED + ": it is never fetched from the upstream, only uploaded here.",
        },
        {
            "project": "flask",
            "reason": "flask is not proxied from the upstream (upstream-deny 'flask').",
        },
    ]
    assert report["files_fetched"] == 1 and report["last_success"] is not None
    assert [path for path, _ in upstream.asked("/simple/")] == ["/simple/demo/"]
    page = render_html(report).decode()  # /mirror/ shows them too
    assert "Skipped by the name policy (2)" in page and "<strong>acme-foo</strong>" in page


@pytest_twisted.async_yield_fixture
async def reserving(tmp_path):
    """An index reserving ``acme-*``: alice and bob users, root an administrator."""
    served = await started_team(tmp_path, reserve=["acme-*"])
    yield served
    await served.stop()


@pytest_twisted.ensureDeferred
async def test_only_an_administrator_creates_a_reserved_project_then_owners_upload(reserving):
    refused = await reserving.send("Acme_Foo", "1.0", ACME_NAME, ACME, "alice", "alice-pw")
    assert refused.code == 403
    assert refused.phrase.startswith(RESERVED + ": only an administrator may create it")
    assert await reserving.store.get_project("acme-foo") is None
    assert await reserving.store.get_roles("acme-foo") == {}
    # Other names are as before: the first uploader owns them.
    other = make_wheel("alice-tool", "1.0")
    assert (
        await reserving.send(
            "alice-tool", "1.0", wheel_filename("alice-tool", "1.0"), other, "alice", "alice-pw"
        )
    ).code == 200
    created = await reserving.send("acme-foo", "1.0", ACME_NAME, ACME, "root", "root-pw")
    assert created.code == 200, created.body
    await reserving.store.set_role("acme-foo", "alice", OWNER)
    newer = make_wheel("acme-foo", "2.0")
    kept = await reserving.send(
        "acme-foo", "2.0", wheel_filename("acme-foo", "2.0"), newer, "alice", "alice-pw"
    )
    assert kept.code == 200, kept.body
    stranger = await reserving.send(
        "acme-foo", "3.0", wheel_filename("acme-foo", "3.0"), newer, "bob", "bob-pw"
    )
    assert stranger.code == 403
    assert "bob is not an owner or maintainer of acme-foo" in stranger.phrase
    assert set(await reserving.files("acme-foo")) == {ACME_NAME, wheel_filename("acme-foo", "2.0")}


@pytest_twisted.ensureDeferred
async def test_registering_a_reserved_name_is_for_administrators_too(reserving):
    body, content_type = multipart([(":action", "submit"), ("name", "acme.bar"), ("version", "1")])
    refused = await reserving.request("POST", "/", _headers("bob", "bob-pw", content_type), body)
    assert refused.code == 403
    assert refused.phrase.startswith("acme-bar is reserved for this index")
    done = await reserving.request("POST", "/", _headers("root", "root-pw", content_type), body)
    assert done.code == 200
    assert await reserving.store.get_roles("acme-bar") == {"root": OWNER}
