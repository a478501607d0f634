"""``--workers auto`` (flag, ``RS3GW_WORKERS``, ``workers = "auto"``): one worker per CPU this
process may run on, resolved to a number once, so the banner, uvicorn and the workers' settings
hand-off all see the same count."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from rs3gw.cli import build_parser, resolve_settings, startup_lines
from rs3gw.config import ConfigError, Settings, load_settings, settings_from_json, settings_to_json

AK = "AKIAFLAG0000"
SK = "flagsecret123"
CPUS = len(os.sched_getaffinity(0))


def _load(
    tmp_path: Path,
    flags: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
    toml: str = "",
) -> Settings:
    cfg = tmp_path / "rs3gw.toml"
    cfg.write_text(toml)
    base: dict[str, object] = {"data_dir": str(tmp_path / "data"), "access_key": AK, "secret_key": SK}
    base.update(flags or {})
    return load_settings(base, env or {}, cfg)


@pytest.mark.parametrize(
    "source",
    [
        {"flags": {"workers": "auto"}},
        {"env": {"RS3GW_WORKERS": "auto"}},
        {"env": {"RS3GW_WORKERS": " AUTO "}},
        {"toml": 'workers = "auto"\n'},
    ],
)
def test_auto_is_the_usable_cpu_count(tmp_path: Path, source: dict[str, object]) -> None:
    assert _load(tmp_path, **source).workers == CPUS  # type: ignore[arg-type]


def test_auto_follows_the_affinity_mask_not_the_machine(tmp_path: Path) -> None:
    """A process pinned to one CPU (taskset, a container cpuset) gets one worker."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        assert _load(tmp_path, flags={"workers": "auto"}).workers == 1
    finally:
        os.sched_setaffinity(0, before)


def test_default_stays_one_and_numbers_still_parse(tmp_path: Path) -> None:
    assert _load(tmp_path).workers == 1
    assert _load(tmp_path, env={"RS3GW_WORKERS": "3"}).workers == 3
    assert _load(tmp_path, toml="workers = 5\n").workers == 5
    # flag > environment > file, "auto" included
    assert _load(tmp_path, flags={"workers": "2"}, env={"RS3GW_WORKERS": "auto"}).workers == 2
    assert _load(tmp_path, flags={"workers": "auto"}, toml="workers = 7\n").workers == CPUS


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ({"flags": {"workers": "many"}}, '--workers: expected an integer, got "many"'),
        ({"env": {"RS3GW_WORKERS": "0"}}, "RS3GW_WORKERS: must be at least 1, got 0"),
        ({"toml": 'workers = "4"\n'}, 'workers: expected an integer, got str "4"'),  # TOML is typed
        ({"toml": 'workers = "Auto"\n'}, 'workers: expected an integer, got str "Auto"'),
        ({"toml": "workers = true\n"}, "workers: expected an integer, got bool"),
    ],
)
def test_bad_values_are_refused(tmp_path: Path, source: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, **source)  # type: ignore[arg-type]
    assert needle in str(info.value)


def test_the_resolved_number_reaches_workers_and_the_banner(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        [
            "serve",
            "--data-dir",
            str(tmp_path / "d"),
            "--access-key",
            AK,
            "--secret-key",
            SK,
            "--workers",
            "auto",
        ]
    )
    settings = resolve_settings(args, env={})
    assert settings.workers == CPUS
    assert settings_from_json(settings_to_json(settings)).workers == CPUS
    if CPUS > 1:
        assert f"{CPUS} workers" in startup_lines(settings)[0]


def test_help_names_auto(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert '"auto": one per CPU this process may use' in out  # the --workers line
    assert "--workers N|auto RS3GW_WORKERS workers (default 1; auto:" in out  # the flag table
