"""Two `rs3gw serve` processes sharing one PostgreSQL database and one data directory.

Clients write through one gateway and read through the other, concurrently: read-after-write for
new objects, overwrites, deletes and listings, no lost or torn objects, and If-None-Match: * create
races with exactly one winner. Every body is self-describing (its first 32 bytes are the MD5 hex
of the rest), so a read that mixes two writes, or is cut short, is detected.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import Server, start_server
from pg_cluster import PgCluster

THREADS = 8


def body(tag: str, size: int = 2048) -> bytes:
    payload = tag.encode() + b":" + os.urandom(size)
    return hashlib.md5(payload).hexdigest().encode() + payload


def intact(data: bytes) -> bool:
    return len(data) > 32 and hashlib.md5(data[32:]).hexdigest().encode() == data[:32]


@pytest.fixture(scope="module")
def gateways(
    pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Server]]:
    dsn = pg_cluster.create_database("gw")
    base = tmp_path_factory.mktemp("gw")
    data = base / "data"
    data.mkdir()
    alias = base / "data-b"  # the same directory under a second name: each server its own log file
    alias.symlink_to(data)
    a = start_server(data, "--metadata", dsn)
    b = start_server(alias, "--metadata", dsn)
    yield a, b
    b.stop()
    a.stop()
    for srv in (a, b):
        assert "Traceback" not in srv.log.read_text(), srv.log.read_text()[-3000:]


@pytest.fixture(scope="module")
def clients(gateways: tuple[Server, Server]) -> tuple[Any, Any]:
    a, b = gateways
    # botocore's response checksum validation stays on: the x-amz-checksum-* a GET returns must be
    # the current object's, which a stale metadata write (e.g. the access-count flush racing an
    # overwrite of a null version) once broke; update_object_meta's ``expect`` now refuses those.
    ca = a.client(max_pool_connections=THREADS * 2)
    cb = b.client(max_pool_connections=THREADS * 2)
    return ca, cb


@pytest.fixture
def shared_bucket(clients: tuple[Any, Any]) -> Iterator[str]:
    ca, cb = clients
    name = f"gw-{uuid.uuid4().hex[:12]}"
    ca.create_bucket(Bucket=name)
    # The bucket made through A exists for B at once.
    cb.head_bucket(Bucket=name)
    yield name


def parallel(fn: Callable[[int], None], n: int = THREADS) -> None:
    with ThreadPoolExecutor(n) as pool:
        for f in [pool.submit(fn, i) for i in range(n)]:
            f.result()


def test_read_after_write_new_objects_and_overwrites(clients: tuple[Any, Any], shared_bucket: str) -> None:
    ca, cb = clients

    def worker(t: int) -> None:
        for i in range(12):
            writer, reader = (ca, cb) if (t + i) % 2 == 0 else (cb, ca)
            key = f"t{t}/new-{i}"
            data = body(key)
            etag = writer.put_object(Bucket=shared_bucket, Key=key, Body=data)["ETag"]
            got = reader.get_object(Bucket=shared_bucket, Key=key)
            assert got["ETag"] == etag and got["Body"].read() == data
            # Overwrite the thread's own key through one side, read it back through the other.
            own = f"t{t}/own"
            data = body(f"{own}-{i}")
            writer.put_object(Bucket=shared_bucket, Key=own, Body=data)
            assert reader.get_object(Bucket=shared_bucket, Key=own)["Body"].read() == data

    parallel(worker)
    for c in (ca, cb):
        keys = [o["Key"] for o in c.list_objects_v2(Bucket=shared_bucket)["Contents"]]
        assert len(keys) == THREADS * 13


def test_hot_key_overwrites_are_never_torn(clients: tuple[Any, Any], shared_bucket: str) -> None:
    """Writers through both gateways overwrite one key while readers through both read it: every
    read is one complete write (old or new), never a mix, an error, or a missing key."""
    ca, cb = clients
    key = "hot"
    ca.put_object(Bucket=shared_bucket, Key=key, Body=body("first"))
    written: set[bytes] = set()
    stop = threading.Event()
    reads = [0]
    lock = threading.Lock()

    def reader(c: Any) -> None:
        while not stop.is_set():
            got = c.get_object(Bucket=shared_bucket, Key=key)
            data = got["Body"].read()
            assert intact(data), "torn read"
            assert got["ETag"].strip('"') == hashlib.md5(data).hexdigest()
            with lock:
                reads[0] += 1

    def writer(t: int) -> None:
        c = (ca, cb)[t % 2]
        for i in range(15):
            data = body(f"w{t}-{i}", 1024 + 512 * (i % 4))
            with lock:
                written.add(data)
            c.put_object(Bucket=shared_bucket, Key=key, Body=data)

    with ThreadPoolExecutor(4) as readers:
        futures = [readers.submit(reader, c) for c in (ca, cb, ca, cb)]
        try:
            parallel(writer, 4)
        finally:
            stop.set()
        for f in futures:
            f.result()
    assert reads[0] > 0
    final_a = ca.get_object(Bucket=shared_bucket, Key=key)["Body"].read()
    assert final_a in written and cb.get_object(Bucket=shared_bucket, Key=key)["Body"].read() == final_a


def test_deletes_and_listings_cross_gateway(clients: tuple[Any, Any], shared_bucket: str) -> None:
    ca, cb = clients
    kept: set[str] = set()
    lock = threading.Lock()

    def worker(t: int) -> None:
        writer, other = (ca, cb) if t % 2 == 0 else (cb, ca)
        for i in range(10):
            key = f"d/{t:02d}/{i:02d}"
            writer.put_object(Bucket=shared_bucket, Key=key, Body=body(key, 256))
            listed = other.list_objects_v2(Bucket=shared_bucket, Prefix=f"d/{t:02d}/")
            assert key in [o["Key"] for o in listed.get("Contents", [])]
            if i % 3 == 0:
                other.delete_object(Bucket=shared_bucket, Key=key)
                with pytest.raises(ClientError) as exc:
                    writer.head_object(Bucket=shared_bucket, Key=key)
                assert exc.value.response["Error"]["Code"] == "404"
                listed = writer.list_objects_v2(Bucket=shared_bucket, Prefix=f"d/{t:02d}/")
                assert key not in [o["Key"] for o in listed.get("Contents", [])]
            else:
                with lock:
                    kept.add(key)

    parallel(worker)
    for c in (ca, cb):
        pages = c.get_paginator("list_objects_v2").paginate(
            Bucket=shared_bucket, PaginationConfig={"PageSize": 7}
        )
        keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
        assert keys == sorted(kept)
        prefixes = c.list_objects_v2(Bucket=shared_bucket, Prefix="d/", Delimiter="/")["CommonPrefixes"]
        assert [p["Prefix"] for p in prefixes] == [f"d/{t:02d}/" for t in range(THREADS)]


def test_if_none_match_create_race_has_one_winner(clients: tuple[Any, Any], shared_bucket: str) -> None:
    ca, cb = clients
    keys = [f"race-{i}" for i in range(6)]
    winners: dict[str, list[bytes]] = {k: [] for k in keys}
    lock = threading.Lock()

    def contender(t: int) -> None:
        c = (ca, cb)[t % 2]
        for key in keys:
            data = body(f"{key}-{t}")
            try:
                c.put_object(Bucket=shared_bucket, Key=key, Body=data, IfNoneMatch="*")
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "PreconditionFailed", exc.response
                continue
            with lock:
                winners[key].append(data)

    parallel(contender)
    for key in keys:
        assert len(winners[key]) == 1, f"{key}: {len(winners[key])} winners"
        for c in (ca, cb):
            assert c.get_object(Bucket=shared_bucket, Key=key)["Body"].read() == winners[key][0]


def test_multipart_completed_on_one_gateway_parts_from_both(
    clients: tuple[Any, Any], shared_bucket: str
) -> None:
    ca, cb = clients
    up = ca.create_multipart_upload(Bucket=shared_bucket, Key="mp")["UploadId"]
    chunk = 5 * 1024 * 1024
    parts_data = [bytes([65 + n]) * chunk for n in range(2)] + [b"tail"]
    etags = {}

    def put_part(n: int) -> None:
        c = (ca, cb)[n % 2]
        etags[n + 1] = c.upload_part(
            Bucket=shared_bucket, Key="mp", UploadId=up, PartNumber=n + 1, Body=parts_data[n]
        )["ETag"]

    parallel(put_part, 3)
    listed = cb.list_parts(Bucket=shared_bucket, Key="mp", UploadId=up)["Parts"]
    assert [p["PartNumber"] for p in listed] == [1, 2, 3]
    done = {"Parts": [{"PartNumber": n, "ETag": etags[n]} for n in (1, 2, 3)]}
    results: list[str] = []

    def complete(t: int) -> None:
        c = (ca, cb)[t % 2]
        try:
            c.complete_multipart_upload(Bucket=shared_bucket, Key="mp", UploadId=up, MultipartUpload=done)
            results.append("ok")
        except ClientError as exc:
            results.append(exc.response["Error"]["Code"])

    parallel(complete, 4)
    assert sorted(results) == ["NoSuchUpload"] * 3 + ["ok"]
    assert cb.get_object(Bucket=shared_bucket, Key="mp")["Body"].read() == b"".join(parts_data)


def test_second_gateway_sees_versioning_and_config(clients: tuple[Any, Any], shared_bucket: str) -> None:
    ca, cb = clients
    ca.put_bucket_versioning(Bucket=shared_bucket, VersioningConfiguration={"Status": "Enabled"})
    assert cb.get_bucket_versioning(Bucket=shared_bucket)["Status"] == "Enabled"
    vids = []
    for i in range(4):
        c = (ca, cb)[i % 2]
        vids.append(c.put_object(Bucket=shared_bucket, Key="v", Body=body(f"v{i}"))["VersionId"])
    listed = cb.list_object_versions(Bucket=shared_bucket, Prefix="v")["Versions"]
    assert [v["VersionId"] for v in listed] == list(reversed(vids))
    cb.delete_object(Bucket=shared_bucket, Key="v")
    with pytest.raises(ClientError):
        ca.get_object(Bucket=shared_bucket, Key="v")
    assert ca.get_object(Bucket=shared_bucket, Key="v", VersionId=vids[0])["Body"].read()[:32]
