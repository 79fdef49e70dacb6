"""The Warehouse-shaped JSON API: latest-release choice, version documents, fields."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ministry.core.errors import NotFound
from ministry.core.jsonapi import latest_version, project_json
from ministry.core.metadata import CoreMetadata
from ministry.core.models import SDIST, WHEEL, FileRecord, ProjectRecord

WHEN = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
BASE = "https://index.example/"
PROJECT = ProjectRecord(name="foo-bar", display_name="Foo.Bar", serial=99, created=WHEN)


def record(version="1.0", filename=None, yanked=None, **changes):
    values = {
        "project": "foo-bar",
        "filename": filename or f"foo_bar-{version}-py3-none-any.whl",
        "version": version,
        "packagetype": WHEEL,
        "size": 2048,
        "sha256": "a" * 64,
        "blake2b_256": "b" * 64,
        "md5": "c" * 32,
        "upload_time": WHEN,
        "python_version": "py3",
        "yanked": yanked,
    }
    values.update(changes)
    return FileRecord(**values)


def file_url(rec):
    return f"https://files.example/packages/{rec.filename}"


def document(files, metadata=None, version=None):
    return project_json(PROJECT, files, metadata or {}, file_url, BASE, version=version)


# -- which release is "latest" --------------------------------------------------------


@pytest.mark.parametrize(
    ("releases", "expected"),
    [
        pytest.param({"1.0": None, "2.0": None}, "2.0", id="highest"),
        pytest.param({"1.9": None, "1.10": None}, "1.10", id="pep440-not-string-order"),
        pytest.param({"1.0": None, "2.0rc1": None}, "1.0", id="pre-release-skipped"),
        pytest.param({"1.0": None, "2.0.dev3": None}, "1.0", id="dev-release-skipped"),
        pytest.param({"1.0": None, "2.0a1": None, "2.0b2": None}, "1.0", id="alpha-beta-skipped"),
        pytest.param({"1.0": None, "1.0.post1": None}, "1.0.post1", id="post-release-is-final"),
        pytest.param({"1.0": None, "2.0": ""}, "1.0", id="yanked-skipped"),
        pytest.param({"1.0": None, "2.0": "broken"}, "1.0", id="yanked-with-reason-skipped"),
        pytest.param({"1.0": "", "2.0rc1": None}, "2.0rc1", id="only-pre-release-standing"),
        pytest.param({"1.0": "", "2.0": "x"}, "2.0", id="everything-yanked"),
        pytest.param({"1.0rc1": None, "1.0rc2": None}, "1.0rc2", id="only-pre-releases"),
        pytest.param({"1.0": None, "junk": None}, "1.0", id="invalid-version-lowest"),
        pytest.param({"junk": None}, "junk", id="only-invalid-version"),
    ],
)
def test_latest_version(releases, expected):
    files = {name: [record(name, yanked=yanked)] for name, yanked in releases.items()}
    assert latest_version(files) == expected


def test_partly_yanked_release_still_counts():
    files = [
        record("2.0", filename="foo_bar-2.0.tar.gz", packagetype=SDIST, yanked="bad sdist"),
        record("2.0"),
        record("1.0"),
    ]
    info = document(files)["info"]
    assert info["version"] == "2.0"
    assert info["yanked"] is False
    assert info["yanked_reason"] is None


# -- project document -----------------------------------------------------------------


FULL_METADATA = CoreMetadata(
    name="Foo.Bar",
    version="2.0",
    summary="Does foo.",
    description="# Foo\n",
    description_content_type="text/markdown",
    author="A. Author",
    author_email="a@example.org",
    maintainer="M. Maintainer",
    maintainer_email="m@example.org",
    license="MIT",
    license_expression="MIT",
    keywords=("foo", "bar"),
    classifiers=("Programming Language :: Python :: 3",),
    platforms=("any",),
    home_page="https://foo.example",
    download_url="https://foo.example/dl",
    requires_dist=("requests>=2", 'pytest; extra == "test"'),
    requires_python=">=3.9",
    provides_extra=("test",),
    project_urls={"Source": "https://git.example/foo"},
)


def test_project_document_shape():
    files = [record("1.0"), record("2.0"), record("2.0", filename="foo_bar-2.0.tar.gz")]
    doc = document(files, {"2.0": FULL_METADATA})
    assert set(doc) == {"info", "last_serial", "releases", "urls"}
    assert doc["last_serial"] == 99
    assert list(doc["releases"]) == ["1.0", "2.0"]
    assert [f["filename"] for f in doc["releases"]["2.0"]] == [
        "foo_bar-2.0-py3-none-any.whl",
        "foo_bar-2.0.tar.gz",
    ]
    assert doc["urls"] == doc["releases"]["2.0"]
    json.dumps(doc)  # the web layer serialises it as is


def test_info_fields():
    info = document([record("2.0")], {"2.0": FULL_METADATA})["info"]
    assert info == {
        "name": "Foo.Bar",
        "version": "2.0",
        "summary": "Does foo.",
        "description": "# Foo\n",
        "description_content_type": "text/markdown",
        "author": "A. Author",
        "author_email": "a@example.org",
        "maintainer": "M. Maintainer",
        "maintainer_email": "m@example.org",
        "license": "MIT",
        "license_expression": "MIT",
        "keywords": "foo,bar",
        "classifiers": ["Programming Language :: Python :: 3"],
        "platform": "any",
        "home_page": "https://foo.example",
        "download_url": "https://foo.example/dl",
        "requires_dist": ["requests>=2", 'pytest; extra == "test"'],
        "requires_python": ">=3.9",
        "project_urls": {"Source": "https://git.example/foo"},
        "provides_extra": ["test"],
        "yanked": False,
        "yanked_reason": None,
        "package_url": "https://index.example/project/foo-bar/",
        "project_url": "https://index.example/project/foo-bar/",
        "release_url": "https://index.example/project/foo-bar/2.0/",
    }


@pytest.mark.parametrize("metadata", [{}, {"2.0": CoreMetadata(name="Foo.Bar", version="2.0")}])
def test_info_absent_metadata_is_null(metadata):
    """Warehouse sends null, and poetry tests ``requires_dist is None`` to fall back."""
    info = document([record("2.0")], metadata)["info"]
    for key in (
        "summary",
        "description",
        "author",
        "license",
        "keywords",
        "platform",
        "home_page",
        "requires_dist",
        "requires_python",
        "project_urls",
        "provides_extra",
    ):
        assert info[key] is None, key
    assert info["classifiers"] == []
    assert info["name"] == "Foo.Bar"
    assert info["version"] == "2.0"


@pytest.mark.parametrize(
    ("yanks", "expected"),
    [
        pytest.param(["", ""], (True, None), id="no-reason"),
        pytest.param(["", "bad"], (True, "bad"), id="reason-on-one-file"),
        pytest.param(["bad", "worse"], (True, "bad"), id="first-reason"),
    ],
)
def test_yanked_release_info(yanks, expected):
    files = [
        record("1.0", filename=f"foo_bar-1.0-{i}.whl", yanked=yank) for i, yank in enumerate(yanks)
    ]
    info = document(files, version="1.0")["info"]
    assert (info["yanked"], info["yanked_reason"]) == expected


def test_file_fields():
    rec = record(
        "2.0",
        requires_python=">=3.9",
        upload_time=datetime(2024, 5, 6, 9, 8, 9, 5, tzinfo=timezone(timedelta(hours=2))),
    )
    [entry] = document([rec])["urls"]
    assert entry == {
        "filename": "foo_bar-2.0-py3-none-any.whl",
        "url": "https://files.example/packages/foo_bar-2.0-py3-none-any.whl",
        "digests": {"md5": "c" * 32, "sha256": "a" * 64, "blake2b_256": "b" * 64},
        "md5_digest": "c" * 32,
        "size": 2048,
        "packagetype": "bdist_wheel",
        "python_version": "py3",
        "requires_python": ">=3.9",
        "upload_time": "2024-05-06T07:08:09",
        "upload_time_iso_8601": "2024-05-06T07:08:09.000005Z",
        "yanked": False,
        "yanked_reason": None,
        "has_sig": False,
        "comment_text": "",
    }


@pytest.mark.parametrize(
    ("yanked", "expected"),
    [(None, (False, None)), ("", (True, None)), ("CVE-2024-1", (True, "CVE-2024-1"))],
)
def test_file_yank_fields(yanked, expected):
    [entry] = document([record(yanked=yanked)])["urls"]
    assert (entry["yanked"], entry["yanked_reason"]) == expected


def test_base_url_with_or_without_trailing_slash():
    without = project_json(PROJECT, [record()], {}, file_url, "https://h/prefix")
    with_slash = project_json(PROJECT, [record()], {}, file_url, "https://h/prefix/")
    assert without["info"]["package_url"] == "https://h/prefix/project/foo-bar/"
    assert without == with_slash


def test_project_without_files_or_registration_is_not_found():
    with pytest.raises(NotFound):
        document([])


REGISTERED = ProjectRecord(
    name="foo-bar",
    display_name="Foo.Bar",
    serial=5,
    created=WHEN,
    info={
        "version": ["2.0"],
        "summary": ["Registered, never uploaded"],
        "classifiers": ["Topic :: Utilities", "Programming Language :: Python :: 3"],
        "keywords": ["index, private"],
        "requires_python": [">=3.11"],
        "author_email": ["dev@example.test"],
    },
)


def test_a_registered_project_is_described_by_its_registration_with_no_files():
    whole = project_json(REGISTERED, [], {}, file_url, BASE)
    assert whole["urls"] == [] and whole["releases"] == {"2.0": []}
    info = whole["info"]
    assert info["version"] == "2.0" and info["summary"] == "Registered, never uploaded"
    assert info["classifiers"] == ["Topic :: Utilities", "Programming Language :: Python :: 3"]
    assert info["keywords"] == "index,private"
    assert info["requires_python"] == ">=3.11"
    assert info["author_email"] == "dev@example.test"
    one = project_json(REGISTERED, [], {}, file_url, BASE, version="2.0")
    assert one["info"] == info and one["urls"] == [] and "releases" not in one
    with pytest.raises(NotFound):
        project_json(REGISTERED, [], {}, file_url, BASE, version="3.0")


# -- version document -----------------------------------------------------------------


def test_version_document():
    files = [record("1.0"), record("2.0"), record("2.0", filename="foo_bar-2.0.tar.gz")]
    doc = document(files, {"1.0": FULL_METADATA}, version="1.0")
    assert set(doc) == {"info", "last_serial", "urls"}
    assert doc["info"]["version"] == "1.0"
    assert doc["info"]["summary"] == "Does foo."
    assert doc["info"]["release_url"] == "https://index.example/project/foo-bar/1.0/"
    assert [f["filename"] for f in doc["urls"]] == ["foo_bar-1.0-py3-none-any.whl"]


@pytest.mark.parametrize(
    ("asked", "found"),
    [
        pytest.param("2.0rc1", "2.0rc1", id="pre-release-by-name"),
        pytest.param("1.0", "1.0", id="exact"),
        pytest.param("1.0.0", "1.0", id="equal-version"),
        pytest.param("2.0-rc.1", "2.0rc1", id="unnormalised-spelling"),
    ],
)
def test_version_lookup(asked, found):
    doc = document([record("1.0"), record("2.0rc1")], version=asked)
    assert doc["info"]["version"] == found


@pytest.mark.parametrize("asked", ["3.0", "1.0.2", "1.0rc1", "junk", ""])
def test_unknown_version_is_not_found(asked):
    with pytest.raises(NotFound) as caught:
        document([record("1.0"), record("1.0.1")], version=asked)
    assert caught.value.status == 404


def test_yanked_version_is_still_served_by_name():
    doc = document([record("1.0"), record("2.0", yanked="oops")], version="2.0")
    assert doc["info"]["yanked"] is True
    assert doc["info"]["yanked_reason"] == "oops"
