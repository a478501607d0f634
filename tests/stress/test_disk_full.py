"""Disk full: the server's data directory on a 24 MiB tmpfs in a private mount namespace.

Writes that run out of space (PUT, UploadPart, CopyObject, CompleteMultipartUpload and bare metadata
commits) must fail with a clean 507 InsufficientStorage, never a 500 or a torn object; reads and
listings keep working while the disk is full; and once objects are deleted (their blobs freed by GC)
writes succeed again, even with no page left, when the object's blobs are a file and a small-blob row. The tmpfs lives only in the server's mount namespace (``unshare -m``), so the
test reaches the files through ``/proc/<pid>/root``. Needs root and util-linux ``unshare``.
Under RS3GW_TEST_METADATA=postgresql the metadata lives in PostgreSQL (off the tmpfs), so only blob
writes run out of space; the same checks then hold with PostgreSQL's references.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from blob_access import PACK, file_ids, packed_ids
from conftest import ACCESS_KEY, SECRET_KEY, USER2, Server, free_port, wait_ready
from meta_access import integrity_problems, referenced_blobs
from pg_cluster import metadata_args, server_metadata
from rs3gw.blobs.local import _reserve_bytes
from rs3gw.diskspace import reserve_bytes

TMPFS_MIB = 24
MIB = 1024 * 1024
BUCKET = "full"


def _namespace_problem() -> str | None:
    """Why this machine cannot run the test, or None."""
    if os.geteuid() != 0:
        return "needs root to mount a tmpfs in a private mount namespace"
    if shutil.which("unshare") is None:
        return "util-linux unshare is not installed"
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.returncode != 0:
        return f"cannot mount a tmpfs in a new mount namespace here: {probe.stderr.strip()}"
    return None


def start_on_tmpfs(data_dir: Path) -> Server:
    """``rs3gw serve`` exec'd by ``unshare -m`` after mounting the tmpfs on its data dir: same pid."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    script = 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"'
    args = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", f"{TMPFS_MIB}m"]
    args += [str(data_dir), sys.executable, "-m", "rs3gw", "serve", "--data-dir", str(data_dir)]
    args += ["--address", f"127.0.0.1:{port}", "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY]
    args += ["--user", ":".join(USER2), *metadata_args(data_dir, ())]  # PostgreSQL, or SQLite on the tmpfs
    log = data_dir.parent / "server.log"
    fh = open(log, "wb")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", data_dir, proc, port, log)
    wait_ready(server)
    return server


def inside(server: Server) -> Path:
    """The data dir as the server sees it (on its tmpfs)."""
    return Path(f"/proc/{server.proc.pid}/root") / str(server.data_dir).lstrip("/")


@pytest.fixture(scope="module")
def full_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    problem = _namespace_problem()
    if problem:
        pytest.skip(problem)
    srv = start_on_tmpfs(tmp_path_factory.mktemp("diskfull") / "data")
    yield srv
    srv.stop()


def body_for(key: str, size: int) -> bytes:
    seed = hashlib.sha256(key.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def code_of(e: ClientError) -> tuple[int, str]:
    return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]


def expect_full(call: Any, **kw: Any) -> bool:
    """True when ``call`` failed with 507 InsufficientStorage, False when it succeeded; any other
    outcome fails the test."""
    try:
        call(**kw)
    except ClientError as e:
        assert code_of(e) == (507, "InsufficientStorage"), e.response
        return True
    return False


def fill(s3: Any, bucket: str, stored: dict[str, bytes]) -> None:
    """PUT objects, large then ever smaller, until even a 1-byte body no longer fits."""
    for size in (MIB, 64 * 1024, 4096, 1):
        for i in range(10_000):
            key = f"fill-{size}-{i}"
            body = body_for(key, size)
            if expect_full(s3.put_object, Bucket=bucket, Key=key, Body=body):
                break
            stored[key] = body
        else:
            pytest.fail(f"{size}-byte PUTs never hit the {TMPFS_MIB} MiB limit")


def check_store(server: Server, scratch: Path) -> None:
    """The metadata is intact and blobs on disk match its references exactly (no torn or orphan
    blob, whether a file or a row of the small-blob pack).

    SQLite on the tmpfs: the database is copied out first (SQLite resolves the ``/proc/<pid>/root``
    link and would open the (empty) directory under the mount instead) and integrity-checked.
    PostgreSQL: its references are read from the server's database (meta_access). The small-blob
    pack is always SQLite on the tmpfs: it is copied out the same way."""
    data = inside(server)
    copy: Path | None = None
    if server_metadata(server.data_dir) is None:
        assert (data / "meta.db").exists(), "SQLite mode but no meta.db on the tmpfs"
        for name in ("meta.db", "meta.db-wal"):
            if (data / name).exists():
                (scratch / name).write_bytes((data / name).read_bytes())
        copy = scratch / "meta.db"
    else:
        assert not (data / "meta.db").exists(), "PostgreSQL mode but the server made a meta.db"
    assert integrity_problems(server.data_dir, sqlite_db=copy) == []
    assert not list((data / "tmp").iterdir()), "temp files left behind"
    referenced = referenced_blobs(server.data_dir, sqlite_db=copy)
    assert referenced, "the metadata holds no objects: not the server's store"
    for name in (PACK, f"{PACK}-wal"):
        if (data / name).exists():
            (scratch / name).write_bytes((data / name).read_bytes())
    assert referenced == file_ids(data) | packed_ids(scratch)


def used_bytes(server: Server) -> int:
    st = os.statvfs(inside(server))
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def test_disk_full_fails_cleanly_and_recovers(full_server: Server, tmp_path: Path) -> None:
    s3 = full_server.client()
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="src", Body=body_for("src", 2 * MIB))
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="mpu")["UploadId"]
    part1 = s3.upload_part(Bucket=BUCKET, Key="mpu", UploadId=upload, PartNumber=1, Body=b"p" * (5 * MIB))
    stored: dict[str, bytes] = {"src": body_for("src", 2 * MIB)}

    fill(s3, BUCKET, stored)
    assert used_bytes(full_server) > (TMPFS_MIB - 2) * MIB

    # Every way of writing bytes fails cleanly.
    assert expect_full(s3.put_object, Bucket=BUCKET, Key="more", Body=body_for("more", MIB))
    assert expect_full(
        s3.upload_part, Bucket=BUCKET, Key="mpu", UploadId=upload, PartNumber=2, Body=b"q" * MIB
    )
    assert expect_full(s3.copy_object, Bucket=BUCKET, Key="copy", CopySource={"Bucket": BUCKET, "Key": "src"})
    # Metadata-only writes either commit or fail cleanly (SQLite may still have a free page).
    for i in range(20):
        expect_full(s3.put_object, Bucket=BUCKET, Key=f"empty-{i}", Body=b"")
        expect_full(
            s3.put_object_tagging,
            Bucket=BUCKET,
            Key="src",
            Tagging={"TagSet": [{"Key": "t", "Value": "v" * 200}]},
        )
        expect_full(s3.create_bucket, Bucket=f"full-extra-{i}")
    # Nothing torn: failed keys are absent, the temp dir is empty.
    for key in ("more", "copy"):
        with pytest.raises(ClientError) as ei:
            s3.head_object(Bucket=BUCKET, Key=key)
        assert code_of(ei.value)[0] == 404
    assert not list((inside(full_server) / "tmp").iterdir())

    # Reads and listings keep working while full.
    listed = {
        o["Key"]
        for p in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for o in p.get("Contents", [])
    }
    assert set(stored) <= listed
    for key in ("src", *list(stored)[:20]):
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == stored[key]
    parts = s3.list_parts(Bucket=BUCKET, Key="mpu", UploadId=upload)["Parts"]
    assert [p["PartNumber"] for p in parts] == [1]

    # Free space: delete the 1 MiB fillers; GC removes their blobs; writes work again.
    for key in [k for k in stored if k.startswith(f"fill-{MIB}-")][:10]:
        s3.delete_object(Bucket=BUCKET, Key=key)
        del stored[key]
    deadline = time.monotonic() + 20
    while used_bytes(full_server) > (TMPFS_MIB - 6) * MIB and time.monotonic() < deadline:
        time.sleep(0.1)
    assert used_bytes(full_server) <= (TMPFS_MIB - 6) * MIB, "deleted objects' blobs were not freed"

    s3.put_object(Bucket=BUCKET, Key="more", Body=body_for("more", MIB))
    stored["more"] = body_for("more", MIB)
    s3.copy_object(Bucket=BUCKET, Key="copy", CopySource={"Bucket": BUCKET, "Key": "src"})
    stored["copy"] = stored["src"]
    part2 = s3.upload_part(Bucket=BUCKET, Key="mpu", UploadId=upload, PartNumber=2, Body=b"q" * MIB)
    s3.complete_multipart_upload(
        Bucket=BUCKET,
        Key="mpu",
        UploadId=upload,
        MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": part1["ETag"]}, {"PartNumber": 2, "ETag": part2["ETag"]}]
        },
    )
    stored["mpu"] = b"p" * (5 * MIB) + b"q" * MIB
    s3.create_bucket(Bucket="full-after")
    s3.delete_bucket(Bucket="full-after")

    for key, body in stored.items():
        got = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest(), key
    check_store(full_server, tmp_path)
    for key in stored:  # room for the next test
        s3.delete_object(Bucket=BUCKET, Key=key)


def test_complete_multipart_on_full_disk(full_server: Server) -> None:
    """Completing an upload writes no object bytes, only metadata: it succeeds, or fails cleanly and
    leaves the upload completable once space returns."""
    s3 = full_server.client()
    s3.create_bucket(Bucket="full-mpu")
    upload = s3.create_multipart_upload(Bucket="full-mpu", Key="m")["UploadId"]
    etag = s3.upload_part(Bucket="full-mpu", Key="m", UploadId=upload, PartNumber=1, Body=b"z" * MIB)["ETag"]
    stored: dict[str, bytes] = {}
    fill(s3, "full-mpu", stored)
    done = {"Parts": [{"PartNumber": 1, "ETag": etag}]}
    failed = expect_full(
        s3.complete_multipart_upload, Bucket="full-mpu", Key="m", UploadId=upload, MultipartUpload=done
    )
    for key in list(stored)[:6]:
        s3.delete_object(Bucket="full-mpu", Key=key)
    time.sleep(0.5)
    if failed:
        s3.complete_multipart_upload(Bucket="full-mpu", Key="m", UploadId=upload, MultipartUpload=done)
    assert s3.get_object(Bucket="full-mpu", Key="m")["Body"].read() == b"z" * MIB
    for key in ["m", *list(stored)[6:]]:  # room for the next test
        s3.delete_object(Bucket="full-mpu", Key=key)


def use_up_reserve(server: Server) -> Path:
    """Fill what blob writes leave free (the reserve for metadata commits) with a ballast file, as
    another writer on the disk would: not a page is left. Returns the ballast, to unlink later."""
    ballast = inside(server) / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as e:
        assert e.errno == errno.ENOSPC, e
    finally:
        os.close(fd)
    assert os.statvfs(ballast.parent).f_bavail == 0
    return ballast


def test_delete_frees_file_and_row_blobs_on_full_disk(full_server: Server, tmp_path: Path) -> None:
    """An object whose blobs are a file (a 5 MiB part) and a small-blob row (its last part): deleting
    it with no space left frees the file at once. The blob store unlinks files before it deletes rows;
    a row delete is a WAL append, which fails (SQLITE_FULL) on a full disk and must not keep the
    files of the same batch on disk."""
    s3 = full_server.client()
    bucket = "full-rows"
    s3.create_bucket(Bucket=bucket)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mpu")["UploadId"]
    parts = [
        {
            "PartNumber": n,
            "ETag": s3.upload_part(Bucket=bucket, Key="mpu", UploadId=upload, PartNumber=n, Body=b)["ETag"],
        }
        for n, b in ((1, b"a" * (5 * MIB)), (2, b"b" * 1000))
    ]
    s3.complete_multipart_upload(Bucket=bucket, Key="mpu", UploadId=upload, MultipartUpload={"Parts": parts})
    stored = {"small": body_for("small", 1000)}  # a row that stays
    s3.put_object(Bucket=bucket, Key="small", Body=stored["small"])
    fill(s3, bucket, stored)
    ballast = use_up_reserve(full_server)

    # With SQLite on the tmpfs the delete's own metadata commit needs a few pages: give the ballast's
    # back one at a time until it gets through (a clean 507 until then), leaving none for the blobs'.
    log_from = full_server.log.stat().st_size
    for _ in range(64):
        used = used_bytes(full_server)
        if not expect_full(s3.delete_object, Bucket=bucket, Key="mpu"):
            break
        os.truncate(ballast, ballast.stat().st_size - 4096)
    else:
        pytest.fail("DeleteObject never committed, even with 256 KiB free")
    deadline = time.monotonic() + 5
    freed = 5 * MIB - 256 * 1024  # the 5 MiB file, less the WAL pages the batch's commits then append
    while used_bytes(full_server) > used - freed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert used_bytes(full_server) <= used - freed, "deleting the object freed no space"
    with open(full_server.log, "rb") as fh:  # (the audit log may fail to append meanwhile: not asserted)
        fh.seek(log_from)
        log = fh.read().decode(errors="replace")
    assert "blob deletion failed" not in log and "rs3gw/blobs/" not in log, log

    ballast.unlink()
    for key, body in stored.items():
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body, key
    check_store(full_server, tmp_path)
    for key in stored:
        s3.delete_object(Bucket=bucket, Key=key)


def test_audited_reads_leave_room_for_deletes(full_server: Server, tmp_path: Path) -> None:
    """Every HEAD appends an audit record to the data dir. On a disk filled up to the blob store's
    reserve, reads alone must not use that reserve up: the audit writer stops at half of it (one
    warning, no traceback per batch), so a DeleteObject still commits and frees space, and appending
    resumes by itself once space is back."""
    s3 = full_server.client()
    bucket = "full-reads"
    s3.create_bucket(Bucket=bucket)
    stored: dict[str, bytes] = {}
    fill(s3, bucket, stored)
    data = inside(full_server)
    reserve = _reserve_bytes(data)
    assert reserve_bytes(os.statvfs(data)) == reserve  # the audit writer's formula is the blob store's
    log_from = full_server.log.stat().st_size

    def head(_: int) -> None:
        s3.head_object(Bucket=bucket, Key=f"fill-{MIB}-1")

    with ThreadPoolExecutor(8) as pool:  # ~1 MB of audit records: twice what the reserve holds
        list(pool.map(head, range(2000)))
    time.sleep(0.5)  # the writer's last batches
    st = os.statvfs(data)
    assert st.f_bavail * st.f_frsize >= reserve // 2, (st.f_bavail * st.f_frsize, reserve)

    used = used_bytes(full_server)
    victim = f"fill-{MIB}-0"
    s3.delete_object(Bucket=bucket, Key=victim)  # over SQLite on the tmpfs: needs the reserve's room
    del stored[victim]
    deadline = time.monotonic() + 5
    while used_bytes(full_server) > used - MIB // 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert used_bytes(full_server) <= used - MIB // 2, "deleting a 1 MiB object freed no space"

    head(0)  # with space back, the next batch is appended again
    deadline = time.monotonic() + 5
    while True:
        with open(full_server.log, "rb") as fh:
            fh.seek(log_from)
            log = fh.read().decode(errors="replace")
        if "audit: disk space is back" in log or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert log.count("audit: disk nearly full") == 1, log
    assert "audit: disk space is back" in log, log
    assert "audit: could not append" not in log and "rs3gw/audit/" not in log, log

    for key, body in list(stored.items())[:20]:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body, key
    check_store(full_server, tmp_path)
    for key in stored:
        s3.delete_object(Bucket=bucket, Key=key)
