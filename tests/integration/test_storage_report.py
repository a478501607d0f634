"""Storage-class report, cost estimate, access tracking and INTELLIGENT_TIERING movement.

A real server with accelerated lifecycle days; numbers are checked against what the test stored,
through the admin API and the offline CLI (``rs3gw storage report --json``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from admin_http import ROOT, admin_get
from conftest import ACCESS_KEY, SECRET_KEY, USER2, Server, start_server
from pg_cluster import metadata_env
from polling import wait_until

DAY = 0.5
GB = 1 << 30
CLOCK = ("--lifecycle-day-seconds", str(DAY), "--lifecycle-interval", "0.2")  # accelerated lifecycle days
PRICES = {"STANDARD": 0.02, "GLACIER": 0.004, "DEEP_ARCHIVE": 0.001, "STANDARD_IA": 0.01}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("report")
    cfg = base / "rs3gw.toml"
    cfg.write_text(
        "[tiers]\ninterval = 0.1\nit_infrequent_days = 4\nit_archive_instant_days = 12\n"
        "candidate_days = 2\narchive_candidate_days = 4\n"
        "[pricing]\n" + "".join(f"{k} = {v}\n" for k, v in PRICES.items())
    )
    s = start_server(base / "data", "--config", str(cfg), *CLOCK)
    s.extra["config"] = cfg
    yield s
    s.stop()


def _report(srv: Server, creds: tuple[str, str] = ROOT) -> tuple[int, Any]:
    return admin_get(srv, "storage/report", creds)


def _wait(pred: Callable[[], bool], timeout: float = 20.0) -> None:
    wait_until(pred, timeout, interval=0.1)


def test_report_counts_and_costs(srv: Server) -> None:
    s3 = srv.client()
    s3.create_bucket(Bucket="rep")
    stored = {"STANDARD": [1000, 2500], "GLACIER": [4000], "DEEP_ARCHIVE": [3000, 10], "STANDARD_IA": [777]}
    for cls, sizes in stored.items():
        for i, n in enumerate(sizes):
            s3.put_object(Bucket="rep", Key=f"{cls}/{i}", Body=b"z" * n, StorageClass=cls)
    status, rep = _report(srv)
    assert status == 200
    b = rep["buckets"]["rep"]
    assert b["classes"] == {c: {"objects": len(s), "bytes": sum(s)} for c, s in sorted(stored.items())}
    monthly = sum(PRICES[c] * sum(s) / GB for c, s in stored.items())
    standard = 0.02 * sum(sum(s) for s in stored.values()) / GB
    archival = sum((0.02 - PRICES[c]) * sum(stored[c]) / GB for c in ("GLACIER", "DEEP_ARCHIVE"))
    assert b["cost"]["monthly"] == pytest.approx(monthly, rel=1e-9)
    assert b["cost"]["all_standard_monthly"] == pytest.approx(standard, rel=1e-9)
    assert b["cost"]["savings_monthly"] == pytest.approx(standard - monthly, rel=1e-9)
    assert b["cost"]["archival_savings_monthly"] == pytest.approx(archival, rel=1e-9)
    assert rep["prices_per_gb_month"]["GLACIER"] == 0.004
    # Fresh objects are no transition candidates yet; after 2 lifecycle days the STANDARD ones are.
    assert b["transition_candidates"]["STANDARD_IA"]["objects"] == 0
    time.sleep(2 * DAY + 0.1)
    s3.get_object(Bucket="rep", Key="STANDARD/0")["Body"].read()
    time.sleep(2 * DAY + 0.1)  # STANDARD/1 now idle for 4 days; STANDARD/0 was read 2 days ago
    status, rep = _report(srv)
    cand = rep["buckets"]["rep"]["transition_candidates"]
    assert cand["STANDARD_IA"] == {"objects": 2, "bytes": 3500}
    assert cand["GLACIER"] == {"objects": 1, "bytes": 2500}
    assert rep["buckets"]["rep"]["access"] == {"objects_accessed": 1, "gets": 1}
    # Non-primary accounts are refused.
    status, _ = _report(srv, (USER2[1], USER2[2]))
    assert status == 403

    # The offline CLI reads the same numbers from the metadata store.
    offline_env = {"RS3GW_ACCESS_KEY": ACCESS_KEY, "RS3GW_SECRET_KEY": SECRET_KEY, "PATH": "/usr/bin:/bin"}
    offline_env.update(metadata_env(srv.data_dir))  # the server's store (PostgreSQL in that matrix mode)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "rs3gw",
            "storage",
            "report",
            "--data-dir",
            str(srv.data_dir),
            "--json",
            "--config",
            str(srv.extra["config"]),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=offline_env,
    )
    assert out.returncode == 0, out.stderr
    offline = json.loads(out.stdout)["buckets"]["rep"]
    assert offline["classes"] == b["classes"]
    assert offline["cost"] == b["cost"]
    text = subprocess.run(
        [sys.executable, "-m", "rs3gw", "storage", "report", "--data-dir", str(srv.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=offline_env,
    )
    assert text.returncode == 0, text.stderr
    assert "GLACIER" in text.stdout and "cost/month" in text.stdout


def test_access_tracking_and_intelligent_tiering(srv: Server) -> None:
    s3 = srv.client()
    s3.create_bucket(Bucket="itb")
    s3.put_object(Bucket="itb", Key="hot", Body=b"h" * 100, StorageClass="INTELLIGENT_TIERING")
    s3.put_object(Bucket="itb", Key="cold", Body=b"c" * 300, StorageClass="INTELLIGENT_TIERING")

    def tiers() -> dict[str, Any]:
        return dict(_report(srv)[1]["buckets"]["itb"]["intelligent_tiering"])

    assert tiers() == {"FREQUENT": {"objects": 2, "bytes": 400}}
    # Keep "hot" accessed; "cold" is idle for 4+ lifecycle days and moves to Infrequent Access.
    deadline = time.monotonic() + 6 * DAY
    gets = 0
    while time.monotonic() < deadline:
        assert s3.get_object(Bucket="itb", Key="hot")["Body"].read() == b"h" * 100
        gets += 1
        time.sleep(DAY / 2)
    _wait(lambda: tiers().get("INFREQUENT") == {"objects": 1, "bytes": 300})
    assert tiers()["FREQUENT"] == {"objects": 1, "bytes": 100}
    assert _report(srv)[1]["buckets"]["itb"]["access"] == {"objects_accessed": 1, "gets": gets}
    # Accessed again: back to the frequent tier; idle long enough: Archive Instant Access.
    s3.get_object(Bucket="itb", Key="cold")["Body"].read()
    _wait(lambda: tiers() == {"FREQUENT": {"objects": 2, "bytes": 400}})
    _wait(lambda: tiers().get("ARCHIVE_INSTANT", {}).get("objects") == 2, timeout=12 * DAY + 10)
    cost = _report(srv)[1]["buckets"]["itb"]["cost"]
    assert cost["monthly"] == pytest.approx(0.004 * 400 / GB, rel=1e-9)  # default IT archive-instant price
    assert cost["all_standard_monthly"] == pytest.approx(0.02 * 400 / GB, rel=1e-9)
    # Objects stay readable in every access tier (no restore needed), and a read brings them back.
    assert s3.get_object(Bucket="itb", Key="cold")["Body"].read() == b"c" * 300
    _wait(lambda: tiers().get("FREQUENT", {}).get("objects") == 1)
