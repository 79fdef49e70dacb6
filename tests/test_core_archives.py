"""Reading core metadata out of uploaded archives: good layouts, broken ones, and bombs."""

import gzip
import io
import tarfile
import time
import tracemalloc
import zipfile

import pytest
from archive_factory import (
    SYMLINK_MODE,
    forge_zip_member,
    make_sdist,
    make_tar_gz,
    make_wheel,
    metadata_text,
    sdist_filename,
    tar_entry,
    wheel_filename,
)

from ministry.core.archives import ArchiveLimits, read_core_metadata
from ministry.core.errors import BadRequest, TooLarge
from ministry.core.names import parse_filename

WHEEL = wheel_filename("foo", "1.0")
TAR = sdist_filename("foo", "1.0")
ZIP = sdist_filename("foo", "1.0", "zip")
METADATA = metadata_text("foo", "1.0").encode()
MiB = 1024 * 1024
DEFAULTS = ArchiveLimits()


def read(data: bytes, filename: str, limits: ArchiveLimits = DEFAULTS) -> bytes:
    return read_core_metadata(io.BytesIO(data), parse_filename(filename), limits)


def refusal(error_type, status, data, filename, limits=DEFAULTS) -> str:
    """Read an archive that must be refused; check type and status, return the message."""
    with pytest.raises(error_type) as caught:
        read(data, filename, limits)
    assert type(caught.value) is error_type
    assert caught.value.status == status
    assert f"Invalid distribution file {filename!r}" in caught.value.message
    return caught.value.message


@pytest.mark.parametrize(
    ("data", "filename", "expected"),
    [
        pytest.param(make_wheel("foo", "1.0"), WHEEL, METADATA, id="a wheel gives its METADATA"),
        pytest.param(make_sdist("foo", "1.0"), TAR, METADATA, id="a tar.gz sdist gives PKG-INFO"),
        pytest.param(
            make_sdist("foo", "1.0", fmt="zip"), ZIP, METADATA, id="a zip sdist gives PKG-INFO"
        ),
        pytest.param(
            make_wheel("foo", "1.0", compression=zipfile.ZIP_STORED),
            WHEEL,
            METADATA,
            id="a wheel with stored members is read",
        ),
        pytest.param(
            make_wheel("foo", "1.0", metadata=b"Name: foo\nVersion: 1.0\n\n\xff\xfe"),
            WHEEL,
            b"Name: foo\nVersion: 1.0\n\n\xff\xfe",
            id="the metadata bytes come back exactly as stored",
        ),
        pytest.param(
            make_wheel("Foo.Bar", "1.0", dist_info="Foo.Bar-1.0.dist-info"),
            wheel_filename("foo_bar", "1.0"),
            metadata_text("Foo.Bar", "1.0").encode(),
            id="an unescaped dist-info name matches after normalisation",
        ),
        pytest.param(
            make_wheel("foo", "1.0", dist_info="foo-1.0.0.dist-info"),
            WHEEL,
            METADATA,
            id="a dist-info version 1.0.0 matches a filename version 1.0",
        ),
        pytest.param(
            make_sdist("foo-bar", "1.0", top_dir="Foo-Bar-1.0"),
            sdist_filename("foo_bar", "1.0"),
            metadata_text("foo-bar", "1.0").encode(),
            id="an sdist directory with the display name matches",
        ),
        pytest.param(
            make_tar_gz(
                [
                    (tar_entry(".", tarfile.DIRTYPE), None),
                    (tar_entry("./foo-1.0", tarfile.DIRTYPE), None),
                    (tar_entry("./foo-1.0/PKG-INFO"), METADATA),
                ]
            ),
            TAR,
            METADATA,
            id="a tar with dot-slash names and directory entries is read",
        ),
        pytest.param(
            make_wheel("foo", "1.0", extra_members={"foo-1.0.data/scripts/tool": b"#!python\n"}),
            WHEEL,
            METADATA,
            id="a wheel with a data directory is read",
        ),
        pytest.param(
            make_sdist(
                "foo",
                "1.0",
                fmt="zip",
                unix_modes={"foo-1.0/PKG-INFO": 0o100644, "foo-1.0/pyproject.toml": 0o100755},
            ),
            ZIP,
            METADATA,
            id="zip members with unix modes of regular files are read",
        ),
        pytest.param(
            make_wheel("foo", "1.0", extra_members={"foo/": b""}, unix_modes={"foo/": 0o40755}),
            WHEEL,
            METADATA,
            id="a zip directory entry with a unix directory mode is read",
        ),
    ],
)
def test_read_core_metadata_returns_the_metadata_member(data, filename, expected):
    assert read(data, filename) == expected


def test_the_file_is_read_from_its_start_wherever_it_is_positioned():
    fileobj = io.BytesIO(make_wheel("foo", "1.0"))
    fileobj.seek(0, io.SEEK_END)
    assert read_core_metadata(fileobj, parse_filename(WHEEL)) == METADATA


@pytest.mark.parametrize(
    ("data", "filename", "fragment"),
    [
        pytest.param(b"", WHEEL, "not a readable zip", id="an empty wheel is refused"),
        pytest.param(b"", TAR, "not a readable tar.gz", id="an empty tar.gz is refused"),
        pytest.param(b"hello " * 100, WHEEL, "not a readable zip", id="text named .whl is refused"),
        pytest.param(b"hello " * 100, TAR, "not a readable tar.gz", id="text named .tar.gz"),
        pytest.param(b"hello " * 100, ZIP, "not a readable zip", id="text named .zip is refused"),
        pytest.param(
            make_sdist("foo", "1.0"), ZIP, "not a readable zip", id="a tar.gz named .zip is refused"
        ),
        pytest.param(
            make_wheel("foo", "1.0"), TAR, "not a readable tar.gz", id="a zip named .tar.gz"
        ),
        pytest.param(
            gzip.compress(b"not a tar " * 100),
            TAR,
            "not a readable tar.gz",
            id="a gzip holding no tar is refused",
        ),
        pytest.param(
            make_wheel("foo", "1.0")[:-30],
            WHEEL,
            "not a readable zip",
            id="a zip truncated at its end is refused",
        ),
        pytest.param(
            make_wheel("foo", "1.0", description="x" * 5000)[:400],
            WHEEL,
            "not a readable zip",
            id="a zip truncated to its start is refused",
        ),
        pytest.param(
            make_sdist("foo", "1.0")[:-30],
            TAR,
            "not a readable tar.gz",
            id="a tar.gz truncated at its end is refused",
        ),
        pytest.param(
            make_sdist("foo", "1.0")[:60],
            TAR,
            "not a readable tar.gz",
            id="a tar.gz truncated to its start is refused",
        ),
        pytest.param(
            forge_zip_member(
                make_wheel("foo", "1.0"), "foo-1.0.dist-info/METADATA", file_size=len(METADATA) - 1
            ),
            WHEEL,
            "Bad CRC-32",
            id="a metadata member whose size header lies is refused",
        ),
    ],
)
def test_broken_archives_are_bad_requests(data, filename, fragment):
    assert fragment in refusal(BadRequest, 400, data, filename)


def corrupted_metadata_wheel() -> bytes:
    """A wheel whose METADATA data bytes (stored, so locatable) are altered."""
    data = bytearray(make_wheel("foo", "1.0", compression=zipfile.ZIP_STORED))
    at = bytes(data).index(b"Summary: A package")
    data[at : at + 7] = b"SUMMARY"
    return bytes(data)


def test_a_corrupted_member_fails_its_checksum():
    assert "Bad CRC-32" in refusal(BadRequest, 400, corrupted_metadata_wheel(), WHEEL)


@pytest.mark.parametrize(
    ("data", "filename", "fragments"),
    [
        pytest.param(
            make_wheel("foo", "1.0", extra_members={"other-1.0.dist-info/METADATA": METADATA}),
            WHEEL,
            ["exactly one top-level .dist-info directory, found 2", "other-1.0.dist-info"],
            id="a wheel with two dist-info directories is refused",
        ),
        pytest.param(
            make_wheel("foo", "1.0", dist_info="foo-1.0.metadata"),
            WHEEL,
            ["exactly one top-level .dist-info directory, found 0 (none)"],
            id="a wheel without a dist-info directory is refused",
        ),
        pytest.param(
            make_wheel("foo", "1.0", dist_info="foo/foo-1.0.dist-info"),
            WHEEL,
            ["exactly one top-level .dist-info directory, found 0"],
            id="a nested dist-info directory does not count",
        ),
        pytest.param(
            make_wheel("foo", "1.0", omit=["WHEEL"]),
            WHEEL,
            ["missing 'foo-1.0.dist-info/WHEEL'"],
            id="a wheel without WHEEL is refused",
        ),
        pytest.param(
            make_wheel("foo", "1.0", omit=["RECORD"]),
            WHEEL,
            ["missing 'foo-1.0.dist-info/RECORD'"],
            id="a wheel without RECORD is refused",
        ),
        pytest.param(
            make_wheel("foo", "1.0", omit=["METADATA", "RECORD"]),
            WHEEL,
            ["missing 'foo-1.0.dist-info/METADATA', 'foo-1.0.dist-info/RECORD'"],
            id="every missing file is named",
        ),
        pytest.param(
            make_wheel("foo", "1.0", dist_info="bar-1.0.dist-info"),
            WHEEL,
            ["'bar-1.0.dist-info' does not match foo 1.0"],
            id="a dist-info for another project is refused",
        ),
        pytest.param(
            make_wheel("foo", "1.0", dist_info="foo-2.0.dist-info"),
            WHEEL,
            ["'foo-2.0.dist-info' does not match foo 1.0"],
            id="a dist-info for another version is refused",
        ),
        pytest.param(
            make_wheel("foo", "1.0", dist_info="foo.dist-info"),
            WHEEL,
            ["'foo.dist-info' does not match foo 1.0"],
            id="a dist-info without a version is refused",
        ),
        pytest.param(
            make_wheel("foo", "1.0", extra_members={"foo-1.0.dist-info/./METADATA": METADATA}),
            WHEEL,
            ["'foo-1.0.dist-info/METADATA' appears more than once"],
            id="two members on one path are refused",
        ),
        pytest.param(
            make_sdist("foo", "1.0", omit=["PKG-INFO"]),
            TAR,
            ["missing 'foo-1.0/PKG-INFO'"],
            id="a tar.gz sdist without PKG-INFO is refused",
        ),
        pytest.param(
            make_sdist("foo", "1.0", fmt="zip", omit=["PKG-INFO"]),
            ZIP,
            ["missing 'foo-1.0/PKG-INFO'"],
            id="a zip sdist without PKG-INFO is refused",
        ),
        pytest.param(
            make_sdist(
                "foo", "1.0", omit=["PKG-INFO"], extra_members={"foo-1.0/src/PKG-INFO": METADATA}
            ),
            TAR,
            ["missing 'foo-1.0/PKG-INFO'"],
            id="a PKG-INFO deeper down does not count",
        ),
        pytest.param(
            make_sdist("foo", "1.0", extra_members={"other-1.0/README": b"hi"}),
            TAR,
            ["exactly one top-level directory, found 2 entries", "other-1.0"],
            id="a tar.gz sdist with two top-level directories is refused",
        ),
        pytest.param(
            make_sdist("foo", "1.0", fmt="zip", extra_members={"setup.py": b""}),
            ZIP,
            ["exactly one top-level directory, found 2 entries", "setup.py"],
            id="a zip sdist with a top-level file is refused",
        ),
        pytest.param(
            make_tar_gz([]),
            TAR,
            ["found 0 entries (none)"],
            id="an empty tar is refused",
        ),
        pytest.param(
            make_sdist("foo", "1.0", top_dir="bar-1.0"),
            TAR,
            ["'bar-1.0' does not match foo 1.0"],
            id="an sdist directory for another project is refused",
        ),
        pytest.param(
            make_sdist("foo", "1.0", fmt="zip", top_dir="foo-1.1"),
            ZIP,
            ["'foo-1.1' does not match foo 1.0"],
            id="an sdist directory for another version is refused",
        ),
    ],
)
def test_misshapen_archives_are_refused(data, filename, fragments):
    message = refusal(BadRequest, 400, data, filename)
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("data", "filename", "member"),
    [
        pytest.param(
            make_wheel("foo", "1.0", extra_members={"foo-1.0.dist-info/../../evil": b""}),
            WHEEL,
            "foo-1.0.dist-info/../../evil",
            id="a wheel member climbing out with dot-dot is refused",
        ),
        pytest.param(
            make_wheel("foo", "1.0", extra_members={"/etc/evil": b""}),
            WHEEL,
            "/etc/evil",
            id="a wheel member with an absolute path is refused",
        ),
        pytest.param(
            make_wheel("foo", "1.0", extra_members={"foo\\..\\..\\evil": b""}),
            WHEEL,
            "foo\\\\..\\\\..\\\\evil",
            id="a wheel member climbing out with backslashes is refused",
        ),
        pytest.param(
            make_wheel("foo", "1.0", extra_members={"C:\\evil": b""}),
            WHEEL,
            "C:\\\\evil",
            id="a wheel member with a drive letter is refused",
        ),
        pytest.param(
            make_sdist("foo", "1.0", extra_members={"foo-1.0/../evil": b""}),
            TAR,
            "foo-1.0/../evil",
            id="a tar member climbing out with dot-dot is refused",
        ),
        pytest.param(
            make_sdist("foo", "1.0", extra_members={"/tmp/evil": b""}),
            TAR,
            "/tmp/evil",
            id="a tar member with an absolute path is refused",
        ),
        pytest.param(
            make_sdist("foo", "1.0", fmt="zip", extra_members={"../evil": b""}),
            ZIP,
            "../evil",
            id="a zip sdist member climbing out is refused",
        ),
    ],
)
def test_members_escaping_the_archive_are_refused(data, filename, member):
    message = refusal(BadRequest, 400, data, filename)
    assert f"member '{member}' has an absolute path or a '..' component" in message


def special(*entries: tarfile.TarInfo) -> bytes:
    """A good tar.gz sdist of foo 1.0 with ``entries`` (links, devices...) added."""
    return make_sdist("foo", "1.0", tar_members=entries)


@pytest.mark.parametrize(
    ("data", "filename", "member", "kind"),
    [
        pytest.param(
            special(tar_entry("foo-1.0/passwd", tarfile.SYMTYPE, linkname="/etc/passwd")),
            TAR,
            "foo-1.0/passwd",
            "a symbolic link to '/etc/passwd'",
            id="a tar symlink to an absolute path is refused",
        ),
        pytest.param(
            special(tar_entry("foo-1.0/etc", tarfile.SYMTYPE, linkname="../../../../etc")),
            TAR,
            "foo-1.0/etc",
            "a symbolic link to '../../../../etc'",
            id="a tar symlink climbing out is refused",
        ),
        pytest.param(
            special(tar_entry("foo-1.0/setup.cfg", tarfile.SYMTYPE, linkname="pyproject.toml")),
            TAR,
            "foo-1.0/setup.cfg",
            "a symbolic link to 'pyproject.toml'",
            id="even a tar symlink inside the archive is refused",
        ),
        pytest.param(
            make_tar_gz(
                [(tar_entry("foo-1.0/PKG-INFO", tarfile.SYMTYPE, linkname="/etc/passwd"), None)]
            ),
            TAR,
            "foo-1.0/PKG-INFO",
            "a symbolic link to '/etc/passwd'",
            id="a PKG-INFO that is a symlink is refused",
        ),
        pytest.param(
            special(tar_entry("foo-1.0/shadow", tarfile.LNKTYPE, linkname="/etc/shadow")),
            TAR,
            "foo-1.0/shadow",
            "a hard link to '/etc/shadow'",
            id="a tar hard link is refused",
        ),
        pytest.param(
            special(tar_entry("foo-1.0/tty", tarfile.CHRTYPE, devmajor=5, devminor=0)),
            TAR,
            "foo-1.0/tty",
            "a character device",
            id="a tar character device is refused",
        ),
        pytest.param(
            special(tar_entry("foo-1.0/sda", tarfile.BLKTYPE, devmajor=8, devminor=0)),
            TAR,
            "foo-1.0/sda",
            "a block device",
            id="a tar block device is refused",
        ),
        pytest.param(
            special(tar_entry("foo-1.0/pipe", tarfile.FIFOTYPE)),
            TAR,
            "foo-1.0/pipe",
            "a FIFO",
            id="a tar FIFO is refused",
        ),
        pytest.param(
            special(tar_entry("foo-1.0/odd", b"Z")),
            TAR,
            "foo-1.0/odd",
            "of tar type b'Z'",
            id="a tar member of an unknown type is refused",
        ),
        pytest.param(
            make_sdist(
                "foo",
                "1.0",
                fmt="zip",
                extra_members={"foo-1.0/passwd": b"/etc/passwd"},
                unix_modes={"foo-1.0/passwd": SYMLINK_MODE},
            ),
            ZIP,
            "foo-1.0/passwd",
            "a symbolic link",
            id="a zip sdist symlink is refused",
        ),
        pytest.param(
            make_wheel(
                "foo",
                "1.0",
                extra_members={"foo/link.py": b"../../etc/passwd"},
                unix_modes={"foo/link.py": SYMLINK_MODE},
            ),
            WHEEL,
            "foo/link.py",
            "a symbolic link",
            id="a wheel symlink is refused",
        ),
        pytest.param(
            make_wheel(
                "foo", "1.0", extra_members={"foo/pipe": b""}, unix_modes={"foo/pipe": 0o10644}
            ),
            WHEEL,
            "foo/pipe",
            "a FIFO",
            id="a wheel FIFO is refused",
        ),
    ],
)
def test_members_that_are_not_files_or_directories_are_refused(data, filename, member, kind):
    message = refusal(BadRequest, 400, data, filename)
    assert f"member {member!r} is {kind}; only regular files and directories" in message


@pytest.mark.parametrize(
    ("data", "filename", "fragment"),
    [
        pytest.param(
            make_wheel("foo", "1.0", compression=zipfile.ZIP_BZIP2),
            WHEEL,
            "compression method 12; only STORED and DEFLATED",
            id="a bzip2-compressed wheel is refused",
        ),
        pytest.param(
            make_sdist("foo", "1.0", fmt="zip", compression=zipfile.ZIP_LZMA),
            ZIP,
            "compression method 14; only STORED and DEFLATED",
            id="an lzma-compressed zip sdist is refused",
        ),
        pytest.param(
            forge_zip_member(make_wheel("foo", "1.0"), "foo-1.0.dist-info/METADATA", flag_bits=1),
            WHEEL,
            "member 'foo-1.0.dist-info/METADATA' is encrypted",
            id="an encrypted METADATA is refused",
        ),
        pytest.param(
            forge_zip_member(make_wheel("foo", "1.0"), "foo/__init__.py", flag_bits=1),
            WHEEL,
            "member 'foo/__init__.py' is encrypted",
            id="any encrypted member is refused",
        ),
    ],
)
def test_zip_features_installers_cannot_read_are_refused(data, filename, fragment):
    assert fragment in refusal(BadRequest, 400, data, filename)


def many_members(count: int) -> dict[str, bytes]:
    return {f"foo/module_{index}.py": b"" for index in range(count)}


@pytest.mark.parametrize(
    ("data", "filename", "limits", "fragment"),
    [
        pytest.param(
            make_wheel("foo", "1.0", extra_members=many_members(10)),
            WHEEL,
            ArchiveLimits(max_members=10),
            "more than 10 members",
            id="a wheel with too many members is refused",
        ),
        pytest.param(
            make_sdist("foo", "1.0", extra_members=many_members(10)),
            TAR,
            ArchiveLimits(max_members=10),
            "more than 10 members",
            id="a tar.gz with too many members is refused",
        ),
        pytest.param(
            make_wheel("foo", "1.0", extra_members={"foo/data.bin": bytes(5000)}),
            WHEEL,
            ArchiveLimits(max_uncompressed=4096),
            "more than 4096 bytes uncompressed",
            id="a wheel too large uncompressed is refused",
        ),
        pytest.param(
            make_sdist("foo", "1.0", extra_members={"foo-1.0/data.bin": bytes(5000)}),
            TAR,
            ArchiveLimits(max_uncompressed=4096),
            "more than 4096 bytes uncompressed",
            id="a tar.gz too large uncompressed is refused",
        ),
        pytest.param(
            forge_zip_member(make_wheel("foo", "1.0"), "foo/__init__.py", file_size=3 * 1024**3),
            WHEEL,
            ArchiveLimits(),
            f"more than {2 * 1024**3} bytes uncompressed",
            id="a wheel declaring 3 GiB is refused by default",
        ),
        pytest.param(
            make_wheel("foo", "1.0"),
            WHEEL,
            ArchiveLimits(max_metadata=50),
            f"its metadata is {len(METADATA)} bytes, more than the 50-byte cap",
            id="a wheel METADATA over the cap is refused",
        ),
        pytest.param(
            make_sdist("foo", "1.0", fmt="zip"),
            ZIP,
            ArchiveLimits(max_metadata=50),
            f"its metadata is {len(METADATA)} bytes, more than the 50-byte cap",
            id="a zip sdist PKG-INFO over the cap is refused",
        ),
        pytest.param(
            make_sdist("foo", "1.0", metadata_padding=17 * MiB),
            TAR,
            ArchiveLimits(),
            f"more than the {16 * MiB}-byte cap",
            id="a tar.gz PKG-INFO over 16 MiB is refused by default",
        ),
        pytest.param(
            make_wheel("foo", "1.0", metadata_padding=MiB),
            WHEEL,
            ArchiveLimits(),
            "'foo-1.0.dist-info/METADATA' is compressed more than 200 to 1",
            id="a METADATA compressed more than 200 to 1 is refused",
        ),
        pytest.param(
            make_tar_gz(
                [(tar_entry("foo-1.0/PKG-INFO", pax_headers={"comment": "x" * (2 * MiB)}), b"")]
            ),
            TAR,
            ArchiveLimits(max_metadata=MiB),
            "a tar header or member is larger than the",
            id="a tar pax header larger than the cap is refused",
        ),
    ],
)
def test_archives_over_a_cap_are_too_large(data, filename, limits, fragment):
    assert fragment in refusal(TooLarge, 413, data, filename, limits)


def test_metadata_exactly_at_the_cap_is_accepted():
    assert read(make_wheel("foo", "1.0"), WHEEL, ArchiveLimits(max_metadata=len(METADATA))) == (
        METADATA
    )


@pytest.fixture(scope="module")
def zip_bomb() -> bytes:
    """A wheel whose METADATA inflates to 64 MiB from about 64 KiB."""
    return make_wheel("foo", "1.0", metadata_padding=64 * MiB)


@pytest.mark.parametrize(
    ("declared", "error_type", "status", "fragment"),
    [
        pytest.param(None, TooLarge, 413, "more than the 16777216-byte cap", id="honest header"),
        pytest.param(1000, BadRequest, 400, "Bad CRC-32", id="header claiming 1000 bytes"),
        pytest.param(MiB, BadRequest, 400, "Bad CRC-32", id="header claiming 1 MiB"),
    ],
)
def test_a_zip_bomb_is_refused_quickly_in_little_memory(
    zip_bomb, declared, error_type, status, fragment
):
    data = zip_bomb
    if declared is not None:
        data = forge_zip_member(zip_bomb, "foo-1.0.dist-info/METADATA", file_size=declared)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        message = refusal(error_type, status, data, WHEEL)
        elapsed = time.perf_counter() - started
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fragment in message
    assert elapsed < 2
    assert peak < 4 * MiB
