"""The ``[tracing]`` table and the OTEL_* variables that turn tracing on, through load_settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from rs3gw.config import ConfigError, load_settings, settings_from_json, settings_to_json
from rs3gw.tracing import TracingSettings

KEYS = {"access_key": "tracingtestkey", "secret_key": "tracing-test-secret-1234"}


def load(tmp_path: Path, toml: str = "", env: dict[str, str] | None = None) -> TracingSettings:
    cfg = tmp_path / "rs3gw.toml"
    cfg.write_text(toml)
    return load_settings({**KEYS, "data_dir": tmp_path / "data"}, env or {}, cfg).tracing


def test_off_by_default_and_on_with_an_endpoint(tmp_path: Path) -> None:
    assert load(tmp_path) == TracingSettings(enabled=False)
    t = load(tmp_path, '[tracing]\nendpoint = "http://collector:4318/"\nsample_ratio = 0.25\n')
    assert t.enabled and t.traces_url == "http://collector:4318/v1/traces" and t.sample_ratio == 0.25
    t = load(tmp_path, '[tracing]\nendpoint = "https://c/v1/traces"\nenabled = false\n')
    assert not t.enabled and t.traces_url == "https://c/v1/traces"


def test_otel_environment_turns_it_on(tmp_path: Path) -> None:
    t = load(tmp_path, env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SERVICE_NAME": "edge-1"})
    assert t.enabled and t.service_name == "edge-1"
    assert t.traces_url is None  # the SDK reads the endpoint from the environment itself
    assert load(tmp_path, env={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}).enabled


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('endpoint = "collector:4318"', "tracing.endpoint"),
        ("sample_ratio = 2", "tracing.sample_ratio"),
        ('enabled = "yes"', "tracing.enabled"),
        ('service_name = ""', "tracing.service_name"),
        ("exporter = 1", "tracing.exporter: unknown key"),
    ],
)
def test_bad_values_are_config_errors(tmp_path: Path, table: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load(tmp_path, f"[tracing]\n{table}\n")


def test_worker_hand_off_keeps_the_table(tmp_path: Path) -> None:
    cfg = tmp_path / "rs3gw.toml"
    cfg.write_text('[tracing]\nendpoint = "http://c:4318"\nservice_name = "gw"\n')
    settings = load_settings({**KEYS, "data_dir": tmp_path / "data"}, {}, cfg)
    assert settings_from_json(settings_to_json(settings)).tracing == settings.tracing
