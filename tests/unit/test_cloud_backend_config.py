"""The [backend] settings of the gcs and azure backends: sources, validation, secrecy, worker hand-off."""

from __future__ import annotations

from pathlib import Path

import pytest

from rs3gw.config import ConfigError, Settings, load_settings, settings_from_json, settings_to_json

KEYS = {"access_key": "AKIAFLAG0000", "secret_key": "flagsecret123"}
CONN = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0;EndpointSuffix=core.windows.net"


def load(
    tmp_path: Path, flags: dict[str, object] | None = None, env: dict[str, str] | None = None, toml: str = ""
) -> Settings:
    cfg = tmp_path / "rs3gw.toml"
    cfg.write_text(toml)
    return load_settings({"data_dir": str(tmp_path / "d"), **KEYS, **(flags or {})}, env or {}, cfg)


def test_gcs_from_toml(tmp_path: Path) -> None:
    toml = '[backend]\ntype = "gcs"\nbucket = "b"\nproject = "p"\ncredentials_file = "/k.json"\n'
    s = load(tmp_path, toml=toml)
    assert (s.backend_type, s.backend_bucket, s.backend_project) == ("gcs", "b", "p")
    assert s.backend_credentials_file == "/k.json"
    assert settings_from_json(settings_to_json(s)) == s


def test_azure_from_env_stays_secret(tmp_path: Path) -> None:
    env = {
        "RS3GW_BACKEND_TYPE": "azure",
        "RS3GW_BACKEND_BUCKET": "c",
        "RS3GW_BACKEND_CONNECTION_STRING": CONN,
    }
    s = load(tmp_path, env=env)
    assert (s.backend_type, s.backend_bucket, s.backend_connection_string) == ("azure", "c", CONN)
    assert "c2VjcmV0" not in repr(s)
    assert settings_from_json(settings_to_json(s)).backend_connection_string == CONN


def test_azure_account_url_and_key(tmp_path: Path) -> None:
    flags = {
        "backend_type": "azure",
        "backend_bucket": "c",
        "backend_endpoint": "https://acct.blob.core.windows.net",
        "backend_secret_key": "a2V5",
    }
    s = load(tmp_path, flags=flags)
    assert (s.backend_endpoint, s.backend_secret_key) == ("https://acct.blob.core.windows.net", "a2V5")


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        ({"backend_type": "gcs"}, "backend.bucket: the gcs backend needs a bucket"),
        ({"backend_type": "azure"}, "backend.bucket: the azure backend needs a bucket"),
        (
            {"backend_type": "azure", "backend_bucket": "c"},
            "backend.connection_string: the azure backend needs",
        ),
        (
            {
                "backend_type": "azure",
                "backend_bucket": "c",
                "backend_endpoint": "https://a.blob.core.windows.net",
            },
            "backend.connection_string",
        ),
    ],
)
def test_rejected(tmp_path: Path, flags: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, flags=flags)
    assert needle in str(info.value)
