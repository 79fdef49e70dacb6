"""The name policy's rules, as tables: patterns, reserved names, allow and deny, first owners."""

from __future__ import annotations

import pytest

from ministry.core.name_policy import NamePolicy, parse_name_pattern


@pytest.mark.parametrize(
    ("given", "pattern"),
    [
        ("acme-*", "acme-*"),
        ("acme_*", "acme-*"),
        ("ACME.*", "acme-*"),
        ("acme__.-*", "acme-*"),
        ("  acme*  ", "acme*"),
        ("*-internal", "*-internal"),
        ("acme?", "acme?"),
        ("exact_Name", "exact-name"),
    ],
)
def test_patterns_are_normalised_like_names(given, pattern):
    assert parse_name_pattern(given) == pattern


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("acme-[ab]*", "'[]'"),
        ("acme/*", "'/'"),
        ("acme *", "' '"),
        ("acmé-*", "'é'"),
    ],
)
def test_patterns_with_other_characters_are_refused(given, why):
    with pytest.raises(ValueError) as caught:
        parse_name_pattern(given)
    assert why in str(caught.value)


RESERVED = NamePolicy(reserved=tuple(parse_name_pattern(p) for p in ("acme_*", "Secret")))


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("acme-foo", "acme-*"),
        ("acme_foo", "acme-*"),
        ("Acme.Foo", "acme-*"),
        ("ACME--FOO", "acme-*"),
        ("secret", "secret"),
        ("SeCrEt", "secret"),
        ("acme", None),  # the pattern asks for a separator after the prefix
        ("acmefoo", None),
        ("not-acme-foo", None),
        ("secrets", None),
        ("requests", None),
    ],
)
def test_reserved_names_match_on_the_canonical_name(name, pattern):
    assert RESERVED.reserved_by(name) == pattern


def _policy(reserved=(), allow=(), deny=()) -> NamePolicy:
    def parsed(patterns):
        return tuple(parse_name_pattern(pattern) for pattern in patterns)

    return NamePolicy(parsed(reserved), parsed(allow), parsed(deny))


@pytest.mark.parametrize(
    ("policy", "name", "refused"),
    [
        (_policy(), "anything", None),
        (_policy(reserved=["acme-*"]), "acme_billing", "reserved for this index"),
        (_policy(reserved=["acme-*"]), "requests", None),
        (_policy(deny=["evil*"]), "Evil_Package", "upstream-deny 'evil*'"),
        (_policy(deny=["evil*"]), "good", None),
        (_policy(allow=["requests", "urllib3"]), "requests", None),
        (_policy(allow=["requests", "urllib3"]), "URLLib3", None),
        (_policy(allow=["requests", "urllib3"]), "flask", "matches no upstream-allow"),
        (_policy(allow=["django*"], deny=["django-evil"]), "django-rest", None),
        (_policy(allow=["django*"], deny=["django-evil"]), "django_evil", "upstream-deny"),
        # A reserved name is never proxied, whatever the allow list says.
        (_policy(reserved=["acme-*"], allow=["*"]), "acme-foo", "reserved for this index"),
    ],
)
def test_what_may_come_from_the_upstream(policy, name, refused):
    refusal = policy.upstream_refusal(name)
    if refused is None:
        assert refusal is None
    else:
        assert refusal is not None and refused in refusal


def test_a_refusal_names_the_canonical_name_and_the_pattern():
    refusal = _policy(reserved=["acme_*"]).upstream_refusal("Acme.Billing")
    assert refusal == (
        "acme-billing is reserved for this index (reserved pattern 'acme-*'): "
        "it is never fetched from the upstream, only uploaded here."
    )


@pytest.mark.parametrize(
    ("name", "admin", "refused"),
    [
        ("acme-foo", False, True),
        ("ACME_foo", False, True),
        ("acme-foo", True, False),
        ("requests", False, False),
        ("requests", True, False),
    ],
)
def test_only_an_administrator_becomes_first_owner_of_a_reserved_name(name, admin, refused):
    refusal = _policy(reserved=["acme-*"]).claim_refusal(name, admin)
    assert (refusal is not None) == refused
    if refused:
        assert "only an administrator may create it" in refusal
