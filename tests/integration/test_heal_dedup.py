"""``rs3gw heal run`` on a deduplicating server's data directory keeps the chunk store intact.

The server's dedup settings (``--dedup``, a non-default block size and min size) may come from
flags, environment or a TOML file; ``heal run`` is given only ``--data-dir`` (as the README shows
it) or the same ``--config``. A damaged chunk (shared by two objects), a missing chunk and damaged
small (below the dedup min size) objects are repaired from a backup, and afterwards the repaired
objects are stored as the server stores them: each large version is a manifest over the same
chunks (no second, undeduplicated copy of their bytes; before the fix heal used its own default
settings, dedup off, and rewrote them as plain blobs), the small ones stay plain blobs, every
object reads back byte-exact from a restarted server, ``rs3gw fsck`` is clean, and deleting
everything leaves no chunk, queued chunk or blob behind, which proves the chunk refcounts right.
A damaged manifest's chunk references are all released when the repair frees it (the chunk
index records them; the damaged bytes name a hash the manifest never held).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from stored_blob_helpers import flip, segments, text

from blob_access import blob_ids, remove_blob
from conftest import ACCESS_KEY, SECRET_KEY, start_server
from meta_access import dedup_chunk_blobs, dedup_chunk_counts
from pg_cluster import metadata_env, server_metadata
from rs3gw.config import Settings
from rs3gw.meta.dsn import split_params
from rs3gw.wiring import DEDUP_RECORD, record_dedup_settings, with_served_dedup

pytestmark = pytest.mark.local_backend_only("damages stored blobs on disk")
RS3GW = (sys.executable, "-m", "rs3gw")
BUCKET = "heal-dedup"
BLOCK = 16384  # the server's block size: not the default (65536)
MIN_SIZE = 65536  # the server's dedup min size: not the default (131072)
DEDUP_KEYS = ("a", "b", "c")  # the objects at or above MIN_SIZE
ENV = {**os.environ, "RS3GW_ACCESS_KEY": ACCESS_KEY, "RS3GW_SECRET_KEY": SECRET_KEY}
FLAGS = ("--dedup", "--dedup-block-size", str(BLOCK), "--dedup-min-size", str(MIN_SIZE))
TOML = f"[storage.dedup]\nenabled = true\nblock_size = {BLOCK}\nmin_object_size = {MIN_SIZE}\n"
DEDUP_ENV = {
    "RS3GW_DEDUP_ENABLED": "true",
    "RS3GW_DEDUP_BLOCK_SIZE": str(BLOCK),
    "RS3GW_DEDUP_MIN_OBJECT_SIZE": str(MIN_SIZE),
}


def cli(data: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """``rs3gw ARGS --data-dir DATA --json`` with the test server's metadata store."""
    out = subprocess.run(
        [*RS3GW, *args, "--data-dir", str(data), "--json"],
        capture_output=True,
        env={**ENV, **metadata_env(data), **(env or {})},
        timeout=180,
    )
    assert out.stdout, out.stderr
    doc: dict[str, Any] = json.loads(out.stdout)
    return out.returncode, doc


def manifest_ids(data: Path) -> set[str]:
    """Blob ids of dedup manifests in the chunk index (SQLite ``dedup.db`` or PostgreSQL)."""
    dsn = server_metadata(data)
    if dsn is not None:
        import psycopg

        with psycopg.connect(split_params(dsn)[0]) as conn:
            return {r[0] for r in conn.execute("SELECT blob_id FROM dedup_manifests").fetchall()}
    db = sqlite3.connect(f"file:{data / 'dedup.db'}?mode=ro", uri=True)
    try:
        return {r[0] for r in db.execute("SELECT blob_id FROM manifests")}
    finally:
        db.close()


def chunk_of(data: Path, piece: bytes) -> str:
    rows = dedup_chunk_blobs(data, "hash=?", (hashlib.sha256(piece).digest(),))
    assert rows, "no dedup chunk holds these bytes"
    return rows[0]


@dataclass
class Setup:
    """A stopped server's data dir holding ``objects``, a backup of them, and how to run things."""

    data: Path
    repo: Path
    objects: dict[str, bytes]
    server_args: tuple[str, ...]
    server_env: dict[str, str]
    heal_args: tuple[str, ...]  # what ``heal run`` and ``fsck`` get beside --data-dir

    def segment(self, key: str) -> str:
        return segments(self.data, BUCKET, key)[0]


def setup(tmp_path: Path, source: str) -> Setup:
    """Objects written by a dedup server configured by ``source`` (flags, env, config), backed up."""
    conf = tmp_path / "rs3gw.toml"
    conf.write_text(TOML)
    server_args: tuple[str, ...] = FLAGS
    server_env: dict[str, str] = {}
    heal_args: tuple[str, ...] = ()
    if source == "env":
        server_args, server_env = (), DEDUP_ENV
    elif source.startswith("config"):
        server_args = ("--config", str(conf))
        heal_args = ("--config", str(conf)) if source == "config-given-to-heal" else ()
    a = text(300_000, 1)
    objects = {
        "a": a,
        "b": a[: 8 * BLOCK] + text(100_000, 2),  # shares a's first 8 chunks
        "c": text(150_000, 3),
        "small": text(40_000, 4),  # below the min size: a plain blob (a file)
        "tiny": text(9_000, 5),  # a plain small-blob row
    }
    s = Setup(tmp_path / "data", tmp_path / "backup", objects, server_args, server_env, heal_args)
    srv = start_server(s.data, *server_args, env=server_env)
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket=BUCKET)
        for key, body in objects.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        backup = ("backup", "create", "--endpoint", srv.endpoint, "--target", str(s.repo), "--bucket", BUCKET)
        out = subprocess.run([*RS3GW, *backup], capture_output=True, env=ENV, timeout=180)
        assert out.returncode == 0, out.stderr
    finally:
        srv.stop()
    manifests = manifest_ids(s.data)
    assert all(s.segment(k) in manifests for k in DEDUP_KEYS), "the server deduplicated the large objects"
    assert not {s.segment("small"), s.segment("tiny")} & manifests
    return s


def check_consistent(s: Setup) -> None:
    """fsck is clean, everything reads back from a restarted server, and deleting everything frees
    every chunk (refcounts right) and every blob."""
    rc, report = cli(s.data, "fsck", *s.heal_args)
    assert rc == 0 and report["clean"], json.dumps(report)
    srv = start_server(s.data, *s.server_args, env=s.server_env)
    try:
        s3 = srv.client()
        for key, body in s.objects.items():
            assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == body, key
        for key in s.objects:
            s3.delete_object(Bucket=BUCKET, Key=key)
    finally:
        srv.stop()
    srv = start_server(s.data, *s.server_args, env=s.server_env)  # startup drains the chunk GC queue
    srv.stop()
    rc, report = cli(s.data, "fsck", *s.heal_args)
    assert rc == 0 and report["clean"], json.dumps(report)
    assert dedup_chunk_counts(s.data) == (0, 0)  # (chunks, chunk blobs queued for deletion)
    assert not blob_ids(s.data), sorted(blob_ids(s.data))


@pytest.mark.parametrize("source", ["flags", "env", "config", "config-given-to-heal"])
def test_heal_run_repairs_dedup_data_as_the_server_stores_it(tmp_path: Path, source: str) -> None:
    s = setup(tmp_path, source)
    data, objects = s.data, s.objects
    stored_before = blob_ids(data)
    flip(data, chunk_of(data, objects["a"][2 * BLOCK : 3 * BLOCK]), BLOCK // 2)  # a chunk a and b share
    remove_blob(data, chunk_of(data, objects["c"][BLOCK : 2 * BLOCK]))  # a chunk of c: gone
    flip(data, s.segment("small"), 100)
    flip(data, s.segment("tiny"), 100)

    # As the README shows it: only --data-dir (the server's flags and environment are not given).
    rc, rep = cli(data, "heal", "run", *s.heal_args, "--heal-backup", str(s.repo))
    assert rc == 0 and rep["clean"], rep
    found = {f["key"]: f for f in rep["corrupt"]}
    assert {"a", "c", "small", "tiny"} <= set(found) <= set(objects), rep  # b heals with a's chunk
    assert all(f["repaired"] for f in found.values()), rep
    assert "dedup chunk" in found["a"]["repair"] and "dedup chunk" in found["c"]["repair"], rep

    # Repaired as the server stores them: the large ones as manifests, the small ones plain.
    manifests = manifest_ids(data)
    for key in DEDUP_KEYS:
        assert s.segment(key) in manifests, f"{key} was rewritten undeduplicated"
    assert not {s.segment("small"), s.segment("tiny")} & manifests
    # One copy of every byte: the same chunks, and a new blob for each old one (nothing extra).
    want = {hashlib.sha256(b).digest() for b in chunk_bodies(objects)}
    assert len(dedup_chunk_blobs(data)) == len(want)
    assert len(blob_ids(data)) == len(stored_before), sorted(blob_ids(data) - stored_before)
    check_consistent(s)


def test_heal_run_of_a_damaged_manifest_releases_its_chunks(tmp_path: Path) -> None:
    """The repair frees b's damaged manifest by the references the chunk index recorded for it,
    not the hashes its damaged bytes name: b's real last chunk loses that reference."""
    s = setup(tmp_path, "config-given-to-heal")
    flip(s.data, s.segment("b"), -1)  # the last chunk hash in b's manifest
    rc, rep = cli(s.data, "heal", "run", *s.heal_args, "--heal-backup", str(s.repo))
    assert rc == 0 and rep["clean"] and [f["key"] for f in rep["corrupt"]] == ["b"], rep
    assert s.segment("b") in manifest_ids(s.data)
    check_consistent(s)


def chunk_bodies(objects: dict[str, bytes]) -> list[bytes]:
    """The fixed-size chunks of the objects at or above the min size."""
    return [
        body[i : i + BLOCK]
        for body in objects.values()
        if len(body) >= MIN_SIZE
        for i in range(0, len(body), BLOCK)
    ]


def test_served_dedup_record_is_used_only_when_valid(tmp_path: Path) -> None:
    """A missing, truncated or out-of-range record leaves the command's own settings alone."""
    base = Settings(data_dir=tmp_path)
    assert with_served_dedup(base) == base  # no server has started here
    record_dedup_settings(replace(base, dedup_enabled=True, dedup_block_size=BLOCK))
    served = with_served_dedup(base)
    assert served.dedup_enabled and served.dedup_block_size == BLOCK
    assert served.dedup_min_object_size == base.dedup_min_object_size
    path = tmp_path / DEDUP_RECORD
    for bad in (
        '{"dedup_enabled": true',
        '{"dedup_enabled": true}',
        json.dumps(
            {
                "dedup_enabled": True,
                "dedup_block_size": 7,
                "dedup_algorithm": "fixed-size",
                "dedup_min_object_size": 0,
            }
        ),
    ):
        path.write_text(bad)
        assert with_served_dedup(base) == base, bad
