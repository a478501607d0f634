"""``[storage]`` verify_on_read and root, ``[storage.zerocopy]``: flag > env > TOML, the seed's keys,
and unknown keys or bad values refused with one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from rs3gw.config import ConfigError, Settings, load_settings, settings_from_json, settings_to_json


def load(
    tmp_path: Path, toml: str | None = None, env: dict[str, str] | None = None, **flags: object
) -> Settings:
    cfg = None
    if toml is not None:
        cfg = tmp_path / "rs3gw.toml"
        cfg.write_text(toml)
    base: dict[str, object] = {} if toml is not None and "root" in toml else {"data_dir": str(tmp_path / "d")}
    return load_settings({**base, **flags}, env or {}, cfg)


def error(tmp_path: Path, toml: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, toml, env)
    return str(info.value)


def test_defaults_and_precedence(tmp_path: Path) -> None:
    s = load(tmp_path)
    assert (s.verify_on_read, s.zerocopy_enabled, s.zerocopy_min_size) == (False, True, 1 << 20)
    toml = "[storage]\nverify_on_read = true\n[storage.zerocopy]\nenabled = false\nmin_size = 4096\n"
    s = load(tmp_path, toml)
    assert (s.verify_on_read, s.zerocopy_enabled, s.zerocopy_min_size) == (True, False, 4096)
    s = load(tmp_path, toml, {"RS3GW_VERIFY_ON_READ": "false", "RS3GW_ZEROCOPY_ENABLED": "true"})
    assert (s.verify_on_read, s.zerocopy_enabled) == (False, True)
    s = load(tmp_path, toml, {"RS3GW_VERIFY_ON_READ": "false"}, verify_on_read=True, zerocopy_enabled="on")
    assert (s.verify_on_read, s.zerocopy_enabled) == (True, True)
    assert settings_from_json(settings_to_json(s)).zerocopy_min_size == 4096


def test_seed_sections_as_written(tmp_path: Path) -> None:
    seed = f"""
[storage]
root = "{tmp_path / "seed-root"}"
compression = "zstd:3"

[storage.dedup]
enabled = true
block_size = 65536
algorithm = "content-defined"
min_object_size = 131072

[storage.zerocopy]
direct_io = false
direct_io_threshold = 1048576
splice = true
mmap = false
"""
    s = load(tmp_path, seed)
    assert s.data_dir == tmp_path / "seed-root"
    assert (s.compression, s.dedup_enabled, s.zerocopy_enabled) == ("zstd:3", True, True)
    assert load(tmp_path, "[storage.zerocopy]\nsplice = false\n").zerocopy_enabled is False


def test_unknown_and_unsupported_keys(tmp_path: Path) -> None:
    msg = error(tmp_path, "[storage]\nverify = true\n")
    assert "storage.verify" in msg and "unknown key" in msg and "verify_on_read" in msg
    msg = error(tmp_path, "[storage.zerocopy]\nsendfile = true\n")
    assert "storage.zerocopy.sendfile" in msg and "min_size" in msg
    msg = error(tmp_path, "[storage.dedup]\nblocksize = 4096\n")
    assert "storage.dedup.blocksize" in msg and "block_size" in msg
    msg = error(tmp_path, '[storage.zerocopy]\ndirect_io = "yes"\n')
    assert "storage.zerocopy.direct_io" in msg and "expected true or false" in msg
    assert "must be at least 0" in error(tmp_path, "[storage.zerocopy]\ndirect_io_threshold = -1\n")
    assert "expected true or false" in error(tmp_path, '[storage]\nverify_on_read = "yes"\n')
    assert "RS3GW_VERIFY_ON_READ" in error(tmp_path, "", {"RS3GW_VERIFY_ON_READ": "maybe"})
    msg = error(tmp_path, f'data_dir = "{tmp_path}"\n[storage]\nroot = "{tmp_path}"\n')
    assert "conflicts with data_dir" in msg
