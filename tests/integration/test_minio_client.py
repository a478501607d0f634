"""The minio Python SDK against the gateway, over HTTP and HTTPS (its own signer and multipart logic)."""

from __future__ import annotations

import hashlib
import io
import os
import ssl
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from conftest import ACCESS_KEY, SECRET_KEY, Server


@pytest.fixture
def mc(any_server: Server) -> Iterator[tuple[Minio, str]]:
    http = None
    if any_server.ca_file:
        http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=any_server.ca_file)
    client = Minio(
        f"127.0.0.1:{any_server.port}",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        secure=any_server.ca_file is not None,
        region="us-east-1",
        http_client=http,
    )
    name = f"minio-{uuid.uuid4().hex[:12]}"
    client.make_bucket(name)
    yield client, name
    for obj in client.list_objects(name, recursive=True):
        assert obj.object_name is not None
        client.remove_object(name, obj.object_name)
    client.remove_bucket(name)
    if http is not None:
        http.clear()


def test_put_get_stat(mc: tuple[Minio, str]) -> None:
    client, name = mc
    assert client.bucket_exists(name)
    data = os.urandom(10_000)
    res = client.put_object(name, "dir/obj", io.BytesIO(data), len(data), metadata={"x-amz-meta-k": "v"})
    assert res.etag == hashlib.md5(data).hexdigest()
    resp = client.get_object(name, "dir/obj")
    try:
        assert resp.read() == data
    finally:
        resp.close()
        resp.release_conn()
    st = client.stat_object(name, "dir/obj")
    assert st.size == len(data) and st.metadata["x-amz-meta-k"] == "v"


def test_range_get(mc: tuple[Minio, str]) -> None:
    client, name = mc
    client.put_object(name, "r", io.BytesIO(b"0123456789"), 10)
    resp = client.get_object(name, "r", offset=3, length=4)
    try:
        assert resp.read() == b"3456"
    finally:
        resp.close()
        resp.release_conn()


def test_fput_fget_multipart(mc: tuple[Minio, str], tmp_path: Path) -> None:
    client, name = mc
    src = tmp_path / "big"
    with src.open("wb") as f:
        for _ in range(12):
            f.write(os.urandom(1 << 20))
    client.fput_object(name, "big", str(src), part_size=5 << 20)
    st = client.stat_object(name, "big")
    assert st.size == 12 << 20 and st.etag is not None and st.etag.endswith("-3")
    dst = tmp_path / "big.out"
    client.fget_object(name, "big", str(dst))
    assert hashlib.sha256(dst.read_bytes()).digest() == hashlib.sha256(src.read_bytes()).digest()


def test_list_and_remove_objects(mc: tuple[Minio, str]) -> None:
    client, name = mc
    keys = ["a/1", "a/2", "a/b/3", "c"]
    for k in keys:
        client.put_object(name, k, io.BytesIO(k.encode()), len(k))
    assert sorted(o.object_name for o in client.list_objects(name, recursive=True)) == keys
    top = {o.object_name for o in client.list_objects(name)}
    assert top == {"a/", "c"}
    assert sorted(o.object_name for o in client.list_objects(name, prefix="a/", recursive=True)) == keys[:3]
    client.remove_object(name, "c")
    errors = list(client.remove_objects(name, [DeleteObject(k) for k in keys[:3]]))
    assert errors == []
    assert list(client.list_objects(name, recursive=True)) == []


def test_missing_object_error(mc: tuple[Minio, str]) -> None:
    client, name = mc
    with pytest.raises(S3Error) as e:
        client.stat_object(name, "nope")
    assert e.value.code in ("NoSuchKey", "ResponseCode")  # HEAD has no body; minio maps the status
    with pytest.raises(S3Error) as e:
        client.get_object(name, "nope")
    assert e.value.code == "NoSuchKey"


def test_presigned_get(mc: tuple[Minio, str], any_server: Server) -> None:
    client, name = mc
    client.put_object(name, "p q", io.BytesIO(b"presigned"), 9)
    url = client.presigned_get_object(name, "p q")
    ctx = ssl.create_default_context(cafile=any_server.ca_file) if any_server.ca_file else None
    with urllib.request.urlopen(url, timeout=30, context=ctx) as r:
        assert r.read() == b"presigned"
