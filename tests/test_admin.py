"""``ministry-admin export`` / ``import``: a whole index moved between stores."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

import pytest_twisted
from accept_headers import UV
from archive_factory import make_sdist, make_wheel, metadata_text, sdist_filename, wheel_filename
from http_harness import InMemoryIndex
from servers import REPO_ROOT


async def populated(path) -> InMemoryIndex:
    index = InMemoryIndex(str(path))
    await index.start()
    for name, version in (("alpha", "1.0"), ("alpha", "1.1"), ("Beta.Pkg", "0.3")):
        wheel = make_wheel(name, version, requires_python=">=3.9")
        assert (await index.upload(name, version, wheel_filename(name, version), wheel)).code == 200
    sdist = make_sdist("alpha", "1.0")
    assert (await index.upload("alpha", "1.0", sdist_filename("alpha", "1.0"), sdist)).code == 200
    return index


@pytest_twisted.async_yield_fixture
async def source_and_target(tmp_path):
    """A :func:`populated` index to export and an empty one to import into, both stopped after.

    They sit in ``tmp_path/source`` and ``tmp_path/target``, so that the
    export (``tmp_path/dump``) is in neither's data directory.
    """
    source = await populated(tmp_path / "source")
    target = InMemoryIndex(str(tmp_path / "target"))
    await target.start()
    yield source, target
    await source.stop()
    await target.stop()


async def simple_pages(index: InMemoryIndex) -> dict[str, object]:
    pages = {}
    for name in ("alpha", "beta-pkg"):
        page = json.loads((await index.request("GET", f"/simple/{name}/", {"Accept": UV})).body)
        for entry in page["files"]:
            entry.pop("upload-time")  # kept, but compare the rest exactly below
        page["meta"].pop("_last-serial")
        pages[name] = page
    return pages


@pytest_twisted.ensureDeferred
async def test_an_export_imports_into_an_empty_index_identically(tmp_path, source_and_target):
    from ministry.admin.transfer import export_index, import_index

    source, target = source_and_target
    assert await export_index(source.store, source.blobs, str(tmp_path / "dump")) == (2, 4)
    added, present, problems = await import_index(
        target.store, target.blobs, str(tmp_path / "dump")
    )
    assert (added, present, problems) == (4, 0, [])
    assert await simple_pages(target) == await simple_pages(source)
    for name in ("alpha", "beta-pkg"):
        for record in await source.store.list_files(name):
            copied = await target.store.get_file(name, record.filename)
            assert copied == record
            url = f"/packages/{name}/{record.filename}"
            assert (await target.request("GET", url)).body == (
                await source.request("GET", url)
            ).body
    again = await import_index(target.store, target.blobs, str(tmp_path / "dump"))
    assert again == (0, 4, [])


def summaries(projects: list) -> dict[str, tuple[str, str | None]]:
    return {project.name: (project.summary, project.summary_version) for project in projects}


DEFAULT_SUMMARY = "A package built by the test suite"


@pytest_twisted.ensureDeferred
async def test_summaries_come_back_as_they_were_exported(tmp_path, source_and_target):
    """Even where replaying the registration after the files would give another."""
    from ministry.admin.transfer import export_index, import_index

    source, target = source_and_target
    await source.store.register("alpha", "alpha", {"summary": ["Registered"], "version": ["2.0"]})
    wheel = make_wheel("alpha", "2.0", metadata=metadata_text("alpha", "2.0", summary="Uploaded"))
    assert (await source.upload("alpha", "2.0", wheel_filename("alpha", "2.0"), wheel)).code == 200
    expected = {"alpha": ("Uploaded", "2.0"), "beta-pkg": (DEFAULT_SUMMARY, "0.3")}
    assert summaries(await source.store.list_projects()) == expected
    await export_index(source.store, source.blobs, str(tmp_path / "dump"))
    await import_index(target.store, target.blobs, str(tmp_path / "dump"))
    assert summaries(await target.store.list_projects()) == expected


@pytest_twisted.ensureDeferred
async def test_an_export_older_than_summaries_gets_them_from_metadata(tmp_path, source_and_target):
    from ministry.admin.transfer import export_index, import_index

    source, target = source_and_target
    await export_index(source.store, source.blobs, str(tmp_path / "dump"))
    lines = (tmp_path / "dump" / "projects.jsonl").read_text().splitlines()
    older = [json.loads(line) for line in lines]
    for project in older:
        del project["summary"], project["summary_version"]
    (tmp_path / "dump" / "projects.jsonl").write_text(
        "".join(json.dumps(project) + "\n" for project in older)
    )
    await import_index(target.store, target.blobs, str(tmp_path / "dump"))
    assert summaries(await target.store.list_projects()) == {
        "alpha": (DEFAULT_SUMMARY, "1.1"),
        "beta-pkg": (DEFAULT_SUMMARY, "0.3"),
    }


@pytest_twisted.ensureDeferred
async def test_a_damaged_export_file_is_reported_and_skipped(tmp_path, source_and_target):
    from ministry.admin.transfer import export_index, import_index

    source, target = source_and_target
    await export_index(source.store, source.blobs, str(tmp_path / "dump"))
    victim = next((tmp_path / "dump" / "files").rglob("*.tar.gz"))
    victim.unlink()
    victim.write_bytes(b"not the same bytes")
    added, _, problems = await import_index(target.store, target.blobs, str(tmp_path / "dump"))
    assert added == 3
    assert problems == [f"{victim.name}: file missing or damaged in the export"]


def test_the_command_line_exports_with_the_daemon_settings(tmp_path):
    data = tmp_path / "data"
    config = tmp_path / "ministry.toml"
    config.write_text(f'data-dir = "{data}"\n')
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ministry.admin",
            "--config",
            str(config),
            "export",
            str(tmp_path / "d"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "Exported 0 projects and 0 files" in result.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "ministry.admin", "--max-upload-size", "lots", "export", "x"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert bad.returncode != 0
    assert bad.stderr.strip() == (
        "ministry-admin: --max-upload-size: expected a size such as 1G, 512M or 1048576, not 'lots'"
    )


def test_the_version_is_the_installed_distributions_everywhere(tmp_path):
    """One version: what pip installed, what ministry-admin prints (issue 18)."""
    installed = importlib.metadata.version("ministry")
    result = subprocess.run(
        [sys.executable, "-m", "ministry.admin", "--version"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"ministry {installed}"


# -- users, tokens, roles, yank and delete (issue 4) -----------------------------------


def admin(data, *args: str, stdin: str = "", ok: bool = True) -> subprocess.CompletedProcess:
    """``ministry-admin --data-dir DATA ARGS`` in a subprocess, as an operator runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "ministry.admin", "--data-dir", str(data), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert (result.returncode == 0) is ok, result.stdout + result.stderr
    return result


def test_the_command_line_manages_users_tokens_and_roles(tmp_path):
    data = tmp_path / "data"
    admin(data, "user", "add", "alice", "--password-stdin", stdin="first-pw\n")
    admin(data, "user", "add", "root", "--admin", "--password-stdin", stdin="root-pw\n")
    taken = admin(data, "user", "add", "alice", "--password-stdin", stdin="x\n", ok=False)
    assert taken.stderr.strip() == "ministry-admin: alice exists already"
    empty = admin(data, "user", "add", "bob", "--password-stdin", stdin="\n", ok=False)
    assert "must not be empty" in empty.stderr
    bad = admin(data, "user", "add", "__token__", "--password-stdin", stdin="x\n", ok=False)
    assert "Invalid user name" in bad.stderr
    admin(data, "user", "passwd", "alice", "--password-stdin", stdin="second-pw\n")

    token = admin(data, "token", "create", "alice", "--project", "Demo_Pkg").stdout.strip()
    assert token.startswith("ministry-")
    token_id = token.split("-")[1]
    listed = admin(data, "token", "list").stdout
    assert token_id in listed and "demo-pkg" in listed
    assert token.split("-")[2] not in listed  # the secret is never shown again
    admin(data, "token", "create", "nobody", ok=False)

    admin(data, "project", "add-owner", "Demo_Pkg", "alice")
    admin(data, "project", "add-maintainer", "demo-pkg", "root")
    admin(data, "project", "add-maintainer", "demo-pkg", "ghost", ok=False)
    assert admin(data, "project", "owners", "demo-pkg").stdout.split("\n")[:2] == [
        "owner\talice",
        "maintainer\troot",
    ]
    users = admin(data, "user", "list").stdout
    assert "alice\tdemo-pkg (owner)" in users and "root (admin)" in users

    refused = admin(data, "user", "remove", "alice", ok=False)
    assert "alice is the only owner of demo-pkg" in refused.stderr
    admin(data, "user", "remove", "alice", "--force")
    assert token_id not in admin(data, "token", "list").stdout
    assert "alice" not in admin(data, "project", "owners", "demo-pkg").stdout
    admin(data, "token", "revoke", token_id, ok=False)


@pytest_twisted.ensureDeferred
async def test_the_command_line_yanks_and_deletes(tmp_path):
    source = await populated(tmp_path / "index")
    await source.stop()  # the admin command works on the same files, as another process
    data = tmp_path / "index"
    yanked = admin(data, "yank", "Alpha", "1.0", "--reason", "broken")
    assert yanked.stdout.startswith("Yanked alpha 1.0: alpha-1.0-py3-none-any.whl")
    admin(data, "unyank", "alpha", "--file", sdist_filename("alpha", "1.0"))
    missing = admin(data, "yank", "alpha", "9.0", ok=False)
    assert missing.stderr.strip() == "ministry-admin: No such file or release: alpha 9.0."
    deleted = admin(data, "delete", "alpha", "1.1")
    assert deleted.stdout.strip() == "Deleted alpha 1.1: alpha-1.1-py3-none-any.whl"

    await source.start()
    try:
        page = json.loads((await source.request("GET", "/simple/alpha/", {"Accept": UV})).body)
        assert {entry["filename"]: entry["yanked"] for entry in page["files"]} == {
            wheel_filename("alpha", "1.0"): "broken",
            sdist_filename("alpha", "1.0"): False,
        }
        blob = list((data / "files").rglob(wheel_filename("alpha", "1.1")))
        assert blob == []
        again = make_wheel("alpha", "1.1", requires_python=">=3.9")
        response = await source.upload("alpha", "1.1", wheel_filename("alpha", "1.1"), again)
        assert response.code == 400
        assert response.phrase.startswith("This filename has already been used")
    finally:
        await source.stop()


# -- check (issue 13) ------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_check_reports_what_is_wrong_and_repairs_what_can_be(tmp_path):
    index = await populated(tmp_path / "index")
    await index.stop()
    data = tmp_path / "index"
    clean = admin(data, "check", "--rehash").stdout
    assert clean == "Checked 4 files: 0 missing, 0 damaged, 0 unclaimed; 0 left wrong.\n"

    files = data / "files"
    next(files.rglob(wheel_filename("alpha", "1.0"))).unlink()  # listed, bytes gone
    truncated = next(files.rglob(wheel_filename("alpha", "1.1")))
    truncated.write_bytes(truncated.read_bytes()[:-1])
    flipped = next(files.rglob(sdist_filename("alpha", "1.0")))
    flipped.write_bytes(b"X" + flipped.read_bytes()[1:])  # same size: only a re-hash sees it
    unclaimed = files / "ab" / "cd" / ("ef" * 30) / wheel_filename("alpha", "0.1")
    unclaimed.parent.mkdir(parents=True)
    unclaimed.write_bytes(b"bytes whose claim never landed")

    found = admin(data, "check", ok=False).stdout
    assert "missing: alpha alpha-1.0-py3-none-any.whl" in found
    assert "upload the same file again to restore them" in found
    assert f"damaged: alpha {wheel_filename('alpha', '1.1')} on disk is" in found
    assert f"unclaimed: ab/cd/{'ef' * 30}/{wheel_filename('alpha', '0.1')}" in found
    assert found.endswith("1 missing, 1 damaged, 1 unclaimed; 3 left wrong.\n")
    rehashed = admin(data, "check", "--rehash", ok=False).stdout
    assert f"damaged: alpha {sdist_filename('alpha', '1.0')} on disk is sha256" in rehashed

    young = admin(data, "check", "--repair", ok=False).stdout  # a daemon's upload may claim it
    assert "kept: ab/cd/" in young and unclaimed.exists()
    repaired = admin(data, "check", "--repair", "--grace", "0", ok=False).stdout
    assert "removed: ab/cd/" in repaired and not unclaimed.exists()
    assert repaired.endswith("1 missing, 1 damaged, 1 unclaimed; 2 left wrong.\n")

    # What cannot be repaired from nothing is restored by its uploader.
    flipped.unlink()  # as the hint says: a re-upload notices sizes only
    await index.start()
    try:
        for name, version in (("alpha", "1.0"), ("alpha", "1.1")):
            wheel = make_wheel(name, version, requires_python=">=3.9")
            response = await index.upload(name, version, wheel_filename(name, version), wheel)
            assert response.code == 200
        sdist = make_sdist("alpha", "1.0")
        response = await index.upload("alpha", "1.0", sdist_filename("alpha", "1.0"), sdist)
        assert response.code == 200
    finally:
        await index.stop()
    assert admin(data, "check", "--rehash").stdout.endswith("; 0 left wrong.\n")
