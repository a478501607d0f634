"""Self-healing from a backup, on data written by a real server: ``rs3gw backup create`` to a
directory, flip a byte in a stored blob (a plain blob, a compressed frame, a dedup chunk, a dedup
manifest; a file or, when small, a row of ``smallblobs.db``), then ``rs3gw heal run --heal-backup DIR`` (or the background scrubber with ``[scrub]
heal_backup``) rewrites the object from the verified backup copy: GET returns the original bytes,
``heal status`` and /metrics count the repair. A version the backup does not hold (an overwrite
after the backup, a newer version) or whose backed-up body is damaged is quarantined instead,
never "repaired" with other bytes."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from stored_blob_helpers import crc32_multipart, flip, flip_file, metric_total, segments, text

from blob_access import has_blob, packed_ids, read_blob
from conftest import ACCESS_KEY, SECRET_KEY, Server, start_server
from meta_access import dedup_chunk_blobs, version_segments
from pg_cluster import metadata_env
from rs3gw.config import load_settings

pytestmark = pytest.mark.local_backend_only("flips bytes in stored blobs on disk")
MiB = 1024 * 1024
BLOCK = 65536  # the default dedup block size (fixed-size chunks)
FRAMED = b"\x93RS3GW\x1a\x01"  # the header of a compressed (framed) blob
ENV = {**os.environ, "RS3GW_ACCESS_KEY": ACCESS_KEY, "RS3GW_SECRET_KEY": SECRET_KEY}


def rs3gw(*args: str, timeout: float = 180, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, "-m", "rs3gw", *args, "--json"],
        capture_output=True,
        env={**ENV, **(env or {})},
        timeout=timeout,
    )
    assert out.stdout, out.stderr
    doc: dict[str, Any] = json.loads(out.stdout)
    return out.returncode, doc


def heal(data: Path, *args: str) -> tuple[int, dict[str, Any]]:
    return rs3gw("heal", *args, "--data-dir", str(data), env=metadata_env(data))


def backup(srv: Server, target: Path, bucket: str) -> None:
    rc, doc = rs3gw(
        "backup", "create", "--endpoint", srv.endpoint, "--target", str(target), "--bucket", bucket
    )
    assert rc == 0, doc


def assert_quarantined(s3: Any, bucket: str, key: str, **kw: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key=key, **kw)
    assert err.value.response["Error"]["Code"] == "InvalidObjectState"


def chunk_blob(data: Path, piece: bytes) -> str:
    """The stored blob of the dedup chunk holding exactly ``piece``."""
    rows = dedup_chunk_blobs(data, "hash=?", (hashlib.sha256(piece).digest(),))
    assert rows, "no dedup chunk holds these bytes"
    return rows[0]


def flip_payload(data: Path, blob_id: str) -> None:
    """Flip a byte of the stored data: inside frame 0's payload of a compressed blob, else mid-blob."""
    raw = read_blob(data, blob_id)
    flip(data, blob_id, 16 + 40 if raw[:8] == FRAMED else len(raw) // 2)


@pytest.mark.parametrize(
    "layers",
    [(), ("--compression", "zstd"), ("--dedup", "--dedup-min-size", "0", "--compression", "zstd")],
    ids=["plain", "compressed", "dedup+compressed"],
)
def test_heal_run_repairs_from_backup(tmp_path: Path, layers: tuple[str, ...]) -> None:
    srv = start_server(tmp_path / "data", *layers)
    data, repo = srv.data_dir, tmp_path / "backup"
    dedup = "--dedup" in layers
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="heal-b")
        rnd = random.Random(11)
        victim, parts = text(300_000, 21), [rnd.randbytes(5 * MiB), text(1000, 22)]
        s3.put_object(Bucket="heal-b", Key="victim", Body=victim, ChecksumAlgorithm="SHA256")
        crc32_multipart(s3, "heal-b", "mp", parts)
        s3.put_object(Bucket="heal-b", Key="good", Body=b"untouched")
        s3.put_object(Bucket="heal-b", Key="newer", Body=text(150_000, 23))
        backup(srv, repo, "heal-b")
        newer = text(150_000, 24)
        s3.put_object(Bucket="heal-b", Key="newer", Body=newer)  # the backup holds only the old bytes

        old_victim = segments(data, "heal-b", "victim")
        assert segments(data, "heal-b", "mp")[1] in packed_ids(data)  # part 2 is small: a row
        if dedup:
            flip_payload(data, chunk_blob(data, victim[BLOCK : 2 * BLOCK]))  # a chunk: healed in place
            flip_payload(data, segments(data, "heal-b", "mp")[1])  # part 2's manifest
            flip_payload(data, chunk_blob(data, newer[:BLOCK]))
        else:
            if layers:
                assert read_blob(data, old_victim[0])[:8] == FRAMED
            flip_payload(data, old_victim[0])
            flip_payload(data, segments(data, "heal-b", "mp")[1])  # a small blob: a packed row
            flip_payload(data, segments(data, "heal-b", "newer")[0])

        rc, rep = heal(data, "run", "--heal-backup", str(repo))
        assert rc == 1 and not rep["clean"], rep  # "newer" could not be repaired
        found = {f["key"]: f for f in rep["corrupt"]}
        assert sorted(found) == ["mp", "newer", "victim"], rep
        for key in ("victim", "mp"):
            assert found[key]["repaired"] and not found[key]["quarantined"], found[key]
            assert str(repo) in found[key]["repair"]
        if dedup:
            assert "dedup chunk" in found["victim"]["repair"]
        assert not found["newer"]["repaired"] and found["newer"]["quarantined"]
        assert "no intact copy" in found["newer"]["repair"]
        assert rep["repaired"] == 2 and rep["quarantined"] == 1 and rep["repair_source"] == f"backup {repo}"

        assert s3.get_object(Bucket="heal-b", Key="victim")["Body"].read() == victim
        assert s3.get_object(Bucket="heal-b", Key="mp")["Body"].read() == b"".join(parts)
        assert s3.get_object(Bucket="heal-b", Key="mp", PartNumber=2)["Body"].read() == parts[1]
        assert segments(data, "heal-b", "mp")[1] in packed_ids(data)  # rewritten small: a row again
        assert s3.get_object(Bucket="heal-b", Key="good")["Body"].read() == b"untouched"
        assert_quarantined(s3, "heal-b", "newer")
        assert segments(data, "heal-b", "victim") != old_victim  # swapped out (a manifest, with dedup)
        assert not has_blob(data, old_victim[0])  # and freed

        rc, status = heal(data, "status")
        assert rc == 0 and status["totals"]["repaired"] == 2 and status["last"]["repaired"] == 2
        assert metric_total(srv, "rs3gw_scrub_repaired_total") == 2
        assert metric_total(srv, "rs3gw_scrub_last_repaired_objects") == 2

        rc, rep = heal(data, "run", "--heal-backup", str(repo))  # the repaired data now verifies
        assert rep["corrupt"] == [] and rep["already_quarantined"] == 1 and rep["repaired"] == 0
        text_status = subprocess.run(
            [sys.executable, "-m", "rs3gw", "heal", "status", "--data-dir", str(data)],
            capture_output=True,
            text=True,
            env=ENV,
            timeout=60,
        ).stdout
        assert "2 repaired" in text_status  # the running totals
    finally:
        srv.stop()


def test_versions_and_damaged_backups_are_never_used_for_other_bytes(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data")
    data, repo = srv.data_dir, tmp_path / "backup"
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="ver-b")
        s3.put_bucket_versioning(Bucket="ver-b", VersioningConfiguration={"Status": "Enabled"})
        v1_body, v2_body, d_body = text(90_000, 31), text(90_000, 32), text(80_000, 33)
        v1 = s3.put_object(Bucket="ver-b", Key="k", Body=v1_body)["VersionId"]
        s3.put_object(Bucket="ver-b", Key="d", Body=d_body)
        backup(srv, repo, "ver-b")
        v2 = s3.put_object(Bucket="ver-b", Key="k", Body=v2_body)["VersionId"]

        blobs = {vid: segs[0] for vid, segs in version_segments(data, "k").items()}
        flip(data, blobs[v1], 500)
        flip(data, blobs[v2], 500)
        flip(data, segments(data, "ver-b", "d")[0], 500)
        sha = hashlib.sha256(d_body).hexdigest()
        flip_file(repo / "objects" / sha[:2] / sha, 7)  # the backed-up body of "d" is damaged too

        rc, rep = heal(data, "run")  # no backup configured: quarantined, as before
        assert rc == 1 and rep["repaired"] == 0 and rep["quarantined"] == 3, rep
        assert all(f["repair"] == "" for f in rep["corrupt"])

        rc, rep = heal(data, "run", "--heal-backup", str(repo))  # quarantined earlier: offered again
        assert rc == 1 and rep["repaired"] == 1, rep
        assert [(f["key"], f["version_id"]) for f in rep["released"]] == [("k", v1)]
        assert rep["already_quarantined"] == 2  # v2 (not in the backup) and "d" (its copy is damaged)
        assert s3.get_object(Bucket="ver-b", Key="k", VersionId=v1)["Body"].read() == v1_body
        assert_quarantined(s3, "ver-b", "k")  # the latest, v2: never given v1's bytes
        assert_quarantined(s3, "ver-b", "k", VersionId=v2)
        assert_quarantined(s3, "ver-b", "d")
        assert metric_total(srv, "rs3gw_scrub_repaired_total") == 1
    finally:
        srv.stop()


def test_background_scrubber_heals_from_configured_backup(tmp_path: Path) -> None:
    repo = tmp_path / "backup"
    config = tmp_path / "rs3gw.toml"
    config.write_text(f"[scrub]\nheal_backup = {json.dumps(str(repo))}\n")
    srv = start_server(
        tmp_path / "data", "--config", str(config), "--scrub-interval", "1", "--scrub-rate", "0"
    )
    data = srv.data_dir
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="bg-b")
        body = random.Random(41).randbytes(200_000)
        s3.put_object(Bucket="bg-b", Key="obj", Body=body)
        backup(srv, repo, "bg-b")
        flip(data, segments(data, "bg-b", "obj")[0], 777)
        deadline = time.time() + 60  # /metrics caches scrub state for [metrics] refresh (10 s)
        while metric_total(srv, "rs3gw_scrub_repaired_total") < 1:
            assert time.time() < deadline, "the background scrubber never repaired the flipped byte"
            time.sleep(0.2)
        assert s3.get_object(Bucket="bg-b", Key="obj")["Body"].read() == body
        assert metric_total(srv, "rs3gw_scrub_quarantined_objects") == 0
        rc, status = heal(data, "status")
        assert rc == 0 and status["totals"]["repaired"] == 1
    finally:
        srv.stop()
    assert "scrub: repaired corrupt object bucket=bg-b key='obj'" in srv.log.read_text()


def test_heal_backup_setting_from_file_and_env(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[scrub]\nheal_backup = "/srv/backups"\n')
    flags = {"data_dir": tmp_path / "d", "access_key": ACCESS_KEY, "secret_key": SECRET_KEY}
    assert load_settings(flags, {}, config).scrub_heal_backup == "/srv/backups"
    env = {"RS3GW_SCRUB_HEAL_BACKUP": "s3://bk/gw", "RS3GW_SCRUB_HEAL_BACKUP_ENDPOINT": "http://127.0.0.1:1"}
    s = load_settings(flags, env, config)
    assert (s.scrub_heal_backup, s.scrub_heal_backup_endpoint) == ("s3://bk/gw", "http://127.0.0.1:1")
    with pytest.raises(Exception, match="heal_backup_endpoint"):
        load_settings(flags, {"RS3GW_SCRUB_HEAL_BACKUP": "s3://bk/gw"}, None)


def test_heal_run_repairs_from_an_s3_backup(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data")
    data = srv.data_dir
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="src-b")
        s3.create_bucket(Bucket="vault-b")  # the backup location: a bucket of the same gateway here
        body, secret = random.Random(51).randbytes(120_000), text(100_000, 52)
        s3.put_object(Bucket="src-b", Key="obj", Body=body)
        s3.put_object(Bucket="src-b", Key="enc", Body=secret, ServerSideEncryption="AES256")
        target = ("--target", "s3://vault-b/snaps", "--target-endpoint", srv.endpoint)
        rc, doc = rs3gw("backup", "create", "--endpoint", srv.endpoint, *target, "--bucket", "src-b")
        assert rc == 0, doc
        flip(data, segments(data, "src-b", "obj")[0], 999)
        flip(data, segments(data, "src-b", "enc")[0], 5000)  # inside the ciphertext

        rc, rep = heal(data, "run", "--heal-backup", "s3://vault-b/snaps")  # no endpoint: refused
        assert rc == 2 and "needs an endpoint" in rep["error"]
        keys = ("--heal-backup-access-key", ACCESS_KEY, "--heal-backup-secret-key", SECRET_KEY)
        source = ("--heal-backup", "s3://vault-b/snaps", "--heal-backup-endpoint", srv.endpoint)
        rc, rep = heal(data, "run", *source, *keys)
        assert rc == 0 and rep["clean"] and rep["repaired"] == 2, rep
        assert rep["repair_source"] == "backup s3://vault-b/snaps/"
        assert s3.get_object(Bucket="src-b", Key="obj")["Body"].read() == body
        got = s3.get_object(Bucket="src-b", Key="enc")
        assert got["Body"].read() == secret and got["ServerSideEncryption"] == "AES256"
        stored = read_blob(data, segments(data, "src-b", "enc")[0])
        assert secret[:64] not in stored  # rewritten encrypted, like the original
    finally:
        srv.stop()
