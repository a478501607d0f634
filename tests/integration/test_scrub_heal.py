"""Self-healing on data written by a real server: a flipped byte in a stored blob (plain,
compressed, deduplicated; a file or, when small, a row of ``smallblobs.db``) is found by ``rs3gw heal run`` and by the background scrubber, shows in
``heal status`` and /metrics, and the object is quarantined: GET answers InvalidObjectState."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families
from stored_blob_helpers import crc32_multipart, flip, segments, text

from blob_access import packed_ids, read_blob
from conftest import ACCESS_KEY, SECRET_KEY, Server, start_server
from meta_access import dedup_chunk_blobs, set_recorded_checksum
from pg_cluster import metadata_env

MiB = 1024 * 1024


def heal(data_dir: Path, *args: str) -> tuple[int, dict[str, Any]]:
    env = {**os.environ, "RS3GW_ACCESS_KEY": ACCESS_KEY, "RS3GW_SECRET_KEY": SECRET_KEY}
    env.update(metadata_env(data_dir))  # the store the server used (PostgreSQL in that matrix mode)
    out = subprocess.run(
        [sys.executable, "-m", "rs3gw", "heal", *args, "--data-dir", str(data_dir), "--json"],
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert out.stdout, out.stderr
    doc: dict[str, Any] = json.loads(out.stdout)
    return out.returncode, doc


def metrics(srv: Server) -> dict[str, float]:
    with urllib.request.urlopen(f"{srv.endpoint}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if not s.labels}


def assert_quarantined(s3: Any, bucket: str, key: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key=key)
    assert err.value.response["Error"]["Code"] == "InvalidObjectState"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("heal") / "data")
    yield srv
    srv.stop()


@pytest.mark.local_backend_only("flips bytes of stored blobs on disk")
def test_heal_run_quarantines_corrupt_versions(plain: Server) -> None:
    s3, data = plain.client(), plain.data_dir
    s3.create_bucket(Bucket="heal")
    rnd = random.Random(5)
    objs = {"good": b"fine", "victim": rnd.randbytes(300_000), "crc": rnd.randbytes(70_000)}
    for k, v in objs.items():
        s3.put_object(Bucket="heal", Key=k, Body=v, ChecksumAlgorithm="CRC32")
    crc32_multipart(s3, "heal", "mp", [rnd.randbytes(5 * MiB), rnd.randbytes(1000)])

    rc, rep = heal(data, "run")
    assert rc == 0 and rep["clean"] and rep["versions_checked"] == 4, rep
    assert rep["bytes_checked"] == sum(map(len, objs.values())) + 5 * MiB + 1000

    flip(data, segments(data, "heal", "victim")[0], 150_000)
    assert segments(data, "heal", "mp")[1] in packed_ids(data)  # the second part is small: a row
    flip(data, segments(data, "heal", "mp")[1], 10)
    set_recorded_checksum(data, "crc", "CRC32", "AAAAAA==")  # bytes intact, record wrong

    rc, rep = heal(data, "run")
    assert rc == 1 and not rep["clean"]
    found = {f["key"]: f for f in rep["corrupt"]}
    assert sorted(found) == ["crc", "mp", "victim"]
    assert all(f["quarantined"] for f in found.values())
    assert "does not match the ETag" in found["victim"]["problem"]
    assert "multipart ETag" in found["mp"]["problem"]
    assert "CRC32 checksum" in found["crc"]["problem"]

    rc, status = heal(data, "status")
    assert rc == 0 and status["last"]["quarantined"] == 3
    assert status["totals"]["runs"] == 2 and status["totals"]["corrupt_found"] == 3
    m = metrics(plain)
    assert m["rs3gw_scrub_corrupt_found_total"] == 3
    assert m["rs3gw_scrub_quarantined_objects"] == 3
    assert m["rs3gw_scrub_last_corrupt_objects"] == 3
    assert m["rs3gw_scrub_runs_total"] == 2

    for key in ("victim", "mp", "crc"):
        assert_quarantined(s3, "heal", key)
    assert s3.head_object(Bucket="heal", Key="victim")["ContentLength"] == 300_000
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket="heal", Key="copy", CopySource="heal/victim")
    assert err.value.response["Error"]["Code"] == "InvalidObjectState"
    assert s3.get_object(Bucket="heal", Key="good")["Body"].read() == b"fine"

    s3.put_object(Bucket="heal", Key="victim", Body=b"replaced")  # an overwrite is a fresh start
    assert s3.get_object(Bucket="heal", Key="victim")["Body"].read() == b"replaced"
    rc, rep = heal(data, "run")
    assert rc == 1 and rep["corrupt"] == [] and rep["already_quarantined"] == 2


@pytest.mark.local_backend_only("flips bytes of stored blobs on disk")
@pytest.mark.parametrize(
    "layers",
    [("--compression", "zstd"), ("--dedup", "--dedup-min-size", "0", "--compression", "zstd")],
    ids=["compressed", "dedup+compressed"],
)
def test_flip_in_framed_payload_is_detected(tmp_path: Path, layers: tuple[str, ...]) -> None:
    srv = start_server(tmp_path / "data", *layers)
    data = srv.data_dir
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="layers")
        body = text(600_000, 3)
        s3.put_object(Bucket="layers", Key="obj", Body=body)
        s3.put_object(Bucket="layers", Key="other", Body=text(200_000, 4))
        if "--dedup" in layers:  # the object's blob is a manifest: damage one of its chunks
            victims = dedup_chunk_blobs(data)
            target = max(victims, key=lambda b: len(read_blob(data, b)))
            other_ok = False  # a chunk may be the other object's: only "obj" is asserted below
        else:
            target = segments(data, "layers", "obj")[0]
            other_ok = True
        assert read_blob(data, target)[:8] == b"\x93RS3GW\x1a\x01"  # framed: flip inside frame 0's payload
        flip(data, target, 16 + 40)
        rc, rep = heal(data, "run")
        assert rc == 1
        assert "obj" in {f["key"] for f in rep["corrupt"]} or "other" in {f["key"] for f in rep["corrupt"]}
        for f in rep["corrupt"]:
            assert_quarantined(s3, "layers", f["key"])
        if other_ok:
            assert [f["key"] for f in rep["corrupt"]] == ["obj"]
            assert s3.get_object(Bucket="layers", Key="other")["Body"].read() == text(200_000, 4)
    finally:
        srv.stop()


@pytest.mark.local_backend_only("flips bytes of stored blobs on disk")
def test_background_scrubber_finds_corruption(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", "--scrub-interval", "1", "--scrub-rate", "0")
    data = srv.data_dir
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="bgscrub")
        s3.put_object(Bucket="bgscrub", Key="fine", Body=b"untouched bytes")
        s3.put_object(Bucket="bgscrub", Key="bad", Body=random.Random(9).randbytes(100_000))
        deadline = time.time() + 20
        while metrics(srv)["rs3gw_scrub_last_checked_objects"] < 2:  # a clean pass over both first
            assert time.time() < deadline, "the background scrubber never checked the objects"
            time.sleep(0.2)
        assert metrics(srv)["rs3gw_scrub_corrupt_found_total"] == 0
        flip(data, segments(data, "bgscrub", "bad")[0], 4242)
        while metrics(srv)["rs3gw_scrub_corrupt_found_total"] < 1:
            assert time.time() < deadline + 10, "the background scrubber never found the flipped byte"
            time.sleep(0.2)
        assert metrics(srv)["rs3gw_scrub_quarantined_objects"] == 1
        rc, status = heal(data, "status")
        # A later (clean) pass may already have replaced "last": its report still counts the
        # quarantined version, and the running totals keep the find.
        assert rc == 0 and status["totals"]["corrupt_found"] == 1
        assert status["last"]["quarantined"] == 1 and not status["last"]["clean"]
        assert_quarantined(s3, "bgscrub", "bad")
        assert s3.get_object(Bucket="bgscrub", Key="fine")["Body"].read() == b"untouched bytes"
    finally:
        srv.stop()
    assert "scrub: corrupt object bucket=bgscrub key='bad'" in srv.log.read_text()
