"""The upload API over HTTP, in memory: paths, repeated fields, claims, caps.

Real clients drive the same API in test_e2e_clients.py; these tests pin the
rules one by one, quickly, and check that a refusal leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest
import pytest_twisted
from accept_headers import UV
from archive_factory import make_sdist, make_wheel, sdist_filename, wheel_filename
from http_harness import InMemoryIndex, multipart, upload_fields

WHEEL = make_wheel("tidy", "1.0")
WHEEL_NAME = wheel_filename("tidy", "1.0")


@pytest_twisted.async_yield_fixture
async def index(tmp_path):
    served = InMemoryIndex(str(tmp_path), **{"max-upload-size": "64K"})
    await served.start()
    yield served
    await served.stop()


def stored_files(index: InMemoryIndex) -> list[str]:
    """Every file under the blob root, staging area included."""
    found = []
    for directory, _, names in os.walk(index.blobs.root):
        found.extend(os.path.join(directory, name) for name in names)
    return found


async def project_files(index: InMemoryIndex, name: str) -> list[str]:
    response = await index.request("GET", f"/simple/{name}/", {"Accept": UV})
    if response.code == 404:
        return []
    return [entry["filename"] for entry in json.loads(response.body)["files"]]


@pytest.mark.parametrize("path", ["/", "/legacy", "/legacy/", "/dist", "/dist/"])
@pytest_twisted.ensureDeferred
async def test_every_upload_path_stores_without_redirecting(index, path):
    response = await index.upload("tidy", "1.0", WHEEL_NAME, WHEEL, path=path)
    assert response.code == 200, response.body
    assert await project_files(index, "tidy") == [WHEEL_NAME]


@pytest_twisted.ensureDeferred
async def test_the_same_bytes_again_is_ok_and_changes_nothing(index):
    await index.upload("tidy", "1.0", WHEEL_NAME, WHEEL)
    serial = (await index.request("GET", "/simple/tidy/")).header("x-pypi-last-serial")
    again = await index.upload("tidy", "1.0", WHEEL_NAME, WHEEL)
    assert again.code == 200
    assert (await index.request("GET", "/simple/tidy/")).header("x-pypi-last-serial") == serial


@pytest_twisted.ensureDeferred
async def test_other_bytes_under_a_taken_filename_are_a_409(index):
    await index.upload("tidy", "1.0", WHEEL_NAME, WHEEL)
    other = make_wheel("tidy", "1.0", requires_python=">=3.12")
    response = await index.upload("tidy", "1.0", WHEEL_NAME, other)
    assert response.code == 409
    assert "File already exists" in response.phrase
    assert "File already exists" in response.body.decode()
    served = await index.request("GET", f"/packages/tidy/{WHEEL_NAME}")
    assert served.body == WHEEL
    assert len(stored_files(index)) == 1


@pytest_twisted.ensureDeferred
async def test_repeated_fields_are_all_kept_by_register(index):
    body, content_type = multipart(
        [
            (":action", "submit"),
            ("name", "Registered.Only"),
            ("version", "0.1"),
            ("summary", "Just a name for now"),
            ("classifiers", "Programming Language :: Python :: 3"),
            ("classifiers", "License :: OSI Approved :: MIT License"),
        ]
    )
    response = await index.request("POST", "/", {"Content-Type": content_type}, body)
    assert response.code == 200
    project = await index.store.get_project("registered-only")
    assert project.display_name == "Registered.Only"
    assert project.info["classifiers"] == [
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: MIT License",
    ]
    listing = await index.request("GET", "/simple/", {"Accept": UV})
    assert "Registered.Only" in [p["name"] for p in json.loads(listing.body)["projects"]]


@pytest_twisted.ensureDeferred
async def test_a_file_part_without_content_type_is_accepted_as_uv_sends_it(index):
    fields = upload_fields("tidy", "1.0", WHEEL_NAME, WHEEL)
    body, content_type = multipart(fields, [("content", WHEEL_NAME, WHEEL)])
    body = body.replace(b"Content-Type: application/octet-stream\r\n", b"")
    response = await index.request("POST", "/legacy/", {"Content-Type": content_type}, body)
    assert response.code == 200


@pytest_twisted.ensureDeferred
async def test_an_sdist_upload_records_its_metadata(index):
    sdist = make_sdist("tidy", "1.0", requires_python=">=3.9")
    response = await index.upload("tidy", "1.0", sdist_filename("tidy", "1.0"), sdist)
    assert response.code == 200
    record = await index.store.get_file("tidy", sdist_filename("tidy", "1.0"))
    assert record.requires_python == ">=3.9"
    assert record.sha256 == hashlib.sha256(sdist).hexdigest()
    assert record.md5 == hashlib.md5(sdist).hexdigest()
    assert record.blake2b_256 == hashlib.blake2b(sdist, digest_size=32).hexdigest()
    assert record.upload_time.microsecond or record.upload_time.second is not None


@pytest.mark.parametrize(
    ("headers", "body", "status", "reason"),
    [
        pytest.param({}, b"name=x", 415, "multipart/form-data", id="a body of no form type"),
        pytest.param(
            {"Content-Type": "multipart/form-data; boundary=zz"},
            b'--zz\r\nContent-Disposition: form-data; name="name"\r\n\r\ntidy',
            400,
            "multipart",
            id="a truncated multipart body",
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_malformed_bodies_are_refused(index, headers, body, status, reason):
    response = await index.request("POST", "/", headers, body)
    assert response.code == status
    assert reason in response.body.decode()
    assert stored_files(index) == []


@pytest_twisted.ensureDeferred
async def test_a_file_over_the_upload_limit_is_a_413_and_leaves_nothing(index):
    big = make_wheel("tidy", "1.0", extra_members={"tidy/blob.bin": os.urandom(100_000)})
    response = await index.upload("tidy", "1.0", WHEEL_NAME, big)
    assert response.code == 413
    assert "limit" in response.phrase
    assert await project_files(index, "tidy") == []
    assert stored_files(index) == []


@pytest_twisted.ensureDeferred
async def test_a_declared_body_over_the_cap_is_refused_before_parsing(index):
    body, content_type = multipart([(":action", "file_upload")], [("content", "x.whl", b"0" * 64)])
    padded = body + b"\0" * (20 * 1024 * 1024)  # over max-upload-size plus the fields' room
    response = await index.request("POST", "/", {"Content-Type": content_type}, padded)
    assert response.code == 413
    assert "Request body too large" in response.body.decode()
    assert stored_files(index) == []


@pytest_twisted.ensureDeferred
async def test_a_refused_archive_leaves_no_staging_file(index):
    truncated = WHEEL[: len(WHEEL) // 2]
    response = await index.upload("tidy", "1.0", WHEEL_NAME, truncated)
    assert response.code == 400
    assert "Invalid distribution file" in response.phrase
    assert stored_files(index) == []
