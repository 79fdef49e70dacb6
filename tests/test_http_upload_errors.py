"""Bad uploads over real HTTP: refused with a reason, and nothing stored.

Each case posts one broken upload to a real ``twistd ministry`` (started
with ``--max-upload-size 1M``) with ``http.client``, which exposes the
status line's reason phrase as ``response.reason``. Every case must get a
4xx whose reason is in the status line and in the body, and must leave the
index as it was: the same projects in ``/simple/``, no page for the project,
and not one file more under the data directory (the blob tree ``files/``
and its ``files/.staging`` included, and its parent, for names with "../").

Every bad upload is one mutation of a good one; :func:`test_the_unmutated_upload_is_accepted`
shows that the good one passes, so each refusal is due to its mutation.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from accept_headers import JSON_V1
from archive_factory import (
    forge_zip_member,
    make_sdist,
    make_wheel,
    sdist_filename,
    wheel_filename,
)
from servers import MinistryProcess

BOUNDARY = "ministry-test-boundary-7d1f0c2b"
PROJECT = "bad-project"
MiB = 1024 * 1024


@dataclass(frozen=True)
class Upload:
    """A twine-like upload; every field can be overridden to break it."""

    name: str
    version: str
    filetype: str
    filename: str
    content: bytes
    #: Digest fields to send; None means "the right value".
    md5_digest: str | None = None
    sha256_digest: str | None = None
    blake2_256_digest: str | None = None
    #: Fields replacing or adding to the defaults (":action", "protocol_version"...).
    extra: dict[str, str] = field(default_factory=dict)
    send_content: bool = True

    def fields(self) -> list[tuple[str, str]]:
        content = self.content
        values = {
            ":action": "file_upload",
            "protocol_version": "1",
            "metadata_version": "2.1",
            "name": self.name,
            "version": self.version,
            "filetype": self.filetype,
            "pyversion": "py3" if self.filetype == "bdist_wheel" else "source",
            "md5_digest": self.md5_digest or hashlib.md5(content).hexdigest(),
            "sha256_digest": self.sha256_digest or hashlib.sha256(content).hexdigest(),
            "blake2_256_digest": self.blake2_256_digest
            or hashlib.blake2b(content, digest_size=32).hexdigest(),
            "summary": "A package built by the test suite",
        }
        values.update(self.extra)
        return list(values.items())

    def body(self) -> bytes:
        parts = []
        for key, value in self.fields():
            parts.append(
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'.encode()
                + value.encode("utf-8")
                + b"\r\n"
            )
        if self.send_content:
            parts.append(
                f"--{BOUNDARY}\r\nContent-Disposition: form-data; "
                f'name="content"; filename="{self.filename}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n".encode()
                + self.content
                + b"\r\n"
            )
        return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def good_wheel(name: str = PROJECT, version: str = "1.0") -> Upload:
    return Upload(
        name, version, "bdist_wheel", wheel_filename(name, version), make_wheel(name, version)
    )


def good_sdist(name: str = PROJECT, version: str = "1.0") -> Upload:
    return Upload(name, version, "sdist", sdist_filename(name, version), make_sdist(name, version))


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    body: str


def post(server: MinistryProcess, body: bytes, path: str = "/legacy/") -> Response:
    """POST a multipart body with http.client, which keeps the reason phrase."""
    auth = base64.b64encode(b"user:password").decode("ascii")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.request(
            "POST",
            path,
            body=body,
            headers={
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                "Authorization": f"Basic {auth}",
            },
        )
        response = connection.getresponse()
        return Response(response.status, response.reason, response.read().decode("utf-8"))
    finally:
        connection.close()


def get(server: MinistryProcess, path: str, accept: str = JSON_V1) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("GET", path, headers={"Accept": accept})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinistryProcess]:
    root = tmp_path_factory.mktemp("upload-errors")
    with MinistryProcess(root / "data", "--max-upload-size", "1M") as process:
        yield process


def stored_files(server: MinistryProcess) -> set[str]:
    """Every file around the data directory, except the daemon's log and database.

    Walks the data directory's parent too, so a file written through "../"
    would show up.
    """
    found = set()
    root = server.data_dir.parent
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory, name)
            if path == server.log_path or name.startswith("ministry.sqlite3"):
                continue
            found.add(str(path.relative_to(root)))
    return found


def staging_files(server: MinistryProcess) -> list[str]:
    staging = server.data_dir / "files" / ".staging"
    return sorted(os.listdir(staging)) if staging.is_dir() else []


def hosted_projects(server: MinistryProcess) -> list[str]:
    status, body = get(server, "/simple/")
    assert status == 200
    return sorted(project["name"] for project in json.loads(body)["projects"])


@dataclass(frozen=True)
class Snapshot:
    projects: list[str]
    files: set[str]

    @classmethod
    def of(cls, server: MinistryProcess) -> Snapshot:
        return cls(hosted_projects(server), stored_files(server))


def assert_refused(
    server: MinistryProcess,
    upload: Upload | bytes,
    reason: str | re.Pattern[str],
    projects: tuple[str, ...] = (PROJECT,),
    status: int = 400,
) -> Response:
    """Post, then check the refusal and that the index and the disk are unchanged.

    ``reason`` is the server's message, word for word, or a pattern that must
    match all of it where a part cannot be known in advance (a size, the
    standard library's own words for a broken archive): a reworded refusal
    fails here, so the reason twine shows its user is reviewed when it changes.
    """
    before = Snapshot.of(server)
    response = post(server, upload.body() if isinstance(upload, Upload) else upload)

    assert response.status == status, response
    # The reason is in the status line and, whole, in the body.
    if isinstance(reason, str):
        assert response.reason == reason, response
    else:
        assert reason.fullmatch(response.reason), response
    assert response.reason in " ".join(response.body.split()), response

    # Nothing was stored or left behind, and the daemon is still serving.
    assert server.running, server.log_tail()
    assert staging_files(server) == []
    after = Snapshot.of(server)
    assert after.projects == before.projects
    assert after.files == before.files
    for project in projects:
        assert get(server, f"/simple/{project}/")[0] == 404
    return response


# The control: the same builder, unmutated, is accepted.


def test_the_unmutated_upload_is_accepted(server: MinistryProcess) -> None:
    for upload in (good_wheel("control-project"), good_sdist("control-project")):
        response = post(server, upload.body())
        assert response.status == 200, response
    status, body = get(server, "/simple/control-project/")
    assert status == 200
    listed = {f["filename"]: f["hashes"]["sha256"] for f in json.loads(body)["files"]}
    assert listed == {
        upload.filename: hashlib.sha256(upload.content).hexdigest()
        for upload in (good_wheel("control-project"), good_sdist("control-project"))
    }
    assert staging_files(server) == []


# Digests.

WHEEL_FILE = wheel_filename(PROJECT, "1.0")
SDIST_FILE = sdist_filename(PROJECT, "1.0")


@pytest.mark.parametrize(
    ("digest_field", "wrong"),
    [
        ("sha256_digest", hashlib.sha256(b"other bytes").hexdigest()),
        ("md5_digest", hashlib.md5(b"other bytes").hexdigest()),
        ("blake2_256_digest", hashlib.blake2b(b"other", digest_size=32).hexdigest()),
    ],
)
def test_wrong_digest(server: MinistryProcess, digest_field: str, wrong: str) -> None:
    assert_refused(
        server,
        replace(good_wheel(), **{digest_field: wrong}),
        f"The {digest_field} does not match the uploaded file '{WHEEL_FILE}': "
        "it was damaged in transit or the digest is wrong.",
    )


# Filenames and the form.


@pytest.mark.parametrize(
    ("filename", "upload"),
    [
        ("../evil-1.0.tar.gz", good_sdist("evil")),
        ("a/b-1.0-py3-none-any.whl", good_wheel("b")),
        ("a/b-1.0.whl", good_wheel("b")),
        ("/tmp/evil-1.0.tar.gz", good_sdist("evil")),
    ],
)
def test_filename_with_a_path(server: MinistryProcess, filename: str, upload: Upload) -> None:
    assert_refused(
        server,
        replace(upload, filename=filename),
        f"Invalid filename '{filename}': it must not contain a path separator ('/' or '\\').",
        projects=(upload.name,),
    )


def test_form_name_differs_from_the_filename(server: MinistryProcess) -> None:
    assert_refused(
        server,
        replace(good_wheel(), name="other-project"),
        f"The form's name 'other-project' does not match the filename '{WHEEL_FILE}' "
        "(project 'bad-project').",
        projects=(PROJECT, "other-project"),
    )


def test_form_version_differs_from_the_filename(server: MinistryProcess) -> None:
    assert_refused(
        server,
        replace(good_wheel(), version="2.0"),
        f"The form's version '2.0' does not match the filename '{WHEEL_FILE}' (version '1.0').",
    )


@pytest.mark.parametrize(
    ("upload", "reason"),
    [
        pytest.param(
            replace(good_wheel(), filetype="sdist"),
            f"The filetype 'sdist' does not match the file '{WHEEL_FILE}' "
            "(a .whl file is 'bdist_wheel').",
            id="a wheel sent as an sdist",
        ),
        pytest.param(
            replace(good_sdist(), filetype="bdist_wheel"),
            f"The filetype 'bdist_wheel' does not match the file '{SDIST_FILE}' "
            "(a .tar.gz file is 'sdist').",
            id="an sdist sent as a wheel",
        ),
    ],
)
def test_filetype_differs_from_the_file(server: MinistryProcess, upload: Upload, reason: str):
    assert_refused(server, upload, reason)


# Archives.


def unreadable(filename: str, kind: str) -> re.Pattern[str]:
    """The refusal of a file its reader cannot open; the reader's own words vary."""
    prefix = f"Invalid distribution file '{filename}': it is not a readable {kind} archive"
    return re.compile(re.escape(prefix) + r" \(.+\)\.")


JUNK = b"This is a text file, not a zip archive.\n" * 50


@pytest.mark.parametrize(
    ("upload", "reason"),
    [
        pytest.param(
            replace(good_wheel(), content=good_wheel().content[: len(good_wheel().content) // 2]),
            unreadable(WHEEL_FILE, "zip"),
            id="a truncated wheel",
        ),
        pytest.param(
            replace(good_wheel(), content=JUNK), unreadable(WHEEL_FILE, "zip"), id="junk wheel"
        ),
        pytest.param(
            replace(good_sdist(), content=JUNK), unreadable(SDIST_FILE, "tar.gz"), id="junk sdist"
        ),
    ],
)
def test_not_a_readable_archive(
    server: MinistryProcess, upload: Upload, reason: re.Pattern[str]
) -> None:
    assert_refused(server, upload, reason)


def test_zip_bomb_metadata(server: MinistryProcess) -> None:
    # 64 MiB of newlines in METADATA deflate to about 64 KiB.
    bomb = make_wheel(PROJECT, "1.0", metadata_padding=64 * MiB)
    assert len(bomb) < 1 * MiB
    assert_refused(
        server,
        replace(good_wheel(), content=bomb),
        re.compile(
            re.escape(f"Invalid distribution file '{WHEEL_FILE}': its metadata is ")
            + r"\d+ bytes, more than the 16777216-byte cap\."
        ),
        status=413,
    )


def test_zip_member_lying_about_its_size(server: MinistryProcess) -> None:
    # METADATA inflates to 8 MiB while both zip headers claim 1000 bytes.
    wheel = make_wheel(PROJECT, "1.0", metadata_padding=8 * MiB)
    metadata = f"{PROJECT.replace('-', '_')}-1.0.dist-info/METADATA"
    forged = forge_zip_member(wheel, metadata, file_size=1000)
    assert_refused(
        server,
        replace(good_wheel(), content=forged),
        f"Invalid distribution file '{WHEEL_FILE}': it is not a readable zip archive "
        f"(Bad CRC-32 for file '{metadata}').",
    )


def test_sdist_without_pkg_info(server: MinistryProcess) -> None:
    sdist = make_sdist(PROJECT, "1.0", omit=["PKG-INFO"])
    assert_refused(
        server,
        replace(good_sdist(), content=sdist),
        f"Invalid distribution file '{SDIST_FILE}': missing 'bad_project-1.0/PKG-INFO'.",
    )


# The form itself.


@pytest.mark.parametrize(
    ("upload", "reason"),
    [
        pytest.param(
            replace(good_wheel(), send_content=False),
            "No file was sent in the 'content' field.",
            id="no content part",
        ),
        pytest.param(
            replace(good_wheel(), extra={":action": "doc_upload"}),
            "Unsupported ':action' ('doc_upload'): use 'file_upload' or 'submit'.",
            id="an unsupported action",
        ),
        pytest.param(
            replace(good_wheel(), extra={"protocol_version": "2"}),
            "Unsupported protocol_version '2': only '1' is supported.",
            id="protocol version 2",
        ),
    ],
)
def test_a_form_we_cannot_serve(server: MinistryProcess, upload: Upload, reason: str) -> None:
    assert_refused(server, upload, reason)


# Size limits.


def test_file_over_max_upload_size(server: MinistryProcess) -> None:
    # A valid wheel of 2 MiB (incompressible payload) against --max-upload-size 1M.
    payload = {"bad_project/blob.bin": os.urandom(2 * MiB)}
    wheel = make_wheel(PROJECT, "1.0", extra_members=payload)
    assert len(wheel) > 2 * MiB
    assert_refused(
        server,
        replace(good_wheel(), content=wheel),
        f"File too large: {len(wheel)} bytes is over the limit of {MiB} bytes.",
        status=413,
    )


def test_body_over_the_request_cap(server: MinistryProcess) -> None:
    # Past the file limit plus the room left for form fields: refused as it arrives.
    body = replace(good_wheel(), content=b"\0" * (20 * MiB)).body()
    assert_refused(
        server,
        body,
        f"Request body too large: {len(body)} bytes is over the limit of {17 * MiB} bytes "
        "(--max-upload-size plus room for the form's fields).",
        status=413,
    )
