"""Helpers for tests that reach under a real server into its data directory: find an object's blobs,
flip a byte in one (a file ``blobs/<aa>/<id>`` or, for a small blob, a row of ``smallblobs.db``),
make compressible-but-not-dedupable bodies, and read a /metrics counter."""

from __future__ import annotations

import random
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from blob_access import blob_file, read_blob, write_blob
from conftest import Server
from meta_access import latest_segments


def metric_total(srv: Server, name: str) -> float:
    """The sum of a metric's samples over all label sets (0 when it has none yet)."""
    with urllib.request.urlopen(f"{srv.endpoint}/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


def segments(data_dir: Path, bucket: str, key: str) -> list[str]:
    """The blob ids of an object's latest version, read from the server's metadata store directly
    (SQLite ``meta.db`` or, under RS3GW_TEST_METADATA=postgresql, its PostgreSQL database)."""
    return latest_segments(data_dir, bucket, key)


def blob_path(data_dir: Path, blob_id: str) -> Path:
    """A blob's FILE: only for tests about blob files (O_DIRECT, mmap); a small blob is a row, not a
    file, so tests that damage or inspect stored blobs use ``flip`` and ``blob_access`` instead."""
    return blob_file(data_dir, blob_id)


def flip(data_dir: Path, blob_id: str, offset: int) -> None:
    """Corrupt one byte of a stored blob where it lives (a file stays a file, a row a row); a
    negative ``offset`` counts from the end."""
    raw = bytearray(read_blob(data_dir, blob_id))
    raw[offset] ^= 0x55
    write_blob(data_dir, blob_id, bytes(raw))


def flip_file(path: Path, offset: int) -> None:
    """Corrupt one byte of a file that is not a stored blob (a backup repository's object)."""
    with path.open("r+b") as fh:
        fh.seek(offset)
        b = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([b[0] ^ 0x55]))


def text(size: int, seed: int) -> bytes:
    """Compressible, not repetitive enough to collapse into one dedup chunk."""
    rnd = random.Random(seed)
    words = [rnd.randbytes(4).hex() for _ in range(300)]
    out = bytearray()
    while len(out) < size:
        out += (" ".join(rnd.choices(words, k=12)) + "\n").encode()
    return bytes(out[:size])


def crc32_multipart(s3: Any, bucket: str, key: str, parts: list[bytes]) -> None:
    """A multipart upload with CRC32 part checksums (composite), for tests that damage its parts."""
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="CRC32")
    done = []
    for i, body in enumerate(parts, 1):
        r = s3.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=up["UploadId"],
            PartNumber=i,
            Body=body,
            ChecksumAlgorithm="CRC32",
        )
        done.append({"PartNumber": i, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=up["UploadId"], MultipartUpload={"Parts": done}
    )
