"""The [tiers] and [pricing] tables: parsing, errors, defaults and the worker-process hand-off."""

from __future__ import annotations

from pathlib import Path

import pytest

from rs3gw.config import ConfigError, load_settings, settings_from_json, settings_to_json
from rs3gw.engine.tier_settings import DEFAULT_PRICES, TierSettings, parse_tier_tables


def _load(tmp_path: Path, text: str) -> TierSettings:
    cfg = tmp_path / "rs3gw.toml"
    cfg.write_text(text)
    flags = {"data_dir": tmp_path / "d", "access_key": "AKIDTEST", "secret_key": "secretsecret"}
    return load_settings(flags, {}, cfg).tiers


def test_defaults_scale_the_sla_with_the_lifecycle_day() -> None:
    t = TierSettings()
    assert t.restore_delay("GLACIER", "Standard", 86400) == 5 * 3600
    assert t.restore_delay("DEEP_ARCHIVE", "Bulk", 86400) == 48 * 3600
    assert t.restore_delay("GLACIER", "Expedited", 24.0) == pytest.approx(5 / 60)
    assert t.prices == DEFAULT_PRICES


def test_toml_tables(tmp_path: Path) -> None:
    t = _load(
        tmp_path,
        '[tiers]\nglacier = "/mnt/cold"\nrestore_seconds = { "GLACIER.Bulk" = 3 }\ninterval = 0.5\n'
        "it_infrequent_days = 7\n[pricing]\nGLACIER = 0.001\n",
    )
    assert t.locations == {"glacier": "/mnt/cold"}
    assert t.restore_delay("GLACIER", "Bulk", 86400) == 3.0
    assert t.restore_delay("GLACIER", "Standard", 86400) == 5 * 3600  # others keep the SLA
    assert (t.interval, t.it_infrequent_days) == (0.5, 7)
    assert t.prices["GLACIER"] == 0.001 and t.prices["STANDARD"] == DEFAULT_PRICES["STANDARD"]


@pytest.mark.parametrize(
    ("text", "blame"),
    [
        ("[tiers]\nnope = 1\n", "tiers.nope"),
        ('[tiers]\nrestore_seconds = { "DEEP_ARCHIVE.Expedited" = 1 }\n', "DEEP_ARCHIVE.Expedited"),
        ('[tiers]\nrestore_seconds = { "GLACIER.Standard" = -1 }\n', "GLACIER.Standard"),
        ("[tiers]\nglacier = 3\n", "tiers.glacier"),
        ("[tiers]\nit_infrequent_days = 0\n", "tiers.it_infrequent_days"),
        ("[pricing]\nGOLD = 1.0\n", "pricing.GOLD"),
        ('[pricing]\nSTANDARD = "cheap"\n', "pricing.STANDARD"),
    ],
)
def test_bad_tables_are_config_errors(tmp_path: Path, text: str, blame: str) -> None:
    with pytest.raises(ConfigError, match=blame.replace(".", r"\.")):
        _load(tmp_path, text)


def test_worker_hand_off_round_trips(tmp_path: Path) -> None:
    cfg = tmp_path / "rs3gw.toml"
    cfg.write_text(
        '[tiers]\ndeep_archive = "/x"\nrestore_seconds = { "GLACIER.Bulk" = 2 }\n[pricing]\nGLACIER = 0.5\n'
    )
    flags = {"data_dir": tmp_path / "d", "access_key": "AKIDTEST", "secret_key": "secretsecret"}
    s = load_settings(flags, {}, cfg)
    back = settings_from_json(settings_to_json(s))
    assert back.tiers == s.tiers
    assert parse_tier_tables(None, None) == TierSettings()
