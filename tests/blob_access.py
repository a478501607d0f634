"""A local data dir's stored blobs, as fault-injection tests reach them.

A blob is a file ``blobs/<aa>/<id>`` or, when small (``rs3gw.blobs.smallpack.SMALL_MAX``), a row
of ``smallblobs.db``. Tests that corrupt, truncate, remove or count stored blobs go through these,
so they exercise both homes instead of assuming files. Safe while a server runs (SQLite WAL).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

PACK = "smallblobs.db"


def _pack(data_dir: Path) -> sqlite3.Connection | None:
    path = Path(data_dir) / PACK
    if not path.exists():
        return None
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    return conn


def blob_file(data_dir: Path, blob_id: str) -> Path:
    return Path(data_dir) / "blobs" / blob_id[:2] / blob_id


def file_ids(data_dir: Path) -> set[str]:
    root = Path(data_dir) / "blobs"
    if not root.is_dir():
        return set()
    return {p.name for sub in root.iterdir() if sub.is_dir() for p in sub.iterdir()}


def packed_ids(data_dir: Path) -> set[str]:
    conn = _pack(data_dir)
    if conn is None:
        return set()
    try:
        return {r[0] for r in conn.execute("SELECT blob_id FROM small")}
    finally:
        conn.close()


def blob_ids(data_dir: Path) -> set[str]:
    """Every stored blob id, files and rows."""
    return file_ids(data_dir) | packed_ids(data_dir)


def has_blob(data_dir: Path, blob_id: str) -> bool:
    return blob_file(data_dir, blob_id).exists() or blob_id in packed_ids(data_dir)


def read_blob(data_dir: Path, blob_id: str) -> bytes:
    path = blob_file(data_dir, blob_id)
    if path.exists():
        return path.read_bytes()
    conn = _pack(data_dir)
    if conn is None:
        raise FileNotFoundError(blob_id)
    try:
        row = conn.execute("SELECT data FROM small WHERE blob_id=?", (blob_id,)).fetchone()
    finally:
        conn.close()
    if row is None:
        raise FileNotFoundError(blob_id)
    return bytes(row[0])


def write_blob(data_dir: Path, blob_id: str, data: bytes) -> None:
    """Replace a stored blob's bytes where it lives (a file stays a file, a row a row)."""
    path = blob_file(data_dir, blob_id)
    if path.exists():
        path.write_bytes(data)
        return
    conn = _pack(data_dir)
    if conn is None:
        raise FileNotFoundError(blob_id)
    try:
        if not conn.execute("UPDATE small SET data=? WHERE blob_id=?", (data, blob_id)).rowcount:
            raise FileNotFoundError(blob_id)
    finally:
        conn.close()


def flip_byte(data_dir: Path, blob_id: str, offset: int) -> None:
    """Corrupt one byte (offset counted from the end when negative)."""
    raw = bytearray(read_blob(data_dir, blob_id))
    raw[offset] ^= 0xFF
    write_blob(data_dir, blob_id, bytes(raw))


def remove_blob(data_dir: Path, blob_id: str) -> None:
    path = blob_file(data_dir, blob_id)
    if path.exists():
        path.unlink()
        return
    conn = _pack(data_dir)
    if conn is None:
        raise FileNotFoundError(blob_id)
    try:
        if not conn.execute("DELETE FROM small WHERE blob_id=?", (blob_id,)).rowcount:
            raise FileNotFoundError(blob_id)
    finally:
        conn.close()
