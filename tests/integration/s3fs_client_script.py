"""Run inside the separate s3fs venv (see test_s3fs_fsspec_client.py), never under the dev venv.

s3fs rides on aiobotocore, which pins an older botocore than the dev environment's boto3, so the
ML-pipeline client stack lives in its own interpreter. This script does what a training job's data
loader does against the gateway and prints one JSON summary line for the test to check; the table
it read is written back as an Arrow IPC file so the test can compare it exactly, not by checksums.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

import fsspec  # type: ignore[import-untyped]
import pyarrow as pa
import pyarrow.parquet as pq
import s3fs  # type: ignore[import-not-found,unused-ignore]


def main() -> None:
    cfg: dict[str, Any] = json.loads(sys.argv[1])
    bucket, prefix = cfg["bucket"], cfg["prefix"]
    opts: dict[str, Any] = {
        "key": cfg["key"],
        "secret": cfg["secret"],
        "client_kwargs": {"endpoint_url": cfg["endpoint"], "region_name": "us-east-1"},
        "use_listings_cache": False,
    }
    fs = s3fs.S3FileSystem(**opts)
    out: dict[str, Any] = {"versions": {"s3fs": s3fs.__version__, "fsspec": fsspec.__version__}}

    # Listing: ls, glob and du over the dataset prefix.
    listed = fs.ls(f"{bucket}/{prefix}", detail=True)
    out["ls"] = sorted([e["name"], e["size"], e["type"]] for e in listed)
    out["glob"] = sorted(fs.glob(f"{bucket}/{prefix}/*.parquet"))
    out["du"] = fs.du(f"{bucket}/{prefix}")

    # The whole multi-file dataset through pyarrow with s3fs as its filesystem.
    table = pq.read_table(f"{bucket}/{prefix}", filesystem=fs).sort_by("id")
    with pa.OSFile(cfg["ipc_out"], "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    out["rows"] = table.num_rows

    # Column pruning plus a pushed-down filter: pyarrow issues ranged GETs for the needed chunks.
    part = pq.read_table(
        f"{bucket}/{prefix}", filesystem=fs, columns=["id", "cat"], filters=[("id", ">=", cfg["lo"])]
    )
    out["filtered"] = {
        "rows": part.num_rows,
        "columns": part.column_names,
        "min_id": min(part["id"].to_pylist()),
    }

    # fsspec.open on an s3:// URL: whole-object read, then seek + read and cat_file byte ranges.
    first = out["glob"][0]
    with fsspec.open(f"s3://{first}", "rb", **opts) as f:
        whole = f.read()
        f.seek(cfg["range"][0])
        seeked = f.read(cfg["range"][1] - cfg["range"][0])
    out["open"] = {"path": first, "len": len(whole), "sha256": hashlib.sha256(whole).hexdigest()}
    out["seek_read_sha256"] = hashlib.sha256(seeked).hexdigest()
    ranged = fs.cat_file(first, start=cfg["range"][0], end=cfg["range"][1])
    out["cat_range_sha256"] = hashlib.sha256(ranged).hexdigest()
    out["tail_sha256"] = hashlib.sha256(fs.cat_file(first, start=-8)).hexdigest()

    # An ML job writes its output back: a Parquet file through s3fs, which the test reads with boto3.
    with fs.open(f"{bucket}/{cfg['write_key']}", "wb") as f:
        pq.write_table(table.slice(0, 100), f)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
