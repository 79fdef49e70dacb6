"""Wheels and sdists built in memory, well-formed or broken on purpose.

Shared by the core, HTTP and end-to-end tests. The output is deterministic
(fixed timestamps, no gzip name or mtime): the same arguments give the same
bytes, which the "same file uploaded twice" tests rely on. Well-formed
wheels are installable by pip (their RECORD is correct).

Knobs to break an archive: ``metadata`` (any text or bytes), ``omit``
(required members to leave out), ``dist_info`` / ``top_dir`` (rename the
metadata directory), ``extra_members`` (any names, including ``../x`` or
``/x``, any content), ``compression`` (any zipfile method),
``metadata_padding`` (a huge, highly compressible METADATA/PKG-INFO),
``unix_modes`` (zip members' mode bits: :data:`SYMLINK_MODE` makes a symlink),
``tar_members`` (raw tar entries: :func:`tar_entry` builds symlinks, hard
links, devices and FIFOs) and :func:`forge_zip_member` (lie about a
member's size or flags afterwards).
For anything stranger, :func:`make_zip` and :func:`make_tar_gz` take raw
entries.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import struct
import tarfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence

from packaging.utils import canonicalize_name

#: Zip and tar timestamps, fixed so that builds are reproducible.
EPOCH = (1980, 1, 1, 0, 0, 0)

#: A zip member's content: bytes, or chunks streamed into the archive (for
#: members too large to hold in memory comfortably).
Content = bytes | Iterable[bytes]

_PADDING_CHUNK = b"\n" * (1024 * 1024)

#: The unix mode of a symlink, as ``unix_modes`` takes it; the member's
#: content is then the link's target, as Info-ZIP stores it.
SYMLINK_MODE = 0o120777


def escaped(name: str) -> str:
    """The project name as it appears in file and directory names (PEP 427)."""
    return canonicalize_name(name).replace("-", "_")


def wheel_filename(name: str, version: str, tag: str = "py3-none-any") -> str:
    return f"{escaped(name)}-{version}-{tag}.whl"


def sdist_filename(name: str, version: str, fmt: str = "tar.gz") -> str:
    return f"{escaped(name)}-{version}.{fmt}"


def metadata_text(
    name: str,
    version: str,
    *,
    metadata_version: str = "2.1",
    summary: str = "A package built by the test suite",
    requires_python: str | None = None,
    requires_dist: Sequence[str] = (),
    classifiers: Sequence[str] = (),
    project_urls: Mapping[str, str] | None = None,
    description: str | None = None,
    description_content_type: str = "text/markdown",
    extra_headers: Sequence[tuple[str, str]] = (),
) -> str:
    """Core metadata in the email format, the description as the body."""
    headers = [
        ("Metadata-Version", metadata_version),
        ("Name", name),
        ("Version", version),
        ("Summary", summary),
    ]
    if requires_python is not None:
        headers.append(("Requires-Python", requires_python))
    headers += [("Requires-Dist", requirement) for requirement in requires_dist]
    headers += [("Classifier", classifier) for classifier in classifiers]
    headers += [("Project-URL", f"{label}, {url}") for label, url in (project_urls or {}).items()]
    if description is not None:
        headers.append(("Description-Content-Type", description_content_type))
    headers += list(extra_headers)
    text = "".join(f"{key}: {value}\n" for key, value in headers)
    if description is not None:
        text += "\n" + description
    return text


def make_wheel(
    name: str,
    version: str,
    *,
    metadata: str | bytes | None = None,
    requires_python: str | None = None,
    requires_dist: Sequence[str] = (),
    description: str | None = None,
    tag: str = "py3-none-any",
    dist_info: str | None = None,
    omit: Iterable[str] = (),
    extra_members: Mapping[str, bytes] | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
    metadata_padding: int = 0,
    unix_modes: Mapping[str, int] | None = None,
) -> bytes:
    """A wheel for ``name`` ``version``; see the module docstring for the knobs.

    ``metadata`` replaces the generated METADATA entirely; ``omit`` names
    files of the .dist-info directory ("METADATA", "WHEEL", "RECORD") to
    leave out; ``metadata_padding`` appends that many newlines to METADATA,
    streamed, so a gigabyte costs about a megabyte of archive.
    """
    module = escaped(name)
    directory = dist_info or f"{module}-{version}.dist-info"
    metadata = _metadata_bytes(metadata, name, version, requires_python, requires_dist, description)
    wheel = f"Wheel-Version: 1.0\nGenerator: archive_factory\nRoot-Is-Purelib: true\nTag: {tag}\n"
    files: dict[str, bytes] = {
        f"{module}/__init__.py": f'__version__ = "{version}"\n'.encode(),
        f"{directory}/METADATA": metadata,
        f"{directory}/WHEEL": wheel.encode(),
    }
    files.update(extra_members or {})
    files[f"{directory}/RECORD"] = _record(files, f"{directory}/RECORD", metadata_padding)
    skipped = {f"{directory}/{member}" for member in omit}
    entries: dict[str, Content] = {
        path: content for path, content in files.items() if path not in skipped
    }
    if metadata_padding and f"{directory}/METADATA" in entries:
        entries[f"{directory}/METADATA"] = _padded(files[f"{directory}/METADATA"], metadata_padding)
    return make_zip(entries, compression=compression, unix_modes=unix_modes)


def make_sdist(
    name: str,
    version: str,
    *,
    fmt: str = "tar.gz",
    metadata: str | bytes | None = None,
    requires_python: str | None = None,
    requires_dist: Sequence[str] = (),
    description: str | None = None,
    top_dir: str | None = None,
    omit: Iterable[str] = (),
    extra_members: Mapping[str, bytes] | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
    metadata_padding: int = 0,
    unix_modes: Mapping[str, int] | None = None,
    tar_members: Iterable[tarfile.TarInfo] = (),
) -> bytes:
    """An sdist (``fmt`` "tar.gz" or "zip") for ``name`` ``version``.

    ``omit`` names files of the top directory ("PKG-INFO", "pyproject.toml")
    to leave out; ``extra_members`` paths are taken as they are (not under
    the top directory), so a second top-level entry is one key away.
    ``metadata_padding`` appends newlines to PKG-INFO (held in memory for
    tar.gz, so keep it moderate there). ``unix_modes`` applies to a zip,
    ``tar_members`` (entries without content, appended) to a tar.gz.
    """
    module = escaped(name)
    top = top_dir if top_dir is not None else f"{module}-{version}"
    metadata = _metadata_bytes(metadata, name, version, requires_python, requires_dist, description)
    pyproject = (
        f'[project]\nname = "{name}"\nversion = "{version}"\n\n'
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
    )
    files: dict[str, Content] = {
        f"{top}/PKG-INFO": _padded(metadata, metadata_padding),
        f"{top}/pyproject.toml": pyproject.encode(),
        f"{top}/{module}/__init__.py": f'__version__ = "{version}"\n'.encode(),
    }
    for member in omit:
        del files[f"{top}/{member}"]
    files.update(extra_members or {})
    if fmt == "zip":
        return make_zip(files, compression=compression, unix_modes=unix_modes)
    if fmt == "tar.gz":
        entries = [(_tar_file(path), _joined(content)) for path, content in files.items()]
        return make_tar_gz(entries + [(info, None) for info in tar_members])
    raise ValueError(f"unknown sdist format {fmt!r}")


def make_zip(
    entries: Mapping[str, Content],
    *,
    compression: int = zipfile.ZIP_DEFLATED,
    unix_modes: Mapping[str, int] | None = None,
) -> bytes:
    """A zip of ``entries`` in order; a path ending in "/" is a directory.

    ``unix_modes`` gives members the mode bits a unix zip tool would store
    (file type included) in their external attributes.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, content in entries.items():
            info = zipfile.ZipInfo(path, date_time=EPOCH)
            info.compress_type = compression
            if unix_modes and path in unix_modes:
                info.create_system = 3  # unix
                info.external_attr = unix_modes[path] << 16
            with archive.open(info, "w") as member:
                for chunk in [content] if isinstance(content, bytes) else content:
                    member.write(chunk)
    return buffer.getvalue()


def make_tar_gz(entries: Iterable[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    """A tar.gz of raw entries: build TarInfos for links, pax headers, devices..."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for info, content in entries:
            if content is not None:
                info.size = len(content)
            archive.addfile(info, io.BytesIO(content) if content is not None else None)
    return gzip.compress(buffer.getvalue(), mtime=0)


def forge_zip_member(
    data: bytes, member: str, *, flag_bits: int | None = None, file_size: int | None = None
) -> bytes:
    """Rewrite a member's flags or declared size in both of its zip headers.

    zipfile cannot write an encrypted member or a lying size; this makes
    the archives attackers would send. The member must be stored without
    zip64 extras (sizes below 4 GiB) for ``file_size`` to take effect.
    """
    forged = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        local = archive.getinfo(member).header_offset
        central = _central_entry(data, archive.start_dir, member)
    # Offsets of (flags, uncompressed size) in the local and the central header.
    for header, flags_at, size_at in ((local, 6, 22), (central, 8, 24)):
        if flag_bits is not None:
            struct.pack_into("<H", forged, header + flags_at, flag_bits)
        if file_size is not None:
            struct.pack_into("<I", forged, header + size_at, file_size)
    return bytes(forged)


def tar_entry(path: str, kind: bytes = tarfile.REGTYPE, **attributes: object) -> tarfile.TarInfo:
    """A TarInfo with reproducible defaults, for :func:`make_tar_gz`."""
    info = _tar_file(path)
    info.type = kind
    for key, value in attributes.items():
        setattr(info, key, value)
    return info


def _tar_file(path: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.mtime = 0
    info.mode = 0o644
    return info


def _central_entry(data: bytes, start: int, member: str) -> int:
    """The offset of ``member``'s central directory entry."""
    position = start
    while data[position : position + 4] == b"PK\x01\x02":
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", data, position + 28)
        name = data[position + 46 : position + 46 + name_length].decode()
        if name == member:
            return position
        position += 46 + name_length + extra_length + comment_length
    raise KeyError(member)


def _record(files: Mapping[str, bytes], record_path: str, metadata_padding: int) -> bytes:
    """A RECORD listing every file with its hash, as installers check it."""
    lines = []
    for path, content in files.items():
        if path.endswith("/METADATA") and metadata_padding:
            digest = hashlib.sha256()
            for chunk in _padded(content, metadata_padding):
                digest.update(chunk)
            size = len(content) + metadata_padding
        else:
            digest = hashlib.sha256(content)
            size = len(content)
        encoded = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
        lines.append(f"{path},sha256={encoded},{size}\n")
    lines.append(f"{record_path},,\n")
    return "".join(lines).encode()


def _padded(content: bytes, padding: int) -> Iterator[bytes]:
    """``content`` then ``padding`` newlines, as chunks."""
    yield content
    whole, rest = divmod(padding, len(_PADDING_CHUNK))
    for _ in range(whole):
        yield _PADDING_CHUNK
    yield _PADDING_CHUNK[:rest]


def _joined(content: Content) -> bytes:
    return content if isinstance(content, bytes) else b"".join(content)


def _metadata_bytes(
    given: str | bytes | None,
    name: str,
    version: str,
    requires_python: str | None,
    requires_dist: Sequence[str],
    description: str | None,
) -> bytes:
    """The METADATA or PKG-INFO of an archive: ``given`` as it is (broken, maybe, on
    purpose), else well-formed core metadata of the other arguments."""
    if given is None:
        given = metadata_text(
            name,
            version,
            requires_python=requires_python,
            requires_dist=requires_dist,
            description=description,
        )
    return given.encode() if isinstance(given, str) else given
