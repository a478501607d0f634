"""Transparent compression against a real `rs3gw serve --compression zstd`: disk usage, ranges across
frame boundaries, multipart and copy, raw fallback, restarts with compression off, per-bucket override."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from backend_matrix import stored_sizes
from conftest import ACCESS_KEY, SECRET_KEY, USER2, Server, fresh_bucket, start_server
from pg_cluster import metadata_env

FRAME = 256 * 1024


def corpus(size: int) -> bytes:
    """Log-like text: repetitive, as most text is, but not a single repeated string."""
    out = bytearray()
    i = 0
    while len(out) < size:
        out += (
            f"2026-11-25T10:{i % 60:02d}:{i * 7 % 60:02d}Z INFO request id={i * 2654435761 % 99991} "
            f"path=/datasets/shard-{i % 113}/part-{i % 17}.bin status={200 if i % 13 else 404}\n"
        ).encode()
        i += 1
    return bytes(out[:size])


def stored_bytes(data_dir: Path) -> int:
    return sum(stored_sizes(data_dir).values())  # on disk, or upstream (RS3GW_TEST_BACKEND=s3)


@pytest.fixture(scope="module")
def zsrv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("zstd") / "data", "--compression", "zstd", "--no-fsync")
    yield srv
    srv.stop()


@pytest.fixture
def zs3(zsrv: Server) -> Any:
    return zsrv.client()


@pytest.fixture
def zbucket(zs3: Any) -> Iterator[str]:
    with fresh_bucket(zs3, "cz") as name:
        yield name


def _get(s3: Any, bucket: str, key: str, rng: str | None = None) -> bytes:
    kw = {"Range": rng} if rng else {}
    body: bytes = s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()
    return body


def test_text_corpus_takes_a_third_or_less(zsrv: Server, zs3: Any, zbucket: str) -> None:
    data = corpus(6 * 1024 * 1024 + 12345)
    before = stored_bytes(zsrv.data_dir)
    put = zs3.put_object(Bucket=zbucket, Key="logs.txt", Body=data)
    used = stored_bytes(zsrv.data_dir) - before
    assert used * 3 <= len(data), (used, len(data))
    assert put["ETag"].strip('"') == hashlib.md5(data, usedforsecurity=False).hexdigest()
    head = zs3.head_object(Bucket=zbucket, Key="logs.txt")
    assert head["ContentLength"] == len(data)
    assert _get(zs3, zbucket, "logs.txt") == data
    for start, end in [
        (FRAME - 10, FRAME + 10),
        (0, 0),
        (3 * FRAME - 1, 5 * FRAME),
        (len(data) - 7, len(data) - 1),
    ]:
        assert _get(zs3, zbucket, "logs.txt", f"bytes={start}-{end}") == data[start : end + 1]
    assert _get(zs3, zbucket, "logs.txt", "bytes=-1000") == data[-1000:]


def test_checksums_are_of_the_original(zs3: Any, zbucket: str) -> None:
    data = corpus(700_000)
    zs3.put_object(Bucket=zbucket, Key="c", Body=data, ChecksumAlgorithm="SHA256")
    got = zs3.head_object(Bucket=zbucket, Key="c", ChecksumMode="ENABLED")
    import base64

    assert got["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_random_bytes_are_stored_raw(zsrv: Server, zs3: Any, zbucket: str) -> None:
    data = os.urandom(3 * 1024 * 1024)
    before = stored_bytes(zsrv.data_dir)
    zs3.put_object(Bucket=zbucket, Key="noise", Body=data)
    assert stored_bytes(zsrv.data_dir) - before == len(data)  # plain blob: not even a header
    assert _get(zs3, zbucket, "noise", f"bytes={FRAME - 3}-{FRAME + 3}") == data[FRAME - 3 : FRAME + 4]


def test_multipart_copy_and_ranges(zs3: Any, zbucket: str) -> None:
    parts = [corpus(5 * 1024 * 1024 + 1), os.urandom(5 * 1024 * 1024), corpus(123_457)]
    whole = b"".join(parts)
    up = zs3.create_multipart_upload(Bucket=zbucket, Key="mp")
    done = []
    for n, p in enumerate(parts, 1):
        r = zs3.upload_part(Bucket=zbucket, Key="mp", UploadId=up["UploadId"], PartNumber=n, Body=p)
        assert r["ETag"].strip('"') == hashlib.md5(p, usedforsecurity=False).hexdigest()
        done.append({"PartNumber": n, "ETag": r["ETag"]})
    zs3.complete_multipart_upload(
        Bucket=zbucket, Key="mp", UploadId=up["UploadId"], MultipartUpload={"Parts": done}
    )
    assert _get(zs3, zbucket, "mp") == whole
    b1 = len(parts[0])
    for start, end in [(b1 - 5, b1 + 5), (FRAME * 20 - 1, FRAME * 20), (b1 * 2 - 2, len(whole) - 1)]:
        assert _get(zs3, zbucket, "mp", f"bytes={start}-{end}") == whole[start : end + 1]
    zs3.copy_object(Bucket=zbucket, Key="mp-copy", CopySource={"Bucket": zbucket, "Key": "mp"})
    assert _get(zs3, zbucket, "mp-copy", f"bytes={b1 - 100}-{b1 + 100}") == whole[b1 - 100 : b1 + 101]
    up2 = zs3.create_multipart_upload(Bucket=zbucket, Key="pc")
    r = zs3.upload_part_copy(
        Bucket=zbucket,
        Key="pc",
        UploadId=up2["UploadId"],
        PartNumber=1,
        CopySource={"Bucket": zbucket, "Key": "mp"},
        CopySourceRange=f"bytes={FRAME - 1}-{FRAME * 3}",
    )
    zs3.complete_multipart_upload(
        Bucket=zbucket,
        Key="pc",
        UploadId=up2["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": r["CopyPartResult"]["ETag"]}]},
    )
    assert _get(zs3, zbucket, "pc") == whole[FRAME - 1 : FRAME * 3 + 1]


def _admin(
    srv: Server,
    method: str,
    bucket: str,
    body: bytes = b"",
    creds: tuple[str, str] = (ACCESS_KEY, SECRET_KEY),
) -> tuple[int, bytes]:
    url = f"{srv.endpoint}/_rs3gw/admin/buckets/{bucket}/compression"
    req = AWSRequest(
        method=method, url=url, data=body, headers={"x-amz-content-sha256": hashlib.sha256(body).hexdigest()}
    )
    SigV4Auth(Credentials(*creds), "s3", "us-east-1").add_auth(req)
    raw = urllib.request.Request(url, data=body or None, method=method, headers=dict(req.headers.items()))
    try:
        with urllib.request.urlopen(raw, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_bucket_override_via_admin_api(zsrv: Server, zs3: Any, zbucket: str) -> None:
    data = corpus(2 * 1024 * 1024)
    assert _admin(zsrv, "GET", zbucket) == (200, f'{{"bucket": "{zbucket}", "compression": null}}'.encode())
    status, body = _admin(zsrv, "PUT", zbucket, b"none")
    assert status == 200 and b'"none"' in body
    before = stored_bytes(zsrv.data_dir)
    zs3.put_object(Bucket=zbucket, Key="plain", Body=data)
    assert stored_bytes(zsrv.data_dir) - before == len(data)
    assert _admin(zsrv, "PUT", zbucket, b"LZ4")[0] == 200
    assert b'"lz4"' in _admin(zsrv, "GET", zbucket)[1]
    before = stored_bytes(zsrv.data_dir)
    zs3.put_object(Bucket=zbucket, Key="lz4", Body=data)
    assert (stored_bytes(zsrv.data_dir) - before) * 2 < len(data)
    assert _get(zs3, zbucket, "plain") == data and _get(zs3, zbucket, "lz4") == data
    assert _admin(zsrv, "DELETE", zbucket)[0] == 204
    assert b"null" in _admin(zsrv, "GET", zbucket)[1]
    status, body = _admin(zsrv, "PUT", zbucket, b"gzip")
    assert status == 400 and b"<Code>InvalidArgument</Code>" in body
    assert _admin(zsrv, "PUT", "no-such-bucket-cz", b"lz4")[0] == 404
    assert _admin(zsrv, "PUT", zbucket, b"lz4", creds=USER2[1:])[0] == 403
    assert _admin(zsrv, "PUT", zbucket, b"lz4", creds=(ACCESS_KEY, "wrong-secret-123"))[0] == 403
    assert _admin(zsrv, "POST", zbucket, b"lz4")[0] == 405


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RS3GW_ACCESS_KEY": ACCESS_KEY, "RS3GW_SECRET_KEY": SECRET_KEY, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "rs3gw", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_restart_with_compression_off_and_cli(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    text = corpus(1024 * 1024 + 99)
    srv = start_server(data_dir, "--no-fsync", env={"RS3GW_COMPRESSION": "lz4"})
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="keep")
        s3.put_object(Bucket="keep", Key="t", Body=text)
    finally:
        srv.stop()
    assert stored_bytes(data_dir) * 2 < len(text)
    store = metadata_env(data_dir)  # the server's store (PostgreSQL in that matrix mode)
    out = _cli("bucket", "compression", "keep", "zstd:19", "--data-dir", str(data_dir), env=store)
    assert out.returncode == 0 and "zstd:19" in out.stdout, out.stderr
    bad = _cli("bucket", "compression", "keep", "zstd:99", "--data-dir", str(data_dir), env=store)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "1..22" in bad.stderr
    srv = start_server(data_dir, "--no-fsync")  # compression off now
    try:
        s3 = srv.client()
        assert _get(s3, "keep", "t") == text
        assert _get(s3, "keep", "t", f"bytes={FRAME - 1}-{FRAME}") == text[FRAME - 1 : FRAME + 1]
        assert b"zstd:19" in _admin(srv, "GET", "keep")[1]  # set offline, seen by the server
        before = stored_bytes(data_dir)
        s3.put_object(Bucket="keep", Key="t2", Body=text)  # the bucket override still compresses
        assert (stored_bytes(data_dir) - before) * 3 < len(text)
        assert _get(s3, "keep", "t2") == text
    finally:
        srv.stop()


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--compression", "gzip"], {}), ([], {"RS3GW_COMPRESSION": "zstd:0"})],
)
def test_bad_setting_is_one_line(tmp_path: Path, args: list[str], env: dict[str, str]) -> None:
    out = _cli("serve", "--data-dir", str(tmp_path), "--address", "127.0.0.1:1", *args, env=env)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "zstd[:LEVEL]" in out.stderr


def test_toml_storage_table(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[storage]\ncompression = "zstd:9"\n')
    from rs3gw.config import load_settings

    s = load_settings({"data_dir": str(tmp_path), "access_key": "abc", "secret_key": "12345678"}, {}, cfg)
    assert s.compression == "zstd:9"
    cfg.write_text('[storage]\ncompression = "brotli"\n')
    from rs3gw.config import ConfigError

    with pytest.raises(ConfigError, match=r"storage\.compression"):
        load_settings({"data_dir": str(tmp_path), "access_key": "abc", "secret_key": "12345678"}, {}, cfg)
