"""The [backend] settings: flags > RS3GW_BACKEND_* > TOML > default, validation, worker hand-off."""

from __future__ import annotations

from pathlib import Path

import pytest

from rs3gw.config import ConfigError, Settings, load_settings, settings_from_json, settings_to_json

KEYS = {"access_key": "AKIAFLAG0000", "secret_key": "flagsecret123"}
TOML = """
[backend]
type = "s3"
endpoint = "http://file-host:8333/"
bucket = "from-file"
prefix = "gw1"
region = "eu-west-1"
access_key = "fileak"
secret_key = "file-secret-key"
"""


def load(
    tmp_path: Path,
    flags: dict[str, object] | None = None,
    env: dict[str, str] | None = None,
    toml: str | None = None,
) -> Settings:
    cfg = None
    if toml is not None:
        cfg = tmp_path / "rs3gw.toml"
        cfg.write_text(toml)
    return load_settings({"data_dir": str(tmp_path / "d"), **KEYS, **(flags or {})}, env or {}, cfg)


def test_default_is_local(tmp_path: Path) -> None:
    s = load(tmp_path)
    assert (s.backend_type, s.backend_bucket, s.backend_prefix) == ("local", "", "rs3gw")


def test_toml_table(tmp_path: Path) -> None:
    s = load(tmp_path, toml=TOML)
    assert s.backend_type == "s3"
    assert s.backend_endpoint == "http://file-host:8333"  # trailing slash dropped
    assert (s.backend_bucket, s.backend_prefix, s.backend_region) == ("from-file", "gw1", "eu-west-1")
    assert (s.backend_access_key, s.backend_secret_key) == ("fileak", "file-secret-key")


def test_precedence(tmp_path: Path) -> None:
    env = {"RS3GW_BACKEND_BUCKET": "from-env", "RS3GW_BACKEND_PREFIX": "envp"}
    s = load(tmp_path, flags={"backend_bucket": "from-flag"}, env=env, toml=TOML)
    assert (s.backend_bucket, s.backend_prefix, s.backend_endpoint) == (
        "from-flag",
        "envp",
        "http://file-host:8333",
    )


def test_secret_stays_out_of_repr(tmp_path: Path) -> None:
    assert "file-secret-key" not in repr(load(tmp_path, toml=TOML))


@pytest.mark.parametrize(
    ("flags", "toml", "needle"),
    [
        ({"backend_type": "ceph"}, None, '--backend: expected "local", "s3", "gcs" or "azure"'),
        ({"backend_type": "s3"}, None, "backend.bucket: the s3 backend needs a bucket"),
        (
            {"backend_type": "s3", "backend_bucket": "b", "backend_endpoint": "ftp://x"},
            None,
            "--backend-endpoint",
        ),
        ({}, '[backend]\ntype = "s3"\nbukket = "x"\n', "backend.bukket: unknown key"),
        ({}, "[backend]\ntype = 3\n", "backend.type: expected a string"),
    ],
)
def test_rejected(tmp_path: Path, flags: dict[str, object], toml: str | None, needle: str) -> None:
    with pytest.raises(ConfigError, match="config error: ") as info:
        load(tmp_path, flags=flags, toml=toml)
    assert needle in str(info.value)


def test_reaches_workers(tmp_path: Path) -> None:
    s = load(tmp_path, toml=TOML)
    again = settings_from_json(settings_to_json(s))
    assert again == s
    assert again.backend_secret_key == "file-secret-key"
