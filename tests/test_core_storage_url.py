"""``--storage``: every accepted form, and a one-line reason for every refused one."""

import pytest

from ministry.config import ConfigError, load_settings
from ministry.core.storage_url import FileStorage, S3Storage, parse_storage_url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("file:/srv/files", FileStorage("/srv/files")),
        ("file:relative/dir", FileStorage("relative/dir")),
        ("file:///srv/files", FileStorage("/srv/files")),
        ("file://localhost/srv/files", FileStorage("/srv/files")),
        ("s3://ministry", S3Storage("ministry")),
        ("s3://ministry/", S3Storage("ministry")),
        ("s3://ministry/team/index", S3Storage("ministry", "team/index")),
        (
            "s3://my.bucket-1?endpoint=http://127.0.0.1:8333",
            S3Storage("my.bucket-1", "", "http://127.0.0.1:8333"),
        ),
        (
            "s3://b12/p?endpoint=https://objects.example.test/&region=eu-west-1",
            S3Storage("b12", "p", "https://objects.example.test", "eu-west-1"),
        ),
    ],
)
def test_accepted(text: str, expected: object) -> None:
    assert parse_storage_url(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("/srv/files", "unknown storage '/srv/files'"),
        ("gs://bucket", "unknown storage 'gs'"),
        ("file:", "file: needs a directory"),
        ("file://otherhost/x", "not host 'otherhost'"),
        ("s3://", "is not a bucket name"),
        ("s3://ab", "is not a bucket name"),
        ("s3://Upper", "is not a bucket name"),
        ("s3://a..b", "is not a bucket name"),
        ("s3://key:secret@bucket", "carry no credentials"),
        ("s3://bucket/../up", "bad key prefix"),
        ("s3://bucket/a b", "bad key prefix"),
        ("s3://bucket?endpont=http://h:1", "unknown s3: parameter 'endpont'"),
        ("s3://bucket?endpoint=h:1", "endpoint must be"),
        ("s3://bucket?endpoint=http://u:p@h:1", "endpoint must be"),
        ("s3://bucket?region=a&region=b", "given once"),
        ("s3://bucket?region=EU WEST", "bad region"),
    ],
)
def test_refused(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as caught:
        parse_storage_url(text)
    assert "\n" not in str(caught.value)
    assert "secret" not in str(caught.value) and "u:p@" not in str(caught.value)


def test_the_url_round_trips_without_credentials() -> None:
    storage = parse_storage_url("s3://ministry/team?region=r1&endpoint=http://127.0.0.1:9000")
    assert parse_storage_url(storage.url) == storage
    assert storage.url == "s3://ministry/team?endpoint=http://127.0.0.1:9000&region=r1"
    assert storage.below("upstream") == S3Storage(
        "ministry", "team/upstream", "http://127.0.0.1:9000", "r1"
    )


def test_a_bad_storage_names_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"^--storage: unknown storage 'ftp'"):
        load_settings({"storage": "ftp://x"})
    assert load_settings({}).storage is None
    assert load_settings({"storage": "file:///x"}).storage == "file:/x"
