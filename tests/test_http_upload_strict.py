"""Uploads as strict as PyPI's, over real HTTP: special archive members, odd
filenames and a second sdist for a release are refused with a 400 that says
why, and leave nothing behind (see ``assert_refused``).
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Iterator
from dataclasses import replace

import pytest
from archive_factory import SYMLINK_MODE, make_sdist, make_wheel, tar_entry
from servers import MinistryProcess
from test_http_upload_errors import (
    PROJECT,
    Upload,
    assert_refused,
    get,
    good_sdist,
    good_wheel,
    post,
)

RELEASED = "released-project"
#: How every refusal of an archive member that is not a plain file ends.
ONLY = "; only regular files and directories are allowed."


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinistryProcess]:
    root = tmp_path_factory.mktemp("upload-strict")
    with MinistryProcess(root / "data") as process:
        yield process


def with_content(upload: Upload, content: bytes) -> Upload:
    return replace(upload, content=content)


@pytest.mark.parametrize(
    ("member", "kind", "linkname", "what"),
    [
        ("passwd", tarfile.SYMTYPE, "/etc/passwd", "a symbolic link to '/etc/passwd'"),
        ("shadow", tarfile.LNKTYPE, "/etc/shadow", "a hard link to '/etc/shadow'"),
        ("tty", tarfile.CHRTYPE, "", "a character device"),
    ],
    ids=["a tar symlink to /etc/passwd", "a tar hard link to /etc/shadow", "a tar char device"],
)
def test_sdist_members_that_are_not_files_are_refused(
    server: MinistryProcess, member: str, kind: bytes, linkname: str, what: str
) -> None:
    path = f"bad_project-1.0/{member}"
    content = make_sdist(PROJECT, "1.0", tar_members=[tar_entry(path, kind, linkname=linkname)])
    upload = with_content(good_sdist(), content)
    refusal = f"Invalid distribution file '{upload.filename}': member '{path}' is {what}{ONLY}"
    assert_refused(server, upload, refusal)


LINK = "bad_project-1.0/etc"


@pytest.mark.parametrize(
    "upload",
    [
        pytest.param(
            replace(
                good_sdist(),
                filename="bad_project-1.0.zip",
                content=make_sdist(
                    PROJECT,
                    "1.0",
                    fmt="zip",
                    extra_members={LINK: b"../../../../etc"},
                    unix_modes={LINK: SYMLINK_MODE},
                ),
            ),
            id="a zip sdist",
        ),
        pytest.param(
            with_content(
                good_wheel(),
                make_wheel(
                    PROJECT,
                    "1.0",
                    extra_members={LINK: b"/etc"},
                    unix_modes={LINK: SYMLINK_MODE},
                ),
            ),
            id="a wheel",
        ),
    ],
)
def test_zip_symlinks_are_refused(server: MinistryProcess, upload: Upload) -> None:
    assert_refused(
        server,
        upload,
        f"Invalid distribution file '{upload.filename}': member '{LINK}' is a symbolic link{ONLY}",
    )


@pytest.mark.parametrize(
    ("tag", "characters"),
    [("py3-none-$(id)", "$()"), ("py3-none-`id`", "`"), ("py3-none-any%2e%2e", "%")],
)
def test_wheel_tags_with_shell_or_url_characters_are_refused(
    server: MinistryProcess, tag: str, characters: str
) -> None:
    filename = f"bad_project-1.0-{tag}.whl"
    assert_refused(
        server,
        replace(good_wheel(), filename=filename),
        f"Invalid filename '{filename}': it contains '{characters}'; a distribution filename "
        "holds only ASCII letters, digits and '.', '_', '-', '+', '!'.",
    )


def sdist_upload(filename: str, version: str, project: str = RELEASED) -> Upload:
    return Upload(project, version, "sdist", filename, make_sdist(project, version))


def test_a_release_takes_one_sdist_and_the_same_one_again(server: MinistryProcess) -> None:
    first = sdist_upload("released_project-7.0.tar.gz", "7.0")
    assert post(server, first.body()).status == 200

    for second in (
        sdist_upload("released_project-7.0.0.tar.gz", "7.0.0"),
        sdist_upload("Released_Project-7.0.tar.gz", "7.0"),
        replace(
            first,
            filename="released_project-7.0.zip",
            content=make_sdist(RELEASED, "7.0", fmt="zip"),
        ),
    ):
        assert_refused(
            server,
            second,
            f"Only one sdist may be uploaded per release: {RELEASED} {second.version} has "
            f"{first.filename}, and {second.filename} would be a second one. "
            "Publish it as a new version.",
            projects=(),
        )

    assert post(server, first.body()).status == 200  # the same file again
    status, body = get(server, f"/simple/{RELEASED}/")
    assert status == 200
    files = json.loads(body)["files"]
    assert [(f["filename"], f["hashes"]["sha256"]) for f in files] == [
        (first.filename, hashlib.sha256(first.content).hexdigest())
    ]
