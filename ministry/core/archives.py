"""Core metadata out of an uploaded wheel or sdist, read in place.

An upload is hostile until proven otherwise: it may be truncated, not an
archive at all, a zip bomb, or shaped to make a naive reader allocate
gigabytes. So nothing is ever extracted to disk, every size and count the
archive declares is capped before anything is decompressed, and the one
member we need is read with a bounded read that does not trust the header.

The layout rules are the packaging specifications': a wheel has exactly one
top-level ``{name}-{version}.dist-info`` holding ``METADATA``, ``WHEEL`` and
``RECORD``; an sdist has exactly one top-level ``{name}-{version}`` directory
with ``PKG-INFO`` directly inside. Members are regular files and directories
only: a symlink to ``/etc/passwd``, a hard link, a device or a FIFO has no
place in a distribution, and is what an attack on an unpacking tool looks like.
"""

from __future__ import annotations

import gzip
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import PureWindowsPath
from typing import BinaryIO, Generic, TypeVar

from packaging.version import InvalidVersion, Version

from ministry.core.errors import BadRequest, TooLarge
from ministry.core.models import WHEEL
from ministry.core.names import ParsedFilename, canonical, shown

#: Compression methods every installer can read; anything else (bzip2, lzma,
#: deflate64...) would be refused by some client after we had accepted it.
ZIP_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})

#: What a broken archive raises from the standard library's readers: a bad
#: or truncated zip, tar or gzip stream, undecodable member names, a zip
#: feature the reader does not implement.
_CORRUPT = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    tarfile.TarError,
    EOFError,
    zlib.error,
    struct.error,
    OSError,
    ValueError,
    NotImplementedError,
)

_WHEEL_REQUIRED = ("METADATA", "WHEEL", "RECORD")

#: Bit 0 of a zip member's general purpose flags: the member is encrypted.
_ZIP_ENCRYPTED = 0x1

#: Tar member types that are neither a regular file nor a directory, named
#: for the refusal; any other unknown type is refused too.
_TAR_KINDS = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
}

#: The same for the unix file type kept in a zip member's external attributes.
_ZIP_KINDS = {
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
}


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps on what an uploaded archive may declare, so reading it stays cheap."""

    max_members: int = 20_000
    max_uncompressed: int = 2 * 1024**3  # bytes, all members together
    max_metadata: int = 16 * 1024**2  # bytes, the METADATA / PKG-INFO member
    max_ratio: int = 200  # uncompressed / compressed size of the metadata member (zip)


#: A zipfile.ZipInfo or a tarfile.TarInfo.
_Info = TypeVar("_Info")


@dataclass(frozen=True)
class _Member(Generic[_Info]):
    """One archive entry, reduced to what the layout checks need."""

    info: _Info  # the reader's own entry, so we read exactly the one we checked
    path: str  # normalised: "/"-joined parts, no "." parts
    parts: tuple[str, ...]
    size: int
    is_file: bool


def read_core_metadata(
    fileobj: BinaryIO, parsed: ParsedFilename, limits: ArchiveLimits = ArchiveLimits()
) -> bytes:
    """Return the METADATA (wheel) or PKG-INFO (sdist) bytes of an uploaded file.

    Raises :class:`BadRequest` for a broken or misshapen archive and
    :class:`TooLarge` when it exceeds one of ``limits``.
    """
    fileobj.seek(0)
    try:
        if parsed.extension == ".tar.gz":
            return _read_tar_gz(fileobj, parsed, limits)
        return _read_zip(fileobj, parsed, limits)
    except _CORRUPT as error:
        kind = "tar.gz" if parsed.extension == ".tar.gz" else "zip"
        raise BadRequest(
            f"Invalid distribution file {shown(parsed.filename)}: "
            f"it is not a readable {kind} archive ({error})."
        ) from None


def _read_zip(fileobj: BinaryIO, parsed: ParsedFilename, limits: ArchiveLimits) -> bytes:
    with zipfile.ZipFile(fileobj) as archive:
        members = _scan((_zip_member(info, parsed) for info in archive.infolist()), parsed, limits)
        info = _metadata_member(members, parsed).info
        _check_metadata_size(info.file_size, parsed, limits)
        _check_ratio(info, parsed, limits)
        with archive.open(info) as stream:
            return _bounded_read(stream, info.file_size, parsed)


def _zip_member(info: zipfile.ZipInfo, parsed: ParsedFilename) -> _Member[zipfile.ZipInfo]:
    """Refuse members some installer could not read; encrypted ones included."""
    if info.flag_bits & _ZIP_ENCRYPTED:
        raise BadRequest(
            f"Invalid distribution file {shown(parsed.filename)}: "
            f"member {info.filename!r} is encrypted."
        )
    if info.compress_type not in ZIP_METHODS:
        raise BadRequest(
            f"Invalid distribution file {shown(parsed.filename)}: member {info.filename!r} "
            f"uses compression method {info.compress_type}; only STORED and DEFLATED are allowed."
        )
    _check_kind(info.filename, _zip_kind(info), parsed)
    return _member(info, info.filename, info.file_size, not info.is_dir(), parsed)


def _zip_kind(info: zipfile.ZipInfo) -> str | None:
    """What a zip member is when not a file or directory, from its unix mode bits.

    The mode is read whatever ``create_system`` says: Python's zipfile
    stores it on every platform, and unzip and installers honour it.
    """
    file_type = stat.S_IFMT(info.external_attr >> 16)
    if file_type in (0, stat.S_IFREG, stat.S_IFDIR):
        return None
    return _ZIP_KINDS.get(file_type, f"of unix file type {file_type:#o}")


def _read_tar_gz(fileobj: BinaryIO, parsed: ParsedFilename, limits: ArchiveLimits) -> bytes:
    with (
        gzip.GzipFile(fileobj=fileobj, mode="rb") as stream,
        tarfile.open(
            fileobj=CappedReads(stream, limits.max_metadata + tarfile.BLOCKSIZE, parsed),
            mode="r:",
        ) as archive,
    ):
        members = _scan((_tar_member(info, parsed) for info in archive), parsed, limits)
        info = _metadata_member(members, parsed).info
        _check_metadata_size(info.size, parsed, limits)
        extracted = archive.extractfile(info)
        assert extracted is not None, "metadata members are regular files"
        return _bounded_read(extracted, info.size, parsed)


def _tar_member(info: tarfile.TarInfo, parsed: ParsedFilename) -> _Member[tarfile.TarInfo]:
    _check_kind(info.name, _tar_kind(info), parsed)
    return _member(info, info.name, info.size, info.isfile(), parsed)


def _tar_kind(info: tarfile.TarInfo) -> str | None:
    """What a tar member is when not a file or directory; links say where they point."""
    if info.isfile() or info.isdir():
        return None
    kind = _TAR_KINDS.get(info.type, f"of tar type {info.type!r}")
    return f"{kind} to {info.linkname!r}" if info.issym() or info.islnk() else kind


def _check_kind(name: str, kind: str | None, parsed: ParsedFilename) -> None:
    """Refuse a member that is not a regular file or directory (``kind`` says what it is)."""
    if kind is not None:
        raise BadRequest(
            f"Invalid distribution file {shown(parsed.filename)}: member {name!r} is {kind}; "
            "only regular files and directories are allowed."
        )


class CappedReads:
    """A read-only stream that refuses any single read above ``cap`` bytes.

    tarfile reads a pax or GNU long-name header in one ``read`` of whatever
    size the header declares, so a few kilobytes of gzip could make it
    allocate gigabytes. Legitimate reads are header blocks and our own
    bounded read of the metadata member, both far below the cap.
    """

    def __init__(self, stream: BinaryIO, cap: int, parsed: ParsedFilename) -> None:
        self._stream = stream
        self._cap = cap
        self._parsed = parsed

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > self._cap:
            raise TooLarge(
                f"Invalid distribution file {shown(self._parsed.filename)}: "
                f"a tar header or member is larger than the {self._cap}-byte cap."
            )
        return self._stream.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()


def _member(
    info: _Info, name: str, size: int, is_file: bool, parsed: ParsedFilename
) -> _Member[_Info]:
    """Normalise a member name, refusing absolute paths and ``..``.

    We never extract, but installers do: an archive that would write outside
    its directory is not one we should serve. Both separators count, since
    Windows tools honour a backslash.
    """
    path = PureWindowsPath(name)
    if path.drive or path.root or ".." in path.parts:
        raise BadRequest(
            f"Invalid distribution file {shown(parsed.filename)}: member {name!r} "
            "has an absolute path or a '..' component."
        )
    return _Member(info, "/".join(path.parts), path.parts, size, is_file)


def _scan(
    members: Iterable[_Member[_Info]], parsed: ParsedFilename, limits: ArchiveLimits
) -> list[_Member[_Info]]:
    """Collect members, stopping as soon as a count or size cap is crossed.

    Checking while iterating matters for tar: its member list is only
    known by reading through the stream, which we stop early.
    """
    scanned: list[_Member[_Info]] = []
    total = 0
    for member in members:
        scanned.append(member)
        total += member.size
        if len(scanned) > limits.max_members:
            raise TooLarge(
                f"Invalid distribution file {shown(parsed.filename)}: "
                f"it has more than {limits.max_members} members, the cap."
            )
        if total > limits.max_uncompressed:
            raise TooLarge(
                f"Invalid distribution file {shown(parsed.filename)}: its members add up "
                f"to more than {limits.max_uncompressed} bytes uncompressed, the cap."
            )
    return scanned


def _metadata_member(members: list[_Member[_Info]], parsed: ParsedFilename) -> _Member[_Info]:
    """Check the layout and return the member holding the core metadata."""
    files = _files_by_path(members, parsed)
    if parsed.packagetype == WHEEL:
        directory = _wheel_dist_info(members, parsed)
        required = [f"{directory}/{name}" for name in _WHEEL_REQUIRED]
    else:
        directory = _sdist_top_directory(members, parsed)
        required = [f"{directory}/PKG-INFO"]
    missing = [path for path in required if path not in files]
    if missing:
        raise BadRequest(
            f"Invalid distribution file {shown(parsed.filename)}: "
            f"missing {', '.join(repr(path) for path in missing)}."
        )
    return files[required[0]]


def _files_by_path(
    members: list[_Member[_Info]], parsed: ParsedFilename
) -> dict[str, _Member[_Info]]:
    """Regular files by normalised path; two files on one path are ambiguous."""
    files: dict[str, _Member[_Info]] = {}
    for member in members:
        if not member.is_file:
            continue
        if member.path in files:
            raise BadRequest(
                f"Invalid distribution file {shown(parsed.filename)}: "
                f"{member.path!r} appears more than once."
            )
        files[member.path] = member
    return files


def _wheel_dist_info(members: list[_Member[_Info]], parsed: ParsedFilename) -> str:
    found = {m.parts[0] for m in members if m.parts and m.parts[0].endswith(".dist-info")}
    directory = _the_only(found, parsed, "a wheel needs exactly one top-level .dist-info directory")
    _check_directory_name(directory.removesuffix(".dist-info"), directory, parsed)
    return directory


def _sdist_top_directory(members: list[_Member[_Info]], parsed: ParsedFilename) -> str:
    found = {m.parts[0] for m in members if m.parts}
    needs = "an sdist needs exactly one top-level directory"
    directory = _the_only(found, parsed, needs, counted=" entries")
    _check_directory_name(directory, directory, parsed)
    return directory


def _the_only(found: set[str], parsed: ParsedFilename, needs: str, counted: str = "") -> str:
    """The one top-level name of ``found``; else a refusal saying ``needs``, naming a few.

    Wheels and sdists differ in which name they need, not in how a wrong count is told.
    """
    names = sorted(found)
    if len(names) != 1:
        raise BadRequest(
            f"Invalid distribution file {shown(parsed.filename)}: {needs}, found "
            f"{len(names)}{counted} ({', '.join(_first(names, 5)) or 'none'})."
        )
    return names[0]


def _check_directory_name(stem: str, directory: str, parsed: ParsedFilename) -> None:
    """``{name}-{version}`` must name the same release as the filename.

    Names compare normalised and versions as ``Version``s, since builders
    escape and normalise them differently in directory and file names.
    """
    name, _, version = stem.rpartition("-")
    if canonical(name) != parsed.project or not _same_version(version, parsed.version):
        raise BadRequest(
            f"Invalid distribution file {shown(parsed.filename)}: its directory "
            f"{directory!r} does not match {parsed.project} {parsed.version} from the filename."
        )


def _same_version(text: str, version: Version) -> bool:
    try:
        return Version(text) == version
    except InvalidVersion:
        return False


def _check_metadata_size(size: int, parsed: ParsedFilename, limits: ArchiveLimits) -> None:
    if size > limits.max_metadata:
        raise TooLarge(
            f"Invalid distribution file {shown(parsed.filename)}: its metadata is {size} bytes, "
            f"more than the {limits.max_metadata}-byte cap."
        )


def _check_ratio(info: zipfile.ZipInfo, parsed: ParsedFilename, limits: ArchiveLimits) -> None:
    """No real METADATA compresses this well; a zip bomb does."""
    if info.file_size > limits.max_ratio * max(info.compress_size, 1):
        raise TooLarge(
            f"Invalid distribution file {shown(parsed.filename)}: {info.filename!r} "
            f"is compressed more than {limits.max_ratio} to 1, the cap for metadata."
        )


def _bounded_read(stream: BinaryIO, declared: int, parsed: ParsedFilename) -> bytes:
    """Read the metadata member, at most one byte more than its (capped) declared size.

    Asking for no more than the declared size keeps memory proportional to
    it even when the compressed data would expand far beyond (a lying zip
    header then fails its CRC check instead). The readers stop at the
    declared size themselves; the extra byte makes this function not
    depend on that.
    """
    data = stream.read(declared + 1)
    if len(data) > declared:
        raise BadRequest(
            f"Invalid distribution file {shown(parsed.filename)}: its metadata is larger "
            f"than its header declares."
        )
    return data


def _first(items: list[str], count: int) -> Iterator[str]:
    """At most ``count`` items, then an ellipsis: messages stay short."""
    yield from items[:count]
    if len(items) > count:
        yield "..."
