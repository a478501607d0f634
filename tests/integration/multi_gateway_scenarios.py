"""Concurrency scenarios for two gateways that share their metadata (and, scaled out, their blobs):
each takes the two gateways' clients and a bucket both see, and is run by the deployment's own test
module (test_pg_multi_gateway: shared data dir; test_gateways_pg_seaweed: SeaweedFS backend).

Every body is self-describing (its first 32 bytes are the MD5 hex of the rest), so a read that mixes
two writes, or is cut short, is detected.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

THREADS = 8


def body(tag: str, size: int = 2048) -> bytes:
    payload = tag.encode() + b":" + os.urandom(size)
    return hashlib.md5(payload).hexdigest().encode() + payload


def intact(data: bytes) -> bool:
    return len(data) > 32 and hashlib.md5(data[32:]).hexdigest().encode() == data[:32]


def parallel(fn: Callable[[int], None], n: int = THREADS) -> None:
    with ThreadPoolExecutor(n) as pool:
        for f in [pool.submit(fn, i) for i in range(n)]:
            f.result()


def all_keys(c: Any, bucket: str, **kw: Any) -> list[str]:
    pages = c.get_paginator("list_objects_v2").paginate(Bucket=bucket, **kw)
    return [o["Key"] for p in pages for o in p.get("Contents", [])]


def read_after_write(ca: Any, cb: Any, bucket: str, rounds: int, sse_every: int = 0) -> None:
    """New keys and overwrites of a thread's own key, written through one gateway and read back
    through the other at once; every ``sse_every``-th new key is SSE-S3 encrypted."""

    def worker(t: int) -> None:
        for i in range(rounds):
            writer, reader = (ca, cb) if (t + i) % 2 == 0 else (cb, ca)
            key = f"t{t}/new-{i}"
            data = body(key)
            extra = {"ServerSideEncryption": "AES256"} if sse_every and i % sse_every == 0 else {}
            etag = writer.put_object(Bucket=bucket, Key=key, Body=data, **extra)["ETag"]
            got = reader.get_object(Bucket=bucket, Key=key)
            assert got["ETag"] == etag and got["Body"].read() == data
            own = f"t{t}/own"
            data = body(f"{own}-{i}")
            writer.put_object(Bucket=bucket, Key=own, Body=data)
            assert reader.get_object(Bucket=bucket, Key=own)["Body"].read() == data

    parallel(worker)
    for c in (ca, cb):
        assert len(all_keys(c, bucket)) == THREADS * (rounds + 1)


def hot_key_overwrites(ca: Any, cb: Any, bucket: str, writes: int) -> None:
    """Writers through both gateways overwrite one key while readers through both read it: every
    read is one complete write (old or new), never a mix, an error, or a missing key."""
    key = "hot"
    ca.put_object(Bucket=bucket, Key=key, Body=body("first"))
    written: set[bytes] = set()
    stop = threading.Event()
    reads = [0]
    lock = threading.Lock()

    def reader(c: Any) -> None:
        while not stop.is_set():
            got = c.get_object(Bucket=bucket, Key=key)
            data = got["Body"].read()
            assert intact(data), "torn read"
            assert got["ETag"].strip('"') == hashlib.md5(data).hexdigest()
            with lock:
                reads[0] += 1

    def writer(t: int) -> None:
        c = (ca, cb)[t % 2]
        for i in range(writes):
            data = body(f"w{t}-{i}", 1024 + 512 * (i % 4))
            with lock:
                written.add(data)
            c.put_object(Bucket=bucket, Key=key, Body=data)

    with ThreadPoolExecutor(4) as readers:
        futures = [readers.submit(reader, c) for c in (ca, cb, ca, cb)]
        try:
            parallel(writer, 4)
        finally:
            stop.set()
        for f in futures:
            f.result()
    assert reads[0] > 0
    final = ca.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert final in written and cb.get_object(Bucket=bucket, Key=key)["Body"].read() == final


def deletes_and_listings(ca: Any, cb: Any, bucket: str, rounds: int) -> None:
    """A key written through one gateway is listed by the other at once; deleted through the other,
    it is gone (HEAD 404, unlisted) through the first; what is kept is listed whole by both."""
    kept: set[str] = set()
    lock = threading.Lock()

    def worker(t: int) -> None:
        writer, other = (ca, cb) if t % 2 == 0 else (cb, ca)
        for i in range(rounds):
            key = f"d/{t:02d}/{i:02d}"
            writer.put_object(Bucket=bucket, Key=key, Body=body(key, 256))
            assert key in all_keys(other, bucket, Prefix=f"d/{t:02d}/")
            if i % 3 == 0:
                other.delete_object(Bucket=bucket, Key=key)
                with pytest.raises(ClientError) as exc:
                    writer.head_object(Bucket=bucket, Key=key)
                assert exc.value.response["Error"]["Code"] == "404"
                assert key not in all_keys(writer, bucket, Prefix=f"d/{t:02d}/")
            else:
                with lock:
                    kept.add(key)

    parallel(worker)
    for c in (ca, cb):
        keys = all_keys(c, bucket, PaginationConfig={"PageSize": 7})
        assert keys == sorted(kept)
        prefixes = c.list_objects_v2(Bucket=bucket, Prefix="d/", Delimiter="/")["CommonPrefixes"]
        assert [p["Prefix"] for p in prefixes] == [f"d/{t:02d}/" for t in range(THREADS)]
        for key in keys:  # nothing lost: every kept object's bytes are whole, through either gateway
            assert intact(c.get_object(Bucket=bucket, Key=key)["Body"].read())


def create_race(ca: Any, cb: Any, bucket: str, n_keys: int, loser_codes: Collection[str]) -> None:
    """If-None-Match: * PUTs of the same new keys through both gateways: exactly one wins each."""
    keys = [f"race-{i}" for i in range(n_keys)]
    winners: dict[str, list[bytes]] = {k: [] for k in keys}
    lock = threading.Lock()

    def contender(t: int) -> None:
        c = (ca, cb)[t % 2]
        for key in keys:
            data = body(f"{key}-{t}")
            try:
                c.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
            except ClientError as exc:
                assert exc.response["Error"]["Code"] in loser_codes, exc.response
                continue
            with lock:
                winners[key].append(data)

    parallel(contender)
    for key in keys:
        assert len(winners[key]) == 1, f"{key}: {len(winners[key])} winners"
        for c in (ca, cb):
            assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == winners[key][0]


def multipart_from_both(ca: Any, cb: Any, bucket: str) -> None:
    """Parts uploaded through both gateways, one upload completed by four racing completes: one
    completes it; the others are answered as retries of that completion (200, as S3 answers a
    repeated complete) or, when they looked in between, find no upload; both gateways read the
    whole object and ranges of it."""
    up = ca.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    chunk = 5 * 1024 * 1024
    parts_data = [bytes([65 + n]) * chunk for n in range(2)] + [b"tail"]
    etags: dict[int, str] = {}

    def put_part(n: int) -> None:
        c = (ca, cb)[n % 2]
        etags[n + 1] = c.upload_part(
            Bucket=bucket, Key="mp", UploadId=up, PartNumber=n + 1, Body=parts_data[n]
        )["ETag"]

    parallel(put_part, 3)
    listed = cb.list_parts(Bucket=bucket, Key="mp", UploadId=up)["Parts"]
    assert [p["PartNumber"] for p in listed] == [1, 2, 3]
    done = {"Parts": [{"PartNumber": n, "ETag": etags[n]} for n in (1, 2, 3)]}
    results: list[str] = []

    def complete(t: int) -> None:
        c = (ca, cb)[t % 2]
        try:
            c.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up, MultipartUpload=done)
            results.append("ok")
        except ClientError as exc:
            results.append(exc.response["Error"]["Code"])

    parallel(complete, 4)
    assert len(results) == 4 and "ok" in results, results
    assert set(results) <= {"ok", "NoSuchUpload"}, results
    whole = b"".join(parts_data)
    for c in (ca, cb):
        assert c.get_object(Bucket=bucket, Key="mp")["Body"].read() == whole
        rng = c.get_object(Bucket=bucket, Key="mp", Range=f"bytes={chunk - 3}-{chunk + 2}")
        assert rng["Body"].read() == b"AAABBB"
