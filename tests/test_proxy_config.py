"""The proxy's settings: repeatable and flag options, in the TOML file and on the command line."""

from __future__ import annotations

import pytest

from ministry.config import ConfigError, load_settings
from ministry.tap import main_options, makeService

A = "https://pypi.example.test/simple/"
B = "https://mirror.example.test/simple"


def settings_from(tmp_path, argv: list[str], toml: str = ""):
    if toml:
        config = tmp_path / "ministry.toml"
        config.write_text(toml)
        argv = [*argv, "--config", str(config)]
    return main_options(["--data-dir", str(tmp_path), *argv]).settings


@pytest.mark.parametrize(
    ("argv", "toml", "expected"),
    [
        pytest.param([], "", (), id="none"),
        pytest.param(["--upstream", A], "", (A.rstrip("/"),), id="one"),
        pytest.param(["--upstream", A, "--upstream", B], "", (A.rstrip("/"), B), id="in order"),
        pytest.param([], f'upstream = ["{B}", "{A}"]\n', (B, A.rstrip("/")), id="TOML list"),
        pytest.param([], f'upstream = "{B}"\n', (B,), id="TOML string"),
        pytest.param(["--upstream", A], f'upstream = ["{B}"]\n', (A.rstrip("/"),), id="CLI wins"),
    ],
)
def test_upstreams_repeat_and_keep_their_order(tmp_path, argv, toml, expected):
    assert settings_from(tmp_path, argv, toml).upstream == expected


@pytest.mark.parametrize(
    ("argv", "toml", "expected"),
    [
        pytest.param([], "", False, id="default"),
        pytest.param(["--offline"], "", True, id="flag"),
        pytest.param([], "offline = true\n", True, id="TOML true"),
        pytest.param([], 'offline = "yes"\n', True, id="TOML yes"),
        pytest.param([], "offline = false\n", False, id="TOML false"),
        pytest.param(["--port", "9000"], "offline = true\n", True, id="absent flag keeps TOML"),
    ],
)
def test_offline_is_a_flag(tmp_path, argv, toml, expected):
    assert settings_from(tmp_path, argv, toml).offline is expected


def test_durations_and_sizes_are_typed():
    settings = load_settings(
        {
            "upstream-ttl": "1m",
            "upstream-min-age": "3d",
            "upstream-timeout": "2.5",
            "cache-max-size": "50G",
        }
    )
    assert settings.upstream_ttl == 60
    assert settings.upstream_min_age == 3 * 86400
    assert settings.upstream_timeout == 2.5
    assert settings.cache_max_size == 50 * 1024**3
    defaults = load_settings({})
    assert (defaults.upstream_ttl, defaults.upstream_min_age) == (600, 0)
    assert defaults.cache_max_size is None


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"upstream": ["ftp://x.example.test/"]}, "--upstream: expected an http"),
        ({"upstream-timeout": "0"}, "--upstream-timeout: must be more than zero"),
        ({"offline": "maybe"}, "--offline: expected true or false"),
        ({"cache-max-size": "lots"}, "--cache-max-size: expected a size"),
    ],
)
def test_bad_proxy_values_name_the_setting(given, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(given)


def test_the_proxy_services_exist_only_with_an_upstream_or_offline(tmp_path):
    plain = makeService(main_options(["--data-dir", str(tmp_path)]))
    assert [service.name for service in plain] == [
        "store",
        "collector",
        "auth",
        "readmes",
        "saved-index",
        "web",
    ]
    proxied = makeService(main_options(["--data-dir", str(tmp_path), "--upstream", A]))
    assert [service.name for service in proxied] == [
        "store",
        "collector",
        "upstream",
        "proxy",
        "auth",
        "readmes",
        "web",
    ]
    offline = makeService(main_options(["--data-dir", str(tmp_path), "--offline"]))
    assert "proxy" in [service.name for service in offline]
