"""The name policy's settings: ``reserved`` (``--reserve``), ``upstream-allow`` and ``-deny``."""

from __future__ import annotations

import pytest
from test_proxy_config import settings_from

from ministry.config import ConfigError, load_settings
from ministry.core.name_policy import NamePolicy


@pytest.mark.parametrize(
    ("argv", "toml", "expected"),
    [
        pytest.param([], "", (), id="none"),
        pytest.param([], 'reserved = ["acme-*", "acme_*"]\n', ("acme-*", "acme-*"), id="TOML"),
        pytest.param(["--reserve", "Acme.*", "--reserve", "corp-*"], "", ("acme-*", "corp-*")),
        pytest.param(
            ["--reserve", "corp-*"], 'reserved = ["acme-*"]\n', ("corp-*",), id="CLI wins"
        ),
        pytest.param([], 'reserved = "acme-*"\n', ("acme-*",), id="TOML string"),
    ],
)
def test_reserved_patterns_from_the_file_and_the_command_line(tmp_path, argv, toml, expected):
    assert settings_from(tmp_path, argv, toml).reserve == expected


def test_allow_and_deny_lists_make_the_policy(tmp_path):
    settings = settings_from(
        tmp_path,
        ["--upstream-deny", "Evil_*"],
        'upstream-allow = ["requests", "Django*"]\nreserved = ["acme-*"]\n',
    )
    assert settings.name_policy() == NamePolicy(("acme-*",), ("requests", "django*"), ("evil-*",))


@pytest.mark.parametrize(
    ("given", "toml", "message"),
    [
        ({"reserve": ["acme-[ab]"]}, "", "--reserve: 'acme-\\[ab\\]' holds"),
        ({"upstream-allow": [""]}, "", "--upstream-allow: a name pattern must not be empty"),
        ({}, 'reserved = ["a b"]\n', "ministry.toml: reserved: 'a b' holds ' '"),
        ({}, 'upstream_deny = ["x/y"]\n', "ministry.toml: upstream-deny: 'x/y' holds"),
        # The option's own name is not the file's key: one spelling each.
        ({}, 'reserve = ["acme-*"]\n', "unknown setting 'reserve'"),
    ],
)
def test_bad_patterns_name_the_setting(tmp_path, given, toml, message):
    config = None
    if toml:
        path = tmp_path / "ministry.toml"
        path.write_text(toml)
        config = str(path)
    with pytest.raises(ConfigError, match=message):
        load_settings(given, config)
