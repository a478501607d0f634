"""Deduplication across two gateways sharing one PostgreSQL database and one SeaweedFS bucket.

The chunk index lives in PostgreSQL (``dedup_*`` tables), so both gateways see one chunk table:
identical bodies put through either gateway store each chunk once upstream, a read through the
other gateway returns the bytes exactly after overwrites and deletes, deleting every reference
frees the chunks upstream, and ``rs3gw fsck --metadata <dsn>`` finds the whole thing clean.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_s3_backend_e2e import UPSTREAM, backend_flags, upstream_blobs, weed  # noqa: F401 - weed: a fixture

from conftest import ACCESS_KEY, SECRET_KEY, Server, start_server
from pg_cluster import PgCluster
from seaweed import Seaweed

PREFIX = "ddscale"
BLOCK = 16384
DEDUP = ["--dedup", "--dedup-algorithm", "fixed-size", "--dedup-block-size", str(BLOCK)]


@pytest.fixture(scope="module")
def setup(
    pg_cluster: PgCluster,
    weed: Seaweed,  # noqa: F811 - the imported fixture
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Server, Server, str]]:
    # gc_grace=0: freed blobs go at once, so the test can watch chunks leave the upstream.
    dsn = pg_cluster.create_database("ddgw") + "?gc_grace=0"
    flags = ["--no-fsync", "--metadata", dsn, *DEDUP, *backend_flags(weed, PREFIX)]
    a = start_server(tmp_path_factory.mktemp("dda") / "data", *flags)
    try:
        b = start_server(tmp_path_factory.mktemp("ddb") / "data", *flags)
    except BaseException:
        a.stop()
        raise
    yield a, b, dsn
    b.stop()
    a.stop()
    for srv in (a, b):
        assert "Traceback" not in srv.log.read_text(), srv.log.read_text()[-3000:]
        assert not (srv.data_dir / "dedup.db").exists()  # the index is in PostgreSQL only


def index(dsn: str) -> dict[str, Any]:
    import psycopg

    from rs3gw.meta.dsn import split_params

    with psycopg.connect(split_params(dsn)[0]) as conn:
        chunks = conn.execute("SELECT count(*), coalesce(sum(size), 0) FROM dedup_chunks").fetchone()
        refs = dict(conn.execute("SELECT hash, refs FROM dedup_chunks").fetchall())
        manifests = conn.execute("SELECT count(*) FROM dedup_manifests").fetchone()
        writers = conn.execute("SELECT count(*) FROM dedup_writers").fetchone()
    assert chunks and manifests and writers
    return {
        "chunks": chunks[0],
        "stored": chunks[1],
        "refs": {bytes(h): n for h, n in refs.items()},
        "manifests": manifests[0],
        "writers": writers[0],
    }


def fsck(srv: Server, dsn: str, weed: Seaweed) -> tuple[int, dict[str, Any]]:  # noqa: F811
    """Without ``--dedup``: the chunk tables in the database are enough for fsck to read through them."""
    env = {
        **os.environ, "RS3GW_ACCESS_KEY": ACCESS_KEY, "RS3GW_SECRET_KEY": SECRET_KEY,
        "RS3GW_BACKEND_TYPE": "s3", "RS3GW_BACKEND_ENDPOINT": weed.endpoint,
        "RS3GW_BACKEND_BUCKET": UPSTREAM, "RS3GW_BACKEND_PREFIX": PREFIX,
        "RS3GW_BACKEND_ACCESS_KEY": weed.access_key, "RS3GW_BACKEND_SECRET_KEY": weed.secret_key,
    }  # fmt: skip
    cmd = [
        sys.executable,
        "-m",
        "rs3gw",
        "fsck",
        "--json",
        "--data-dir",
        str(srv.data_dir),
        "--metadata",
        dsn,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout, out.stderr
    report: dict[str, Any] = json.loads(out.stdout)
    return out.returncode, report


def hashes(body: bytes) -> set[bytes]:
    return {hashlib.sha256(body[i : i + BLOCK]).digest() for i in range(0, len(body), BLOCK)}


def test_two_gateways_share_one_chunk_index(
    setup: tuple[Server, Server, str],
    weed: Seaweed,  # noqa: F811
) -> None:
    a, b, dsn = setup
    ca, cb = a.client(), b.client()
    ca.create_bucket(Bucket="ddbucket")
    x = secrets.token_bytes(64 * BLOCK)  # 64 chunks
    z = secrets.token_bytes(48 * BLOCK) + x[: 16 * BLOCK]  # 48 new chunks, 16 shared with x

    # The same body through both gateways at once (their writers race on every hash), then more.
    errors: list[BaseException] = []

    def put(client: Any, key: str, body: bytes) -> None:
        try:
            client.put_object(Bucket="ddbucket", Key=key, Body=body)
        except BaseException as exc:
            errors.append(exc)

    racers = [threading.Thread(target=put, args=(c, f"race-{i}", x)) for i, c in enumerate([ca, cb] * 3)]
    for t in racers:
        t.start()
    for t in racers:
        t.join()
    assert not errors, errors
    ca.put_object(Bucket="ddbucket", Key="k1", Body=x)
    cb.put_object(Bucket="ddbucket", Key="k2", Body=x)
    idx = index(dsn)
    assert idx["chunks"] == 64 and idx["stored"] == len(x), idx  # each chunk once
    assert idx["manifests"] == 8 and set(idx["refs"].values()) == {8} and idx["writers"] == 0
    up = upstream_blobs(weed, PREFIX)
    assert len(up) == idx["chunks"] + idx["manifests"], up  # the upstream holds chunks and manifests only
    for key in ("race-0", "race-1", "k1", "k2"):
        assert ca.get_object(Bucket="ddbucket", Key=key)["Body"].read() == x
        assert cb.get_object(Bucket="ddbucket", Key=key)["Body"].read() == x

    # Overwrite through one, read through the other, byte for byte (and a range).
    ca.put_object(Bucket="ddbucket", Key="k1", Body=z)
    assert cb.get_object(Bucket="ddbucket", Key="k1")["Body"].read() == z
    got = cb.get_object(Bucket="ddbucket", Key="k1", Range=f"bytes={BLOCK - 7}-{3 * BLOCK + 5}")[
        "Body"
    ].read()
    assert got == z[BLOCK - 7 : 3 * BLOCK + 6]
    cb.delete_object(Bucket="ddbucket", Key="k2")
    assert ca.get_object(Bucket="ddbucket", Key="race-3")["Body"].read() == x
    idx = index(dsn)
    assert idx["chunks"] == len(hashes(x) | hashes(z)) == 112 and idx["manifests"] == 7, idx
    assert all(idx["refs"][h] == 6 + (h in hashes(z)) for h in hashes(x))
    assert all(idx["refs"][h] == 1 for h in hashes(z) - hashes(x))

    rc, rep = fsck(a, dsn, weed)
    assert rc == 0 and rep["clean"], rep
    assert rep["chunks_verified"] == 112 and not rep["refcount_mismatches"] and not rep["orphan_blobs"]

    # Every reference gone (deleted through both gateways): the chunks leave the upstream.
    keys = [f"race-{i}" for i in range(6)] + ["k1"]
    for i, key in enumerate(keys):
        (ca if i % 2 else cb).delete_object(Bucket="ddbucket", Key=key)
    deadline = time.monotonic() + 30
    # The index is read before the upstream listing, so a snapshot taken while the last manifest was
    # being dropped is stale by the time the listing comes back empty: wait on both, then read again.
    while (idx := index(dsn))["chunks"] or idx["manifests"] or upstream_blobs(weed, PREFIX):
        assert time.monotonic() < deadline, (idx, upstream_blobs(weed, PREFIX))
        time.sleep(0.2)
    idx = index(dsn)
    assert idx["chunks"] == 0 and idx["manifests"] == 0 and idx["writers"] == 0, idx
    rc, rep = fsck(b, dsn, weed)
    assert rc == 0 and rep["clean"], rep


def test_sqlite_chunk_index_is_refused_with_postgresql(
    tmp_path: Path,
    pg_cluster: PgCluster,
    weed: Seaweed,  # noqa: F811
) -> None:
    """A data directory whose chunks are counted in ``dedup.db`` is not silently switched over."""
    from rs3gw.blobs.chunk_index_sqlite import SqliteChunkIndex

    data = tmp_path / "data"
    data.mkdir()
    idx = SqliteChunkIndex(data / "dedup.db", fsync=False)
    idx.begin_writer("w")  # one row is enough to lose
    idx.close()
    dsn = pg_cluster.create_database("ddrefuse")
    cmd = [
        sys.executable, "-m", "rs3gw", "serve", "--data-dir", str(data), "--address", "127.0.0.1:1",
        "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY, "--metadata", dsn, *DEDUP,
        *backend_flags(weed, "refuse"),
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert lines and "holds a SQLite chunk index" in lines[-1] and "Traceback" not in out.stderr
