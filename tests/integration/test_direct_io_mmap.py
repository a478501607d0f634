"""``[storage.zerocopy] direct_io`` and ``mmap``, and the seed's ``[storage.cache]``, end to end over
boto3 against real servers started from the seed's TOML sections.

- O_DIRECT: every body round-trips byte-exact (sizes around the 4 KiB block and the threshold,
  multipart), and the blob files of large objects are not in the page cache right after the PUT
  (fincore), while those of a server without direct_io are — the writes really went direct.
- mmap: GETs, Range GETs and part GETs are byte-exact, and while a large body streams the server
  process really has the blob file mapped (/proc/PID/maps): over plain HTTP with sendfile off, and
  over TLS, where sendfile cannot be used.
- ``[storage.cache]``: a server configured with only the seed's section serves repeated GETs from
  the predictive cache (the /metrics hit series rises); RS3GW_CACHE_ENABLED=false turns it off.
"""

from __future__ import annotations

import random
import ssl
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stored_blob_helpers import blob_path, metric_total, segments

from conftest import Server, make_cert, start_server
from page_cache import needs_fincore, resident_bytes

MiB = 1 << 20
SEED_ZEROCOPY = """
[storage.zerocopy]
enabled = {enabled}
direct_io = true
direct_io_threshold = 1048576
splice = {enabled}
mmap = true
"""
SEED_CACHE = """
[storage.cache]
enabled = true
max_size_mb = 256
max_objects = 10000
ttl_seconds = 300
"""
SIZES = [0, 1, 4095, 4096, 4097, MiB - 1, MiB, MiB + 1, 3 * MiB + 17, 9 * MiB + 5]


def serve(base: Path, toml: str, *args: str, env: dict[str, str] | None = None, tls: bool = False) -> Server:
    base.mkdir(parents=True, exist_ok=True)
    cfg = base / "rs3gw.toml"
    cfg.write_text(toml)
    cert = make_cert(base) if tls else None
    return start_server(base / "data", "--config", str(cfg), *args, env=env, tls=cert)


@pytest.fixture(scope="module")
def dio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """direct_io and mmap on, sendfile off: every GET takes the (mapped) read path."""
    srv = serve(tmp_path_factory.mktemp("dio"), SEED_ZEROCOPY.format(enabled="false"))
    yield srv
    srv.stop()


def body(s3: Any, bucket: str, key: str, **kw: Any) -> bytes:
    data: bytes = s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()
    return data


def blob_files(srv: Server, bucket: str, key: str) -> list[Path]:
    return [blob_path(srv.data_dir, b) for b in segments(srv.data_dir, bucket, key)]


def maps_while_streaming(srv: Server, bucket: str, key: str, expect: bytes, **kw: Any) -> str:
    """The server's memory maps, sampled while a large GET body is part-way out; checks the body."""
    s3 = srv.client()
    stream = s3.get_object(Bucket=bucket, Key=key, **kw)["Body"]
    head = stream.read(4096)
    maps = ""
    for _ in range(20):  # the server is suspended on a full socket buffer: the mapping is live
        maps = Path(f"/proc/{srv.proc.pid}/maps").read_text()
        if "/blobs/" in maps:
            break
        time.sleep(0.05)
    assert head + stream.read() == expect
    return maps


def test_direct_io_round_trips_byte_exact(dio: Server) -> None:
    s3 = dio.client()
    s3.create_bucket(Bucket="dio")
    rnd = random.Random(11)
    for size in SIZES:
        data = rnd.randbytes(size)
        s3.put_object(Bucket="dio", Key=f"k{size}", Body=data)
        assert body(s3, "dio", f"k{size}") == data, size
        if size > 10:
            lo, hi = size // 3, size - size // 5
            assert body(s3, "dio", f"k{size}", Range=f"bytes={lo}-{hi}") == data[lo : hi + 1], size
            assert body(s3, "dio", f"k{size}", Range="bytes=-7") == data[-7:]
    # Overwrite: the new blob is what reads back.
    fresh = rnd.randbytes(2 * MiB + 3)
    s3.put_object(Bucket="dio", Key=f"k{MiB}", Body=fresh)
    assert body(s3, "dio", f"k{MiB}") == fresh
    assert "Traceback" not in dio.log.read_text()


@pytest.mark.local_backend_only(
    "O_DIRECT writes and mmap reads are the local backend's; the test reads the blob files"
)
def test_direct_io_multipart(dio: Server) -> None:
    s3 = dio.client()
    s3.create_bucket(Bucket="diomp")
    rnd = random.Random(12)
    parts = [rnd.randbytes(5 * MiB + 1), rnd.randbytes(5 * MiB + 4095), rnd.randbytes(300_001)]
    up = s3.create_multipart_upload(Bucket="diomp", Key="mp")
    done = []
    for i, p in enumerate(parts, 1):
        r = s3.upload_part(Bucket="diomp", Key="mp", UploadId=up["UploadId"], PartNumber=i, Body=p)
        done.append({"PartNumber": i, "ETag": r["ETag"]})
    s3.complete_multipart_upload(
        Bucket="diomp", Key="mp", UploadId=up["UploadId"], MultipartUpload={"Parts": done}
    )
    whole = b"".join(parts)
    assert body(s3, "diomp", "mp") == whole
    for i, p in enumerate(parts, 1):
        assert body(s3, "diomp", "mp", PartNumber=i) == p
    edge = len(parts[0])
    assert body(s3, "diomp", "mp", Range=f"bytes={edge - 100}-{edge + 99}") == whole[edge - 100 : edge + 100]
    lo, hi = 1000, len(whole) - 1000
    assert body(s3, "diomp", "mp", Range=f"bytes={lo}-{hi}") == whole[lo : hi + 1]
    for f in blob_files(dio, "diomp", "mp"):
        assert f.stat().st_size in {len(p) for p in parts}


@needs_fincore
@pytest.mark.local_backend_only("checks the local blob files against the page cache")
def test_direct_io_bypasses_the_page_cache(dio: Server, tmp_path: Path) -> None:
    data = random.Random(13).randbytes(16 * MiB + 5)
    plain = serve(tmp_path / "plain", "[storage.zerocopy]\ndirect_io = false\n")
    try:
        for srv in (dio, plain):
            s3 = srv.client()
            s3.create_bucket(Bucket="cachecheck")
            s3.put_object(Bucket="cachecheck", Key="big", Body=data)
        (direct_file,) = blob_files(dio, "cachecheck", "big")
        (plain_file,) = blob_files(plain, "cachecheck", "big")
        assert resident_bytes(plain_file) > len(data) // 2  # the control: a buffered write stays cached
        assert resident_bytes(direct_file) <= 2 * 4096  # O_DIRECT: nothing went through the page cache
        assert body(dio.client(), "cachecheck", "big") == data
    finally:
        plain.stop()


@pytest.mark.local_backend_only("mmap reads are the local backend's")
def test_mmap_reads_map_the_blob(dio: Server) -> None:
    s3 = dio.client()
    s3.create_bucket(Bucket="mmapb")
    data = random.Random(14).randbytes(48 * MiB)
    s3.put_object(Bucket="mmapb", Key="big", Body=data)
    (f,) = blob_files(dio, "mmapb", "big")
    assert str(f) in maps_while_streaming(dio, "mmapb", "big", data)
    lo = 3 * MiB + 5
    assert str(f) in maps_while_streaming(dio, "mmapb", "big", data[lo:], Range=f"bytes={lo}-")


@pytest.mark.local_backend_only("mmap reads are the local backend's")
def test_mmap_over_tls(tmp_path: Path) -> None:
    """sendfile on, but TLS needs the bytes in user space: the span is read through a mapping."""
    srv = serve(tmp_path, SEED_ZEROCOPY.format(enabled="true"), tls=True)
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="tls")
        data = random.Random(15).randbytes(40 * MiB + 3)
        s3.put_object(Bucket="tls", Key="big", Body=data)
        (f,) = blob_files(srv, "tls", "big")
        assert str(f) in maps_while_streaming(srv, "tls", "big", data)
        assert body(s3, "tls", "big", Range="bytes=5000000-9000000") == data[5000000:9000001]
        assert _sample(_metrics(srv), "rs3gw_zerocopy_sent_bytes_total") == 0
    finally:
        srv.stop()


def test_seed_storage_cache_serves_gets(tmp_path: Path) -> None:
    srv = serve(tmp_path / "on", SEED_CACHE)
    off = serve(tmp_path / "off", SEED_CACHE, env={"RS3GW_CACHE_ENABLED": "false"})
    try:
        data = random.Random(16).randbytes(4096)
        for s in (srv, off):
            s3 = s.client()
            s3.create_bucket(Bucket="cache")
            s3.put_object(Bucket="cache", Key="small", Body=data)
        hits = 'rs3gw_cache_events_total{event="hits"}'
        before = metric_total(srv, "rs3gw_cache_events_total")
        for _ in range(5):
            assert body(srv.client(), "cache", "small") == data
            assert body(off.client(), "cache", "small") == data
        text = _metrics(srv)
        assert _sample(text, hits) >= 4, text  # first GET misses and fills, the rest are hits
        assert metric_total(srv, "rs3gw_cache_events_total") > before
        assert _sample(_metrics(off), hits) == 0  # the env override switched the cache off
    finally:
        srv.stop()
        off.stop()


def _metrics(srv: Server) -> str:
    ctx = ssl.create_default_context(cafile=srv.ca_file) if srv.ca_file else None
    with urllib.request.urlopen(f"{srv.endpoint}/metrics", timeout=10, context=ctx) as r:
        return str(r.read().decode())


def _sample(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0
