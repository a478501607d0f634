"""Analytics on a real server: request series match the requests made, the access-frequency
distribution, usage per class, cost following the configured prices, persistence across a restart
and the CLI (offline and through ``--endpoint``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from admin_http import admin_get
from conftest import ACCESS_KEY, SECRET_KEY, USER2, Server, start_server
from pg_cluster import metadata_env

B = "an-bucket"
GB = 1 << 30
CONFIG = """
[pricing]
STANDARD = 0.5
STANDARD_IA = 0.25
[analytics]
persist_interval = 0.5
usage_refresh = 0
price_get_per_1000 = 2.0
price_put_per_1000 = 10.0
price_list_per_1000 = 5.0
price_delete_per_1000 = 1.0
price_egress_per_gb = 100.0
"""
SIZES = {"hot": 1000, "warm": 2000, "cold": 3000, "gone": 500}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("analytics")
    (d / "rs3gw.toml").write_text(CONFIG)
    return d


@pytest.fixture(scope="module")
def traffic(base: Path) -> Iterator[tuple[Server, dict[str, int]]]:
    """One server and a known set of requests against bucket B."""
    srv = start_server(base / "data", "--config", str(base / "rs3gw.toml"))
    s3 = srv.client()
    s3.create_bucket(Bucket=B)
    for k, n in SIZES.items():
        extra = {"StorageClass": "STANDARD_IA"} if k == "cold" else {}
        s3.put_object(Bucket=B, Key=k, Body=os.urandom(n), **extra)
    out = 0
    for _ in range(12):
        out += len(s3.get_object(Bucket=B, Key="hot")["Body"].read())
    out += len(s3.get_object(Bucket=B, Key="warm")["Body"].read())
    s3.head_object(Bucket=B, Key="warm")
    s3.list_objects_v2(Bucket=B)
    s3.list_objects_v2(Bucket=B, Prefix="h")
    s3.delete_object(Bucket=B, Key="gone")
    for _ in range(2):
        with pytest.raises(ClientError):
            s3.get_object(Bucket=B, Key="missing")
    expected = {"PUT": 4, "GET": 15, "HEAD": 1, "LIST": 2, "DELETE": 1}
    yield srv, {**expected, "object_bytes_out": out}
    srv.stop()


def test_request_series_match(traffic: tuple[Server, dict[str, int]]) -> None:
    srv, want = traffic
    status, doc = admin_get(srv, f"analytics/requests?bucket={B}")
    assert status == 200
    tot = doc["buckets"][B]["totals"]
    for k in ("PUT", "GET", "HEAD", "LIST", "DELETE"):
        assert tot[k] == want[k], (k, tot)
    # bodies of the GETs plus the XML of listings and error documents
    assert want["object_bytes_out"] < tot["bytes_out"] < want["object_bytes_out"] + 8000
    assert tot["bytes_in"] == sum(SIZES.values())
    assert tot["errors"] == {"NoSuchKey": 2}
    series = doc["buckets"][B]["series"]
    assert series and sum(p["GET"] for p in series) == 15
    assert all(p["minute"] % 60 == 0 for p in series)
    assert list(doc["buckets"]) == [B]  # ?bucket= filters


def test_access_distribution(traffic: tuple[Server, dict[str, int]]) -> None:
    srv, _ = traffic
    status, doc = admin_get(srv, "analytics/access")
    assert status == 200
    dist = doc["buckets"][B]["distribution"]
    # hot read 12 times, warm once, cold never ("gone" was deleted: no longer stored)
    assert dist == {"0": 1, "1": 1, "2-10": 0, "11-100": 1, ">100": 0}
    assert doc["buckets"][B]["top"][0] == {"key": "hot", "reads": 12}


def test_usage_and_cost_follow_prices(traffic: tuple[Server, dict[str, int]]) -> None:
    srv, _want = traffic
    status, usage = admin_get(srv, "analytics/usage")
    assert status == 200
    classes = usage["buckets"][B]["classes"]
    assert classes["STANDARD"] == {"objects": 2, "bytes": 3000}
    assert classes["STANDARD_IA"] == {"objects": 1, "bytes": 3000}
    _, req = admin_get(srv, f"analytics/requests?bucket={B}")
    status, cost = admin_get(srv, "analytics/cost")
    assert status == 200
    c = cost["buckets"][B]
    assert c["storage_monthly"] == pytest.approx(3000 / GB * 0.5 + 3000 / GB * 0.25)
    assert c["requests"]["GET"] == {"count": 15, "cost": pytest.approx(15 * 2.0 / 1000)}
    assert c["requests"]["PUT"]["cost"] == pytest.approx(4 * 10.0 / 1000)
    assert c["requests"]["LIST"]["cost"] == pytest.approx(2 * 5.0 / 1000)
    assert c["requests"]["DELETE"]["cost"] == pytest.approx(1 * 1.0 / 1000)
    assert c["requests"]["HEAD"]["cost"] == pytest.approx(1 * 2.0 / 1000)
    assert c["egress"]["bytes"] == req["buckets"][B]["totals"]["bytes_out"]
    assert c["egress"]["cost"] == pytest.approx(c["egress"]["bytes"] / GB * 100.0)
    assert cost["request_prices_per_1000"]["PUT"] == 10.0


def test_admin_only_and_bad_query(traffic: tuple[Server, dict[str, int]]) -> None:
    srv, _ = traffic
    status, _body = admin_get(srv, "analytics/requests", creds=(USER2[1], USER2[2]))
    assert status == 403
    status, body = admin_get(srv, "analytics/requests?minutes=abc")
    assert status == 400 and b"InvalidArgument" in body
    status, doc = admin_get(srv, "analytics/requests?minutes=5")
    assert status == 200 and "_rs3gw" not in doc["buckets"]  # admin calls are not storage traffic


def _cli(*args: str, env: dict[str, str] | None = None) -> Any:
    r = subprocess.run(
        [sys.executable, "-m", "rs3gw", "analytics", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_cli_through_endpoint(traffic: tuple[Server, dict[str, int]]) -> None:
    srv, want = traffic
    keys = {"RS3GW_ACCESS_KEY": ACCESS_KEY, "RS3GW_SECRET_KEY": SECRET_KEY}
    doc = _cli("requests", "--endpoint", srv.endpoint, "--bucket", B, env=keys)
    assert doc["buckets"][B]["totals"]["GET"] == want["GET"]


def test_history_survives_restart_and_offline_cli(base: Path, traffic: tuple[Server, dict[str, int]]) -> None:
    srv, want = traffic
    srv.stop()  # shutdown writes this process's file
    files = list((base / "data" / ".rs3gw" / "analytics").glob("requests-*.json"))
    assert files
    common = ["--data-dir", str(base / "data"), "--config", str(base / "rs3gw.toml")]
    store = metadata_env(base / "data")  # the server's store (PostgreSQL in that matrix mode)
    offline = _cli("requests", *common, "--bucket", B, env=store)
    assert offline["buckets"][B]["totals"]["PUT"] == want["PUT"]
    cost = _cli("cost", *common, env=store)
    assert cost["buckets"][B]["requests"]["GET"]["count"] == want["GET"]
    again = start_server(base / "data", "--config", str(base / "rs3gw.toml"))
    try:
        again.client().get_object(Bucket=B, Key="warm")["Body"].read()
        status, doc = admin_get(again, f"analytics/requests?bucket={B}")
        assert status == 200
        assert doc["buckets"][B]["totals"]["GET"] == want["GET"] + 1  # old process's file + this one
        assert doc["buckets"][B]["totals"]["PUT"] == want["PUT"]
    finally:
        again.stop()
