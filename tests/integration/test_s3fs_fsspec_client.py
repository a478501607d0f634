"""An ML pipeline's data loader against the gateway: s3fs/fsspec + pyarrow reading a multi-file Parquet
dataset written through boto3.

s3fs needs aiobotocore, which pins a botocore older than the dev environment's boto3, so the client
runs in its own small venv, built once from pinned requirements and cached under the repository's
ignored .cache/ directory (keyed by the requirements and the interpreter version). The first build
downloads from PyPI (about a minute); later runs reuse it. Without PyPI the test skips, saying so.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import ACCESS_KEY, SECRET_KEY, Server

REQUIREMENTS = (
    "s3fs==2026.9.0",
    "fsspec==2026.9.0",
    "aiobotocore==3.10.0",
    "botocore==1.43.117",
    f"pyarrow=={pa.__version__}",  # the same pyarrow as the dev venv, so both sides agree on the format
)
REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("s3fs_client_script.py")
# pip's wording when it cannot reach an index; anything else is a real failure, not a skip.
OFFLINE_HINTS = (
    "No matching distribution",
    "Could not find a version",
    "NewConnectionError",
    "Network is unreachable",
    "Temporary failure in name resolution",
    "Max retries exceeded",
    "ConnectionError",
)


def client_venv() -> Path:
    """The cached venv's python, building the venv first if this requirements set has none yet."""
    key = hashlib.sha256("\n".join((sys.version, *REQUIREMENTS)).encode()).hexdigest()[:12]
    cache = REPO / ".cache"
    cache.mkdir(exist_ok=True)
    venv = cache / f"s3fs-venv-{key}"
    python = venv / "bin" / "python"
    marker = venv / ".rs3gw-complete"
    with open(cache / "s3fs-venv.lock", "w") as lock:  # parallel test runs build it once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return python
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=120)
        cmd = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--retries", "1"]
        try:
            pip = subprocess.run([*cmd, *REQUIREMENTS], capture_output=True, text=True, timeout=220)
        except subprocess.TimeoutExpired:
            pytest.skip("building the s3fs client venv took over 220 s (PyPI slow or unreachable)")
        if pip.returncode != 0:
            tail = (pip.stdout + pip.stderr)[-1500:]
            if any(h in tail for h in OFFLINE_HINTS):
                pytest.skip(f"cannot build the s3fs client venv (PyPI unreachable?): {tail[-300:]}")
            raise AssertionError(f"building the s3fs client venv failed:\n{tail}")
        marker.write_text(f"{' '.join(REQUIREMENTS)}\nbuilt in {time.monotonic() - started:.0f}s\n")
    return python


def dataset(n: int) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "value": pa.array([(i * 7919 % 1000) / 8 for i in range(n)], pa.float64()),
            "cat": pa.array(["abcde"[i * 31 % 5] for i in range(n)], pa.string()),
            "label": pa.array([i % 10 for i in range(n)], pa.int8()),
        }
    )


def test_s3fs_and_fsspec_read_parquet_dataset(server: Server, s3: Any, bucket: str, tmp_path: Path) -> None:
    python = client_venv()
    table = dataset(20_000)
    parts: dict[str, bytes] = {}
    for i in range(4):  # four files, several row groups each, as a sharded training set
        buf = io.BytesIO()
        pq.write_table(table.slice(i * 5000, 5000), buf, row_group_size=1000)
        key = f"train/part-{i:03d}.parquet"
        parts[key] = buf.getvalue()
        s3.put_object(Bucket=bucket, Key=key, Body=parts[key])
    s3.put_object(Bucket=bucket, Key="train/_SUCCESS", Body=b"")  # pyarrow must skip this marker
    first = parts["train/part-000.parquet"]
    rng = (1000, 3500)
    cfg = {
        "endpoint": server.endpoint,
        "key": ACCESS_KEY,
        "secret": SECRET_KEY,
        "bucket": bucket,
        "prefix": "train",
        "lo": 17_500,
        "range": list(rng),
        "ipc_out": str(tmp_path / "read.arrow"),
        "write_key": "out/preds.parquet",
    }
    proc = subprocess.run(
        [str(python), str(SCRIPT), json.dumps(cfg)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])

    names = [f"{bucket}/{k}" for k in sorted(parts)]
    assert out["ls"] == sorted(
        [
            [f"{bucket}/train/_SUCCESS", 0, "file"],
            *[[f"{bucket}/{k}", len(v), "file"] for k, v in parts.items()],
        ]
    )
    assert out["glob"] == names
    assert out["du"] == sum(len(v) for v in parts.values())

    with pa.memory_map(cfg["ipc_out"]) as src:
        got = pa.ipc.open_file(src).read_all()
    assert out["rows"] == table.num_rows
    assert got.select(table.column_names).equals(table)

    assert out["filtered"] == {"rows": 2500, "columns": ["id", "cat"], "min_id": 17_500}
    assert out["open"] == {"path": names[0], "len": len(first), "sha256": hashlib.sha256(first).hexdigest()}
    want_range = hashlib.sha256(first[rng[0] : rng[1]]).hexdigest()
    assert out["seek_read_sha256"] == want_range
    assert out["cat_range_sha256"] == want_range
    assert out["tail_sha256"] == hashlib.sha256(first[-8:]).hexdigest()  # the Parquet footer length + magic

    written = s3.get_object(Bucket=bucket, Key=cfg["write_key"])["Body"].read()
    assert pq.read_table(io.BytesIO(written)).equals(table.slice(0, 100))
