"""Encrypted chunks bound to bucket, key, version (or upload and part) against a real `rs3gw serve`
with boto3: swapped stored blobs (files or packed rows) and metadata pointing at another object's blob fail the GET with an
integrity error (never the other object's bytes), a blob in the old format (version 1) still reads,
copies are re-encrypted under the destination's binding, multipart objects (parts not numbered
1..n, UploadPartCopy) and ranges across chunk and part boundaries read back, and so does a
deduplicated pair of objects sharing every chunk."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from blob_access import blob_ids, read_blob, remove_blob, write_blob
from conftest import Server, fresh_bucket, start_server
from meta_access import latest_segments, meta_db
from rs3gw.blobs import binding
from rs3gw.blobs.encrypted import HEADER_SIZE, MAGIC, EncryptedBlobStore, parse_header
from rs3gw.blobs.keys import LocalKeyProvider
from rs3gw.blobs.local import LocalBlobStore
from sse_v1_format import seal_v1

pytestmark = pytest.mark.local_backend_only("reads and moves stored blobs on disk")

CHUNK = 64 * 1024
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server(tmp_path_factory.mktemp("aad") / "data", "--no-fsync")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def s3(srv: Server) -> Any:
    return srv.client()


@pytest.fixture
def bucket(s3: Any) -> Iterator[str]:
    with fresh_bucket(s3, "aad") as name:
        yield name


def put_blob(
    srv: Server, s3: Any, bucket: str, key: str, data: bytes, **kw: Any
) -> tuple[str, dict[str, Any]]:
    """PUT with SSE-S3; the one new stored blob (a file, or a packed row) and the response."""
    before = blob_ids(srv.data_dir)
    r = s3.put_object(Bucket=bucket, Key=key, Body=data, ServerSideEncryption="AES256", **kw)
    (blob_id,) = blob_ids(srv.data_dir) - before
    assert read_blob(srv.data_dir, blob_id)[: len(MAGIC)] == MAGIC
    return blob_id, r


def stored_binding(data_dir: Path, blob_id: str) -> bytes:
    h = parse_header(read_blob(data_dir, blob_id)[:HEADER_SIZE])
    assert h is not None and h.version == 2
    return h.binding


def integrity_error(s3: Any, **kw: Any) -> None:
    """The GET fails with 500 InternalError (the integrity check), never with other bytes."""
    with pytest.raises(ClientError) as e:
        s3.get_object(**kw)["Body"].read()
    r = e.value.response
    assert (r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]) == (500, "InternalError")


def swap(data_dir: Path, a: str, b: str) -> None:
    """Exchange two stored blobs' bytes, each where it is stored (a file or a packed row)."""
    raw_a, raw_b = read_blob(data_dir, a), read_blob(data_dir, b)
    write_blob(data_dir, a, raw_b)
    write_blob(data_dir, b, raw_a)


def read(s3: Any, bucket: str, key: str, **kw: Any) -> bytes:
    body: bytes = s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()
    return body


def test_blob_is_bound_to_bucket_key_and_the_committed_version(s3: Any, srv: Server, bucket: str) -> None:
    blob, _ = put_blob(srv, s3, bucket, "plain-bucket", b"x" * 100)
    assert stored_binding(srv.data_dir, blob) == binding.digest(
        binding.object_binding(bucket, "plain-bucket", "null")
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    blob, r = put_blob(srv, s3, bucket, "v", b"y" * 100)
    vid = r["VersionId"]
    assert vid and vid != "null"
    # The id chosen before the data was written is the one committed.
    assert stored_binding(srv.data_dir, blob) == binding.digest(binding.object_binding(bucket, "v", vid))


def test_swapped_blob_files_fail_the_get(s3: Any, srv: Server, bucket: str) -> None:
    da, db = os.urandom(3 * CHUNK + 5), os.urandom(3 * CHUNK + 5)
    pa, _ = put_blob(srv, s3, bucket, "a", da)
    pb, _ = put_blob(srv, s3, bucket, "b", db)
    swap(srv.data_dir, pa, pb)
    integrity_error(s3, Bucket=bucket, Key="a")
    integrity_error(s3, Bucket=bucket, Key="b")
    integrity_error(s3, Bucket=bucket, Key="a", Range=f"bytes={CHUNK - 3}-{CHUNK + 3}")
    swap(srv.data_dir, pa, pb)  # put back: both read again
    assert read(s3, bucket, "a") == da and read(s3, bucket, "b") == db


def test_two_versions_of_one_key_swapped_fail(s3: Any, srv: Server, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    d1, d2 = os.urandom(1000), os.urandom(1000)
    p1, r1 = put_blob(srv, s3, bucket, "k", d1)
    p2, r2 = put_blob(srv, s3, bucket, "k", d2)
    swap(srv.data_dir, p1, p2)
    integrity_error(s3, Bucket=bucket, Key="k", VersionId=r1["VersionId"])
    integrity_error(s3, Bucket=bucket, Key="k", VersionId=r2["VersionId"])
    swap(srv.data_dir, p1, p2)
    assert read(s3, bucket, "k", VersionId=r1["VersionId"]) == d1


def test_metadata_pointing_at_another_objects_blob_fails(s3: Any, srv: Server, bucket: str) -> None:
    """The case the blob id alone cannot catch: the blob is intact and at its own path, but the
    object's metadata names another object's blob. Bound to bucket/key/version, it is refused."""
    da, db = os.urandom(2 * CHUNK), os.urandom(2 * CHUNK)
    put_blob(srv, s3, bucket, "victim", da)
    put_blob(srv, s3, bucket, "other", db)
    with meta_db(srv.data_dir) as m:  # SQLite meta.db, or the server's PostgreSQL database
        [(segs,)] = m.execute("SELECT segments FROM objects WHERE bucket=? AND key=?", (bucket, b"other"))
        m.execute("UPDATE objects SET segments=? WHERE bucket=? AND key=?", (segs, bucket, b"victim"))
    assert latest_segments(srv.data_dir, bucket, "victim") == latest_segments(srv.data_dir, bucket, "other")
    integrity_error(s3, Bucket=bucket, Key="victim")
    assert read(s3, bucket, "other") == db


def test_old_format_blob_still_reads(s3: Any, srv: Server, bucket: str) -> None:
    data = os.urandom(2 * CHUNK + 77)
    blob_id, _ = put_blob(srv, s3, bucket, "old", data)
    # What the layers above encryption stored (compression framing, if any), re-sealed as version 1.

    async def inner_bytes() -> bytes:
        st = EncryptedBlobStore(LocalBlobStore(srv.data_dir, fsync=False), LocalKeyProvider(srv.data_dir))
        return b"".join([c async for c in st.read(blob_id)])

    sealed = seal_v1(LocalKeyProvider(srv.data_dir), blob_id, asyncio.run(inner_bytes()))
    write_blob(srv.data_dir, blob_id, sealed)
    h = parse_header(read_blob(srv.data_dir, blob_id)[:HEADER_SIZE])
    assert h is not None and h.version == 1
    assert read(s3, bucket, "old") == data
    assert read(s3, bucket, "old", Range=f"bytes={CHUNK - 10}-{CHUNK + 10}") == data[CHUNK - 10 : CHUNK + 11]
    # An old-format blob is still bound to its blob id: moved under another object, it fails.
    other, _ = put_blob(srv, s3, bucket, "new", os.urandom(len(data)))
    write_blob(srv.data_dir, other, read_blob(srv.data_dir, blob_id))  # moved: gone from its own id
    remove_blob(srv.data_dir, blob_id)
    integrity_error(s3, Bucket=bucket, Key="new")


def test_copies_are_re_encrypted_under_the_destination(s3: Any, srv: Server, bucket: str) -> None:
    data = os.urandom(3 * CHUNK + 1)
    src, _ = put_blob(srv, s3, bucket, "src", data)
    with fresh_bucket(s3, "aad-dst") as dst:
        for b, k in ((bucket, "copy"), (dst, "copy2")):
            before = blob_ids(srv.data_dir)
            s3.copy_object(
                Bucket=b, Key=k, CopySource={"Bucket": bucket, "Key": "src"}, ServerSideEncryption="AES256"
            )
            (new,) = blob_ids(srv.data_dir) - before
            assert new != src
            assert stored_binding(srv.data_dir, new) == binding.digest(binding.object_binding(b, k, "null"))
            assert read(s3, b, k) == data
            assert read(s3, b, k, Range=f"bytes={CHUNK - 1}-{2 * CHUNK}") == data[CHUNK - 1 : 2 * CHUNK + 1]
        # A self-copy (new metadata) under versioning: the new version gets a blob of its own.
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        r = s3.copy_object(
            Bucket=bucket,
            Key="src",
            CopySource={"Bucket": bucket, "Key": "src"},
            Metadata={"m": "1"},
            MetadataDirective="REPLACE",
            ServerSideEncryption="AES256",
        )
        assert read(s3, bucket, "src", VersionId=r["VersionId"]) == data
        assert read(s3, bucket, "src", VersionId="null") == data


def _complete(s3: Any, bucket: str, key: str, upload: str, parts: list[tuple[int, str]]) -> None:
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]},
    )


def test_multipart_parts_bound_to_upload_and_part_number(s3: Any, srv: Server, bucket: str) -> None:
    p1, p3 = os.urandom(5 * MiB + 3), os.urandom(CHUNK + 9)
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ServerSideEncryption="AES256")["UploadId"]
    paths: dict[int, str] = {}
    etags = []
    for n, body in ((1, p1), (3, p3)):  # not numbered 1..n
        before = blob_ids(srv.data_dir)
        etags.append(
            (n, s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=n, Body=body)["ETag"])
        )
        (paths[n],) = blob_ids(srv.data_dir) - before
        assert stored_binding(srv.data_dir, paths[n]) == binding.digest(
            binding.part_binding(bucket, "mp", up, n)
        )
    _complete(s3, bucket, "mp", up, etags)
    data = p1 + p3
    assert read(s3, bucket, "mp") == data
    for a, b in [
        (CHUNK - 2, CHUNK + 2),  # a chunk boundary inside part 1
        (len(p1) - 5, len(p1) + 5),  # across the parts
        (len(p1) + CHUNK - 1, len(data) - 1),  # a chunk boundary inside the last part
    ]:
        assert read(s3, bucket, "mp", Range=f"bytes={a}-{b}") == data[a : b + 1], (a, b)
    assert read(s3, bucket, "mp", PartNumber=2) == p3
    # A copy of the multipart object is a single-part object with its own binding.
    s3.copy_object(Bucket=bucket, Key="mp-copy", CopySource={"Bucket": bucket, "Key": "mp"})
    assert read(s3, bucket, "mp-copy") == data
    # UploadPartCopy: a range of the multipart object (across its parts) becomes part 1 of another.
    up2 = s3.create_multipart_upload(Bucket=bucket, Key="mp2", ServerSideEncryption="AES256")["UploadId"]
    r = s3.upload_part_copy(
        Bucket=bucket,
        Key="mp2",
        UploadId=up2,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "mp"},
        CopySourceRange=f"bytes={len(p1) - 100}-{len(data) - 1}",
    )
    _complete(s3, bucket, "mp2", up2, [(1, r["CopyPartResult"]["ETag"])])
    assert read(s3, bucket, "mp2") == data[len(p1) - 100 :]
    # Parts of one object swapped on disk: the GET fails.
    swap(srv.data_dir, paths[1], paths[3])
    integrity_error(s3, Bucket=bucket, Key="mp", Range=f"bytes=0-{CHUNK}")
    integrity_error(s3, Bucket=bucket, Key="mp", PartNumber=2)
    swap(srv.data_dir, paths[1], paths[3])
    assert read(s3, bucket, "mp") == data


def test_deduplicated_objects_share_chunks_and_read_back(tmp_path: Path) -> None:
    srv = start_server(
        tmp_path / "data", "--no-fsync", "--dedup", "--dedup-min-size", "0", "--dedup-block-size", "65536"
    )
    try:
        s3 = srv.client()
        with fresh_bucket(s3, "aad-dd") as bucket:
            data = os.urandom(4 * CHUNK)
            s3.put_object(Bucket=bucket, Key="one", Body=data, ServerSideEncryption="AES256")
            stored = blob_ids(srv.data_dir)
            s3.put_object(Bucket=bucket, Key="two", Body=data, ServerSideEncryption="AES256")
            (manifest,) = blob_ids(srv.data_dir) - stored  # the chunks were shared, only a manifest is new
            assert stored_binding(srv.data_dir, manifest) == binding.digest(
                binding.object_binding(bucket, "two", "null")
            )
            for k in ("one", "two"):
                assert read(s3, bucket, k) == data
                assert read(s3, bucket, k, Range=f"bytes={CHUNK - 1}-{CHUNK}") == data[CHUNK - 1 : CHUNK + 1]
            s3.copy_object(Bucket=bucket, Key="three", CopySource={"Bucket": bucket, "Key": "one"})
            assert read(s3, bucket, "three") == data
    finally:
        srv.stop()
