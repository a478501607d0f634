"""The data-backend axis of the test matrix: RS3GW_TEST_BACKEND=s3 puts every test server's blobs on
one SeaweedFS (``weed mini``, started once per session on first use, stopped at its end).

Each data directory gets its own key prefix in one upstream bucket, so servers never see each
other's blobs and a restarted server finds its own again (as ``pg_cluster.metadata_args`` keeps
one database per data directory). Tests that read blob files on disk, or use a feature the remote
backends refuse, carry ``@pytest.mark.local_backend_only("why")`` and skip in this mode.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest

BACKEND_ENV = "RS3GW_TEST_BACKEND"
BUCKET = "rs3gw-matrix"


def remote_backend() -> bool:
    """Whether this session runs its test servers over the S3 backend."""
    value = os.environ.get(BACKEND_ENV, "local").lower()
    if value not in ("local", "s3"):
        raise pytest.UsageError(f"{BACKEND_ENV} must be local or s3, got {value!r}")
    return value == "s3"


_WEED: list[Any] = []  # the started Seaweed, or why it could not start (tried once)
_PREFIXES: dict[Path, str] = {}  # data dir -> its key prefix, so a restarted server finds its blobs


def shared_seaweed() -> Any:
    """The session's SeaweedFS with the matrix bucket created (fails the test when it cannot start:
    a session that asked for the S3 backend must not silently run on the local one)."""
    if not _WEED:
        from seaweed import start_seaweed  # late: seaweed imports conftest

        workdir = Path(tempfile.mkdtemp(prefix="rs3gw-weed-matrix-"))
        try:
            weed = start_seaweed(workdir)
            weed.client().create_bucket(Bucket=BUCKET)
            _WEED.append(weed)
        except RuntimeError as exc:
            _WEED.append(f"{BACKEND_ENV}=s3 but SeaweedFS did not start: {exc}")
    got = _WEED[0]
    if isinstance(got, str):
        pytest.fail(got, pytrace=False)
    return got


def stop_shared_seaweed() -> None:
    if _WEED and not isinstance(_WEED[0], str):
        _WEED[0].stop()
        shutil.rmtree(_WEED[0].workdir, ignore_errors=True)
    _WEED.clear()


def backend_args(
    data_dir: Path, extra_args: tuple[str, ...] | list[str] = (), env: dict[str, str] | None = None
) -> list[str]:
    """``--backend s3 ...`` for a test server (or an offline command on its data directory) when
    RS3GW_TEST_BACKEND=s3 and the caller did not choose a backend itself (by flag or in ``env``)."""
    if not remote_backend():
        return []
    if any(a == "--backend" or a.startswith("--backend=") for a in extra_args):
        return []
    if env and "RS3GW_BACKEND_TYPE" in env:
        return []
    weed = shared_seaweed()
    key = data_dir.resolve()
    prefix = _PREFIXES.setdefault(key, f"srv-{uuid.uuid4().hex[:12]}")
    return [
        "--backend", "s3", "--backend-endpoint", weed.endpoint, "--backend-bucket", BUCKET,
        "--backend-prefix", prefix, "--backend-access-key", weed.access_key,
        "--backend-secret-key", weed.secret_key,
    ]  # fmt: skip


def backend_env(data_dir: Path) -> dict[str, str]:
    """``backend_args`` as RS3GW_BACKEND_* variables, for offline commands that take no backend flags."""
    args = backend_args(data_dir)
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    return {("RS3GW_BACKEND_TYPE" if k == "--backend" else f"RS3GW_{k[2:].replace('-', '_').upper()}"): v
            for k, v in pairs.items()}  # fmt: skip


def _local_sizes(root: Path) -> dict[str, int]:
    """Files under ``root`` and their sizes; one the server's GC removes mid-walk is not counted."""
    out: dict[str, int] = {}
    for p in root.rglob("*"):
        try:
            if p.is_file():
                out[p.name] = p.stat().st_size
        except FileNotFoundError:
            continue
    return out


def _packed_sizes(data_dir: Path) -> dict[str, int]:
    """Small blobs: rows of ``smallblobs.db`` (rs3gw.blobs.smallpack) and their sizes."""
    path = data_dir / "smallblobs.db"
    if not path.exists():
        return {}
    conn = sqlite3.connect(path, timeout=30)
    try:
        return {b: int(n) for b, n in conn.execute("SELECT blob_id, length(data) FROM small")}
    finally:
        conn.close()


def stored_sizes(data_dir: Path) -> dict[str, int]:
    """Blob id -> stored size of what a test server of ``data_dir`` holds now: files under ``blobs/``
    locally, the keys under its prefix upstream with RS3GW_TEST_BACKEND=s3 (for tests that measure
    what compression or dedup stored, or count what GC freed)."""
    key = data_dir.resolve()
    if not remote_backend() or key not in _PREFIXES:
        return _local_sizes(data_dir / "blobs") | _packed_sizes(data_dir)
    s3 = shared_seaweed().client()
    out: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{_PREFIXES[key]}/"):
        out.update({o["Key"].rsplit("/", 1)[-1]: int(o["Size"]) for o in page.get("Contents", [])})
    return out


def stored_blobs(data_dir: Path) -> list[str]:
    return list(stored_sizes(data_dir))


def skip_local_only(items: list[pytest.Item]) -> None:
    """Under the S3 backend, skip the tests marked ``local_backend_only`` with the marker's reason."""
    if not remote_backend():
        return
    for item in items:
        mark = item.get_closest_marker("local_backend_only")
        if mark is not None:
            why = mark.args[0] if mark.args else "needs the local backend"
            item.add_marker(pytest.mark.skip(reason=f"{BACKEND_ENV}=s3: {why}"))
