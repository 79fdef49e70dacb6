"""The legacy upload form: parsing, checking the file against it, and the record it makes."""

import hashlib
import io
from datetime import UTC, datetime

import pytest
from archive_factory import make_sdist, make_wheel, metadata_text, sdist_filename, wheel_filename
from packaging.version import Version

from ministry.core.archives import read_core_metadata
from ministry.core.errors import BadRequest
from ministry.core.metadata import CoreMetadata, parse_core_metadata
from ministry.core.models import SDIST, WHEEL, FileRecord
from ministry.core.uploads import (
    ReceivedFile,
    UploadForm,
    build_record,
    check_file,
    parse_form,
    registration,
)

WHEEL_BYTES = make_wheel("foo", "1.0", requires_python=">=3.9")
WHEEL_NAME = wheel_filename("foo", "1.0")
NOW = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def received(data: bytes = WHEEL_BYTES, filename: str = WHEEL_NAME) -> ReceivedFile:
    """What the web layer reports after streaming ``data`` to disk."""
    return ReceivedFile(
        filename=filename,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        blake2b_256=hashlib.blake2b(data, digest_size=32).hexdigest(),
        md5=hashlib.md5(data).hexdigest(),
    )


def fields(data: bytes = WHEEL_BYTES, **changes: str | list[str] | None) -> dict[str, list[str]]:
    """The fields twine sends for foo 1.0 as a wheel; a change of None removes a field."""
    digests = received(data)
    values: dict[str, str | list[str] | None] = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": "foo",
        "version": "1.0",
        "filetype": "bdist_wheel",
        "pyversion": "py3",
        "metadata_version": "2.1",
        "summary": "A package built by the test suite",
        "sha256_digest": digests.sha256,
        "blake2_256_digest": digests.blake2b_256,
        "md5_digest": digests.md5,
    }
    values.update(changes)
    return {
        key: value if isinstance(value, list) else [value]
        for key, value in values.items()
        if value is not None
    }


def form(data: bytes = WHEEL_BYTES, **changes: str | list[str] | None) -> UploadForm:
    return parse_form(fields(data, **changes))


def refusal(call, *args) -> str:
    """Run a call that must be refused with a 400 and return its message."""
    with pytest.raises(BadRequest) as caught:
        call(*args)
    assert type(caught.value) is BadRequest
    assert caught.value.status == 400
    return caught.value.message


# parse_form


def test_parse_form_reads_a_twine_upload():
    parsed = form()
    assert parsed.action == "file_upload"
    assert parsed.protocol_version == "1"
    assert (parsed.name, parsed.version, parsed.filetype) == ("foo", "1.0", "bdist_wheel")
    assert (parsed.pyversion, parsed.metadata_version) == ("py3", "2.1")
    assert parsed.sha256_digest == received().sha256
    assert parsed.fields["summary"] == ["A package built by the test suite"]


@pytest.mark.parametrize(
    ("changes", "attribute", "expected"),
    [
        pytest.param({"pyversion": ""}, "pyversion", None, id="an empty field counts as absent"),
        pytest.param({"md5_digest": None}, "md5_digest", None, id="a missing digest is none"),
        pytest.param(
            {"protocol_version": None}, "protocol_version", "1", id="protocol 1 is implied"
        ),
        pytest.param(
            {"protocol_version": ""}, "protocol_version", "1", id="an empty protocol is 1"
        ),
        pytest.param({"name": ["foo", "foo"]}, "name", "foo", id="an identical repeat is accepted"),
        pytest.param(
            {":action": "submit", "version": None, "filetype": None},
            "version",
            None,
            id="a registration needs no version",
        ),
    ],
)
def test_parse_form_treats_empty_and_missing_fields_alike(changes, attribute, expected):
    assert getattr(form(**changes), attribute) == expected


def test_parse_form_keeps_repeated_fields_and_drops_empty_values():
    parsed = form(
        classifiers=["Programming Language :: Python", "", "License :: OSI Approved"],
        requires_dist=["", ""],
        comment="",
        some_future_field="kept",
    )
    assert parsed.fields["classifiers"] == [
        "Programming Language :: Python",
        "License :: OSI Approved",
    ]
    assert "requires_dist" not in parsed.fields
    assert "comment" not in parsed.fields
    assert parsed.fields["some_future_field"] == ["kept"]


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        pytest.param(
            {":action": None},
            ["Unsupported ':action' (none given)", "'file_upload' or 'submit'"],
            id="a missing action is refused",
        ),
        pytest.param(
            {":action": ""}, ["Unsupported ':action' (none given)"], id="an empty action is refused"
        ),
        pytest.param(
            {":action": "doc_upload"},
            ["Unsupported ':action' ('doc_upload')"],
            id="documentation uploads are refused",
        ),
        pytest.param(
            {":action": "remove_pkg"},
            ["Unsupported ':action' ('remove_pkg')"],
            id="removal through the form is refused",
        ),
        pytest.param(
            {"protocol_version": "2"},
            ["Unsupported protocol_version '2'", "only '1'"],
            id="protocol version 2 is refused",
        ),
        pytest.param(
            {"name": None},
            ["Missing required field 'name' for ':action' 'file_upload'"],
            id="a missing name is refused",
        ),
        pytest.param(
            {":action": "submit", "name": ""},
            ["Missing required field 'name' for ':action' 'submit'"],
            id="a registration without a name is refused",
        ),
        pytest.param(
            {"name": "-foo-"}, ["Invalid project name '-foo-'"], id="an invalid name is refused"
        ),
        pytest.param(
            {"version": None},
            ["Missing required field 'version' for ':action' 'file_upload'"],
            id="an upload without a version is refused",
        ),
        pytest.param(
            {"version": ""},
            ["Missing required field 'version'"],
            id="an upload with an empty version is refused",
        ),
        pytest.param(
            {"filetype": None},
            ["Missing required field 'filetype'"],
            id="an upload without a filetype is refused",
        ),
        pytest.param(
            {"name": ["foo", "bar"]},
            ["The field 'name' was given more than once, with different values"],
            id="two different names are refused",
        ),
    ],
)
def test_parse_form_refuses_what_it_cannot_serve(changes, fragments):
    message = refusal(parse_form, fields(**changes))
    for fragment in fragments:
        assert fragment in message


# registration


def test_registration_keeps_the_metadata_fields_only():
    submitted = form(
        **{
            ":action": "submit",
            "name": "Foo.Bar",
            "version": "1.0",
            "filetype": None,
            "pyversion": None,
            "classifiers": ["A :: B", "C :: D"],
            "gpg_signature": "-----BEGIN PGP SIGNATURE-----",
        }
    )
    name, display_name, info = registration(submitted)
    assert (name, display_name) == ("foo-bar", "Foo.Bar")
    assert info == {
        "name": ["Foo.Bar"],
        "version": ["1.0"],
        "metadata_version": ["2.1"],
        "summary": ["A package built by the test suite"],
        "classifiers": ["A :: B", "C :: D"],
    }


# check_file

SDIST_BYTES = make_sdist("foo", "1.0")
ZIP_BYTES = make_sdist("foo", "1.0", fmt="zip")


@pytest.mark.parametrize(
    ("upload", "file", "project", "version", "packagetype"),
    [
        pytest.param(form(), received(), "foo", "1.0", WHEEL, id="a wheel with every digest"),
        pytest.param(
            form(SDIST_BYTES, filetype="sdist", pyversion="source"),
            received(SDIST_BYTES, sdist_filename("foo", "1.0")),
            "foo",
            "1.0",
            SDIST,
            id="a tar.gz sdist",
        ),
        pytest.param(
            form(ZIP_BYTES, filetype="sdist"),
            received(ZIP_BYTES, sdist_filename("foo", "1.0", "zip")),
            "foo",
            "1.0",
            SDIST,
            id="a zip sdist",
        ),
        pytest.param(
            form(md5_digest=None, blake2_256_digest=None),
            received(),
            "foo",
            "1.0",
            WHEEL,
            id="only a sha256 digest as twine sends",
        ),
        pytest.param(
            form(md5_digest=None, blake2_256_digest=None, sha256_digest=None),
            received(),
            "foo",
            "1.0",
            WHEEL,
            id="no digest at all",
        ),
        pytest.param(
            form(
                sha256_digest=received().sha256.upper(),
                blake2_256_digest=received().blake2b_256.upper(),
                md5_digest=received().md5.upper(),
            ),
            received(),
            "foo",
            "1.0",
            WHEEL,
            id="upper-case digests",
        ),
        pytest.param(
            form(version="1.0.0"),
            received(),
            "foo",
            "1.0",
            WHEEL,
            id="a form version 1.0.0 equal to a filename version 1.0",
        ),
        pytest.param(
            form(name="FOO"), received(), "foo", "1.0", WHEEL, id="a form name in capitals"
        ),
    ],
)
def test_check_file_accepts_a_file_that_agrees_with_its_form(
    upload, file, project, version, packagetype
):
    parsed = check_file(upload, file)
    assert (parsed.project, parsed.version, parsed.packagetype) == (
        project,
        Version(version),
        packagetype,
    )
    assert parsed.filename == file.filename


OTHER = "0" * 64


@pytest.mark.parametrize(
    ("upload", "file", "fragments"),
    [
        pytest.param(
            form(),
            received(b""),
            [f"The uploaded file {WHEEL_NAME!r} is empty"],
            id="an empty file is refused",
        ),
        pytest.param(
            form(sha256_digest=OTHER),
            received(),
            [f"The sha256_digest does not match the uploaded file {WHEEL_NAME!r}"],
            id="a wrong sha256 digest is refused",
        ),
        pytest.param(
            form(blake2_256_digest=OTHER),
            received(),
            ["The blake2_256_digest does not match the uploaded file"],
            id="a wrong blake2 digest is refused",
        ),
        pytest.param(
            form(md5_digest=OTHER[:32]),
            received(),
            ["The md5_digest does not match the uploaded file"],
            id="a wrong md5 digest is refused",
        ),
        pytest.param(
            form(),
            received(filename="../foo-1.0-py3-none-any.whl"),
            ["Invalid filename '../foo-1.0-py3-none-any.whl'", "path separator"],
            id="a filename with a path is refused",
        ),
        pytest.param(
            form(),
            received(filename="foo-1.0-py3.9.egg"),
            ["Invalid file extension in 'foo-1.0-py3.9.egg'"],
            id="an egg is refused",
        ),
        pytest.param(
            form(filetype="sdist"),
            received(),
            ["The filetype 'sdist' does not match the file", "a .whl file is 'bdist_wheel'"],
            id="a wheel sent as an sdist is refused",
        ),
        pytest.param(
            form(SDIST_BYTES),
            received(SDIST_BYTES, sdist_filename("foo", "1.0")),
            ["The filetype 'bdist_wheel' does not match the file 'foo-1.0.tar.gz'"],
            id="an sdist sent as a wheel is refused",
        ),
        pytest.param(
            form(filetype="bdist_egg"),
            received(),
            ["Unsupported filetype 'bdist_egg'", "'bdist_wheel' or 'sdist'"],
            id="an unknown filetype is refused",
        ),
        pytest.param(
            form(name="bar"),
            received(),
            ["The form's name 'bar' does not match the filename", "(project 'foo')"],
            id="a form name other than the filename's is refused",
        ),
        pytest.param(
            form(version="2.0"),
            received(),
            ["The form's version '2.0' does not match the filename", "(version '1.0')"],
            id="a form version other than the filename's is refused",
        ),
        pytest.param(
            form(version="latest"),
            received(),
            ["The form's version 'latest' is not a valid PEP 440 version"],
            id="an invalid form version is refused",
        ),
    ],
)
def test_check_file_refuses_a_file_that_disagrees_with_its_form(upload, file, fragments):
    message = refusal(check_file, upload, file)
    for fragment in fragments:
        assert fragment in message


# build_record


def test_build_record_describes_an_uploaded_wheel():
    upload, file = form(), received()
    parsed = check_file(upload, file)
    metadata_bytes = read_core_metadata(io.BytesIO(WHEEL_BYTES), parsed)
    record, display_name = build_record(
        upload, file, parsed, parse_core_metadata(metadata_bytes), metadata_bytes, NOW
    )
    assert display_name == "foo"
    assert record == FileRecord(
        project="foo",
        filename=WHEEL_NAME,
        version="1.0",
        packagetype=WHEEL,
        size=len(WHEEL_BYTES),
        sha256=file.sha256,
        blake2b_256=file.blake2b_256,
        md5=file.md5,
        upload_time=NOW,
        requires_python=">=3.9",
        python_version="py3",
        metadata_sha256=hashlib.sha256(metadata_bytes).hexdigest(),
    )


def test_build_record_describes_an_uploaded_sdist_by_its_display_name():
    data = make_sdist("Foo.Bar", "2.0")
    upload = form(data, name="foo-bar", version="2.0", filetype="sdist", pyversion=None)
    file = received(data, sdist_filename("Foo.Bar", "2.0"))
    parsed = check_file(upload, file)
    metadata_bytes = read_core_metadata(io.BytesIO(data), parsed)
    record, display_name = build_record(
        upload, file, parsed, parse_core_metadata(metadata_bytes), metadata_bytes, NOW
    )
    assert display_name == "Foo.Bar"
    assert (record.project, record.version, record.packagetype) == ("foo-bar", "2.0", SDIST)
    assert record.python_version == "source"
    assert record.requires_python is None
    assert record.metadata_sha256 == hashlib.sha256(metadata_bytes).hexdigest()


def record_for(metadata: CoreMetadata, **changes: str | list[str] | None) -> tuple[FileRecord, str]:
    upload, file = form(**changes), received()
    parsed = check_file(upload, file)
    return build_record(upload, file, parsed, metadata, b"METADATA", NOW)


@pytest.mark.parametrize(
    ("metadata", "changes", "attribute", "expected"),
    [
        pytest.param(
            CoreMetadata(name="foo", version="1.0.0"),
            {},
            "version",
            "1.0.0",
            id="a metadata version 1.0.0 equals a filename version 1.0 and is kept as written",
        ),
        pytest.param(
            CoreMetadata(name="foo", version="1.0"),
            {"requires_python": ">=3.10"},
            "requires_python",
            ">=3.10",
            id="requires-python falls back to the form's field",
        ),
        pytest.param(
            CoreMetadata(name="foo", version="1.0", requires_python=">=3.8"),
            {"requires_python": ">=3.10"},
            "requires_python",
            ">=3.8",
            id="requires-python prefers the metadata",
        ),
        pytest.param(
            CoreMetadata(name="foo", version="1.0"),
            {"pyversion": None},
            "python_version",
            "",
            id="a wheel without pyversion has an empty python version",
        ),
        pytest.param(
            CoreMetadata(name="foo", version="1.0"),
            {},
            "metadata_sha256",
            hashlib.sha256(b"METADATA").hexdigest(),
            id="the metadata digest is of the bytes given",
        ),
    ],
)
def test_build_record_fields(metadata, changes, attribute, expected):
    record, _display_name = record_for(metadata, **changes)
    assert getattr(record, attribute) == expected


@pytest.mark.parametrize(
    ("metadata", "fragments"),
    [
        pytest.param(
            CoreMetadata(name="bar", version="1.0"),
            ["The metadata Name 'bar' does not match the filename", "(project 'foo')"],
            id="a metadata name other than the filename's is refused",
        ),
        pytest.param(
            CoreMetadata(name="foo", version="1.1"),
            ["The metadata Version '1.1' does not match the filename", "(version '1.0')"],
            id="a metadata version other than the filename's is refused",
        ),
        pytest.param(
            CoreMetadata(name="foo", version="one"),
            ["The metadata Version 'one' is not a valid PEP 440 version"],
            id="an invalid metadata version is refused",
        ),
        pytest.param(
            CoreMetadata(name="foo!", version="1.0"),
            ["Invalid project name 'foo!'"],
            id="an invalid metadata name is refused",
        ),
    ],
)
def test_build_record_refuses_metadata_that_disagrees_with_the_filename(metadata, fragments):
    upload, file = form(), received()
    parsed = check_file(upload, file)
    message = refusal(build_record, upload, file, parsed, metadata, b"", NOW)
    for fragment in fragments:
        assert fragment in message


def test_a_wheel_whose_metadata_names_another_project_is_refused_end_to_end():
    data = make_wheel("foo", "1.0", metadata=metadata_text("bar", "1.0"))
    upload, file = form(data), received(data)
    parsed = check_file(upload, file)
    metadata_bytes = read_core_metadata(io.BytesIO(data), parsed)
    message = refusal(
        build_record, upload, file, parsed, parse_core_metadata(metadata_bytes), metadata_bytes, NOW
    )
    assert "The metadata Name 'bar' does not match the filename" in message
