"""The rule a project's summary is kept by (``ministry.core.summaries``), table by table."""

from __future__ import annotations

import pytest

from ministry.core.summaries import (
    MAX_SUMMARY,
    metadata_summary,
    one_line,
    registered_summary,
    replacement,
    supersedes,
)


@pytest.mark.parametrize(
    ("version", "current", "wins"),
    [
        ("1.0", None, True),  # nothing kept yet
        (None, None, True),
        ("2.0", "1.0", True),
        ("1.0.0", "1.0", True),  # equal as versions: the later word wins
        ("1.0", "1.0rc1", True),
        ("1.0.post1", "1.0", True),
        ("10.0", "9.0", True),  # compared as versions, not as text
        ("1.0rc1", "1.0", False),
        ("1.0.dev1", "1.0a1", False),
        ("0.9", "1.0", False),
        (None, "1.0", False),  # a registration naming no version
        ("not a version", "1.0", False),
    ],
)
def test_a_summary_replaces_one_from_an_older_or_equal_release(
    version: str | None, current: str | None, wins: bool
) -> None:
    assert supersedes(version, current) is wins


def test_a_summary_without_a_version_keeps_the_version_kept() -> None:
    assert replacement("Text", None, None) == ("Text", None)
    assert replacement("Text", "bad version", None) == ("Text", None)
    assert replacement("Text", "2.0", "1.0") == ("Text", "2.0")
    assert replacement("Text", "0.1", "1.0") is None


def test_a_summary_is_kept_as_one_bounded_line() -> None:
    assert one_line("  Two\n   lines\tand tabs ") == "Two lines and tabs"
    assert one_line("é" * (MAX_SUMMARY + 10)) == "é" * MAX_SUMMARY


def test_a_registration_offers_its_summary_and_version() -> None:
    assert registered_summary({"summary": ["S"], "version": ["1.0"]}) == ("S", "1.0")
    assert registered_summary({"summary": ["S"]}) == ("S", None)
    assert registered_summary({"version": ["1.0"]}) is None


def test_the_summary_of_stored_metadata() -> None:
    metadata = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nSummary: A demo\n\nBody\n"
    assert metadata_summary(metadata) == "A demo"
    assert metadata_summary(b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n") == ""
    assert metadata_summary(b"\xff\xfe not metadata") == ""
