"""`rs3gw admin bucket|usage|config`: online against a real gateway (admin API, SigV4-signed by the
CLI) and offline on a stopped gateway's data directory; the `--json` shapes of both paths agree.

Also checks that buckets of store-managed users (not in any configuration) appear in usage and in
the storage report, which once listed only configured accounts' buckets.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import io
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import ACCESS_KEY, SECRET_KEY, USER2, Server, start_server
from pg_cluster import metadata_args
from rs3gw.cli import main

INFO_KEYS = {
    "name",
    "owner",
    "owner_id",
    "created",
    "region",
    "versioning",
    "objects",
    "bytes",
    "compression",
    "encryption",
    "object_lock",
    "lifecycle",
    "policy",
}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("admcli") / "data")
    yield server
    server.stop()


def run(
    *args: str, env: dict[str, str] | None = None, data_dir: Path | None = None, spawn: bool = False
) -> subprocess.CompletedProcess[str]:
    """The CLI with only ``env`` of the RS3GW_* variables. In this process by default (a fresh
    interpreter per call costs a second of imports); ``spawn`` runs ``python -m rs3gw`` instead."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("RS3GW_")}
    if data_dir is not None:
        meta = metadata_args(data_dir, ())  # the store the test server of data_dir uses
        if meta:
            base["RS3GW_METADATA"] = meta[1]
        args = (*args, "--data-dir", str(data_dir))
    if spawn:
        cmd = [sys.executable, "-m", "rs3gw", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env={**base, **(env or {})})
    saved = dict(os.environ)
    out, err = io.StringIO(), io.StringIO()
    os.environ.clear()
    os.environ.update({**base, **(env or {})})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(list(args))
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.environ.clear()
        os.environ.update(saved)
        gc.collect()  # as a process exit would: drops the offline engine's blobs.gate/blobs.lock flocks
    return subprocess.CompletedProcess(list(args), rc, out.getvalue(), err.getvalue())


def online(
    srv: Server, *args: str, creds: tuple[str, str] = (ACCESS_KEY, SECRET_KEY), spawn: bool = False
) -> subprocess.CompletedProcess[str]:
    env = {"RS3GW_ACCESS_KEY": creds[0], "RS3GW_SECRET_KEY": creds[1]}
    return run("admin", *args, "--endpoint", srv.endpoint, env=env, spawn=spawn)


def as_json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def admin_api(srv: Server, method: str, path: str) -> Any:
    url = f"{srv.endpoint}/_rs3gw/admin/{path}"
    req = AWSRequest(
        method=method, url=url, headers={"x-amz-content-sha256": hashlib.sha256(b"").hexdigest()}
    )
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(req)
    raw = urllib.request.Request(url, method=method, headers=dict(req.headers.items()))
    with urllib.request.urlopen(raw, timeout=10) as resp:
        return json.loads(resp.read())


def test_online_bucket_commands(srv: Server) -> None:
    name = f"adm-{uuid.uuid4().hex[:8]}"
    created = as_json(online(srv, "bucket", "create", name, "--owner", USER2[0], "--json"))
    assert set(created) == INFO_KEYS
    assert created["owner"] == USER2[0] and created["versioning"] == "Disabled" and created["objects"] == 0
    assert as_json(online(srv, "bucket", "set-versioning", name, "enabled", "--json")) == {
        "bucket": name,
        "versioning": "Enabled",
    }
    assert as_json(online(srv, "bucket", "set-compression", name, "lz4", "--json"))["compression"] == "lz4"
    s3 = srv.client(USER2[1], USER2[2])
    s3.put_object(Bucket=name, Key="a", Body=b"x" * 100)
    s3.put_object(Bucket=name, Key="a", Body=b"y" * 50)  # a second version: both count
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    info = as_json(online(srv, "bucket", "info", name, "--json"))
    assert (info["objects"], info["bytes"]) == (2, 150)
    assert info["versioning"] == "Enabled" and info["compression"] == "lz4" and info["encryption"] == "AES256"
    assert info["lifecycle"] is False and info["policy"] is False and info["object_lock"] is False

    listed = as_json(online(srv, "bucket", "list", "--json"))
    assert set(listed) == {"buckets"}
    assert [b for b in listed["buckets"] if b["name"] == name] == [info]
    table = online(srv, "bucket", "list", spawn=True)  # the installed entry point, piped: full rows
    assert table.returncode == 0 and name in table.stdout

    usage = as_json(online(srv, "usage", "--bucket", name, "--json"))
    assert usage["buckets"] == [{"bucket": name, "owner": USER2[0], "objects": 2, "bytes": 150}]
    assert usage["accounts"] == [{"account": USER2[0], "buckets": 1, "objects": 2, "bytes": 150}]
    assert usage["total"] == {"buckets": 1, "objects": 2, "bytes": 150}

    # Errors: one line, exit 1, the S3 error code.
    busy = online(srv, "bucket", "delete", name)
    assert busy.returncode == 1 and "BucketNotEmpty" in busy.stderr
    bad = online(srv, "bucket", "set-versioning", name, "sometimes")
    assert bad.returncode == 1 and "InvalidArgument" in bad.stderr
    denied = online(srv, "bucket", "list", creds=(USER2[1], USER2[2]))
    assert denied.returncode == 1 and "AccessDenied" in denied.stderr
    missing = online(srv, "bucket", "info", "no-such-bucket-here")
    assert missing.returncode == 1 and "NoSuchBucket" in missing.stderr
    nobody = online(srv, "bucket", "create", f"adm-{uuid.uuid4().hex[:8]}", "--owner", "nobody")
    assert nobody.returncode == 1 and "InvalidArgument" in nobody.stderr

    for v in s3.list_object_versions(Bucket=name)["Versions"]:
        s3.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"])
    assert as_json(online(srv, "bucket", "delete", name, "--json")) == {"deleted": name}
    assert all(b["Name"] != name for b in s3.list_buckets()["Buckets"])


def test_online_needs_credentials(srv: Server) -> None:
    proc = run("admin", "bucket", "list", "--endpoint", srv.endpoint)
    assert proc.returncode == 2 and "RS3GW_ACCESS_KEY" in proc.stderr


def test_store_user_bucket_in_usage_and_storage_report(srv: Server) -> None:
    user = f"store-{uuid.uuid4().hex[:6]}"
    made = as_json(run("admin", "user", "create", user, "--json", data_dir=srv.data_dir))
    assert made["name"] == user
    key = as_json(run("admin", "key", "create", user, "--json", data_dir=srv.data_dir))
    s3 = srv.client(key["access_key"], key["secret_key"])
    name = f"su-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"z" * 70)

    usage = as_json(online(srv, "usage", "--json"))
    assert {"bucket": name, "owner": user, "objects": 1, "bytes": 70} in usage["buckets"]
    assert {"account": user, "buckets": 1, "objects": 1, "bytes": 70} in usage["accounts"]
    offline = as_json(
        run("admin", "usage", "--json", data_dir=srv.data_dir)
    )  # SQLite: readable while serving
    assert {"bucket": name, "owner": user, "objects": 1, "bytes": 70} in offline["buckets"]

    report = admin_api(srv, "GET", "storage/report")
    assert report["buckets"][name]["classes"]["STANDARD"]["bytes"] == 70
    env = {"RS3GW_ACCESS_KEY": ACCESS_KEY, "RS3GW_SECRET_KEY": SECRET_KEY}
    offline_report = as_json(run("storage", "report", "--json", env=env, data_dir=srv.data_dir))
    assert name in offline_report["buckets"]


def test_offline_on_stopped_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data)
    name = f"off-{uuid.uuid4().hex[:8]}"
    try:
        s3 = server.client()
        s3.create_bucket(Bucket=name)
        s3.put_object(Bucket=name, Key="one", Body=b"1" * 10)
        s3.put_object(Bucket=name, Key="two", Body=b"2" * 20)
        s3.put_bucket_lifecycle_configuration(
            Bucket=name,
            LifecycleConfiguration={
                "Rules": [{"ID": "r", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 30}}]
            },
        )
        s3.put_bucket_policy(
            Bucket=name,
            Policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": "*",
                            "Action": "s3:GetObject",
                            "Resource": f"arn:aws:s3:::{name}/*",
                        }
                    ],
                }
            ),
        )
    finally:
        server.stop()

    env = {"RS3GW_ACCESS_KEY": ACCESS_KEY, "RS3GW_SECRET_KEY": SECRET_KEY}
    info = as_json(run("admin", "bucket", "info", name, "--json", env=env, data_dir=data))
    assert set(info) == INFO_KEYS
    assert (info["owner"], info["objects"], info["bytes"]) == ("admin", 2, 30)
    assert info["lifecycle"] is True and info["policy"] is True and info["compression"] is None
    table = run("admin", "bucket", "info", name, env=env, data_dir=data)
    assert table.returncode == 0 and "lifecycle" in table.stdout and name in table.stdout
    usage = as_json(run("admin", "usage", "--json", env=env, data_dir=data))
    assert usage["total"] == {"buckets": 1, "objects": 2, "bytes": 30}
    text = run("admin", "usage", env=env, data_dir=data)
    assert text.returncode == 0 and "per account" in text.stdout and "admin" in text.stdout

    other = f"off-{uuid.uuid4().hex[:8]}"
    assert (
        as_json(run("admin", "bucket", "create", other, "--json", env=env, data_dir=data))["owner"] == "admin"
    )
    assert run("admin", "bucket", "set-versioning", other, "Enabled", env=env, data_dir=data).returncode == 0
    assert run("admin", "bucket", "set-compression", other, "zstd:4", env=env, data_dir=data).returncode == 0
    bad = run("admin", "bucket", "create", "X", env=env, data_dir=data)
    assert bad.returncode == 1 and "InvalidBucketName" in bad.stderr
    busy = run("admin", "bucket", "delete", name, env=env, data_dir=data)
    assert busy.returncode == 1 and "BucketNotEmpty" in busy.stderr
    names = [
        b["name"]
        for b in as_json(run("admin", "bucket", "list", "--json", env=env, data_dir=data))["buckets"]
    ]
    assert names == sorted([name, other])

    # What was done offline is what the restarted gateway serves.
    server = start_server(data)
    try:
        s3 = server.client()
        assert s3.get_bucket_versioning(Bucket=other)["Status"] == "Enabled"
        live = as_json(online(server, "bucket", "info", other, "--json"))
        assert live["compression"] == "zstd:4" and live["versioning"] == "Enabled"
        assert as_json(online(server, "bucket", "delete", other, "--json")) == {"deleted": other}
    finally:
        server.stop()


def test_config_show_sources_and_redaction(tmp_path: Path) -> None:
    cfg = tmp_path / "rs3gw.toml"
    cfg.write_text('log_level = "debug"\n[backend]\nsecret_key = "backend-secret-value"\n')
    secret = "very-secret-primary-key"
    env = {"RS3GW_REGION": "eu-test-1", "RS3GW_ACCESS_KEY": "cfgshowkey", "RS3GW_SECRET_KEY": secret}
    proc = run("admin", "config", "show", "--json", "--config", str(cfg), env=env, data_dir=tmp_path / "d")
    doc = as_json(proc)
    rows = {r["key"]: r for r in doc["settings"]}
    assert set(rows["region"]) == {"key", "value", "source", "where"}
    assert (rows["region"]["value"], rows["region"]["source"], rows["region"]["where"]) == (
        "eu-test-1",
        "env",
        "RS3GW_REGION",
    )
    assert (rows["log_level"]["value"], rows["log_level"]["source"]) == ("debug", "file")
    assert rows["data_dir"]["source"] == "flag" and rows["data_dir"]["where"] == "--data-dir"
    assert (rows["workers"]["value"], rows["workers"]["source"]) == (1, "default")
    assert rows["secret_key"]["value"] == "***" and rows["backend_secret_key"]["value"] == "***"
    assert secret not in proc.stdout and "backend-secret-value" not in proc.stdout
    table = run("admin", "config", "show", "--config", str(cfg), env=env, data_dir=tmp_path / "d")
    assert table.returncode == 0 and "eu-test-1" in table.stdout and secret not in table.stdout


def test_config_check(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(
        f'data_dir = "{tmp_path / "gdata"}"\nregion = "eu-west-1"\n[storage]\ncompression = "lz4"\n'
    )
    ok = run("admin", "config", "check", "--config", str(good))
    assert ok.returncode == 0 and "ok" in ok.stdout
    assert not (tmp_path / "gdata").exists()  # a check writes nothing (no generated credentials)
    bad = tmp_path / "bad.toml"
    bad.write_text('workers = "four"\n')
    proc = run("admin", "config", "check", "--config", str(bad), spawn=True)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "workers" in proc.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("region = \n")
    proc = run("admin", "config", "check", "--config", str(broken))
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    missing = run("admin", "config", "check", "--config", str(tmp_path / "none.toml"))
    assert missing.returncode == 1 and "not found" in missing.stderr
