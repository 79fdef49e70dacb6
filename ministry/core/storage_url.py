"""``--storage URL``: where distribution files live, checked before anything starts.

Two kinds, named by URL so that one option (and one TOML key) says it all:

- ``file:DIR`` (or ``file:///abs/dir``): a directory, the default being
  ``<data-dir>/files``. Several daemons may share it only through a mount.
- ``s3://BUCKET[/PREFIX]?endpoint=http://HOST:PORT[&region=R]``: a bucket of
  an S3-compatible object store. Credentials are not part of the URL: they
  come from the standard AWS variables or shared-credentials file, so the
  URL can be logged and shown on ``/health`` as it is.

A typo must stop start-up with a one-line message, not fail the first
upload, hence the strict parsing (unknown query keys are refused).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

#: S3's rules for bucket names (3-63 characters; lowercase letters, digits,
#: dots and hyphens; starting and ending with a letter or digit).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX_PART = re.compile(r"[A-Za-z0-9._~-]+")
_QUERY_KEYS = ("endpoint", "region")


@dataclass(frozen=True)
class FileStorage:
    """Blobs in a directory."""

    directory: str

    @property
    def url(self) -> str:
        return f"file:{self.directory}"


@dataclass(frozen=True)
class S3Storage:
    """Blobs in a bucket; ``prefix`` ("" or ``a/b``) keeps several indexes in one bucket."""

    bucket: str
    prefix: str = ""
    endpoint: str | None = None
    region: str | None = None

    @property
    def url(self) -> str:
        path = f"/{self.prefix}" if self.prefix else ""
        query = {key: value for key in _QUERY_KEYS if (value := getattr(self, key))}
        # ":" and "/" kept as they are: the URL is read in logs and on /health.
        return f"s3://{self.bucket}{path}" + (f"?{urlencode(query, safe=':/')}" if query else "")

    def below(self, part: str) -> S3Storage:
        """The same bucket, one prefix level down (uploads and proxied files apart)."""
        prefix = f"{self.prefix}/{part}" if self.prefix else part
        return S3Storage(self.bucket, prefix, self.endpoint, self.region)


Storage = FileStorage | S3Storage


def parse_storage_url(text: str) -> Storage:
    """The storage a ``--storage`` value names; ValueError with a one-line reason."""
    text = text.strip()
    if text.startswith("file:"):
        directory = text.removeprefix("file:")
        if directory.startswith("//"):
            parts = urlsplit(text)
            if parts.netloc not in ("", "localhost"):
                raise ValueError(f"a file: URL names a local directory, not host {parts.netloc!r}")
            directory = parts.path
        if not directory:
            raise ValueError("file: needs a directory, e.g. file:/srv/ministry/files")
        return FileStorage(directory)
    if text.startswith("s3://"):
        return _parse_s3(text)
    scheme = text.partition(":")[0] if ":" in text else text
    raise ValueError(
        f"unknown storage {scheme!r}: expected file:DIR or "
        "s3://BUCKET[/PREFIX]?endpoint=http://HOST:PORT"
    )


def _parse_s3(text: str) -> S3Storage:
    parts = urlsplit(text)
    if "@" in parts.netloc:
        raise ValueError(
            "s3: URLs carry no credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    bucket = parts.netloc
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ValueError(
            f"{bucket!r} is not a bucket name (3-63 lowercase letters, digits, dots, hyphens)"
        )
    prefix_parts = [part for part in parts.path.split("/") if part]
    if any(not _PREFIX_PART.fullmatch(part) or part in (".", "..") for part in prefix_parts):
        raise ValueError(f"bad key prefix {parts.path!r}: letters, digits and ._~- only")
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    unknown = sorted(set(query) - set(_QUERY_KEYS))
    if unknown:
        raise ValueError(f"unknown s3: parameter {unknown[0]!r}: only endpoint and region")
    if any(len(values) > 1 for values in query.values()):
        raise ValueError("each s3: parameter may be given once")
    endpoint = query.get("endpoint", [None])[0]
    if endpoint is not None and not re.fullmatch(r"https?://[^\s/@]+/?", endpoint):
        # Not echoed: a mistyped endpoint may carry credentials (user:password@).
        raise ValueError("endpoint must be http://HOST:PORT or https://HOST, with no credentials")
    region = query.get("region", [None])[0]
    if region is not None and not re.fullmatch(r"[a-z0-9-]+", region):
        raise ValueError(f"bad region {region!r}")
    return S3Storage(
        bucket, "/".join(prefix_parts), endpoint.rstrip("/") if endpoint else None, region
    )
