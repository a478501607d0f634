"""s3cmd, the CLI many HPC sites script against, run as a real subprocess against a real server.

s3cmd has its own HTTP stack and signer (SigV4, and SigV2 with ``signature_v2 = True``), lists with
ListObjects v1 and markers, uploads files above ``multipart_chunk_size_mb`` (15 MiB) in parts,
checks MD5s against ETags on get and sync, reads ACLs, policy, CORS and lifecycle for ``info``, and
copies/moves with CopyObject (UploadPartCopy ranges above ``multipart_copy_chunk_size_mb``).
s3cmd is pinned in pyproject's ``dev`` extra; without it these tests skip with that reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ACCESS_KEY, SECRET_KEY, USER2, Server, cleanup_bucket, put_fast

# The venv's bin directory is not on PATH when pytest is run as .venv/bin/pytest.
S3CMD = shutil.which("s3cmd") or shutil.which("s3cmd", path=str(Path(sys.executable).parent))
pytestmark = pytest.mark.skipif(S3CMD is None, reason="s3cmd not installed (pip install -e '.[dev]')")


class S3cmd:
    """One s3cmd configuration (a config file of its own; ~/.s3cfg is never read)."""

    def __init__(self, server: Server, cfg: Path, *, sigv2: bool) -> None:
        host = f"127.0.0.1:{server.port}"
        cfg.write_text(
            "[default]\n"
            f"access_key = {ACCESS_KEY}\n"
            f"secret_key = {SECRET_KEY}\n"
            f"host_base = {host}\n"
            f"host_bucket = {host}\n"
            "bucket_location = us-east-1\n"
            "use_https = False\n"
            f"signature_v2 = {sigv2}\n"
            "guess_mime_type = False\n"
            "progress_meter = False\n"
            # cp/mv of objects above 5 MiB go through UploadPartCopy with x-amz-copy-source-range
            "multipart_copy_chunk_size_mb = 5\n"
        )
        self.cfg = cfg

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3CMD"))}
        cmd = [str(S3CMD), "-c", str(self.cfg), "--no-progress", *args]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
        if check:
            assert proc.returncode == 0, f"{cmd}\nrc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            # s3cmd retries a failed request and succeeds quietly but for a WARNING: a server error
            # hidden behind a retry still fails the test.
            assert "WARNING" not in proc.stderr, f"{cmd}\n{proc.stderr}"
        return proc


@pytest.fixture(params=[False, True], ids=["sigv4", "sigv2"])
def s3cmd_any(request: pytest.FixtureRequest, server: Server, tmp_path: Path) -> S3cmd:
    """Both signers, for the tests whose requests (odd keys, multipart, listing) exercise signing."""
    return S3cmd(server, tmp_path / "s3cfg", sigv2=request.param)


@pytest.fixture
def s3cmd(server: Server, tmp_path: Path) -> S3cmd:
    """SigV4 only (s3cmd's default): s3cmd_any covers SigV2; one signer here keeps the wall time modest."""
    return S3cmd(server, tmp_path / "s3cfg", sigv2=False)


@pytest.fixture
def name(s3: Any) -> Iterator[str]:
    """A bucket name for s3cmd to create; removed afterwards whatever the test did."""
    bucket = f"s3cmd-{uuid.uuid4().hex[:12]}"
    yield bucket
    cleanup_bucket(s3, bucket)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def write_tree(root: Path) -> dict[str, bytes]:
    rnd = random.Random(21)
    files = {
        "a.txt": b"alpha\n",
        "dir/b.bin": rnd.randbytes(70_000),
        "dir/sub/c with space.txt": b"gamma" * 1000,
        "unicodé/ß.txt": b"unicode",
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return files


def test_bucket_put_get_ls_info_du(s3cmd_any: S3cmd, s3: Any, name: str, tmp_path: Path) -> None:
    s3cmd_any("mb", f"s3://{name}")
    assert name in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert f"s3://{name}" in s3cmd_any("ls").stdout

    small = tmp_path / "small.txt"
    small.write_bytes(b"hello s3cmd\n" * 100)
    big = tmp_path / "big.bin"
    big_data = random.Random(1).randbytes(16 * 1024 * 1024 + 5)  # above 15 MiB: a 2-part upload
    big.write_bytes(big_data)
    s3cmd_any("put", str(small), f"s3://{name}/small.txt")
    s3cmd_any("put", str(big), f"s3://{name}/data/big.bin")
    etag = s3.head_object(Bucket=name, Key="data/big.bin")["ETag"]
    assert etag.strip('"').endswith("-2"), etag  # a multipart object of two parts
    assert s3.get_object(Bucket=name, Key="small.txt")["Body"].read() == small.read_bytes()
    stored = s3.get_object(Bucket=name, Key="data/big.bin")["Body"].read()
    assert md5(stored) == md5(big_data)

    listing = s3cmd_any("ls", f"s3://{name}").stdout
    assert f"s3://{name}/small.txt" in listing and f"DIR  s3://{name}/data/" in listing
    rec = s3cmd_any("ls", "-r", f"s3://{name}").stdout
    assert f"{len(big_data)}  s3://{name}/data/big.bin" in rec
    assert f"{small.stat().st_size}  s3://{name}/small.txt" in rec

    # get verifies the MD5 itself (a multipart ETag is not one, so s3cmd uses its own x-amz-meta-s3cmd-attrs).
    got_big = tmp_path / "got-big.bin"
    s3cmd_any("get", f"s3://{name}/data/big.bin", str(got_big))
    assert md5(got_big.read_bytes()) == md5(big_data)
    got_small = tmp_path / "got-small.txt"
    s3cmd_any("get", f"s3://{name}/small.txt", str(got_small))
    assert got_small.read_bytes() == small.read_bytes()

    info = s3cmd_any("info", f"s3://{name}/small.txt").stdout
    assert f"MD5 sum:   {md5(small.read_bytes())}" in info, info
    assert f"File size: {small.stat().st_size}" in info, info
    binfo = s3cmd_any("info", f"s3://{name}").stdout
    assert "Location:" in binfo and "ACL:" in binfo, binfo

    du = s3cmd_any("du", f"s3://{name}").stdout
    assert du.split()[0] == str(len(big_data) + small.stat().st_size), du
    assert du.split()[1] == "2", du


def test_acl_cp_mv_del_rb(s3cmd: S3cmd, s3: Any, name: str, tmp_path: Path) -> None:
    s3cmd("mb", f"s3://{name}")
    src = tmp_path / "f.bin"
    data = random.Random(2).randbytes(100_000)
    src.write_bytes(data)
    s3cmd("put", str(src), f"s3://{name}/f.bin")

    s3cmd("setacl", "--acl-public", f"s3://{name}/f.bin")
    assert "*anon*: READ" in s3cmd("info", f"s3://{name}/f.bin").stdout
    grants = s3.get_object_acl(Bucket=name, Key="f.bin")["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("/global/AllUsers") for g in grants), grants
    s3cmd("setacl", "--acl-private", f"s3://{name}/f.bin")
    assert "*anon*" not in s3cmd("info", f"s3://{name}/f.bin").stdout

    s3cmd("cp", f"s3://{name}/f.bin", f"s3://{name}/copy/f.bin")
    assert s3.get_object(Bucket=name, Key="copy/f.bin")["Body"].read() == data
    s3cmd("mv", f"s3://{name}/copy/f.bin", f"s3://{name}/moved.bin")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=name).get("Contents", [])}
    assert keys == {"f.bin", "moved.bin"}
    assert s3.get_object(Bucket=name, Key="moved.bin")["Body"].read() == data

    rb = s3cmd("rb", f"s3://{name}", check=False)  # not empty: refused
    assert rb.returncode != 0 and "BucketNotEmpty" in rb.stderr, rb.stderr
    s3cmd("del", f"s3://{name}/f.bin")
    s3cmd("del", f"s3://{name}/moved.bin")
    assert s3.list_objects_v2(Bucket=name).get("KeyCount", 0) == 0
    s3cmd("rb", f"s3://{name}")
    assert name not in {b["Name"] for b in s3.list_buckets()["Buckets"]}


def test_sync_both_ways(s3cmd_any: S3cmd, s3: Any, name: str, tmp_path: Path) -> None:
    s3cmd_any("mb", f"s3://{name}")
    src = tmp_path / "src"
    files = write_tree(src)
    s3cmd_any("sync", f"{src}/", f"s3://{name}/tree/")
    for rel, data in files.items():
        assert s3.get_object(Bucket=name, Key=f"tree/{rel}")["Body"].read() == data, rel
    # A second sync finds nothing to do: sizes and MD5s (ETags) match.
    again = s3cmd_any("sync", f"{src}/", f"s3://{name}/tree/").stdout
    assert "upload:" not in again, again

    (src / "a.txt").unlink()
    (src / "new.txt").write_bytes(b"new file")
    (src / "dir/b.bin").write_bytes(b"changed")
    s3cmd_any("sync", "--delete-removed", f"{src}/", f"s3://{name}/tree/")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=name, Prefix="tree/")["Contents"]}
    assert "tree/a.txt" not in keys and "tree/new.txt" in keys
    assert s3.get_object(Bucket=name, Key="tree/dir/b.bin")["Body"].read() == b"changed"

    dst = tmp_path / "dst"
    dst.mkdir()
    s3cmd_any("sync", f"s3://{name}/tree/", f"{dst}/")
    want = {p.relative_to(src).as_posix(): p.read_bytes() for p in src.rglob("*") if p.is_file()}
    got = {p.relative_to(dst).as_posix(): p.read_bytes() for p in dst.rglob("*") if p.is_file()}
    assert got == want
    s3cmd_any("del", "--recursive", "--force", f"s3://{name}/tree/")
    assert s3.list_objects_v2(Bucket=name).get("KeyCount", 0) == 0
    s3cmd_any("rb", f"s3://{name}")


def test_bucket_configs_and_signurl(s3cmd: S3cmd, s3: Any, name: str, tmp_path: Path) -> None:
    """The bucket sub-resources s3cmd sets and shows in ``info``, and its presigned (SigV2 query) URL."""
    s3cmd("mb", f"s3://{name}")
    policy = {
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
    (tmp_path / "policy.json").write_text(json.dumps(policy))
    (tmp_path / "cors.xml").write_text(
        "<CORSConfiguration><CORSRule><AllowedOrigin>https://example.org</AllowedOrigin>"
        "<AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"
    )
    s3cmd("setpolicy", str(tmp_path / "policy.json"), f"s3://{name}")
    s3cmd("setcors", str(tmp_path / "cors.xml"), f"s3://{name}")
    s3cmd("expire", "--expiry-days=3", "--expiry-prefix=logs/", f"s3://{name}")
    s3cmd("setversioning", f"s3://{name}", "enable")
    info = s3cmd("info", f"s3://{name}").stdout
    assert "Versioning:Enabled" in info, info
    assert "key prefix 'logs/' will expire in '3' day(s)" in info, info
    assert f'"Resource":"arn:aws:s3:::{name}/*"' in info.replace(" ", ""), info
    assert "<AllowedOrigin>https://example.org</AllowedOrigin>" in info, info
    assert json.loads(s3.get_bucket_policy(Bucket=name)["Policy"]) == policy
    rule = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"][0]
    assert rule["Expiration"] == {"Days": 3} and rule["Filter"] == {"Prefix": "logs/"}
    assert "<Days>3</Days>" in s3cmd("getlifecycle", f"s3://{name}").stdout

    s3cmd("settagging", f"s3://{name}", "team=ml&tier=hot")
    assert "team:\tml" in s3cmd("gettagging", f"s3://{name}").stdout
    assert s3.get_bucket_tagging(Bucket=name)["TagSet"] == [
        {"Key": "team", "Value": "ml"},
        {"Key": "tier", "Value": "hot"},
    ]
    s3cmd("deltagging", f"s3://{name}")

    s3cmd("delpolicy", f"s3://{name}")
    s3cmd("delcors", f"s3://{name}")
    s3cmd("dellifecycle", f"s3://{name}")
    s3cmd("setversioning", f"s3://{name}", "disable")
    info = s3cmd("info", f"s3://{name}").stdout
    assert "Policy:    none" in info and "CORS:      none" in info and "Expiration rule: none" in info, info
    assert "Versioning:Suspended" in info, info

    src = tmp_path / "signed.txt"
    src.write_bytes(b"presigned body")
    s3cmd("put", str(src), f"s3://{name}/signed.txt")
    url = s3cmd("signurl", f"s3://{name}/signed.txt", "+600").stdout.strip()
    assert "Signature=" in url, url
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == b"presigned body"
    s3cmd("del", f"s3://{name}/signed.txt")


def test_acl_grant_stdin_multipart_listing(s3cmd: S3cmd, server: Server, s3: Any, name: str) -> None:
    """A grant to another user's canonical id, a streamed upload of unknown size, and the MPU commands."""
    s3cmd("mb", f"s3://{name}")
    data = random.Random(4).randbytes(16 * 1024 * 1024 + 3)
    # "put -" streams stdin in 15 MiB parts without knowing the size in advance.
    cmd = [str(S3CMD), "-c", str(s3cmd.cfg), "--no-progress", "put", "-", f"s3://{name}/stdin.bin"]
    proc = subprocess.run(cmd, input=data, capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert md5(s3.get_object(Bucket=name, Key="stdin.bin")["Body"].read()) == md5(data)
    cmd = [str(S3CMD), "-c", str(s3cmd.cfg), "--no-progress", "get", f"s3://{name}/stdin.bin", "-"]
    got = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert got.returncode == 0 and got.stdout == data, got.stderr

    s3cmd("cp", f"s3://{name}/stdin.bin", f"s3://{name}/copied.bin")  # four UploadPartCopy ranges
    head = s3.head_object(Bucket=name, Key="copied.bin")
    assert head["ETag"].strip('"').endswith("-4"), head["ETag"]
    assert md5(s3.get_object(Bucket=name, Key="copied.bin")["Body"].read()) == md5(data)

    second_id = server.client(*USER2[1:]).list_buckets()["Owner"]["ID"]
    s3cmd("setacl", f"--acl-grant=read:{second_id}", f"s3://{name}/stdin.bin")
    grants = s3.get_object_acl(Bucket=name, Key="stdin.bin")["Grants"]
    assert {"ID": second_id, "Perm": "READ"} in [
        {"ID": g["Grantee"].get("ID"), "Perm": g["Permission"]} for g in grants
    ], grants
    assert server.client(*USER2[1:]).get_object(Bucket=name, Key="stdin.bin")["ContentLength"] == len(data)
    s3cmd("setacl", f"--acl-revoke=read:{second_id}", f"s3://{name}/stdin.bin")
    assert all(
        g["Grantee"].get("ID") != second_id for g in s3.get_object_acl(Bucket=name, Key="stdin.bin")["Grants"]
    )

    upload = s3.create_multipart_upload(Bucket=name, Key="pending.bin")["UploadId"]
    s3.upload_part(Bucket=name, Key="pending.bin", UploadId=upload, PartNumber=1, Body=b"p" * 1000)
    assert upload in s3cmd("multipart", f"s3://{name}").stdout
    parts = s3cmd("listmp", f"s3://{name}/pending.bin", upload).stdout
    assert f'"{md5(b"p" * 1000)}"\t1000' in parts, parts
    s3cmd("abortmp", f"s3://{name}/pending.bin", upload)
    assert s3.list_multipart_uploads(Bucket=name).get("Uploads", []) == []


def test_listing_pages_and_bulk_delete(server: Server, s3: Any, name: str, tmp_path: Path) -> None:
    """More than 1000 keys: s3cmd pages ListObjects with markers and deletes with DeleteObjects batches."""
    run = S3cmd(server, tmp_path / "s3cfg", sigv2=False)
    run("mb", f"s3://{name}")
    keys = [f"k/{i:05d}" for i in range(1100)]
    put_fast(server, name, keys)
    listed = run("ls", "-r", f"s3://{name}").stdout.splitlines()
    assert [line.rsplit("  ", 1)[1] for line in listed] == [f"s3://{name}/{k}" for k in keys]
    assert run("du", f"s3://{name}").stdout.split()[:2] == ["1100", "1100"]
    run("del", "--recursive", "--force", f"s3://{name}")
    assert s3.list_objects_v2(Bucket=name).get("KeyCount", 0) == 0
