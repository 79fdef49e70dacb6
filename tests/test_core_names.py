"""Project names and distribution filenames: what is accepted, and how each refusal reads."""

import pytest
from packaging.version import Version

from ministry.core.errors import BadRequest
from ministry.core.models import SDIST, WHEEL
from ministry.core.names import (
    ParsedFilename,
    canonical,
    check_project_name,
    parse_filename,
    release_version,
)

EXTENSION_HINT = "use .whl, .tar.gz or .zip (sdist)"


def refusal(call, *args) -> str:
    """Run a call that must be refused with a 400 and return its message."""
    with pytest.raises(BadRequest) as caught:
        call(*args)
    assert caught.value.status == 400
    return caught.value.message


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("Django", "django", id="capitals are folded"),
        pytest.param("zope.interface", "zope-interface", id="dots become dashes"),
        pytest.param("typing_extensions", "typing-extensions", id="underscores become dashes"),
        pytest.param("Foo._-Bar", "foo-bar", id="runs of separators collapse to one dash"),
    ],
)
def test_canonical_normalises_like_pep_503(name, expected):
    assert canonical(name) == expected
    assert check_project_name(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("", id="an empty name is refused"),
        pytest.param("-foo", id="a leading dash is refused"),
        pytest.param("foo_", id="a trailing underscore is refused"),
        pytest.param("foo bar", id="a space is refused"),
        pytest.param("foo!", id="punctuation is refused"),
        pytest.param("føo", id="a non-ascii letter is refused"),
        pytest.param("foo/bar", id="a slash is refused"),
    ],
)
def test_check_project_name_refuses_invalid_names(name):
    message = refusal(check_project_name, name)
    assert f"Invalid project name {name!r}" in message
    assert "letters, digits" in message


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        pytest.param(
            "foo-1.0-py3-none-any.whl",
            ParsedFilename("foo", Version("1.0"), WHEEL, ".whl", "foo-1.0-py3-none-any.whl"),
            id="a plain wheel parses",
        ),
        pytest.param(
            "Foo_Bar-2.0.post1-1-cp311-cp311-manylinux_2_17_x86_64.whl",
            ParsedFilename(
                "foo-bar",
                Version("2.0.post1"),
                WHEEL,
                ".whl",
                "Foo_Bar-2.0.post1-1-cp311-cp311-manylinux_2_17_x86_64.whl",
            ),
            id="a platform wheel with a build tag parses to the canonical name",
        ),
        pytest.param(
            "foo-1.0-py2.py3-none-any.whl",
            ParsedFilename("foo", Version("1.0"), WHEEL, ".whl", "foo-1.0-py2.py3-none-any.whl"),
            id="a wheel with a compressed tag set parses",
        ),
        pytest.param(
            "zope.interface-5.0.tar.gz",
            ParsedFilename(
                "zope-interface", Version("5.0"), SDIST, ".tar.gz", "zope.interface-5.0.tar.gz"
            ),
            id="a dotted sdist name is normalised",
        ),
        pytest.param(
            "foo-bar-1.0rc1.tar.gz",
            ParsedFilename("foo-bar", Version("1.0rc1"), SDIST, ".tar.gz", "foo-bar-1.0rc1.tar.gz"),
            id="an sdist name with dashes splits on the last dash",
        ),
        pytest.param(
            "foo-1.0+local.7.zip",
            ParsedFilename("foo", Version("1.0+local.7"), SDIST, ".zip", "foo-1.0+local.7.zip"),
            id="a zip sdist with a local version parses",
        ),
        pytest.param(
            "a" * (255 - len("-1.0.tar.gz")) + "-1.0.tar.gz",
            ParsedFilename(
                "a" * (255 - len("-1.0.tar.gz")),
                Version("1.0"),
                SDIST,
                ".tar.gz",
                "a" * (255 - len("-1.0.tar.gz")) + "-1.0.tar.gz",
            ),
            id="a filename of exactly 255 bytes is accepted",
        ),
    ],
)
def test_parse_filename_accepts_wheels_and_sdists(filename, expected):
    assert parse_filename(filename) == expected


@pytest.mark.parametrize(
    ("filename", "reason"),
    [
        pytest.param("", "it is empty", id="an empty filename is refused"),
        pytest.param(
            "a" * 252 + ".whl", "longer than 255 bytes", id="a filename over 255 bytes is refused"
        ),
        pytest.param("../foo-1.0.tar.gz", "path separator", id="a parent path is refused"),
        pytest.param("foo/foo-1.0.tar.gz", "path separator", id="a slash is refused"),
        pytest.param("foo\\foo-1.0.tar.gz", "path separator", id="a backslash is refused"),
        pytest.param("foo-1.0.tar.gz\x00.whl", "control characters", id="a nul byte is refused"),
        pytest.param("foo\n-1.0.tar.gz", "control characters", id="a newline is refused"),
        pytest.param("foo\x7f-1.0.tar.gz", "control characters", id="a delete char is refused"),
        pytest.param("føo-1.0.tar.gz", "non-ASCII", id="a non-ascii letter is refused"),
        pytest.param(
            "\u212aelvin-1.0.tar.gz", "non-ASCII", id="a kelvin sign posing as k is refused"
        ),
        pytest.param("foo..bar-1.0.tar.gz", "'..'", id="a double dot is refused"),
        pytest.param("..foo-1.0.tar.gz", "'..'", id="a leading double dot is refused"),
        pytest.param(".foo-1.0.tar.gz", "start with '.' or '-'", id="a hidden file is refused"),
        pytest.param(
            "-foo-1.0.tar.gz", "start with '.' or '-'", id="an option-like name is refused"
        ),
    ],
)
def test_parse_filename_refuses_path_tricks(filename, reason):
    message = refusal(parse_filename, filename)
    assert message.startswith("Invalid filename ")
    assert reason in message
    assert repr(filename)[:60] in message


def test_a_long_filename_is_shortened_in_the_message():
    message = refusal(parse_filename, "a" * 5000 + ".whl")
    assert "..." in message
    assert len(message) < 200


@pytest.mark.parametrize(
    "filename",
    [
        pytest.param("foo-1.0-py2.7.egg", id="an egg is refused"),
        pytest.param("foo-1.0.win32.exe", id="a windows installer is refused"),
        pytest.param("foo-1.0.msi", id="an msi is refused"),
        pytest.param("foo-1.0.tar.bz2", id="a bzip2 tarball is refused"),
        pytest.param("foo-1.0.tgz", id="a tgz is refused"),
        pytest.param("foo-1.0.tar", id="an uncompressed tar is refused"),
        pytest.param("foo-1.0-1.noarch.rpm", id="an rpm is refused"),
        pytest.param("foo-1.0-py3-none-any.WHL", id="an upper-case extension is refused"),
        pytest.param("foo-1.0", id="no extension is refused"),
    ],
)
def test_parse_filename_refuses_unsupported_kinds(filename):
    message = refusal(parse_filename, filename)
    assert message.startswith("Invalid file extension")
    assert EXTENSION_HINT in message
    assert repr(filename) in message


@pytest.mark.parametrize(
    ("filename", "expected_form"),
    [
        pytest.param("foo.whl", "{name}-{version}", id="a wheel without tags is refused"),
        pytest.param(
            "foo-1.0-py3.whl", "{platform}.whl", id="a wheel with too few parts is refused"
        ),
        pytest.param(
            "foo-latest-py3-none-any.whl", "PEP 440", id="a wheel with a bad version is refused"
        ),
        pytest.param(
            "foo__bar-1.0-py3-none-any.whl",
            "{name}",
            id="a wheel with a double underscore is refused",
        ),
        pytest.param(
            "foo-1.0-x1-py3-none-any.whl", "{build}", id="a wheel with a bad build tag is refused"
        ),
        pytest.param("foo.tar.gz", "{name}-{version}.tar.gz", id="an sdist without a version"),
        pytest.param("foo-bar.zip", "{name}-{version}.zip", id="an sdist with a bad version"),
    ],
)
def test_parse_filename_refuses_malformed_names(filename, expected_form):
    message = refusal(parse_filename, filename)
    assert message.startswith(f"Invalid distribution filename {filename!r}")
    assert expected_form in message


@pytest.mark.parametrize(
    ("filename", "project"),
    [
        pytest.param("foo!-1.0.tar.gz", "foo!", id="punctuation in an sdist's name is refused"),
        pytest.param("foo_-1.0.tar.gz", "foo-", id="a trailing separator in a name is refused"),
        pytest.param("_foo-1.0-py3-none-any.whl", "-foo", id="a leading underscore is refused"),
    ],
)
def test_parse_filename_refuses_invalid_project_names(filename, project):
    message = refusal(parse_filename, filename)
    assert message.startswith(f"Invalid distribution filename {filename!r}")
    assert f"{project!r} is not a valid project name" in message


@pytest.mark.parametrize(
    "filename",
    [
        pytest.param("demo-1.0-py3-none-$(id).whl", id="a shell substitution in a tag"),
        pytest.param("demo-1.0-py3-none-`id`.whl", id="backticks in a tag"),
        pytest.param("demo-1.0-py3-none-a'b.whl", id="a quote in a tag"),
        pytest.param("demo-1.0-py3-none-<script>.whl", id="markup in a tag"),
        pytest.param("demo-1.0-py3-none-any?#.whl", id="a query and a fragment in a tag"),
        pytest.param("demo-1.0-py3-none-%2e%2e.whl", id="percent-encoded dots in a tag"),
        pytest.param("demo-1.0-1$x-py3-none-any.whl", id="a dollar in a build tag"),
        pytest.param("demo- 1.0.tar.gz", id="a space before the version"),
        pytest.param("demo-1.0 .tar.gz", id="a space after the version"),
        pytest.param("demo-1.0;rm.zip", id="a semicolon"),
    ],
)
def test_parse_filename_refuses_characters_no_distribution_has(filename):
    message = refusal(parse_filename, filename)
    assert message.startswith(f"Invalid filename {filename!r}: it contains ")
    assert "only ASCII letters, digits and '.', '_', '-', '+', '!'" in message


@pytest.mark.parametrize(
    ("filename", "fragment"),
    [
        pytest.param("demo-1.0-py3-none-any+x.whl", "the tag 'any+x'", id="a plus in a tag"),
        pytest.param("demo-1.0-py3-none!-any.whl", "the tag 'none!'", id="a bang in a tag"),
        pytest.param(
            "demo-1.0-py3-abi+3-linux_x86_64.manylinux1_x86_64.whl",
            "the tag 'abi+3'",
            id="a plus in the abi tag of a tag set",
        ),
        pytest.param("demo-1.0-1+x-py3-none-any.whl", "a build tag is digits", id="build tag"),
    ],
)
def test_parse_filename_refuses_tags_the_wheel_format_does_not_allow(filename, fragment):
    message = refusal(parse_filename, filename)
    assert message.startswith(f"Invalid distribution filename {filename!r}: ")
    assert fragment in message


@pytest.mark.parametrize(
    ("filename", "project", "version"),
    [
        pytest.param("demo-7.0.tar.gz", "demo", "7.0", id="the PEP 625 form"),
        pytest.param("Demo-7.0.tar.gz", "demo", "7.0", id="a capitalised name, as PyPI accepts"),
        pytest.param("DEMO-7.0.0.zip", "demo", "7.0.0", id="a legacy zip sdist"),
        pytest.param("demo.pkg-1.0.tar.gz", "demo-pkg", "1.0", id="a dotted legacy name"),
        pytest.param("demo-1!2.0.post1.tar.gz", "demo", "1!2.0.post1", id="an epoch"),
        pytest.param(
            "demo-1.0-cp313-cp313t-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "demo",
            "1.0",
            id="a free-threaded wheel with a tag set",
        ),
        pytest.param("demo-1.0-7_b-py3-none-any.whl", "demo", "1.0", id="a build tag suffix"),
    ],
)
def test_parse_filename_accepts_every_spelling_of_real_files(filename, project, version):
    parsed = parse_filename(filename)
    assert (parsed.project, parsed.version) == (project, Version(version))


@pytest.mark.parametrize(
    ("versions", "release"),
    [
        pytest.param(["7", "7.0", "7.0.0", Version("7.0")], "7", id="trailing zeros"),
        pytest.param(["1.0rc1", "1.0-RC1", "1.0c1"], "1rc1", id="pre-release spellings"),
        pytest.param(["2.0.post0", "2.0-0", "2.0post0"], "2.post0", id="post-release spellings"),
        pytest.param(["1.0+ABC-1", "1.0.0+abc.1"], "1+abc.1", id="local versions"),
    ],
)
def test_release_version_is_one_key_for_equal_versions(versions, release):
    assert {release_version(version) for version in versions} == {release}
