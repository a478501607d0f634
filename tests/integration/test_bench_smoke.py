"""scripts/bench.py end to end against rs3gw alone: a tiny matrix, real s3bench, JSON checked for sane numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "scripts" / "bench.py"
S3BENCH = REPO.parent / "shared" / "bench" / "s3bench.py"


def _run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO,
    )


@pytest.mark.skipif(not S3BENCH.is_file(), reason=f"s3bench load generator not found at {S3BENCH}")
def test_quick_rs3gw_only_reports_numbers_and_no_errors(tmp_path: Path) -> None:
    saved = tmp_path / "bench.json"
    out = _run(
        "--quick",
        "--only",
        "rs3gw",
        "--duration",
        "0.5",
        "--sizes",
        "4KiB",
        "--concurrency",
        "4",
        "--json",
        "--save",
        str(saved),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    doc = json.loads(out.stdout)
    assert json.loads(saved.read_text()) == doc
    assert doc["errors"] == 0
    assert doc["servers"].keys() == {"rs3gw"}
    cells = {(r["op"], r["concurrency"]) for r in doc["results"]}
    assert cells == {("put", 4), ("get", 4), ("head", 4), ("list", 4)}
    for r in doc["results"]:
        m = r["median"]
        assert r["server"] == "rs3gw"
        assert m["errors"] == 0, m["error_samples"]
        assert m["ops_s"] > 0 and m["p50_ms"] > 0 and m["p99_ms"] >= m["p50_ms"]
        assert m["server_cpu_pct"] is not None and m["server_cpu_pct"] > 0  # --server-pid reached s3bench
        assert len(r["runs"]) == 1
    by_op = {r["op"]: r["median"] for r in doc["results"]}
    assert by_op["put"]["mib_s"] > 0 and by_op["get"]["mib_s"] > 0
    assert by_op["list"]["keys_s"] == pytest.approx(by_op["list"]["ops_s"] * 1000)
    # the Markdown table goes to stderr when --json owns stdout
    assert "| PUT | 4KiB | 4 | rs3gw |" in out.stderr
    assert "LIST of 1000 keys >= 50,000 keys/s" in out.stderr


def test_help_and_bad_arguments() -> None:
    out = _run("--help", timeout=60)
    assert out.returncode == 0
    for flag in ("--s3bench", "--runs", "--duration", "--quick", "--only", "--json"):
        assert flag in out.stdout
    bad = _run("--only", "minio", timeout=60)
    assert bad.returncode == 2 and "unknown server" in bad.stderr
    missing = _run("--s3bench", "/nonexistent/s3bench.py", "--only", "rs3gw", timeout=60)
    assert missing.returncode != 0 and "s3bench not found" in missing.stderr
