"""StreamingForm: the same fields and digests whatever the chunking."""

from __future__ import annotations

import hashlib
import os

import pytest
from http_harness import multipart

from ministry.core.errors import BadRequest, TooLarge
from ministry.web.http.form import FormLimits, StreamingForm

DATA = os.urandom(200_000)


def feed(body: bytes, content_type: str, tmp_path, chunk: int, limits: FormLimits | None = None):
    boundary = content_type.split("boundary=")[1]
    paths = iter(tmp_path / f"staged-{n}" for n in range(10))
    form = StreamingForm(boundary, lambda: str(next(paths)), limits or FormLimits())
    for start in range(0, len(body), chunk):
        form.write(body[start : start + chunk])
    return form


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20], ids=lambda n: f"{n}-byte chunks")
def test_fields_and_file_survive_any_chunking(tmp_path, chunk):
    body, content_type = multipart(
        [("name", "tidy"), ("classifiers", "A"), ("classifiers", "B"), ("summary", "")],
        [("content", "tidy-1.0.tar.gz", DATA if chunk > 1 else DATA[:5000])],
    )
    form = feed(body, content_type, tmp_path, chunk)
    fields, received = form.result()
    data = DATA if chunk > 1 else DATA[:5000]
    assert fields == {"name": ["tidy"], "classifiers": ["A", "B"], "summary": [""]}
    assert received.filename == "tidy-1.0.tar.gz"
    assert received.size == len(data)
    assert received.sha256 == hashlib.sha256(data).hexdigest()
    assert received.md5 == hashlib.md5(data).hexdigest()
    assert received.blake2b_256 == hashlib.blake2b(data, digest_size=32).hexdigest()
    with open(form.staging_path, "rb") as staged:
        assert staged.read() == data
    form.close()
    assert not os.path.exists(form.staging_path)


def test_an_oversized_field_is_refused_without_buffering_it(tmp_path):
    body, content_type = multipart([("description", "x" * 10_000)])
    form = feed(body, content_type, tmp_path, 1024, FormLimits(max_field=1000))
    with pytest.raises(TooLarge, match="description"):
        form.result()


def test_two_files_in_content_are_refused(tmp_path):
    body, content_type = multipart([], [("content", "a.whl", b"1"), ("content", "b.whl", b"2")])
    form = feed(body, content_type, tmp_path, 4096)
    with pytest.raises(BadRequest, match="More than one file"):
        form.result()
    form.close()
    assert list(tmp_path.iterdir()) == []


def test_an_unfinished_body_is_refused(tmp_path):
    body, content_type = multipart([("name", "tidy")])
    form = feed(body[:-10], content_type, tmp_path, 4096)
    with pytest.raises(BadRequest, match="multipart"):
        form.result()


def test_a_legacy_register_body_with_bare_newlines_is_read(tmp_path):
    body, content_type = multipart([(":action", "submit"), ("name", "old"), ("version", "1")])
    legacy = b"\n" + body.replace(b"\r\n", b"\n")
    form = feed(legacy, content_type, tmp_path, 16)
    fields, received = form.result()
    assert fields == {":action": ["submit"], "name": ["old"], "version": ["1"]}
    assert received is None
