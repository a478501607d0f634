"""pyarrow's S3FileSystem (the AWS SDK for C++ underneath) against a real server.

Users point pyarrow datasets at rs3gw, and the C++ SDK behaves differently from boto3: its own
multipart uploader (background writes), ranged GETs for Parquet footers and column chunks,
"directories" emulated with HEAD + ListObjectsV2 and empty ``dir/`` marker objects, CopyObject for
``copy_file``/``move``, and DeleteObjects for ``delete_dir_contents``. Every byte read back is
compared with what was written, through boto3 as an independent reader.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.dataset as ds
import pyarrow.json as pjson
import pyarrow.parquet as pq
import pytest
from pyarrow import fs

from conftest import ACCESS_KEY, SECRET_KEY, Server, cleanup_bucket


def s3fs_for(server: Server, **kwargs: Any) -> fs.S3FileSystem:
    """The filesystem as users configure it for a custom endpoint (path-style, plain HTTP)."""
    return fs.S3FileSystem(
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        endpoint_override=server.endpoint.split("://", 1)[1],
        scheme="http",
        region="us-east-1",
        **kwargs,
    )


@pytest.fixture
def arrow_bucket(server: Server, s3: Any) -> Iterator[str]:
    """A bucket that pyarrow itself creates (create_dir of a top-level path is CreateBucket)."""
    name = f"arrow-{uuid.uuid4().hex[:12]}"
    s3fs_for(server, allow_bucket_creation=True).create_dir(name)
    try:
        yield name
    finally:
        cleanup_bucket(s3, name)


def body(s3: Any, bucket: str, key: str) -> bytes:
    data: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


def big_table(rows: int) -> pa.Table:
    """Incompressible columns, so the Parquet file stays large and the C++ SDK goes multipart."""
    rnd = random.Random(7)
    return pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "blob": pa.array([rnd.randbytes(100) for _ in range(rows)], pa.binary()),
            "part": pa.array([f"p{i % 3}" for i in range(rows)]),
        }
    )


def test_create_bucket_and_multipart_parquet(server: Server, s3: Any, arrow_bucket: str) -> None:
    """A >10 MiB Parquet file through the SDK's background multipart writer, read back whole and by range."""
    assert arrow_bucket in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    table = big_table(110_000)  # about 11.5 MiB of Parquet
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="none", row_group_size=20_000)
    data = buf.getvalue()
    assert len(data) > 10 * 1024 * 1024
    for background in (True, False):
        afs = s3fs_for(server, background_writes=background)
        path = f"{arrow_bucket}/big-{background}.parquet"
        with afs.open_output_stream(path) as out:
            for off in range(0, len(data), 1 << 20):  # 1 MiB writes, buffered into parts
                out.write(data[off : off + (1 << 20)])
        stored = body(s3, arrow_bucket, path.split("/", 1)[1])
        assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()
        etag = s3.head_object(Bucket=arrow_bucket, Key=path.split("/", 1)[1])["ETag"]
        # A multipart object's ETag ends in "-<parts>" (the SDK's parts are 10 MiB: two here).
        assert int(etag.strip('"').rsplit("-", 1)[1]) >= 2, etag
        info = afs.get_file_info(path)
        assert info.type == fs.FileType.File and info.size == len(data)
        got = pq.read_table(path, filesystem=afs)
        assert got.equals(table)
        # Column pruning reads only ranges of the file; the values must still match.
        assert pq.read_table(path, filesystem=afs, columns=["id"]).column("id").equals(table.column("id"))


def test_partitioned_dataset_with_filters(server: Server, s3: Any, arrow_bucket: str) -> None:
    afs = s3fs_for(server)
    table = pa.table(
        {
            "id": pa.array(range(3000), pa.int64()),
            "year": pa.array([2020 + i % 3 for i in range(3000)], pa.int32()),
            "region": pa.array([["eu", "us"][i % 2] for i in range(3000)]),
            "value": pa.array([i * 0.5 for i in range(3000)]),
        }
    )
    part = ds.partitioning(pa.schema([("year", pa.int32()), ("region", pa.string())]), flavor="hive")
    ds.write_dataset(
        table,
        f"{arrow_bucket}/ds",
        format="parquet",
        partitioning=part,
        filesystem=afs,
        basename_template="chunk-{i}.parquet",
    )
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=arrow_bucket, Prefix="ds/")["Contents"]}
    data_keys = {k for k in keys if k.endswith(".parquet")}
    assert data_keys == {
        f"ds/year={y}/region={r}/chunk-0.parquet" for y in (2020, 2021, 2022) for r in ("eu", "us")
    }
    dataset = ds.dataset(f"{arrow_bucket}/ds", format="parquet", partitioning=part, filesystem=afs)
    assert dataset.count_rows() == 3000
    got = dataset.to_table(filter=(ds.field("year") == 2021) & (ds.field("region") == "us")).sort_by("id")
    want = table.filter(pc.and_(pc.equal(table["year"], 2021), pc.equal(table["region"], "us")))
    assert got.select(table.column_names).equals(want)
    assert got.num_rows == 500
    # A filter on a data column (not a partition key) too.
    got2 = dataset.to_table(filter=ds.field("value") < 10).sort_by("id")
    assert got2.column("id").to_pylist() == list(range(20))


def test_file_info_dirs_and_selector(server: Server, s3: Any, arrow_bucket: str) -> None:
    afs = s3fs_for(server)
    objects = {
        "top.txt": b"top",
        "a/one.bin": b"1" * 100,
        "a/b/two.bin": b"2" * 200,
        "a/b/c/three.bin": b"3" * 300,
    }
    for key, data in objects.items():
        s3.put_object(Bucket=arrow_bucket, Key=key, Body=data)
    afs.create_dir(f"{arrow_bucket}/emptydir")  # an empty "dir/" marker object

    info = afs.get_file_info(f"{arrow_bucket}/a/one.bin")
    assert info.type == fs.FileType.File and info.size == 100
    assert info.mtime is not None
    for d in ("a", "a/b", "a/b/c", "emptydir"):
        assert afs.get_file_info(f"{arrow_bucket}/{d}").type == fs.FileType.Directory, d
    assert afs.get_file_info(arrow_bucket).type == fs.FileType.Directory
    for missing in ("nope", "a/nope.bin", "a/b/c/three.bin/x", "a/on"):
        assert afs.get_file_info(f"{arrow_bucket}/{missing}").type == fs.FileType.NotFound, missing
    assert afs.get_file_info(f"nobucket-{uuid.uuid4().hex[:8]}/x").type == fs.FileType.NotFound

    flat = afs.get_file_info(fs.FileSelector(f"{arrow_bucket}/a"))
    assert {(i.path, i.type) for i in flat} == {
        (f"{arrow_bucket}/a/one.bin", fs.FileType.File),
        (f"{arrow_bucket}/a/b", fs.FileType.Directory),
    }
    deep = afs.get_file_info(fs.FileSelector(arrow_bucket, recursive=True))
    files = {i.path: i.size for i in deep if i.type == fs.FileType.File}
    dirs = {i.path for i in deep if i.type == fs.FileType.Directory}
    assert files == {f"{arrow_bucket}/{k}": len(v) for k, v in objects.items()}
    assert dirs == {f"{arrow_bucket}/{d}" for d in ("a", "a/b", "a/b/c", "emptydir")}
    with pytest.raises(FileNotFoundError):
        afs.get_file_info(fs.FileSelector(f"{arrow_bucket}/nope"))
    assert afs.get_file_info(fs.FileSelector(f"{arrow_bucket}/nope", allow_not_found=True)) == []


def test_random_reads_and_streams(server: Server, s3: Any, arrow_bucket: str) -> None:
    afs = s3fs_for(server)
    data = random.Random(3).randbytes(3 * 1024 * 1024 + 17)
    s3.put_object(Bucket=arrow_bucket, Key="r.bin", Body=data)
    rnd = random.Random(11)
    with afs.open_input_file(f"{arrow_bucket}/r.bin") as f:
        assert f.size() == len(data)
        for _ in range(40):
            off = rnd.randrange(len(data))
            n = rnd.choice([0, 1, 7, 4096, 65_537, 1 << 20])
            assert f.read_at(n, off) == data[off : off + n], (off, n)
        assert f.read_at(100, len(data) - 10) == data[-10:]  # short read at the end
        f.seek(len(data) - 5)
        assert f.read() == data[-5:]
        f.seek(0)
        assert f.read(1000) == data[:1000]
    with afs.open_input_stream(f"{arrow_bucket}/r.bin") as stream:
        chunks = []
        while chunk := stream.read(300_000):
            chunks.append(chunk)
    assert b"".join(chunks) == data
    with pytest.raises(FileNotFoundError):
        afs.open_input_file(f"{arrow_bucket}/missing.bin")
    with pytest.raises(FileNotFoundError):
        afs.open_input_stream(f"{arrow_bucket}/missing.bin").read()


def test_copy_move_delete(server: Server, s3: Any, arrow_bucket: str) -> None:
    afs = s3fs_for(server)
    data = random.Random(5).randbytes(200_000)
    with afs.open_output_stream(f"{arrow_bucket}/src/file.bin") as out:
        out.write(data)
    afs.copy_file(f"{arrow_bucket}/src/file.bin", f"{arrow_bucket}/copy/file.bin")
    assert body(s3, arrow_bucket, "copy/file.bin") == data
    afs.move(f"{arrow_bucket}/copy/file.bin", f"{arrow_bucket}/moved/file.bin")
    assert body(s3, arrow_bucket, "moved/file.bin") == data
    assert afs.get_file_info(f"{arrow_bucket}/copy/file.bin").type == fs.FileType.NotFound

    afs.delete_file(f"{arrow_bucket}/moved/file.bin")
    assert afs.get_file_info(f"{arrow_bucket}/moved/file.bin").type == fs.FileType.NotFound
    with pytest.raises(FileNotFoundError):
        afs.delete_file(f"{arrow_bucket}/moved/file.bin")

    for i in range(5):
        s3.put_object(Bucket=arrow_bucket, Key=f"tree/d{i % 2}/f{i}", Body=b"x" * i)
    afs.delete_dir_contents(f"{arrow_bucket}/tree")
    left = {o["Key"] for o in s3.list_objects_v2(Bucket=arrow_bucket, Prefix="tree").get("Contents", [])}
    assert not any(k.startswith("tree/d") for k in left), left
    assert afs.get_file_info(f"{arrow_bucket}/tree").type == fs.FileType.Directory
    afs.delete_dir(f"{arrow_bucket}/tree")
    assert afs.get_file_info(f"{arrow_bucket}/tree").type == fs.FileType.NotFound
    assert body(s3, arrow_bucket, "src/file.bin") == data  # untouched by the deletes above


def test_csv_and_json_readers(server: Server, s3: Any, arrow_bucket: str) -> None:
    afs = s3fs_for(server)
    rows = [{"name": f"n{i}", "n": i, "score": i / 4} for i in range(2000)]
    csv_bytes = ("name,n,score\n" + "".join(f"{r['name']},{r['n']},{r['score']}\n" for r in rows)).encode()
    json_bytes = "".join(json.dumps(r) + "\n" for r in rows).encode()
    s3.put_object(Bucket=arrow_bucket, Key="t.csv", Body=csv_bytes)
    s3.put_object(Bucket=arrow_bucket, Key="t.jsonl", Body=json_bytes)
    with afs.open_input_stream(f"{arrow_bucket}/t.csv") as f:
        got_csv = pcsv.read_csv(f)
    with afs.open_input_file(f"{arrow_bucket}/t.jsonl") as f:
        got_json = pjson.read_json(f)
    assert got_csv.to_pylist() == rows
    assert got_json.to_pylist() == rows
    # The same table written back through pyarrow's CSV writer round-trips byte-exact.
    with afs.open_output_stream(f"{arrow_bucket}/out.csv") as out:
        pcsv.write_csv(got_csv, out)
    sink = io.BytesIO()
    pcsv.write_csv(got_csv, sink)
    assert body(s3, arrow_bucket, "out.csv") == sink.getvalue()


def test_odd_keys_metadata_and_bucket_deletion(server: Server, s3: Any) -> None:
    """Keys the SDK must URL-encode, object metadata it sends as headers, and DeleteBucket via delete_dir."""
    afs = s3fs_for(server, allow_bucket_creation=True, allow_bucket_deletion=True)
    name = f"arrow-{uuid.uuid4().hex[:12]}"
    afs.create_dir(name)
    try:
        keys = ["sp ace/a+b=c.txt", "unicodé/ß 漢.txt", "pct%20/semi;colon&amp.txt", "tilde~/x!(y)*'.txt"]
        for i, key in enumerate(keys):
            with afs.open_output_stream(f"{name}/{key}", metadata={"Content-Type": "text/x-test"}) as out:
                out.write(f"payload-{i}".encode())
        listed = {o["Key"] for o in s3.list_objects_v2(Bucket=name)["Contents"]}
        assert listed == set(keys)
        for i, key in enumerate(keys):
            assert body(s3, name, key) == f"payload-{i}".encode()
            assert s3.head_object(Bucket=name, Key=key)["ContentType"] == "text/x-test"
            with afs.open_input_stream(f"{name}/{key}") as f:
                assert f.read() == f"payload-{i}".encode()
                assert f.metadata()["Content-Type"] == b"text/x-test"
        got = {i.path for i in afs.get_file_info(fs.FileSelector(name, recursive=True)) if i.is_file}
        assert got == {f"{name}/{k}" for k in keys}
        afs.create_dir(f"{name}/x/y/z")  # nested create_dir: marker objects, no error
        assert afs.get_file_info(f"{name}/x/y/z").type == fs.FileType.Directory
        afs.delete_dir(name)  # empties and deletes the bucket
        assert name not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
        assert afs.get_file_info(name).type == fs.FileType.NotFound
    finally:
        cleanup_bucket(s3, name)


def test_https_with_ca_file(tls_server: Server) -> None:
    """The same SDK over TLS, trusting the test server's self-signed certificate."""
    assert tls_server.ca_file is not None
    afs = fs.S3FileSystem(
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        endpoint_override=tls_server.endpoint.split("://", 1)[1],
        scheme="https",
        region="us-east-1",
        allow_bucket_creation=True,
        allow_bucket_deletion=True,
        tls_ca_file_path=tls_server.ca_file,
    )
    name = f"arrow-{uuid.uuid4().hex[:12]}"
    afs.create_dir(name)
    try:
        data = random.Random(9).randbytes(300_000)
        with afs.open_output_stream(f"{name}/t.bin") as out:
            out.write(data)
        with afs.open_input_file(f"{name}/t.bin") as f:
            assert f.read_at(1000, 12_345) == data[12_345:13_345]
            assert f.read() == data
    finally:
        afs.delete_dir(name)
