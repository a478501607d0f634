"""The seed's ``[storage.cache]`` (mapped onto ``[cache]``) and ``[storage.zerocopy]`` direct_io / mmap:
TOML as the seed writes it, env overrides, conflicts between the two cache tables, worker hand-off."""

from __future__ import annotations

from pathlib import Path

import pytest

from rs3gw.config import ConfigError, Settings, load_settings, settings_from_json, settings_to_json

MiB = 1 << 20

SEED = """
[storage.zerocopy]
direct_io = true
direct_io_threshold = 1048576
splice = true
mmap = true

[storage.cache]
enabled = true
max_size_mb = 256
max_objects = 10000
ttl_seconds = 300
"""


def load(tmp_path: Path, toml: str | None = None, env: dict[str, str] | None = None) -> Settings:
    cfg = None
    if toml is not None:
        cfg = tmp_path / "rs3gw.toml"
        cfg.write_text(toml)
    return load_settings({"data_dir": str(tmp_path / "d")}, env or {}, cfg)


def error(tmp_path: Path, toml: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, toml, env)
    return str(info.value)


def test_seed_sections_as_written(tmp_path: Path) -> None:
    s = load(tmp_path, SEED)
    assert (s.zerocopy_direct_io, s.zerocopy_direct_io_threshold, s.zerocopy_mmap) == (True, MiB, True)
    c = s.cache
    assert (c.enabled, c.max_bytes, c.max_objects, c.ttl) == (True, 256 * MiB, 10000, 300.0)
    # The rest of [cache] keeps its defaults.
    assert (c.policy, c.max_object_bytes) == ("predictive", 8 * MiB)
    back = settings_from_json(settings_to_json(s))
    assert back.cache == c and back.zerocopy_direct_io and back.zerocopy_mmap


def test_defaults_off(tmp_path: Path) -> None:
    s = load(tmp_path)
    assert (s.zerocopy_direct_io, s.zerocopy_direct_io_threshold, s.zerocopy_mmap) == (False, MiB, False)
    assert (s.cache.enabled, s.cache.max_objects) == (False, 0)


def test_env_overrides(tmp_path: Path) -> None:
    env = {
        "RS3GW_CACHE_ENABLED": "false",
        "RS3GW_CACHE_MAX_SIZE_MB": "16",
        "RS3GW_CACHE_MAX_OBJECTS": "7",
        "RS3GW_CACHE_TTL_SECONDS": "0",
        "RS3GW_ZEROCOPY_DIRECT_IO": "off",
        "RS3GW_ZEROCOPY_DIRECT_IO_THRESHOLD": "65536",
        "RS3GW_ZEROCOPY_MMAP": "no",
    }
    s = load(tmp_path, SEED, env)
    assert (s.cache.enabled, s.cache.max_bytes, s.cache.max_objects, s.cache.ttl) == (False, 16 * MiB, 7, 0.0)
    assert (s.zerocopy_direct_io, s.zerocopy_direct_io_threshold, s.zerocopy_mmap) == (False, 65536, False)
    # env alone, without any file
    s = load(tmp_path, None, {"RS3GW_CACHE_ENABLED": "1", "RS3GW_ZEROCOPY_DIRECT_IO": "true"})
    assert s.cache.enabled and s.zerocopy_direct_io


def test_both_tables_agree_or_are_refused(tmp_path: Path) -> None:
    same = '[cache]\nenabled = true\nmax_bytes = 268435456\npolicy = "lru"\n' + SEED
    s = load(tmp_path, same)
    assert (s.cache.enabled, s.cache.max_bytes, s.cache.policy, s.cache.max_objects) == (
        True,
        256 * MiB,
        "lru",
        10000,
    )
    msg = error(tmp_path, "[cache]\nmax_bytes = 1048576\n" + SEED)
    assert "storage.cache.max_size_mb" in msg and "conflicts with cache.max_bytes = 1048576" in msg
    msg = error(tmp_path, "[cache]\nenabled = false\n" + SEED)
    assert "storage.cache.enabled" in msg and "set one of them" in msg
    msg = error(tmp_path, "[cache]\nttl = 60\n[storage.cache]\nttl_seconds = 300\n")
    assert "storage.cache.ttl_seconds" in msg and "cache.ttl" in msg


def test_bad_values_and_unknown_keys(tmp_path: Path) -> None:
    msg = error(tmp_path, "[storage.cache]\nmax_size = 256\n")
    assert "storage.cache.max_size" in msg and "unknown key" in msg and "max_size_mb" in msg
    assert "expected an integer" in error(tmp_path, '[storage.cache]\nmax_size_mb = "256"\n')
    assert "must be at least 0" in error(tmp_path, "[storage.cache]\nmax_objects = -1\n")
    assert "expected true or false" in error(tmp_path, "[storage.cache]\nenabled = 1\n")
    msg = error(tmp_path, "[storage.cache]\nttl_seconds = -5\n")
    assert "storage.cache.ttl_seconds" in msg and "no expiry" in msg
    assert "RS3GW_CACHE_MAX_OBJECTS" in error(tmp_path, "", {"RS3GW_CACHE_MAX_OBJECTS": "many"})
    assert "RS3GW_ZEROCOPY_MMAP" in error(tmp_path, "", {"RS3GW_ZEROCOPY_MMAP": "sometimes"})
    assert load(tmp_path, "[storage.cache]\nttl_seconds = 2.5\n").cache.ttl == 2.5
