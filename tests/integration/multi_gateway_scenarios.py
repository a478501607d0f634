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


MIB = 1024 * 1024


def multipart_etag(parts: list[bytes]) -> str:
    """The ETag S3 gives a completed multipart object: MD5 of the parts' binary MD5s, ``-count``."""
    md5s = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(md5s).hexdigest()}-{len(parts)}"'


def upload_through_both(
    ca: Any, cb: Any, bucket: str, key: str, creator: Any, parts: list[bytes]
) -> tuple[str, Any]:
    """An upload created through ``creator`` whose parts go up in parallel through alternating
    gateways; returns (upload id, the CompleteMultipartUpload document)."""
    up = creator.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    etags: dict[int, str] = {}

    def put_part(n: int) -> None:
        c = (ca, cb)[n % 2]
        etags[n + 1] = c.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=n + 1, Body=parts[n])[
            "ETag"
        ]

    parallel(put_part, len(parts))
    listed = cb.list_parts(Bucket=bucket, Key=key, UploadId=up)["Parts"]
    assert [p["PartNumber"] for p in listed] == list(range(1, len(parts) + 1))
    return up, {"Parts": [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)]}


def racing_completes(
    ca: Any, cb: Any, bucket: str, key: str, uploads: list[tuple[str, Any]], n: int
) -> list[tuple[int, str]]:
    """``n`` threads, thread t completing ``uploads[t % len(uploads)]`` through gateway t % 2, all
    released at once by a barrier; returns (t, ETag) per thread. Every complete must answer 200:
    an error of any kind fails the scenario."""
    barrier = threading.Barrier(n)
    answers: list[tuple[int, str]] = []
    lock = threading.Lock()

    def complete(t: int) -> None:
        up, done = uploads[t % len(uploads)]
        c = (ca, cb)[t % 2]
        barrier.wait(30)
        try:
            r = c.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up, MultipartUpload=done)
        except ClientError as exc:
            raise AssertionError(
                f"complete #{t} of {up} through gateway {'ab'[t % 2]}: {exc.response}"
            ) from exc
        with lock:
            answers.append((t, r["ETag"]))

    parallel(complete, n)
    return answers


def multipart_from_both(ca: Any, cb: Any, bucket: str) -> None:
    """Completions racing on one key through both gateways, which the store serializes.

    One upload (parts through both gateways) completed by four racing completes, two per gateway:
    one commits and the others are answered as retries of that completion (S3 answers a repeated
    complete of the upload that made the current object with 200 and its ETag), so every one is a
    200 with the same multipart ETag. Then two uploads of one key, one made through each gateway,
    each completed once through its own gateway at the same instant: both must commit (last writer
    wins, as in S3) and the key then holds one of the two bodies byte for byte, with that upload's
    ETag, as seen by both gateways. No upload is left behind."""
    chunk = 5 * MIB
    parts_data = [bytes([65 + n]) * chunk for n in range(2)] + [b"tail"]
    up, done = upload_through_both(ca, cb, bucket, "mp", ca, parts_data)
    want = multipart_etag(parts_data)
    answers = racing_completes(ca, cb, bucket, "mp", [(up, done)], 4)
    assert sorted(t for t, _ in answers) == [0, 1, 2, 3], answers
    assert {etag for _, etag in answers} == {want}, answers
    whole = b"".join(parts_data)
    for c in (ca, cb):
        got = c.get_object(Bucket=bucket, Key="mp")
        assert got["ETag"] == want and got["Body"].read() == whole
        rng = c.get_object(Bucket=bucket, Key="mp", Range=f"bytes={chunk - 3}-{chunk + 2}")
        assert rng["Body"].read() == b"AAABBB"
        # A complete repeated after the race is still a retry of that completion.
        again = c.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up, MultipartUpload=done)
        assert again["ETag"] == want

    # Two uploads of one key, completed at the same time through different gateways.
    bodies = [[bytes([67 + i]) * chunk, f"tail-{i}".encode()] for i in range(2)]
    uploads = [upload_through_both(ca, cb, bucket, "mp-race", (ca, cb)[i], bodies[i]) for i in range(2)]
    answers = racing_completes(ca, cb, bucket, "mp-race", uploads, 2)
    wants = [multipart_etag(b) for b in bodies]
    assert sorted(answers) == [(0, wants[0]), (1, wants[1])], answers
    final = [ca.get_object(Bucket=bucket, Key="mp-race"), cb.get_object(Bucket=bucket, Key="mp-race")]
    datas = [g["Body"].read() for g in final]
    assert datas[0] == datas[1], "the gateways disagree on the completed object"
    assert final[0]["ETag"] == final[1]["ETag"] in wants, [g["ETag"] for g in final]
    winner = wants.index(final[0]["ETag"])
    assert datas[0] == b"".join(bodies[winner]), "the object is not the body of the upload whose ETag it has"
    for key in ("mp", "mp-race"):
        left = ca.list_multipart_uploads(Bucket=bucket, Prefix=key).get("Uploads", [])
        assert [u for u in left if u["Key"] == key] == [], left
