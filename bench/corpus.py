"""The corpus every server is loaded with: real distributions and synthetic wheels.

Real files come from ``pip download`` (whatever index pip is configured
with on this machine), once, into ``bench/.cache/corpus/real``: real
archives exercise metadata extraction the way users' uploads do, and give
twine and ``pip install`` something genuine to move. The synthetic corpus
is generated on the fly by ``make_wheel`` (deterministic bytes, about 1 KB
each), because 300,000 downloaded files would be neither polite nor fast.
Two large files are written once to the cache: a 1 MB wheel (the download
benchmark, incompressible so no server can cheat with compression) and a
1 GiB wheel (the upload-memory benchmark), streamed to disk so building it
needs no gigabyte of memory here either.
"""

from __future__ import annotations

import base64
import hashlib
import random
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from common import REPO, make_sdist, make_wheel, sdist_filename, wheel_filename
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

CACHE = REPO / "bench" / ".cache"
CORPUS = CACHE / "corpus"

#: Projects and versions fetched for the real corpus; a wheel and an sdist
#: of each. Small, dependency-free, and all published as both formats.
REAL_PINS: dict[str, tuple[str, ...]] = {
    "six": ("1.15.0", "1.16.0", "1.17.0"),
    "idna": ("3.7", "3.8", "3.10"),
    "packaging": ("23.2", "24.1", "24.2"),
    "attrs": ("23.2.0", "24.2.0", "24.3.0"),
    "certifi": ("2024.7.4", "2024.8.30", "2024.12.14"),
    "urllib3": ("2.2.2", "2.2.3", "2.3.0"),
    "charset-normalizer": ("3.3.2", "3.4.0", "3.4.1"),
}

#: The project pip installs from each server (no dependencies of its own).
PIP_INSTALL_PROJECT = "attrs"

#: The synthetic project every page benchmark reads: present at every size.
PAGE_PROJECT = "bench-000042"

ONE_MEG_PROJECT = "bench-onemeg"
BIG_PROJECT = "bench-gigabyte"


@dataclass(frozen=True)
class Dist:
    """One distribution file on disk and the names an upload form needs."""

    path: Path
    name: str
    version: str

    @property
    def filename(self) -> str:
        return self.path.name


def _parse(path: Path) -> Dist:
    if path.name.endswith(".whl"):
        name, version, _, _ = parse_wheel_filename(path.name)
    else:
        name, version = parse_sdist_filename(path.name)
    return Dist(path, str(name), str(version))


def real_corpus(cache: Path = CORPUS) -> list[Dist]:
    """The downloaded wheels and sdists, fetched on the first run only.

    One ``pip download`` per (version slot, format): pip refuses two pins of
    one project in a call, and one call per file would take a minute.
    """
    where = cache / "real"
    done = where / ".complete"
    if not done.exists():
        where.mkdir(parents=True, exist_ok=True)
        slots = max(len(versions) for versions in REAL_PINS.values())
        for slot in range(slots):
            pins = [
                f"{project}=={versions[slot]}"
                for project, versions in REAL_PINS.items()
                if slot < len(versions)
            ]
            for fmt in ("--only-binary=:all:", "--no-binary=:all:"):
                command = [sys.executable, "-m", "pip", "download", "--no-deps", fmt]
                command += ["--dest", str(where), "--quiet", *pins]
                print(f"  pip download {fmt} {' '.join(pins)}", flush=True)
                subprocess.run(command, check=True)
        done.write_text("ok\n")
    found = sorted(p for p in where.iterdir() if p.name.endswith((".whl", ".tar.gz", ".zip")))
    return [_parse(path) for path in found]


_TWINE_CHECK = """
import sys
from twine.package import PackageFile
for path in sys.argv[1:]:
    try:
        PackageFile.from_filename(path, None)
    except Exception:
        continue
    print(path)
"""


def twine_accepts(dists: list[Dist]) -> list[Dist]:
    """The files twine itself agrees to upload (cached beside the corpus).

    Recent twine refuses some real releases before sending anything (attrs
    23.2.0 declares License-Expression under Metadata-Version 2.1): such a
    file measures twine, not the server.
    """
    if not dists:
        return []
    cache = dists[0].path.parent / ".twine-accepts"
    if not cache.exists():
        command = [sys.executable, "-c", _TWINE_CHECK, *(str(d.path) for d in dists)]
        found = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        cache.write_text(found)
    accepted = {Path(line).name for line in cache.read_text().split()}
    return [d for d in dists if d.filename in accepted]


def twine_set(dists: list[Dist], count: int = 20) -> list[Dist]:
    """The ``count`` real files twine uploads: both formats, many projects.

    Taken round-robin over projects so the upload touches many project
    pages, not one project's twenty files; only files twine accepts.
    """
    by_project: dict[str, list[Dist]] = {}
    for dist in twine_accepts(dists):
        by_project.setdefault(canonicalize_name(dist.name), []).append(dist)
    chosen: list[Dist] = []
    while len(chosen) < count and any(by_project.values()):
        for files in by_project.values():
            if files and len(chosen) < count:
                chosen.append(files.pop())
    return chosen


def synthetic_name(number: int) -> str:
    return f"bench-{number:06d}"


def synthetic_jobs(first: int, count: int, versions: int = 3) -> Iterator[tuple[str, str]]:
    """(project, version) of ``count`` projects numbered from ``first``.

    The same names as ``common.seed`` so results compare with bench/basic.py.
    """
    for number in range(first, first + count):
        for v in range(versions):
            yield synthetic_name(number), f"1.{v}"


def synthetic_wheel(name: str, version: str) -> tuple[str, bytes]:
    """A small valid wheel, the same bytes every time for the same arguments."""
    return wheel_filename(name, version), make_wheel(name, version)


def synthetic_sdist(name: str, version: str) -> tuple[str, bytes]:
    """A small valid sdist (.tar.gz), the same bytes every time for the same arguments."""
    return sdist_filename(name, version), make_sdist(name, version)


def one_meg_wheel(cache: Path = CORPUS) -> Dist:
    """A valid wheel of about 1 MB: 1 MiB of seeded random bytes, stored."""
    path = cache / wheel_filename(ONE_MEG_PROJECT, "1.0")
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        blob = random.Random(8).randbytes(1024 * 1024)
        data = make_wheel(
            ONE_MEG_PROJECT,
            "1.0",
            extra_members={"bench_onemeg/blob.bin": blob},
            compression=zipfile.ZIP_STORED,
        )
        path.write_bytes(data)
    return Dist(path, ONE_MEG_PROJECT, "1.0")


def big_wheel(cache: Path = CORPUS, size: int = 1024**3) -> Dist:
    """A valid wheel with one stored member of ``size`` bytes, streamed to disk.

    The member is zeros (the content is irrelevant: stored members are not
    compressed, so the file really is ``size`` bytes long); its RECORD line
    carries the right hash so pip could install it.
    """
    path = cache / wheel_filename(BIG_PROJECT, "1.0")
    if path.exists() and path.stat().st_size > size:
        return Dist(path, BIG_PROJECT, "1.0")
    cache.mkdir(parents=True, exist_ok=True)
    module = BIG_PROJECT.replace("-", "_")
    dist_info = f"{module}-1.0.dist-info"
    chunk = bytes(1024 * 1024)
    digest = hashlib.sha256()
    record: list[str] = []
    partial = path.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:

        def small(member: str, data: bytes) -> None:
            archive.writestr(zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0)), data)
            hashed = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{member},sha256={hashed.decode()},{len(data)}\n")

        small(f"{module}/__init__.py", b'__version__ = "1.0"\n')
        info = zipfile.ZipInfo(f"{module}/blob.bin", date_time=(1980, 1, 1, 0, 0, 0))
        with archive.open(info, "w", force_zip64=True) as member:
            for _ in range(size // len(chunk)):
                member.write(chunk)
                digest.update(chunk)
        hashed = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
        record.append(f"{module}/blob.bin,sha256={hashed},{size}\n")
        small(
            f"{dist_info}/METADATA",
            f"Metadata-Version: 2.1\nName: {BIG_PROJECT}\nVersion: 1.0\n".encode(),
        )
        small(
            f"{dist_info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        record.append(f"{dist_info}/RECORD,,\n")
        archive.writestr(
            zipfile.ZipInfo(f"{dist_info}/RECORD", date_time=(1980, 1, 1, 0, 0, 0)),
            "".join(record),
        )
    partial.rename(path)
    return Dist(path, BIG_PROJECT, "1.0")


def file_digests(path: Path) -> tuple[str, str]:
    """(sha256, blake2b-256) hex digests, read in chunks, cached beside the file."""
    sidecar = path.with_name(path.name + ".digests")
    if sidecar.exists() and sidecar.stat().st_mtime >= path.stat().st_mtime:
        sha, blake = sidecar.read_text().split()
        return sha, blake
    sha256 = hashlib.sha256()
    blake2 = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            sha256.update(chunk)
            blake2.update(chunk)
    sidecar.write_text(f"{sha256.hexdigest()} {blake2.hexdigest()}\n")
    return sha256.hexdigest(), blake2.hexdigest()
