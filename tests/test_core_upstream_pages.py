"""Upstream project pages read into proxied file records: JSON, HTML, and what is left out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from ministry.core.cooldown import cool
from ministry.core.models import SDIST, WHEEL
from ministry.core.upstream_links import PageError
from ministry.core.upstream_pages import UpstreamPage, parse_page

PAGE = "https://pypi.example.test/simple/demo/"
SEEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SHA = "a" * 64
META = "b" * 64
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "text/html; charset=utf-8"
WHEEL_NAME = "demo-1.0-py3-none-any.whl"
SDIST_NAME = "demo-1.0.tar.gz"


def json_page(*files: dict, api_version: str = "1.1") -> bytes:
    return json.dumps(
        {"meta": {"api-version": api_version}, "name": "demo", "files": list(files)}
    ).encode()


def json_file(filename: str = WHEEL_NAME, **extra) -> dict:
    entry = {"filename": filename, "url": f"../../files/{filename}", "hashes": {"sha256": SHA}}
    entry.update(extra)
    return entry


def html_page(*anchors: str, head: str = "") -> bytes:
    return (f"<!DOCTYPE html><html><head>{head}</head><body>" + "".join(anchors)).encode()


def anchor(filename: str = WHEEL_NAME, fragment: str = f"#sha256={SHA}", **attributes) -> str:
    extra = "".join(
        f" {name.replace('_', '-')}" + (f'="{value}"' if value is not None else "")
        for name, value in attributes.items()
    )
    return f'<a href="/files/{filename}{fragment}"{extra}>{filename}</a>'


def only(body: bytes, content_type: str = JSON_TYPE):
    parsed = parse_page(body, content_type, PAGE, "demo", SEEN)
    assert len(parsed.files) == 1, parsed
    return parsed.files[0]


# -- JSON ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "field", "expected"),
    [
        pytest.param(json_file(), "url", "https://pypi.example.test/files/" + WHEEL_NAME, id="url"),
        pytest.param(
            json_file(url="https://files.example.test/x/" + WHEEL_NAME + "#frag"),
            "url",
            "https://files.example.test/x/" + WHEEL_NAME,
            id="absolute url, fragment dropped",
        ),
        pytest.param(json_file(), "sha256", SHA, id="sha256"),
        pytest.param(json_file(hashes={"sha256": SHA.upper()}), "sha256", SHA, id="hash case"),
        pytest.param(json_file(), "packagetype", WHEEL, id="wheel"),
        pytest.param(json_file(SDIST_NAME), "packagetype", SDIST, id="sdist"),
        pytest.param(json_file(), "python_version", "py3", id="wheel python tag"),
        pytest.param(json_file(SDIST_NAME), "python_version", "source", id="sdist python"),
        pytest.param(json_file(), "version", "1.0", id="version from filename"),
        pytest.param(json_file(), "origin", "proxy", id="origin"),
        pytest.param(json_file(), "project", "demo", id="project"),
        pytest.param(json_file(size=1234), "size", 1234, id="size"),
        pytest.param(json_file(), "size", 0, id="size unknown"),
        pytest.param(json_file(size=True), "size", 0, id="size not a number"),
        pytest.param(
            json_file(**{"upload-time": "2025-05-06T07:08:09.123456Z"}),
            "upload_time",
            datetime(2025, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
            id="upload time",
        ),
        pytest.param(json_file(), "upload_time", SEEN, id="upload time unknown: first seen"),
        pytest.param(
            json_file(**{"upload-time": "yesterday"}), "upload_time", SEEN, id="bad upload time"
        ),
        pytest.param(
            json_file(**{"requires-python": ">=3.9"}), "requires_python", ">=3.9", id="rp"
        ),
        pytest.param(json_file(**{"requires-python": ""}), "requires_python", None, id="rp empty"),
        pytest.param(json_file(), "yanked", None, id="not yanked"),
        pytest.param(json_file(yanked=False), "yanked", None, id="yanked false"),
        pytest.param(json_file(yanked=True), "yanked", "", id="yanked without reason"),
        pytest.param(json_file(yanked="broken"), "yanked", "broken", id="yanked with reason"),
        pytest.param(
            json_file(**{"core-metadata": {"sha256": META}}), "metadata_sha256", META, id="pep 714"
        ),
        pytest.param(
            json_file(**{"dist-info-metadata": {"sha256": META}}),
            "metadata_sha256",
            META,
            id="pep 658 key",
        ),
        pytest.param(
            json_file(**{"core-metadata": True}), "metadata_sha256", None, id="metadata no hash"
        ),
        pytest.param(
            json_file(hashes={"sha256": SHA, "md5": "c" * 32, "blake2b_256": "d" * 64}),
            "md5",
            "c" * 32,
            id="md5 kept",
        ),
    ],
)
def test_json_file_fields(entry, field, expected):
    upstream_file = only(json_page(entry))
    value = upstream_file.url if field == "url" else getattr(upstream_file.record, field)
    assert value == expected


def test_json_metadata_url_is_the_file_url_plus_suffix():
    upstream_file = only(json_page(json_file(**{"core-metadata": {"sha256": META}})))
    assert upstream_file.metadata_url == upstream_file.url + ".metadata"
    assert only(json_page(json_file())).metadata_url is None


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        pytest.param(
            json_page(json_file(provenance="../../integrity/demo/1.0/w/provenance")),
            JSON_TYPE,
            "https://pypi.example.test/integrity/demo/1.0/w/provenance",
            id="JSON, relative",
        ),
        pytest.param(
            html_page(anchor(data_provenance="https://files.example.test/p")),
            HTML_TYPE,
            "https://files.example.test/p",
            id="HTML data-provenance",
        ),
        pytest.param(json_page(json_file(provenance=None)), JSON_TYPE, None, id="null"),
        pytest.param(json_page(json_file(provenance=7)), JSON_TYPE, None, id="not text"),
        pytest.param(
            json_page(json_file(provenance="file:///etc/passwd")), JSON_TYPE, None, id="not http"
        ),
    ],
)
def test_a_provenance_the_page_offers_is_kept_as_an_absolute_url(body, content_type, expected):
    upstream_file = only(body, content_type)
    assert upstream_file.provenance_url == expected
    assert upstream_file.record.provenance_upstream is (expected is not None)


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(json_file(hashes={"md5": "c" * 32}), id="no sha256"),
        pytest.param(json_file(hashes={"sha256": "xyz"}), id="sha256 not hex"),
        pytest.param(json_file(hashes="nope"), id="hashes not a dict"),
        pytest.param(json_file("other-1.0-py3-none-any.whl"), id="another project's file"),
        pytest.param(json_file("demo-1.0.egg"), id="egg"),
        pytest.param(json_file("demo-1.0.tar.bz2"), id="old sdist format"),
        pytest.param(json_file("demo-one.tar.gz"), id="not a PEP 440 version"),
        pytest.param(json_file("../demo-1.0.tar.gz"), id="path in filename"),
        pytest.param(json_file(url="ftp://x.example.test/demo-1.0.tar.gz"), id="not http"),
        pytest.param("just a string", id="not an object"),
    ],
)
def test_json_files_left_out(entry):
    parsed = parse_page(json_page(entry, json_file(SDIST_NAME)), JSON_TYPE, PAGE, "demo", SEEN)
    assert [item.record.filename for item in parsed.files] == [SDIST_NAME]
    assert parsed.skipped == 1


def test_a_repeated_filename_keeps_the_first():
    parsed = parse_page(
        json_page(json_file(size=1), json_file(size=2)), JSON_TYPE, PAGE, "demo", SEEN
    )
    assert [item.record.size for item in parsed.files] == [1]
    assert parsed.skipped == 1


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        pytest.param(b"{not json", JSON_TYPE, "not JSON", id="broken JSON"),
        pytest.param(b"[]", JSON_TYPE, "no 'files' list", id="a list"),
        pytest.param(b'{"meta": {}}', JSON_TYPE, "no 'files' list", id="no files"),
        pytest.param(json_page(api_version="2.0"), JSON_TYPE, "unsupported", id="api v2"),
        pytest.param(b"\xff\xfe", "application/json", "not JSON", id="bytes"),
        pytest.param(json_page(), "text/plain", "unexpected content type", id="text/plain"),
        pytest.param(
            html_page(head='<meta name="pypi:repository-version" content="2.0">'),
            HTML_TYPE,
            "unsupported",
            id="html v2",
        ),
    ],
)
def test_garbage_is_refused(body, content_type, message):
    with pytest.raises(PageError, match=message):
        parse_page(body, content_type, PAGE, "demo", SEEN)


# -- HTML ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "field", "expected"),
    [
        pytest.param(anchor(), "url", "https://pypi.example.test/files/" + WHEEL_NAME, id="url"),
        pytest.param(
            f'<a href="../../packages/{WHEEL_NAME}#sha256={SHA}">x</a>',
            "url",
            "https://pypi.example.test/packages/" + WHEEL_NAME,
            id="relative href",
        ),
        pytest.param(anchor(), "sha256", SHA, id="sha256 fragment"),
        pytest.param(anchor(), "size", 0, id="size unknown"),
        pytest.param(anchor(), "upload_time", SEEN, id="upload time: first seen"),
        pytest.param(
            anchor(data_requires_python="&gt;=3.8,&lt;4"),
            "requires_python",
            ">=3.8,<4",
            id="requires-python unescaped",
        ),
        pytest.param(anchor(), "yanked", None, id="not yanked"),
        pytest.param(anchor(data_yanked=None), "yanked", "", id="bare data-yanked is a yank"),
        pytest.param(anchor(data_yanked=""), "yanked", "", id="empty data-yanked"),
        pytest.param(
            anchor(data_yanked="bad &amp; broken"), "yanked", "bad & broken", id="yank reason"
        ),
        pytest.param(
            anchor(data_core_metadata=f"sha256={META}"), "metadata_sha256", META, id="core-metadata"
        ),
        pytest.param(
            anchor(data_dist_info_metadata=f"sha256={META}"),
            "metadata_sha256",
            META,
            id="dist-info-metadata",
        ),
        pytest.param(
            anchor(data_core_metadata="true"), "metadata_sha256", None, id="metadata true"
        ),
        pytest.param(
            anchor("demo-1.0%2Bcpu-py3-none-any.whl"),
            "filename",
            "demo-1.0+cpu-py3-none-any.whl",
            id="filename unquoted",
        ),
    ],
)
def test_html_file_fields(html, field, expected):
    upstream_file = only(html_page(html), HTML_TYPE)
    value = upstream_file.url if field == "url" else getattr(upstream_file.record, field)
    assert value == expected


def test_html_base_href_is_honoured():
    body = html_page(anchor(), head='<base href="https://mirror.example.test/root/">')
    assert only(body, HTML_TYPE).url == "https://mirror.example.test/files/" + WHEEL_NAME


@pytest.mark.parametrize(
    "html",
    [
        pytest.param(anchor(fragment=f"#md5={'c' * 32}"), id="md5 only"),
        pytest.param(anchor(fragment=""), id="no hash"),
        pytest.param(anchor("other-1.0.tar.gz"), id="another project's file"),
        pytest.param("<a>no href</a>", id="no href"),
    ],
)
def test_html_links_left_out(html):
    parsed = parse_page(html_page(html, anchor(SDIST_NAME)), HTML_TYPE, PAGE, "demo", SEEN)
    assert [item.record.filename for item in parsed.files] == [SDIST_NAME]
    assert parsed.skipped == (0 if html.startswith("<a>") else 1)


@pytest.mark.parametrize(
    "content_type", [HTML_TYPE, "application/vnd.pypi.simple.v1+html", "text/html"]
)
def test_every_html_type_is_read_as_html(content_type):
    assert only(html_page(anchor()), content_type).record.sha256 == SHA


# -- across pages --------------------------------------------------------------


def test_unknown_upload_times_are_carried_from_the_previous_page():
    first = parse_page(html_page(anchor()), HTML_TYPE, PAGE, "demo", SEEN)
    previous = UpstreamPage("demo", "https://pypi.example.test/simple", PAGE, None, 0, first.files)
    later = SEEN + timedelta(days=3)
    body = html_page(anchor(), anchor(SDIST_NAME))
    again = parse_page(body, HTML_TYPE, PAGE, "demo", later, previous)
    times = {item.record.filename: item.record.upload_time for item in again.files}
    assert times == {WHEEL_NAME: SEEN, SDIST_NAME: later}


def test_a_page_round_trips_through_its_dict():
    files = parse_page(
        json_page(
            json_file(**{"core-metadata": {"sha256": META}, "yanked": "x", "provenance": "p"})
        ),
        JSON_TYPE,
        PAGE,
        "demo",
        SEEN,
    ).files
    page = UpstreamPage("demo", "https://pypi.example.test/simple", PAGE, '"tag"', 12.5, files)
    assert UpstreamPage.from_dict(json.loads(json.dumps(page.to_dict()))) == page
    saved_before_provenance = page.to_dict()
    del saved_before_provenance["files"][0]["provenance_url"]
    (older,) = UpstreamPage.from_dict(saved_before_provenance).files
    assert older.provenance_url is None


@pytest.mark.parametrize(
    ("marker", "kept"),
    [
        pytest.param(None, ("active", None), id="none"),
        pytest.param({"status": "quarantined", "reason": "malware"}, ("quarantined", "malware")),
        pytest.param({"status": "archived"}, ("archived", None), id="no reason"),
        pytest.param({"status": "on-fire", "reason": "?"}, ("active", None), id="unknown status"),
        pytest.param({"status": "deprecated", "reason": 7}, ("deprecated", None), id="odd reason"),
        pytest.param("quarantined", ("active", None), id="not an object"),
    ],
)
def test_the_upstreams_project_status_is_read_and_kept_with_the_page(marker, kept):
    document = json.loads(json_page(json_file(), api_version="1.4"))
    if marker is not None:
        document["project-status"] = marker
    parsed = parse_page(json.dumps(document).encode(), JSON_TYPE, PAGE, "demo", SEEN)
    assert (parsed.status, parsed.status_reason) == kept
    page = UpstreamPage("demo", PAGE, PAGE, None, 1.0, parsed.files, *kept)
    assert UpstreamPage.from_dict(json.loads(json.dumps(page.to_dict()))) == page
    saved_before = {k: v for k, v in page.to_dict().items() if not k.startswith("status")}
    assert UpstreamPage.from_dict(saved_before).status == "active"  # pages saved before


@pytest.mark.parametrize(
    "data", [{"format": 99}, {"format": 1, "project": "demo"}, {"format": 1, "files": 3}]
)
def test_a_damaged_cached_page_is_refused(data):
    with pytest.raises(PageError):
        UpstreamPage.from_dict(data)


@pytest.mark.parametrize(
    ("ages_in_days", "min_age_days", "shown", "released_in_days"),
    [
        pytest.param([10, 1], 0, [10, 1], None, id="off"),
        pytest.param([10, 1], 3, [10], 2, id="recent hidden"),
        pytest.param([10, 2, 1], 3, [10], 1, id="next release is the oldest hidden"),
        pytest.param([1], 3, [], 2, id="everything hidden"),
        pytest.param([3], 3, [3], None, id="exactly old enough"),
    ],
)
def test_cooldown(ages_in_days, min_age_days, shown, released_in_days):
    files = []
    for age in ages_in_days:
        stamp = (SEEN - timedelta(days=age)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        files.append(json_file(f"demo-{age}.0.tar.gz", **{"upload-time": stamp}))
    parsed = parse_page(json_page(*files), JSON_TYPE, PAGE, "demo", SEEN)
    cooled = cool(parsed.files, SEEN, min_age_days * 86400)
    assert [item.record.version for item in cooled.shown] == [f"{age}.0" for age in shown]
    expected = None if released_in_days is None else SEEN + timedelta(days=released_in_days)
    assert cooled.changes_at == expected
