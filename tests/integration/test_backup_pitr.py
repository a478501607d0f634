"""`rs3gw backup`: snapshots over the S3 API, point-in-time restore, verify, S3 targets, retention.

Every command runs as a subprocess of the real CLI against a real `rs3gw serve`."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from conftest import ACCESS_KEY, SECRET_KEY, Server, cleanup_bucket, start_server

State = dict[str, tuple[bytes, str, dict[str, str], dict[str, str]]]


def backup(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RS3GW_ACCESS_KEY": ACCESS_KEY, "RS3GW_SECRET_KEY": SECRET_KEY}
    proc = subprocess.run(
        [sys.executable, "-m", "rs3gw", "backup", *args], capture_output=True, text=True, env=env, timeout=120
    )
    if check:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


def backup_json(*args: str, check: bool = True) -> Any:
    proc = backup(*args, "--json", check=check)
    return json.loads(proc.stdout)


def snapshot(ep: str, bucket: str, target: str, *extra: str) -> Any:
    """Take one snapshot of BUCKET into TARGET (`backup create --json`) and return its record."""
    report = backup_json("create", "--endpoint", ep, "--bucket", bucket, "--target", target, *extra)
    return report["snapshots"][0]


@contextmanager
def restored_copy(s3: Any, into: str, *args: str) -> Iterator[Any]:
    """Restore into the new bucket INTO (`backup restore ARGS --into INTO --json`), yield the restore
    report, and delete INTO afterwards whether or not the test's assertions held."""
    out = backup_json("restore", *args, "--into", into)
    try:
        yield out
    finally:
        cleanup_bucket(s3, into)


def state(s3: Any, bucket: str) -> State:
    """Every current key with its body, content-type, user metadata and tags."""
    out: State = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            key = item["Key"]
            got = s3.get_object(Bucket=bucket, Key=key)
            tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}
            out[key] = (got["Body"].read(), got["ContentType"], got["Metadata"], tags)
    return out


def put(s3: Any, bucket: str, key: str, body: bytes, **extra: Any) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)


def tick() -> None:
    """Let the clock move past the server's last-modified resolution (milliseconds) between phases."""
    time.sleep(0.2)


@pytest.fixture(scope="module")
def target_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("backup-target") / "data")
    yield srv
    srv.stop()


@pytest.fixture
def versioned(server: Server) -> Iterator[str]:
    s3 = server.client()
    name = f"pitr-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    yield name
    cleanup_bucket(s3, name)


def test_full_incremental_pitr_differential_verify(server: Server, versioned: str, tmp_path: Path) -> None:
    s3, repo, ep = server.client(), str(tmp_path / "repo"), server.endpoint
    s3.put_bucket_tagging(Bucket=versioned, Tagging={"TagSet": [{"Key": "team", "Value": "ml"}]})
    put(s3, versioned, "a.txt", b"alpha-1", ContentType="text/plain", Metadata={"rev": "1"}, Tagging="k=v")
    put(s3, versioned, "b.bin", os.urandom(3000), ContentType="application/x-b")
    put(s3, versioned, "dir/c", b"gamma-1", Metadata={"owner": "c"})
    put(s3, versioned, "dir/d", b"delta-1", ChecksumAlgorithm="SHA256")
    full = snapshot(ep, versioned, repo)
    assert full["kind"] == "full" and full["stats"]["versions"] == 4 and full["parent"] is None

    tick()
    put(s3, versioned, "a.txt", b"alpha-2", ContentType="text/markdown", Metadata={"rev": "2"})
    s3.delete_object(Bucket=versioned, Key="b.bin")
    put(s3, versioned, "e", b"echo-1", Tagging="x=1&y=2")
    tick()
    t1 = datetime.datetime.now(datetime.UTC)
    expected_t1 = state(s3, versioned)
    assert set(expected_t1) == {"a.txt", "dir/c", "dir/d", "e"}
    tick()
    put(s3, versioned, "dir/c", b"gamma-2")
    s3.delete_object(Bucket=versioned, Key="dir/d")
    put(s3, versioned, "e", b"echo-2")
    put(s3, versioned, "f", b"foxtrot")

    inc = snapshot(ep, versioned, repo, "--kind", "incremental")
    assert inc["kind"] == "incremental" and inc["parent"] == full["id"]
    assert inc["stats"]["reused_versions"] == 4 and inc["stats"]["new_versions"] == 7  # 5 puts, 2 markers

    # Point in time between the two snapshots, into a new bucket: byte for byte the state at T1.
    from_repo = ("--endpoint", ep, "--source", repo, "--bucket", versioned)
    into = f"{versioned}-t1"
    with restored_copy(s3, into, *from_repo, "--at", t1.isoformat()) as out:
        assert out["written"] == 4 and out["deleted"] == 0
        assert state(s3, into) == expected_t1
        assert s3.get_bucket_tagging(Bucket=into)["TagSet"] == [{"Key": "team", "Value": "ml"}]
        assert s3.get_bucket_versioning(Bucket=into)["Status"] == "Enabled"
        sha = base64.b64encode(hashlib.sha256(b"delta-1").digest()).decode()
        assert s3.head_object(Bucket=into, Key="dir/d", ChecksumMode="ENABLED")["ChecksumSHA256"] == sha
    # Before anything existed: an empty bucket.  Latest snapshot: today's state.
    early = datetime.datetime.fromisoformat(full["taken_at"].replace("Z", "+00:00")) - datetime.timedelta(
        hours=1
    )
    into = f"{versioned}-early"
    with restored_copy(s3, into, *from_repo, "--at", early.isoformat()):
        assert state(s3, into) == {}
    now_state = state(s3, versioned)
    into = f"{versioned}-latest"
    with restored_copy(s3, into, *from_repo):
        assert state(s3, into) == now_state

    put(s3, versioned, "g", b"golf")
    diff = snapshot(ep, versioned, repo, "--kind", "differential")
    assert diff["kind"] == "differential" and diff["parent"] == full["id"]
    assert diff["stats"]["new_versions"] == 8  # everything since the full, not just since the incremental
    listed = backup_json("list", "--source", repo)["snapshots"]
    assert [s["kind"] for s in listed] == ["full", "incremental", "differential"]
    assert "full" in backup("list", "--source", repo).stdout  # human table, not JSON

    ok = backup_json("verify", "--source", repo, "--restore-test", "--endpoint", ep)
    assert ok["ok"] and ok["errors"] == [] and ok["snapshots"] == 3 and ok["bodies"] >= 10
    assert ok["restore_tests"][0]["ok"], ok["restore_tests"]

    # Same-bucket restore: refused while the bucket holds data no snapshot has; --force overrides.
    put(s3, versioned, "uncaptured", b"not in any backup")
    args = ("restore", *from_repo, "--at", t1.isoformat())
    refused = backup(*args, check=False)
    assert refused.returncode == 1 and "--force" in refused.stderr and "uncaptured" in refused.stderr
    out = backup_json(*args, "--force")
    assert out["deleted"] == 3  # f, g, uncaptured
    assert state(s3, versioned) == expected_t1

    # Flip one byte of one stored body: verify fails and names the object.
    body_sha = next(
        r["sha256"]
        for r in json.loads((next(Path(repo, "snapshots", versioned).glob("*-full.json"))).read_text())[
            "manifest"
        ]["versions"]
        if r["key"] == "dir/c"
    )
    path = Path(repo, "objects", body_sha[:2], body_sha)
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))
    bad = backup_json("verify", "--source", repo, check=False)
    assert not bad["ok"] and len(bad["errors"]) == 1
    assert bad["errors"][0]["sha256"] == body_sha and any(
        k.startswith("dir/c@") for k in bad["errors"][0]["keys"]
    )
    assert backup("verify", "--source", repo, check=False).returncode == 1
    # A tampered manifest is caught by its own checksum.
    man = next(Path(repo, "snapshots", versioned).glob("*-incremental.json"))
    man.write_text(man.read_text().replace('"kind": "incremental"', '"kind": "full"'))
    bad = backup_json("verify", "--source", repo, check=False)
    assert any("checksum mismatch" in e["problem"] for e in bad["errors"])


def test_s3_target_on_second_server(server: Server, target_server: Server, versioned: str) -> None:
    s3, ep = server.client(), server.endpoint
    backups = target_server.client()
    store = f"backups-{uuid.uuid4().hex[:8]}"
    backups.create_bucket(Bucket=store)
    put(s3, versioned, "one", b"1" * 100, Metadata={"m": "1"})
    put(s3, versioned, "two/x", b"2" * 5000, ContentType="image/png", Tagging="t=2")
    snap = snapshot(ep, versioned, f"s3://{store}/nightly", "--target-endpoint", target_server.endpoint)
    keys = {o["Key"] for o in backups.list_objects_v2(Bucket=store)["Contents"]}
    assert f"nightly/snapshots/{versioned}/{snap['id']}.json" in keys
    assert sum(k.startswith("nightly/objects/") for k in keys) == 2
    expected = state(s3, versioned)
    s3.delete_object(Bucket=versioned, Key="one")
    put(s3, versioned, "two/x", b"changed")
    src = ("--source", f"s3://{store}/nightly", "--source-endpoint", target_server.endpoint)
    assert [s["id"] for s in backup_json("list", *src)["snapshots"]] == [snap["id"]]
    assert backup_json("verify", *src)["ok"]
    into = f"{versioned}-from-s3"
    with restored_copy(s3, into, "--endpoint", ep, *src, "--bucket", versioned):
        assert state(s3, into) == expected
    # A prefix restore back into the source bucket touches only that prefix ("one" stays deleted);
    # the changed two/x was never backed up, so only --force may overwrite it.
    args = ("restore", "--endpoint", ep, *src, "--bucket", versioned, "--prefix", "two/")
    assert backup(*args, check=False).returncode == 1
    assert backup_json(*args, "--force")["written"] == 1
    assert state(s3, versioned) == {"two/x": expected["two/x"]}


def test_unversioned_bucket_and_retention(server: Server, tmp_path: Path) -> None:
    s3, repo, ep = server.client(), str(tmp_path / "repo"), server.endpoint
    name = f"plain-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    try:
        put(s3, name, "k", b"v1")
        human = backup("create", "--endpoint", ep, "--bucket", name, "--target", str(tmp_path / "other"))
        assert "full" in human.stdout and "1 versions" in human.stdout  # a text line, bar on stderr
        first = snapshot(ep, name, repo)
        put(s3, name, "k", b"v2-same-size")
        put(s3, name, "dup", b"v1")  # same body as k's first version: stored once
        inc = snapshot(ep, name, repo, "--kind", "incremental", "--keep-last", "1")
        assert inc["prune"]["removed"] == []  # the incremental needs its full
        assert len(list(Path(repo, "objects").rglob("*"))) - len(list(Path(repo, "objects").glob("*"))) == 2
        into = f"{name}-first"
        with restored_copy(
            s3, into, "--endpoint", ep, "--source", repo, "--bucket", name, "--snapshot", first["id"]
        ):
            assert {k: v[0] for k, v in state(s3, into).items()} == {"k": b"v1"}
        again = snapshot(ep, name, repo, "--keep-last", "1")
        assert again["prune"]["kept"] == [again["id"]] and len(again["prune"]["removed"]) == 2
        assert backup_json("verify", "--source", repo)["ok"]
    finally:
        cleanup_bucket(s3, name)


def test_errors_are_reported(server: Server, tmp_path: Path) -> None:
    ep = server.endpoint
    out = backup_json("restore", "--endpoint", ep, "--source", str(tmp_path), "--bucket", "nope", check=False)
    assert "no snapshots" in out["error"]
    bad = backup("create", "--endpoint", ep, "--bucket", "b", "--target", "s3://x/y", check=False)
    assert bad.returncode != 0 and "endpoint" in bad.stderr
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_suspended_versioning_null_version_in_history(server: Server, versioned: str, tmp_path: Path) -> None:
    """A null version that is no longer the latest is fetched by its id, not as "the current object"."""
    s3, repo, ep = server.client(), str(tmp_path / "repo"), server.endpoint
    put(s3, versioned, "k", b"enabled-1")
    s3.put_bucket_versioning(Bucket=versioned, VersioningConfiguration={"Status": "Suspended"})
    put(s3, versioned, "k", b"suspended-null")
    tick()
    t = datetime.datetime.now(datetime.UTC)
    tick()
    s3.put_bucket_versioning(Bucket=versioned, VersioningConfiguration={"Status": "Enabled"})
    put(s3, versioned, "k", b"enabled-2")
    snapshot(ep, versioned, repo)
    into = f"{versioned}-null"
    with restored_copy(
        s3, into, "--endpoint", ep, "--source", repo, "--bucket", versioned, "--at", t.isoformat()
    ):
        assert s3.get_object(Bucket=into, Key="k")["Body"].read() == b"suspended-null"
