"""The `rs3gw` command line as users see it: real subprocesses, exit codes and stderr."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import types
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from rs3gw import __version__, cli
from rs3gw.config import SETTINGS_JSON_ENV, Settings, settings_from_json
from rs3gw.httpserver import GracefulHttpToolsProtocol


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RS3GW_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "rs3gw", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version(tmp_path: Path) -> None:
    proc = _run("--version", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"rs3gw {__version__}"


def test_serve_help(tmp_path: Path) -> None:
    proc = _run("serve", "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for needle in ("--data-dir", "--address", "--user", "--no-fsync", "RS3GW_ADDRESS", "RS3GW_SETTINGS_JSON"):
        assert needle in proc.stdout
    assert not (tmp_path / "data").exists()


def test_top_level_help(tmp_path: Path) -> None:
    proc = _run("--help", cwd=tmp_path)
    assert proc.returncode == 0 and "serve" in proc.stdout


def test_no_command_is_usage_error(tmp_path: Path) -> None:
    proc = _run(cwd=tmp_path)
    assert proc.returncode == 2 and "usage:" in proc.stderr


@pytest.mark.parametrize(
    ("args", "env", "toml", "needle"),
    [
        (["--address", "abc"], {}, None, 'rs3gw: config error: --address: expected HOST:PORT, got "abc"'),
        ([], {"RS3GW_ADDRESS": "abc"}, None, "RS3GW_ADDRESS: expected HOST:PORT"),
        ([], {}, "address = 'abc'\n", "address: expected HOST:PORT"),
        ([], {}, "nope = 1\n", "nope: unknown key"),
        ([], {}, "[broken\n", "invalid TOML"),
        (["--tls-cert", "x.pem"], {}, None, "--tls-cert: tls_cert needs tls_key"),
        (["--access-key", "AKIAEXAMPLE"], {}, None, "--access-key: access key given without a secret key"),
        (["--workers", "many"], {}, None, "--workers: expected an integer"),
        (["--config", "missing.toml"], {}, None, "config file not found"),
        ([], {"RS3GW_CONFIG": "missing.toml"}, None, "config file not found"),
        (["--user", "x:y"], {}, None, "--user: expected NAME:ACCESS_KEY:SECRET_KEY"),
    ],
)
def test_bad_config_exits_2_with_one_line(
    tmp_path: Path, args: list[str], env: dict[str, str], toml: str | None, needle: str
) -> None:
    if toml is not None:
        (tmp_path / "rs3gw.toml").write_text(toml)
        args = [*args, "--config", "rs3gw.toml"]
    proc = _run("serve", *args, cwd=tmp_path, env=env)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("rs3gw: config error: ")
    assert needle in lines[0]
    assert proc.stdout == ""


# --------------------------------------------------------------------------- serve, with wiring stubbed


async def _tiny_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


class _Recorder:
    def __init__(self) -> None:
        self.settings: Settings | None = None
        self.config: uvicorn.Config | None = None


@pytest.fixture
def stub_wiring(monkeypatch: pytest.MonkeyPatch) -> _Recorder:
    rec = _Recorder()
    module = types.ModuleType("rs3gw.wiring")

    def build_app(settings: Settings) -> Any:
        rec.settings = settings
        return _tiny_app

    def app_factory() -> Any:  # pragma: no cover - only resolved by name
        return _tiny_app

    module.build_app = build_app  # type: ignore[attr-defined]
    module.app_factory = app_factory  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "rs3gw.wiring", module)

    def fake_run(self: uvicorn.Server, sockets: Any = None) -> None:
        rec.config = self.config
        self.started = True

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    for key in list(os.environ):
        if key.startswith("RS3GW_"):
            monkeypatch.delenv(key)
    return rec


def test_serve_generated_keys_banner(
    tmp_path: Path, stub_wiring: _Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "d"
    assert cli.main(["serve", "--data-dir", str(data), "--address", "127.0.0.1:9123"]) == 0
    err = capsys.readouterr().err.splitlines()
    cred = data / ".rs3gw" / "credentials.json"
    assert err[0] == (
        f"rs3gw {__version__} serving S3 on http://127.0.0.1:9123 "
        f"(region us-east-1, data {data}, keys: generated ({cred}))"
    )
    stored = json.loads(cred.read_text())
    assert err[1] == (
        f"access key: {stored['access_key']}  secret key: {stored['secret_key']} (stored in {cred}, mode 0600)"
    )
    assert stat.S_IMODE(cred.stat().st_mode) == 0o600
    assert len(err) == 2

    cfg = stub_wiring.config
    assert cfg is not None
    assert (cfg.host, cfg.port, cfg.http, cfg.lifespan, cfg.access_log) == (
        "127.0.0.1",
        9123,
        GracefulHttpToolsProtocol,
        "on",
        False,
    )
    assert (cfg.timeout_graceful_shutdown, cfg.server_header, cfg.date_header) == (30, False, True)
    assert cfg.ssl_certfile is None

    # Second start reuses the stored pair and never prints the secret again.
    assert cli.main(["serve", "--data-dir", str(data)]) == 0
    err2 = capsys.readouterr().err
    assert f"keys: stored ({cred})" in err2
    assert stored["secret_key"] not in err2 and len(err2.splitlines()) == 1


def test_serve_configured_secret_never_printed(
    tmp_path: Path, stub_wiring: _Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("x")
    argv = [
        "serve",
        "--data-dir",
        str(tmp_path / "d"),
        "--access-key",
        "AKIAFLAGS",
        "--secret-key",
        "s3cr3t-flag",
    ]
    argv += ["--tls-cert", str(cert), "--tls-key", str(key), "--address", "[::1]:8443", "--no-fsync"]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    assert "s3cr3t-flag" not in err
    assert err.startswith(f"rs3gw {__version__} serving S3 on https://[::1]:8443 (")
    assert "keys: flags" in err and len(err.splitlines()) == 1
    assert (tmp_path / "d").is_dir()
    cfg = stub_wiring.config
    assert cfg is not None and cfg.ssl_certfile == str(cert) and cfg.ssl_keyfile == str(key)
    assert stub_wiring.settings is not None and stub_wiring.settings.fsync is False


def test_serve_workers_pass_settings_json(
    tmp_path: Path,
    stub_wiring: _Recorder,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import uvicorn.supervisors

    calls: list[tuple[Any, list[Any]]] = []

    class _Supervisor:  # uvicorn's Multiprocess, recorded instead of started
        def __init__(self, config: Any, sockets: list[Any]) -> None:
            calls.append((config, sockets))

        def run(self) -> None:
            pass

    monkeypatch.setattr(uvicorn.supervisors, "Multiprocess", _Supervisor)
    monkeypatch.setenv(SETTINGS_JSON_ENV, "")
    # serve --workers points this at a directory it removes on exit; undone here so that servers
    # started later in this pytest process do not inherit a deleted metrics directory.
    (tmp_path / "metrics").mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    argv = ["serve", "--data-dir", str(tmp_path / "d"), "--workers", "3", "--user", "bob:BOBKEY:bobsecret"]
    assert cli.main(argv) == 0
    [(config, sockets)] = calls
    assert config.app == "rs3gw.wiring:app_factory"
    assert config.factory is True and config.workers == 3 and config.loop in ("uvloop", "auto")
    assert len(sockets) == 1 and sockets[0].fileno() == -1  # the port holder, closed on return
    settings = settings_from_json(os.environ[SETTINGS_JSON_ENV])
    assert settings.workers == 3 and [u.name for u in settings.users] == ["admin", "bob"]
    assert "3 workers" in capsys.readouterr().err


def test_resolve_settings_for_offline_commands(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    cli.add_common_args(parser)
    (tmp_path / "c.toml").write_text('region = "r-file"\n')
    args = parser.parse_args(["--data-dir", str(tmp_path / "d"), "--config", str(tmp_path / "c.toml")])
    settings = cli.resolve_settings(args, env={"RS3GW_ACCESS_KEY": "AKENV", "RS3GW_SECRET_KEY": "envsecret"})
    assert settings.region == "r-file" and settings.data_dir == tmp_path / "d"
    assert settings.keys_source == "environment"


# --------------------------------------------------------------------------- real process, SIGTERM

_STUB_RUNNER = """
import sys, types
import tests_stub_app
m = types.ModuleType("rs3gw.wiring")
m.build_app = lambda settings: tests_stub_app.app
sys.modules["rs3gw.wiring"] = m
from rs3gw.cli import main
sys.exit(main(sys.argv[1:]))
"""

_STUB_APP = """
import asyncio
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                print("lifespan shutdown", flush=True)
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/slow":
        await asyncio.sleep(1.0)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_real_serve_and_graceful_sigterm(tmp_path: Path) -> None:
    (tmp_path / "tests_stub_app.py").write_text(_STUB_APP)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RS3GW_")}
    env["PYTHONPATH"] = str(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-c", _STUB_RUNNER, "serve", "--address", f"127.0.0.1:{port}", "--data-dir", "d"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                    assert resp.read() == b"ok"
                    assert "Server" not in resp.headers and "Date" in resp.headers
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)

        result: list[bytes] = []

        def slow() -> None:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/slow", timeout=10) as resp:
                result.append(resp.read())

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        t.join(10)
        assert result == [b"ok"], "in-flight request was not finished"
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "lifespan shutdown" in out
    assert proc.returncode in (0, -signal.SIGTERM)
    assert "Traceback" not in err
    assert f"serving S3 on http://127.0.0.1:{port} (" in err
    assert "access key: " in err
