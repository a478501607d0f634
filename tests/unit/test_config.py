"""Settings resolution: precedence, validation errors and key generation/reuse."""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Mapping
from pathlib import Path

import pytest

from rs3gw.config import (
    ConfigError,
    Settings,
    UserSpec,
    load_settings,
    parse_user_spec,
    settings_from_json,
    settings_to_json,
)

AK = "AKIAFLAG0000"
SK = "flagsecret123"


def _toml(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "rs3gw.toml"
    path.write_text(body)
    return path


def _load(
    tmp_path: Path,
    flags: Mapping[str, object] | None = None,
    env: dict[str, str] | None = None,
    toml: str | None = None,
) -> Settings:
    base_flags: dict[str, object] = {"data_dir": str(tmp_path / "data")}
    base_flags.update(flags or {})
    cfg = _toml(tmp_path, toml) if toml is not None else None
    return load_settings(base_flags, env or {}, cfg)


def _error(tmp_path: Path, **kw: object) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, **kw)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("config error: ")
    return message


# --------------------------------------------------------------------------- defaults & precedence


def test_defaults(tmp_path: Path) -> None:
    s = _load(tmp_path)
    assert (s.host, s.port, s.region, s.domain) == ("127.0.0.1", 9000, "us-east-1", None)
    assert (s.metadata, s.log_level, s.workers, s.fsync) == ("sqlite", "info", 1, True)
    assert s.max_object_size == 5 * 1024**4
    assert s.tls_cert is None and s.tls_key is None
    assert s.data_dir == tmp_path / "data"
    assert len(s.users) == 1 and s.users[0].name == "admin"


def test_default_data_dir_is_cwd_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings({}, {}, None)
    assert s.data_dir == Path("data")
    assert (tmp_path / "data" / ".rs3gw" / "credentials.json").is_file()


@pytest.mark.parametrize(
    ("key", "env_name", "flag_v", "env_v", "file_v", "attr", "expect_flag", "expect_env", "expect_file"),
    [
        ("region", "RS3GW_REGION", "eu-1", "eu-2", '"eu-3"', "region", "eu-1", "eu-2", "eu-3"),
        ("domain", "RS3GW_DOMAIN", "a.test", "b.test", '"c.test"', "domain", "a.test", "b.test", "c.test"),
        ("metadata", "RS3GW_METADATA", "sqlite", "postgresql://e/db", '"postgresql://f/db"', "metadata", "sqlite",
         "postgresql://e/db", "postgresql://f/db"),
        ("log_level", "RS3GW_LOG_LEVEL", "debug", "warning", '"error"', "log_level", "debug", "warning", "error"),
        ("workers", "RS3GW_WORKERS", "2", "3", "4", "workers", 2, 3, 4),
        ("fsync", "RS3GW_FSYNC", False, "false", "false", "fsync", False, False, False),
        ("max_object_size", "RS3GW_MAX_OBJECT_SIZE", "10", "20", "30", "max_object_size", 10, 20, 30),
    ],
)  # fmt: skip
def test_precedence(
    tmp_path: Path,
    key: str,
    env_name: str,
    flag_v: object,
    env_v: str,
    file_v: str,
    attr: str,
    expect_flag: object,
    expect_env: object,
    expect_file: object,
) -> None:
    toml = f"{key} = {file_v}\n"
    assert (
        getattr(_load(tmp_path, flags={key: flag_v}, env={env_name: env_v}, toml=toml), attr) == expect_flag
    )
    assert getattr(_load(tmp_path, env={env_name: env_v}, toml=toml), attr) == expect_env
    assert getattr(_load(tmp_path, toml=toml), attr) == expect_file


def test_precedence_address(tmp_path: Path) -> None:
    toml = 'address = "0.0.0.0:3"\n'
    env = {"RS3GW_ADDRESS": "10.0.0.1:2"}
    s = _load(tmp_path, flags={"address": "localhost:1"}, env=env, toml=toml)
    assert (s.host, s.port) == ("localhost", 1)
    s = _load(tmp_path, env=env, toml=toml)
    assert (s.host, s.port) == ("10.0.0.1", 2)
    s = _load(tmp_path, toml=toml)
    assert (s.host, s.port) == ("0.0.0.0", 3)


@pytest.mark.parametrize(
    ("address", "host", "port"),
    [("[::1]:9001", "::1", 9001), (":8080", "0.0.0.0", 8080), ("example.com:0", "example.com", 0)],
)
def test_address_forms(tmp_path: Path, address: str, host: str, port: int) -> None:
    s = _load(tmp_path, flags={"address": address})
    assert (s.host, s.port) == (host, port)


def test_precedence_data_dir(tmp_path: Path) -> None:
    toml = f'data_dir = "{tmp_path / "f"}"\n'
    env = {"RS3GW_DATA_DIR": str(tmp_path / "e")}
    cfg = _toml(tmp_path, toml)
    assert load_settings({"data_dir": tmp_path / "x"}, env, cfg).data_dir == tmp_path / "x"
    assert load_settings({}, env, cfg).data_dir == tmp_path / "e"
    assert load_settings({}, {}, cfg).data_dir == tmp_path / "f"


def test_precedence_tls(tmp_path: Path) -> None:
    for name in ("f.crt", "f.key", "e.crt", "e.key", "x.crt", "x.key"):
        (tmp_path / name).write_text("pem")
    toml = f'tls_cert = "{tmp_path / "f.crt"}"\ntls_key = "{tmp_path / "f.key"}"\n'
    env = {"RS3GW_TLS_CERT": str(tmp_path / "e.crt"), "RS3GW_TLS_KEY": str(tmp_path / "e.key")}
    flags = {"tls_cert": str(tmp_path / "x.crt"), "tls_key": str(tmp_path / "x.key")}
    assert _load(tmp_path, flags=flags, env=env, toml=toml).tls_cert == tmp_path / "x.crt"
    assert _load(tmp_path, env=env, toml=toml).tls_key == tmp_path / "e.key"
    assert _load(tmp_path, toml=toml).tls_cert == tmp_path / "f.crt"


def test_env_empty_domain_overrides_file(tmp_path: Path) -> None:
    assert _load(tmp_path, env={"RS3GW_DOMAIN": ""}, toml='domain = "s3.test"\n').domain is None


def test_config_file_from_env_and_flags(tmp_path: Path) -> None:
    env_cfg = tmp_path / "env.toml"
    env_cfg.write_text('region = "from-env-file"\n')
    flag_cfg = tmp_path / "flag.toml"
    flag_cfg.write_text('region = "from-flag-file"\n')
    data = str(tmp_path / "d")
    assert load_settings({"data_dir": data}, {"RS3GW_CONFIG": str(env_cfg)}, None).region == "from-env-file"
    s = load_settings({"data_dir": data, "config": str(flag_cfg)}, {"RS3GW_CONFIG": str(env_cfg)}, None)
    assert s.region == "from-flag-file"
    assert (
        load_settings({"data_dir": data}, {"RS3GW_CONFIG": str(env_cfg)}, flag_cfg).region == "from-flag-file"
    )


@pytest.mark.parametrize("word", ["1", "true", "YES", "on"])
def test_env_bool_true(tmp_path: Path, word: str) -> None:
    assert _load(tmp_path, env={"RS3GW_FSYNC": word}, toml="fsync = false\n").fsync is True


# --------------------------------------------------------------------------- accounts


def test_primary_keys_precedence_and_source(tmp_path: Path) -> None:
    toml = 'access_key = "FILEKEY01"\nsecret_key = "filesecret1"\n'
    env = {"RS3GW_ACCESS_KEY": "ENVKEY01", "RS3GW_SECRET_KEY": "envsecret1"}
    s = _load(tmp_path, flags={"access_key": AK, "secret_key": SK}, env=env, toml=toml)
    assert s.users[0] == UserSpec("admin", AK, SK) and s.keys_source == "flags"
    s = _load(tmp_path, env=env, toml=toml)
    assert s.users[0] == UserSpec("admin", "ENVKEY01", "envsecret1") and s.keys_source == "environment"
    s = _load(tmp_path, toml=toml)
    assert s.users[0] == UserSpec("admin", "FILEKEY01", "filesecret1") and s.keys_source == "config file"
    assert not (tmp_path / "data" / ".rs3gw").exists()


def test_admin_name(tmp_path: Path) -> None:
    s = _load(tmp_path, flags={"access_key": AK, "secret_key": SK}, toml='admin_name = "root"\n')
    assert s.users[0].name == "root"


def test_generated_then_stored(tmp_path: Path) -> None:
    first = _load(tmp_path)
    path = tmp_path / "data" / ".rs3gw" / "credentials.json"
    assert first.keys_source == f"generated ({path})"
    primary = first.users[0]
    assert re.fullmatch(r"[A-Z0-9]{20}", primary.access_key)
    assert re.fullmatch(r"[A-Za-z0-9_-]{40}", primary.secret_key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text())["secret_key"] == primary.secret_key
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"]  # no temp file left behind

    second = _load(tmp_path)
    assert second.keys_source == f"stored ({path})"
    assert second.users[0] == primary


def test_generated_keys_differ_per_data_dir(tmp_path: Path) -> None:
    a = load_settings({"data_dir": str(tmp_path / "a")}, {}, None).users[0]
    b = load_settings({"data_dir": str(tmp_path / "b")}, {}, None).users[0]
    assert a.access_key != b.access_key and a.secret_key != b.secret_key


def test_configured_keys_ignore_stored(tmp_path: Path) -> None:
    _load(tmp_path)
    s = _load(tmp_path, flags={"access_key": AK, "secret_key": SK})
    assert s.users[0].access_key == AK and s.keys_source == "flags"


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("not json", "not valid JSON"),
        ("[]", "JSON object"),
        ('{"access_key": "ABCDEFG"}', "secret_key: missing"),
    ],
)
def test_bad_stored_credentials(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "data" / ".rs3gw" / "credentials.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    msg = _error(tmp_path)
    assert str(path) in msg and needle in msg


def test_users_from_file_and_flags(tmp_path: Path) -> None:
    toml = (
        '[[users]]\nname = "alice"\naccess_key = "ALICEKEY"\nsecret_key = "alicesecret"\n'
        '[[users]]\nname = "bob"\naccess_key = "BOBKEY"\nsecret_key = "bobsecret1"\n'
    )
    s = _load(
        tmp_path,
        flags={"access_key": AK, "secret_key": SK, "users": ["carol:CAROLKEY:carol:secret:with:colons"]},
        toml=toml,
    )
    assert [u.name for u in s.users] == ["admin", "alice", "bob", "carol"]
    assert s.users[3] == UserSpec("carol", "CAROLKEY", "carol:secret:with:colons")
    assert s.users[1] == UserSpec("alice", "ALICEKEY", "alicesecret")


def test_users_without_primary_still_generate_admin(tmp_path: Path) -> None:
    s = _load(tmp_path, flags={"users": ["dave:DAVEKEY:davesecret"]})
    assert [u.name for u in s.users] == ["admin", "dave"]
    assert s.keys_source.startswith("generated (")


def test_parse_user_spec() -> None:
    assert parse_user_spec("n:abc:12345678") == UserSpec("n", "abc", "12345678")
    with pytest.raises(ConfigError, match="--user: expected NAME:ACCESS_KEY:SECRET_KEY"):
        parse_user_spec("n:abc")


def test_secret_not_in_repr() -> None:
    assert "12345678" not in repr(UserSpec("n", "abc", "12345678"))


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"flags": {"address": "abc"}}, '--address: expected HOST:PORT, got "abc"'),
        ({"env": {"RS3GW_ADDRESS": "h:port"}}, "RS3GW_ADDRESS: expected HOST:PORT"),
        ({"toml": 'address = "abc"\n'}, 'address: expected HOST:PORT, got "abc"'),
        ({"toml": "address = 9000\n"}, "address: expected a string, got int"),
        ({"flags": {"address": "h:70000"}}, "--address: port must be 0..65535"),
        ({"flags": {"address": "a:b:1"}}, "--address: expected HOST:PORT"),
        ({"toml": "bogus = 1\n"}, "bogus: unknown key"),
        ({"toml": "region = [1]\n"}, "region: expected a string"),
        ({"flags": {"region": "bad region"}}, "--region: expected a region name"),
        ({"toml": 'domain = "bad domain"\n'}, "domain: expected a DNS name"),
        ({"toml": 'workers = "4"\n'}, 'workers: expected an integer, got str "4"'),
        ({"toml": "workers = true\n"}, "workers: expected an integer, got bool"),
        ({"toml": "metadata = 5\n"}, "metadata: expected a string, got int"),
        ({"env": {"RS3GW_WORKERS": "0"}}, "RS3GW_WORKERS: must be at least 1, got 0"),
        ({"env": {"RS3GW_FSYNC": "maybe"}}, 'RS3GW_FSYNC: expected true or false, got "maybe"'),
        ({"toml": 'fsync = "no"\n'}, "fsync: expected true or false"),
        ({"flags": {"log_level": "loud"}}, "--log-level: expected one of"),
        ({"env": {"RS3GW_METADATA": "mysql://x"}}, "RS3GW_METADATA: expected"),
        ({"flags": {"tls_cert": "/x.crt"}}, "--tls-cert: tls_cert needs tls_key"),
        ({"env": {"RS3GW_TLS_KEY": "/x.key"}}, "RS3GW_TLS_KEY: tls_key needs tls_cert"),
        (
            {"flags": {"tls_cert": "/nonexistent.crt", "tls_key": "/nonexistent.key"}},
            "--tls-cert: file not found",
        ),
        ({"flags": {"access_key": AK}}, "--access-key: access key given without a secret key"),
        ({"env": {"RS3GW_SECRET_KEY": SK}}, "RS3GW_SECRET_KEY: secret key given without an access key"),
        ({"toml": 'access_key = "FILEKEY"\n'}, "access_key: access key given without a secret key"),
        (
            {"flags": {"access_key": AK}, "env": {"RS3GW_SECRET_KEY": SK}},
            "--access-key: access key given without a secret key in the same place (--secret-key)",
        ),
        ({"flags": {"access_key": "ab", "secret_key": SK}}, "--access-key: access key must be 3..128"),
        ({"flags": {"access_key": "a" * 129, "secret_key": SK}}, "--access-key: access key must be 3..128"),
        ({"flags": {"access_key": "bad/key", "secret_key": SK}}, "--access-key: access key must be"),
        (
            {"env": {"RS3GW_ACCESS_KEY": AK, "RS3GW_SECRET_KEY": "short"}},
            "RS3GW_SECRET_KEY: secret key must be",
        ),
        ({"flags": {"users": ["bad"]}}, "--user: expected NAME:ACCESS_KEY:SECRET_KEY"),
        ({"flags": {"users": ["x:AKX:short"]}}, "--user: secret key must be at least 8"),
        ({"flags": {"users": ["bad name:AKX:longsecret"]}}, "--user: user name must be"),
        (
            {"flags": {"access_key": AK, "secret_key": SK, "users": [f"x:{AK}:othersecret"]}},
            f'access_key: duplicate access key "{AK}"',
        ),
        (
            {"flags": {"users": ["x:AK1:longsecret", "x:AK2:longsecret"]}},
            "users: duplicate user name 'x'",
        ),
        ({"toml": 'users = "x"\n'}, "users: expected an array of tables"),
        ({"toml": '[[users]]\nname = "a"\naccess_key = "AKA"\n'}, "users[0].secret_key: missing"),
        (
            {"toml": '[[users]]\nname = "a"\naccess_key = "AKA"\nsecret_key = "longsecret"\nextra = 1\n'},
            "users[0].extra: unknown key",
        ),
        ({"toml": "this is = not toml ==\n"}, "invalid TOML"),
        ({"flags": {"nonsense": 1}}, "nonsense: unknown setting"),
    ],
)
def test_config_errors(tmp_path: Path, kw: dict[str, object], needle: str) -> None:
    msg = _error(tmp_path, **kw)
    assert needle in msg, msg


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    msg = _error(tmp_path, toml='address = "abc"\n')
    assert msg == f'config error: {tmp_path / "rs3gw.toml"}: address: expected HOST:PORT, got "abc"'


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings({}, {}, tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings({}, {"RS3GW_CONFIG": str(tmp_path / "nope.toml")}, None)


def test_unreadable_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file") as info:
        load_settings({}, {}, tmp_path)  # a directory
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- JSON hand-off


def test_settings_json_roundtrip(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_text("x")
    (tmp_path / "k.pem").write_text("x")
    s = _load(
        tmp_path,
        flags={
            "address": "[::1]:1234",
            "domain": "s3.test",
            "tls_cert": str(tmp_path / "c.pem"),
            "tls_key": str(tmp_path / "k.pem"),
            "workers": 4,
            "fsync": False,
            "users": ["u:UKEY:usecret12"],
        },
    )
    back = settings_from_json(settings_to_json(s))
    assert back == s


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("nope", "not valid JSON"),
        ("[]", "expected a JSON object"),
        ('{"users": []}', "at least one account"),
        ('{"bogus": 1, "users": []}', "bogus: unknown key"),
        (
            '{"port": 99999, "users": [{"name": "a", "access_key": "AKA", "secret_key": "longsecret"}]}',
            "port",
        ),
    ],
)
def test_settings_from_json_errors(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_json(text)
    assert needle in str(info.value) and "RS3GW_SETTINGS_JSON" in str(info.value)
