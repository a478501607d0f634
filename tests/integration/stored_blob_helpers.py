"""Helpers for tests that reach under a real server into its data directory: find an object's blob
files, flip a byte in one, make compressible-but-not-dedupable bodies, and read a /metrics counter."""

from __future__ import annotations

import random
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

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
    return data_dir / "blobs" / blob_id[:2] / blob_id


def flip(path: Path, offset: int) -> None:
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
