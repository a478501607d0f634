"""``GET /metrics`` of a real `rs3gw serve`: scraped and parsed with prometheus_client's own parser,
the listed ``rs3gw_`` series present and moving; private mode; aggregation across ``--workers 2``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from admin_http import signed_get
from conftest import ACCESS_KEY, SECRET_KEY, USER2, Server, fresh_bucket, start_server

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

REQUIRED = (
    "rs3gw_requests_total",
    "rs3gw_request_duration_seconds_bucket",
    "rs3gw_request_duration_seconds_count",
    "rs3gw_bytes_received_total",
    "rs3gw_bytes_sent_total",
    "rs3gw_requests_in_flight",
    "rs3gw_errors_total",
    "rs3gw_bucket_bytes",
    "rs3gw_bucket_objects",
    "rs3gw_dedup_ratio",
    "rs3gw_compression_ratio",
    "rs3gw_scrub_runs_total",
    "rs3gw_scrub_corrupt_found_total",
    "rs3gw_scrub_quarantined_objects",
    "rs3gw_scrub_last_checked_objects",
)


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def scrape(srv: Server) -> Samples:
    with urllib.request.urlopen(f"{srv.endpoint}/metrics", timeout=10) as r:
        assert r.status == 200
        assert r.headers["content-type"].startswith("text/plain")
        return parse(r.read().decode())


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


@pytest.fixture(scope="module")
def msrv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    args = ("--compression", "zstd", "--dedup", "--dedup-min-size", "0", "--metrics-refresh", "0")
    srv = start_server(tmp_path_factory.mktemp("metrics") / "data", *args)
    yield srv
    srv.stop()


def test_series_exist_and_move(msrv: Server) -> None:
    s3 = msrv.client()
    with fresh_bucket(s3, "metrics") as bucket:
        before = scrape(msrv)
        body = b"metrics line of text\n" * 5000  # compressible, and its blocks repeat (dedup)
        s3.put_object(Bucket=bucket, Key="a", Body=body)
        s3.put_object(Bucket=bucket, Key="b", Body=body)
        assert s3.get_object(Bucket=bucket, Key="a")["Body"].read() == body
        with pytest.raises(s3.exceptions.NoSuchKey):
            s3.get_object(Bucket=bucket, Key="missing")
        after = scrape(msrv)

        assert set(REQUIRED) <= names(after), set(REQUIRED) - names(after)
        put = {"operation": "PutObject", "status": "200"}
        assert value(after, "rs3gw_requests_total", **put) == value(before, "rs3gw_requests_total", **put) + 2
        get = {"operation": "GetObject", "status": "200"}
        assert value(after, "rs3gw_requests_total", **get) == value(before, "rs3gw_requests_total", **get) + 1
        miss = {"operation": "GetObject", "code": "NoSuchKey"}
        assert value(after, "rs3gw_errors_total", **miss) == value(before, "rs3gw_errors_total", **miss) + 1
        assert value(after, "rs3gw_requests_total", operation="GetObject", status="404") >= 1
        op = {"operation": "PutObject"}
        assert value(after, "rs3gw_bytes_received_total", **op) - value(
            before, "rs3gw_bytes_received_total", **op
        ) == 2 * len(body)
        sent = value(after, "rs3gw_bytes_sent_total", operation="GetObject")
        assert sent - value(before, "rs3gw_bytes_sent_total", operation="GetObject") >= len(body)
        count = "rs3gw_request_duration_seconds_count"
        assert value(after, count, **op) == value(before, count, **op) + 2
        inf = value(after, "rs3gw_request_duration_seconds_bucket", le="+Inf", **op)
        assert inf == value(after, count, **op)
        assert value(after, "rs3gw_requests_in_flight") == 0  # the scrape itself is not an S3 request
        assert value(after, "rs3gw_bucket_bytes", bucket=bucket) == 2 * len(body)
        assert value(after, "rs3gw_bucket_objects", bucket=bucket) == 2
        assert 0.5 <= value(after, "rs3gw_dedup_ratio") < 1  # the second copy costs nothing
        assert 0.5 < value(after, "rs3gw_compression_ratio") < 1


def test_head_and_probe_paths(msrv: Server) -> None:
    req = urllib.request.Request(f"{msrv.endpoint}/metrics", method="HEAD")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200 and r.read() == b""
    with urllib.request.urlopen(f"{msrv.endpoint}/health", timeout=10) as r:
        assert r.status == 200  # probes stay outside the request series


def test_private_metrics_only_via_admin_api(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", "--private-metrics")
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{srv.endpoint}/metrics", timeout=10)
        # An anonymous GET /metrics is then an S3 request (a bucket named "metrics"): an S3 error.
        assert err.value.code in (403, 404)
        assert b"<Error>" in (page := err.value.read()) and b"rs3gw_" not in page
        status, body = signed_get(srv, "/_rs3gw/admin/metrics", (ACCESS_KEY, SECRET_KEY))
        assert status == 200
        assert "rs3gw_scrub_runs_total" in names(parse(body.decode()))
        status, body = signed_get(srv, "/_rs3gw/admin/metrics", USER2[1:])
        assert status == 403 and b"AccessDenied" in body
    finally:
        srv.stop()


def test_workers_aggregate_every_process(tmp_path: Path) -> None:
    """With two workers, whichever answers the scrape reports the requests both served."""
    srv = start_server(tmp_path / "data", "--workers", "2")
    try:
        s3: Any = srv.client()
        with fresh_bucket(s3, "mp") as bucket:
            for i in range(12):  # new connections each: uvicorn's workers share them out
                srv.client().put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
            counts = set()
            for _ in range(6):
                got = scrape(srv)
                counts.add(value(got, "rs3gw_requests_total", operation="PutObject", status="200"))
                assert value(got, "rs3gw_requests_in_flight") == 0
            assert counts == {12.0}
    finally:
        srv.stop()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_json_logs_carry_request_ids(tmp_path: Path, workers: str) -> None:
    srv = start_server(tmp_path / "data", "--log-format", "json", "--workers", workers)
    try:
        s3 = srv.client()
        with fresh_bucket(s3, "jsonlog") as bucket:
            put = s3.put_object(Bucket=bucket, Key="k", Body=b"hello")
            rid = put["ResponseMetadata"]["RequestId"]
            with pytest.raises(s3.exceptions.NoSuchKey) as err:
                s3.get_object(Bucket=bucket, Key="nope")
            miss_rid = err.value.response["ResponseMetadata"]["RequestId"]
    finally:
        srv.stop()
    lines = [ln for ln in srv.log.read_text().splitlines() if ln.startswith("{")]
    records = [json.loads(ln) for ln in lines]  # every JSON-looking line parses
    by_id = {r["request_id"]: r for r in records if r.get("logger") == "rs3gw.access" and "request_id" in r}
    assert by_id[rid]["operation"] == "PutObject" and by_id[rid]["status"] == 200
    assert by_id[rid]["bytes_in"] == 5 and by_id[rid]["bucket"] == bucket
    assert by_id[miss_rid]["error_code"] == "NoSuchKey" and by_id[miss_rid]["status"] == 404
    assert any(r["logger"].startswith("uvicorn") for r in records)  # the server's own lines too
