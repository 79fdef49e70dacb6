"""Cooldown exceptions in the pure core: how a command line names one, what it releases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ministry.core.cooldown import CooldownException, parse_spec, release_key
from ministry.core.errors import BadRequest

AT = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("requests==2.33.0", ("requests", "2.33.0")),
        ("Requests == 2.33", ("requests", "2.33")),
        ("zope.interface==7.0-post1", ("zope-interface", "7.0.post1")),
        ("requests", ("requests", None)),
        ("  My_Package  ", ("my-package", None)),
    ],
)
def test_a_spec_names_a_project_or_one_release(spec, parsed):
    assert parse_spec(spec) == parsed


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("requests>=2", "name a project, or one release as NAME==VERSION"),
        ("requests==2.*", "not a valid version"),
        ("requests==", "not a valid version"),
        ("-bad-==1.0", "Invalid project name"),
        ("requests[socks]", "name a project, or one release"),
    ],
)
def test_a_range_or_a_bad_name_is_refused_with_a_reason(spec, message):
    with pytest.raises(BadRequest, match=message):
        parse_spec(spec)


@pytest.mark.parametrize(
    ("version", "file_version", "covers"),
    [
        ("2.33", "2.33.0", True),
        ("2.33.0", "2.33", True),
        ("2.33", "2.33", True),
        ("2.33", "2.33.1", False),
        ("2.33", "2.33rc1", False),
        (None, "0.0.1", True),
        ("2.33", "not a version", False),
    ],
)
def test_an_exception_covers_its_release_whatever_the_spelling(version, file_version, covers):
    exception = CooldownException("requests", version, "checked", "alice", AT)
    assert exception.covers(file_version) is covers


def test_the_stores_key_an_exception_by_its_release():
    assert release_key("2.33.0") == release_key("2.33") == "2.33"
    assert release_key(None) == ""


def test_an_exception_survives_its_json():
    exception = CooldownException("requests", "2.33", "checked ✓", "alice", AT)
    assert CooldownException.from_json(exception.to_json()) == exception
    assert (exception.spec, CooldownException("requests", None, "", "a", AT).spec) == (
        "requests==2.33",
        "requests",
    )
