"""The simple API pages, read back the way clients read them: html.parser and json."""

import json
from datetime import UTC, datetime

import pytest
from html_page import parse_page

from ministry.core.models import SDIST, WHEEL, FileRecord, ProjectRecord
from ministry.core.negotiate import HTML_V1, JSON_V1, TEXT_HTML
from ministry.core.simple import FileLines, render_index, render_project, version_key

HTML_TYPES = [TEXT_HTML, HTML_V1]
WHEN = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
HOSTILE = '"><script>alert(1)</script>&'


def project(name="foo", display_name="Foo", serial=7):
    return ProjectRecord(name=name, display_name=display_name, serial=serial, created=WHEN)


def record(filename="foo-1.0-py3-none-any.whl", **changes):
    values = {
        "project": "foo",
        "filename": filename,
        "version": "1.0",
        "packagetype": WHEEL,
        "size": 1234,
        "sha256": "a" * 64,
        "blake2b_256": "b" * 64,
        "md5": "c" * 32,
        "upload_time": WHEN,
    }
    values.update(changes)
    return FileRecord(**values)


def file_url(rec):
    return f"../../packages/{rec.project}/{rec.filename}"


# -- /simple/ -------------------------------------------------------------------------


INDEX_PROJECTS = [
    project("zope-interface", "zope.interface", 3),
    project("foo", "Foo", 9),
    project("a-b", "A_B", 1),
]


@pytest.mark.parametrize("content_type", HTML_TYPES)
def test_index_html(content_type):
    body = render_index(INDEX_PROJECTS, 42, content_type)
    assert body.startswith(b"<!DOCTYPE html>")
    page = parse_page(body)
    assert page.meta["pypi:repository-version"] == "1.4"
    assert [(link.href, link.text) for link in page.links] == [
        ("a-b/", "A_B"),
        ("foo/", "Foo"),
        ("zope-interface/", "zope.interface"),
    ]


def test_index_json():
    document = json.loads(render_index(INDEX_PROJECTS, 42, JSON_V1))
    assert document == {
        "meta": {"api-version": "1.4", "_last-serial": 42},
        "projects": [
            {"name": "A_B", "_last-serial": 1},
            {"name": "Foo", "_last-serial": 9},
            {"name": "zope.interface", "_last-serial": 3},
        ],
    }


@pytest.mark.parametrize("content_type", [*HTML_TYPES, JSON_V1])
def test_index_empty(content_type):
    body = render_index([], 0, content_type)
    if content_type == JSON_V1:
        assert json.loads(body)["projects"] == []
    else:
        assert parse_page(body).links == []


def test_index_escapes_display_names():
    body = render_index([project("x", HOSTILE)], 1, TEXT_HTML)
    assert b"<script>" not in body
    [link] = parse_page(body).links
    assert (link.attrs, link.text) == ({"href": "x/"}, HOSTILE)


@pytest.mark.parametrize("content_type", [TEXT_HTML, JSON_V1])
def test_index_of_100k_projects(content_type):
    """The size of a real private mirror; output is checked, time is left to bench/."""
    projects = [project(f"p{i:06d}", f"P{i:06d}", i) for i in range(100_000)]
    projects.reverse()
    body = render_index(projects, 100_000, content_type)
    if content_type == JSON_V1:
        listed = json.loads(body)["projects"]
        assert len(listed) == 100_000
        assert listed[0] == {"name": "P000000", "_last-serial": 0}
        assert listed[-1] == {"name": "P099999", "_last-serial": 99_999}
    else:
        listed = parse_page(body).links
        assert len(listed) == 100_000
        assert (listed[0].href, listed[-1].href) == ("p000000/", "p099999/")
        assert (listed[54321].attrs, listed[54321].text) == ({"href": "p054321/"}, "P054321")


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", ""])
def test_unknown_content_type_is_a_programming_error(content_type):
    with pytest.raises(ValueError):
        render_index([], 0, content_type)


# -- /simple/<project>/: HTML ---------------------------------------------------------


def link_of(rec):
    body = render_project(project(), [rec], file_url, TEXT_HTML)
    [link] = parse_page(body).links
    return link.attrs, link.text, body


@pytest.mark.parametrize("content_type", HTML_TYPES)
def test_project_html_page(content_type):
    files = [record("foo-1.0.tar.gz", packagetype=SDIST), record()]
    page = parse_page(render_project(project(), files, file_url, content_type))
    assert page.meta["pypi:repository-version"] == "1.4"
    assert page.title == "Links for Foo"
    assert [link.text for link in page.links] == ["foo-1.0.tar.gz", "foo-1.0-py3-none-any.whl"]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            {},
            {"href": f"../../packages/foo/foo-1.0-py3-none-any.whl#sha256={'a' * 64}"},
            id="plain",
        ),
        pytest.param(
            {"requires_python": ">=3.8"},
            {"data-requires-python": ">=3.8"},
            id="requires-python",
        ),
        pytest.param(
            {"requires_python": ">=3.8,!=3.9.*,<4"},
            {"data-requires-python": ">=3.8,!=3.9.*,<4"},
            id="requires-python-compound",
        ),
        pytest.param({"yanked": ""}, {"data-yanked": ""}, id="yanked-no-reason"),
        pytest.param(
            {"yanked": 'broken <build> & "bad"'},
            {"data-yanked": 'broken <build> & "bad"'},
            id="yanked-with-reason",
        ),
        pytest.param(
            {"metadata_sha256": "d" * 64},
            {
                "data-core-metadata": f"sha256={'d' * 64}",
                "data-dist-info-metadata": f"sha256={'d' * 64}",
            },
            id="wheel-metadata",
        ),
    ],
)
def test_project_html_attributes(changes, expected):
    attributes, text, _ = link_of(record(**changes))
    assert text == "foo-1.0-py3-none-any.whl"
    for name, value in expected.items():
        assert attributes[name] == value


@pytest.mark.parametrize(
    ("changes", "absent"),
    [
        pytest.param({}, "data-requires-python", id="no-requires-python"),
        pytest.param({"requires_python": ""}, "data-requires-python", id="empty-requires-python"),
        pytest.param({}, "data-yanked", id="not-yanked"),
        pytest.param({}, "data-core-metadata", id="no-metadata"),
        pytest.param({}, "data-dist-info-metadata", id="no-dist-info-metadata"),
        pytest.param(
            {"packagetype": SDIST, "metadata_sha256": "d" * 64},
            "data-core-metadata",
            id="sdist-metadata-not-offered",
        ),
    ],
)
def test_project_html_attribute_absent(changes, absent):
    attributes, _, _ = link_of(record(**changes))
    assert absent not in attributes


def test_requires_python_is_escaped_in_the_markup():
    _, _, body = link_of(record(requires_python=">=3.8"))
    assert b'data-requires-python="&gt;=3.8"' in body


def test_yanked_without_reason_is_not_a_bare_attribute():
    """pip treats a bare ``data-yanked`` as not yanked; it needs ``=""``."""
    _, _, body = link_of(record(yanked=""))
    assert b'data-yanked=""' in body


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"filename": HOSTILE}, id="filename"),
        pytest.param({"yanked": HOSTILE}, id="yank-reason"),
        pytest.param({"requires_python": HOSTILE}, id="requires-python"),
        pytest.param({"sha256": HOSTILE}, id="sha256-from-upstream"),
        pytest.param({"metadata_sha256": HOSTILE}, id="metadata-sha256-from-upstream"),
    ],
)
def test_project_html_escapes_hostile_values(changes):
    _, _, body = link_of(record(**changes))
    assert b"<script>" not in body
    assert len(parse_page(body).links) == 1


def test_project_html_escapes_hostile_project_name():
    body = render_project(project(display_name=HOSTILE), [], file_url, TEXT_HTML)
    assert b"<script>" not in body
    assert parse_page(body).title == f"Links for {HOSTILE}"


def test_project_html_escapes_hostile_url():
    body = render_project(project(), [record()], lambda rec: 'x"><script>', TEXT_HTML)
    assert b"<script>" not in body
    [link] = parse_page(body).links
    assert link.href == f'x"><script>#sha256={"a" * 64}'


# -- /simple/<project>/: JSON ---------------------------------------------------------


def project_json(files, **project_changes):
    return json.loads(render_project(project(**project_changes), files, file_url, JSON_V1))


def test_project_json_document():
    wheel = record(requires_python=">=3.8", metadata_sha256="d" * 64)
    document = project_json([wheel], serial=11)
    assert document == {
        "meta": {"api-version": "1.4", "_last-serial": 11},
        "name": "foo",
        "project-status": {"status": "active"},
        "versions": ["1.0"],
        "files": [
            {
                "filename": "foo-1.0-py3-none-any.whl",
                "url": "../../packages/foo/foo-1.0-py3-none-any.whl",
                "hashes": {"sha256": "a" * 64},
                "requires-python": ">=3.8",
                "yanked": False,
                "core-metadata": {"sha256": "d" * 64},
                "dist-info-metadata": {"sha256": "d" * 64},
                "size": 1234,
                "provenance": None,
                "upload-time": "2024-05-06T07:08:09.123456Z",
            }
        ],
    }


@pytest.mark.parametrize(
    ("changes", "key", "expected"),
    [
        pytest.param({}, "requires-python", None, id="requires-python-none"),
        pytest.param({"requires_python": ""}, "requires-python", None, id="requires-python-empty"),
        pytest.param({}, "yanked", False, id="not-yanked"),
        pytest.param({"yanked": ""}, "yanked", True, id="yanked-no-reason-is-true"),
        pytest.param({"yanked": "CVE-1"}, "yanked", "CVE-1", id="yanked-reason"),
        pytest.param({}, "core-metadata", False, id="no-metadata"),
        pytest.param({}, "dist-info-metadata", False, id="no-dist-info-metadata"),
        pytest.param(
            {"packagetype": SDIST, "metadata_sha256": "d" * 64},
            "core-metadata",
            False,
            id="sdist-metadata-not-offered",
        ),
        pytest.param(
            {"upload_time": datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)},
            "upload-time",
            "2020-01-02T03:04:05.000000Z",
            id="upload-time-no-microseconds",
        ),
    ],
)
def test_project_json_file_fields(changes, key, expected):
    [entry] = project_json([record(**changes)])["files"]
    assert entry[key] == expected


def test_project_json_keeps_upload_order_and_sorts_versions():
    files = [
        record("foo-1.10.tar.gz", version="1.10", packagetype=SDIST),
        record("foo-1.9.tar.gz", version="1.9", packagetype=SDIST),
        record("foo-1.9-py3-none-any.whl", version="1.9"),
        record("foo-2.0rc1.tar.gz", version="2.0rc1", packagetype=SDIST),
        record("foo-1.0.post1.tar.gz", version="1.0.post1", packagetype=SDIST),
    ]
    document = project_json(files)
    assert [entry["filename"] for entry in document["files"]] == [f.filename for f in files]
    assert document["versions"] == ["1.0.post1", "1.9", "1.10", "2.0rc1"]


def test_project_json_empty_project():
    document = project_json([])
    assert document["files"] == []
    assert document["versions"] == []


def test_project_json_is_compact_and_utf8():
    body = render_project(
        project(display_name="Föö"), [record(yanked="dépassé")], file_url, JSON_V1
    )
    assert b", " not in body
    assert b": " not in body
    assert "dépassé".encode() in body


def test_hostile_values_round_trip_through_json():
    [entry] = project_json([record(filename=HOSTILE, yanked=HOSTILE)])["files"]
    assert entry["filename"] == HOSTILE
    assert entry["yanked"] == HOSTILE


@pytest.mark.parametrize(
    ("versions", "expected"),
    [
        (["1.10", "1.9", "1.0"], ["1.0", "1.9", "1.10"]),
        (["1.0", "1.0rc1", "1.0.dev1", "1.0.post1"], ["1.0.dev1", "1.0rc1", "1.0", "1.0.post1"]),
        (["2.0", "not-a-version", "0.1", "alpha"], ["alpha", "not-a-version", "0.1", "2.0"]),
    ],
)
def test_version_key(versions, expected):
    assert sorted(versions, key=version_key) == expected


@pytest.mark.parametrize("content_type", [TEXT_HTML, JSON_V1])
def test_kept_lines_are_those_of_the_same_records_and_nothing_else(content_type):
    """A big project's page rendered again reuses the lines of unchanged records only.

    An upload into a project of thousands of files re-rendered every line
    (issue 17); a yank makes a new record, whose line must be rendered anew,
    and a deleted file's line must go.
    """
    files = [record(f"foo-1.{n}-py3-none-any.whl", version=f"1.{n}") for n in range(4)]
    rendered = []

    def counting_url(rec):
        rendered.append(rec.filename)
        return file_url(rec)

    kept = FileLines()
    first = render_project(project(), files, counting_url, content_type, kept=kept)
    assert first == render_project(project(), files, file_url, content_type)
    assert len(rendered) == 4

    newest = record("foo-2.0-py3-none-any.whl", version="2.0")
    yanked = files[0].with_changes(yanked="broken")
    changed = [yanked, *files[2:], newest]  # files[1] deleted
    rendered.clear()
    again = render_project(project(), changed, counting_url, content_type, kept=kept)
    assert again == render_project(project(), changed, file_url, content_type)
    assert rendered == [yanked.filename, newest.filename]
    assert files[1].filename.encode() not in again
    if content_type == JSON_V1:
        assert json.loads(again)["files"][0]["yanked"] == "broken"


def test_kept_versions_are_parsed_once_and_stay_in_pep440_order(monkeypatch):
    """The JSON page's ``versions`` of a big project, rendered again after each upload.

    Parsing its thousands of version strings was the largest part of the
    render (issue 17): each is parsed once while listed, and the list is
    still PEP 440 order after versions come and go.
    """
    parsed = []
    monkeypatch.setattr(
        "ministry.core.simple.version_key", lambda v: parsed.append(v) or version_key(v)
    )
    kept = FileLines()

    def versions(*numbers):
        files = [record(f"foo-{v}-py3-none-any.whl", version=v) for v in numbers]
        return json.loads(render_project(project(), files, file_url, JSON_V1, kept=kept))[
            "versions"
        ]

    assert versions("1.10", "1.9", "1.0") == ["1.0", "1.9", "1.10"]
    assert versions("1.10", "1.9", "1.0", "1.0rc1") == ["1.0rc1", "1.0", "1.9", "1.10"]
    assert versions("1.10", "1.0", "1.0rc1", "1.0rc1") == ["1.0rc1", "1.0", "1.10"]
    assert versions("1.10", "1.0", "1.0rc1", "1.9") == ["1.0rc1", "1.0", "1.9", "1.10"]
    assert parsed == ["1.10", "1.9", "1.0", "1.0rc1", "1.9"]
