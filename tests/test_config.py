"""Settings precedence, URL rebasing and key hygiene."""

from __future__ import annotations

import pickle

import pytest

from otc.config import Mode, Secret, load_settings, parse_dns_server
from otc.errors import ConfigError
from otc.http import rebase_url


def test_override_keeps_service_path_behind_its_own_path():
    assert rebase_url("https://internetdb.shodan.io", "http://127.0.0.1:8080/internetdb") + "/1.2.3.4" == (
        "http://127.0.0.1:8080/internetdb/1.2.3.4"
    )
    assert rebase_url("https://www.virustotal.com/api/v3", "http://127.0.0.1:9/") == "http://127.0.0.1:9/api/v3"
    assert rebase_url("https://rdap.org", None) == "https://rdap.org"


def test_secrets_file_wins_over_environment(tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('OTC_VIRUSTOTAL_KEY = "from-file"\nOTC_MODE = "keyless"\n')
    settings = load_settings(
        environ={"OTC_VIRUSTOTAL_KEY": "from-env", "OTC_ABUSEIPDB_KEY": "abuse-env", "OTC_MODE": "all"},
        secrets_path=secrets,
    )
    assert settings.key(["OTC_VIRUSTOTAL_KEY"]).reveal() == "from-file"
    assert settings.key(["OTC_ABUSEIPDB_KEY"]).reveal() == "abuse-env"
    assert settings.mode is Mode.KEYLESS


def test_empty_secret_falls_back_to_environment():
    settings = load_settings(environ={"OTC_OTX_KEY": "env-otx"}, secrets={"OTC_OTX_KEY": ""})
    assert settings.key(["OTC_OTX_KEY"]).reveal() == "env-otx"


def test_shared_key_is_second_choice():
    settings = load_settings(environ={"OTC_ABUSECH_KEY": "shared"}, secrets={})
    assert settings.key(["OTC_URLHAUS_KEY", "OTC_ABUSECH_KEY"]).reveal() == "shared"
    assert settings.key(["OTC_URLHAUS_KEY"]) is None


def test_offline_flag_means_local_mode():
    assert load_settings(environ={"OTC_OFFLINE": "1", "OTC_MODE": "all"}, secrets={}).mode is Mode.LOCAL


def test_bad_mode_and_dns_server_are_config_errors():
    with pytest.raises(ConfigError, match="OTC_MODE"):
        load_settings(environ={"OTC_MODE": "everything"}, secrets={})
    with pytest.raises(ConfigError, match="OTC_DNS_SERVER"):
        parse_dns_server("127.0.0.1:notaport")


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:5353", ("127.0.0.1", 5353)),
    ("127.0.0.1", ("127.0.0.1", 53)),
    ("[::1]:5300", ("::1", 5300)),
])
def test_dns_server_forms(text, expected):
    assert parse_dns_server(text) == expected


def test_secret_never_prints_or_pickles():
    secret = Secret("super-secret-value")
    assert "super-secret-value" not in repr(secret)
    assert "super-secret-value" not in str(secret)
    assert "super-secret-value" not in repr(load_settings(environ={"OTC_VT_KEY": "super-secret-value"}, secrets={}))
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_malformed_secrets_file_does_not_quote_the_key(tmp_path):
    path = tmp_path / "secrets.toml"
    path.write_text('OTC_VIRUSTOTAL_KEY = "abc123-leaky\n')
    with pytest.raises(ConfigError) as info:
        load_settings(environ={}, secrets_path=path)
    assert "abc123" not in str(info.value)
