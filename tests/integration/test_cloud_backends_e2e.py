"""`rs3gw serve --backend gcs|azure` over their emulators, and each backend's own promises (layout,
resumable uploads / staged blocks, abort cleanup) checked in the emulator itself."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from test_s3_backend_e2e import serve_fails

from azurite import Azurite
from conftest import Server, free_port, fresh_bucket, start_server
from gcs_emulator import GCSEmulator
from pg_cluster import PgCluster
from rs3gw import errors
from rs3gw.blobs.azure import AzureBackendConfig, AzureBlobStore
from rs3gw.blobs.gcs import GCSBackendConfig, GCSBlobStore
from upstream_emulators import (  # noqa: F401 - fixtures
    AZURE_CONTAINER,
    GCS_BUCKET,
    azure_config,
    azurite,
    gcs_config,
    gcs_emu,
)

MiB = 1 << 20
PART = 5 * MiB


@dataclass
class Upstream:
    """One emulator seen from the test: what the gateway stored under a prefix."""

    kind: str
    emulator: Any

    def blobs(self, prefix: str) -> dict[str, int]:
        if self.kind == "gcs":
            got = self.emulator.client().list_blobs(GCS_BUCKET, prefix=prefix + "/")
            return {b.name: int(b.size) for b in got}
        container = self.emulator.service().get_container_client(AZURE_CONTAINER)
        return {b.name: int(b.size) for b in container.list_blobs(name_starts_with=prefix + "/")}

    def flags(self, prefix: str) -> list[str]:
        if self.kind == "gcs":
            return [
                "--backend=gcs",
                f"--backend-endpoint={self.emulator.endpoint}",
                f"--backend-bucket={GCS_BUCKET}",
                f"--backend-prefix={prefix}",
                "--backend-project=test",
            ]
        return [
            "--backend=azure",
            f"--backend-connection-string={self.emulator.connection_string}",
            f"--backend-bucket={AZURE_CONTAINER}",
            f"--backend-prefix={prefix}",
        ]


@pytest.fixture(scope="module", params=["gcs", "azure"])
def upstream(request: pytest.FixtureRequest) -> Upstream:
    name = "gcs_emu" if request.param == "gcs" else "azurite"
    return Upstream(request.param, request.getfixturevalue(name))


@pytest.fixture(scope="module")
def gw(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Upstream]]:
    data = tmp_path_factory.mktemp(f"gw-{upstream.kind}") / "data"
    server = start_server(data, "--no-fsync", *upstream.flags(f"e2e-{upstream.kind}"))
    yield server, upstream
    server.stop()


def test_put_get_range_multipart_delete(gw: tuple[Server, Upstream]) -> None:
    server, upstream = gw
    prefix = f"e2e-{upstream.kind}"
    s3 = server.client()
    before = set(upstream.blobs(prefix))
    with fresh_bucket(s3) as b:
        body = os.urandom(3 * MiB + 17)
        s3.put_object(Bucket=b, Key="dir/obj", Body=body)
        new = set(upstream.blobs(prefix)) - before
        assert len(new) == 1  # the object's bytes are in the emulator, not in the data dir
        assert upstream.blobs(prefix)[next(iter(new))] == len(body)
        assert not (server.data_dir / "blobs").exists()
        got = s3.get_object(Bucket=b, Key="dir/obj")
        assert got["Body"].read() == body
        assert got["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
        part = s3.get_object(Bucket=b, Key="dir/obj", Range="bytes=1000-2999999")["Body"].read()
        assert part == body[1000:3000000]
        assert s3.get_object(Bucket=b, Key="dir/obj", Range="bytes=-5")["Body"].read() == body[-5:]
        s3.put_object(Bucket=b, Key="empty", Body=b"")
        assert s3.get_object(Bucket=b, Key="empty")["Body"].read() == b""

        parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(123)]
        up = s3.create_multipart_upload(Bucket=b, Key="mp")["UploadId"]
        done = []
        for n, data in enumerate(parts, 1):
            etag = s3.upload_part(Bucket=b, Key="mp", UploadId=up, PartNumber=n, Body=data)["ETag"]
            done.append({"PartNumber": n, "ETag": etag})
        s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=up, MultipartUpload={"Parts": done})
        whole = b"".join(parts)
        assert s3.get_object(Bucket=b, Key="mp")["Body"].read() == whole
        edge = s3.get_object(Bucket=b, Key="mp", Range=f"bytes={5 * MiB - 10}-{5 * MiB + 9}")["Body"].read()
        assert edge == whole[5 * MiB - 10 : 5 * MiB + 10]  # a range across two part blobs
        stored = sorted(v for k, v in upstream.blobs(prefix).items() if k not in before)
        assert stored == sorted([0, len(body), *map(len, parts)])

        for key in ("dir/obj", "empty", "mp"):
            s3.delete_object(Bucket=b, Key=key)
        with pytest.raises(s3.exceptions.NoSuchKey):
            s3.get_object(Bucket=b, Key="mp")
    deadline = time.monotonic() + 10
    while set(upstream.blobs(prefix)) - before:  # the GC queue removes the blobs shortly after
        assert time.monotonic() < deadline, "deleted objects' blobs are still upstream"
        time.sleep(0.1)


def test_dedup_over_postgresql_keeps_chunks_once_upstream(
    upstream: Upstream, tmp_path: Path, pg_cluster: PgCluster
) -> None:
    """With PostgreSQL metadata the chunk index lives in the database (gateways share it), so dedup
    runs over GCS and Azure too: identical bodies are stored once in the emulator and read back."""
    dsn = pg_cluster.create_database("dd") + "?gc_grace=0"  # freed at once: one gateway here
    prefix = f"dd-{upstream.kind}-{uuid.uuid4().hex[:6]}"
    server = start_server(
        tmp_path / "data", "--no-fsync", "--dedup", "--metadata", dsn, *upstream.flags(prefix)
    )
    try:
        s3 = server.client()
        body = os.urandom(MiB)
        with fresh_bucket(s3) as b:
            for i in range(3):
                s3.put_object(Bucket=b, Key=f"copy-{i}", Body=body)
            stored = sum(upstream.blobs(prefix).values())
            assert len(body) <= stored < 2 * len(body)  # the chunks once, plus three small manifests
            for i in range(3):
                assert s3.get_object(Bucket=b, Key=f"copy-{i}")["Body"].read() == body
            got = s3.get_object(Bucket=b, Key="copy-1", Range="bytes=70000-200000")["Body"].read()
            assert got == body[70000:200001]
            for i in range(3):
                s3.delete_object(Bucket=b, Key=f"copy-{i}")
        deadline = time.monotonic() + 15
        while upstream.blobs(prefix):  # the last reference gone, GC frees the chunks upstream
            assert time.monotonic() < deadline, sorted(upstream.blobs(prefix))[:5]
            time.sleep(0.2)
    finally:
        server.stop()


def test_missing_bucket_fails_at_start(upstream: Upstream, tmp_path: Path) -> None:
    flags = [f.replace("rs3gw-contract", "no-such-bucket") for f in upstream.flags("p")]
    err = serve_fails(tmp_path, *flags)
    assert f"{upstream.kind} backend" in err and "no-such-bucket" in err
    assert "Traceback" not in err


# -- each backend's own promises, seen in the emulator ----------------------------------------------


def test_gcs_resumable_upload_is_invisible_until_finalized(request: pytest.FixtureRequest) -> None:
    emu: GCSEmulator = request.getfixturevalue("gcs_emu")
    prefix = f"gl-{uuid.uuid4().hex[:8]}"
    store = GCSBlobStore(gcs_config(emu, prefix, PART))

    async def go() -> str:
        w = store.new_writer()
        for _ in range(11):
            await w.write(os.urandom(MiB))
        await w._settle()  # type: ignore[attr-defined]  # two chunks have reached the emulator
        assert w.session is not None  # type: ignore[attr-defined]  # a resumable session is open
        assert not list(emu.client().list_blobs(GCS_BUCKET, prefix=prefix))  # not finalized yet
        await w.close()
        aborted = store.new_writer()
        for _ in range(6):
            await aborted.write(os.urandom(MiB))
        await aborted._settle()  # type: ignore[attr-defined]
        await aborted.abort()
        del aborted
        gc.collect()  # a dropped writer that was not really cancelled would finalize now
        return w.blob_id

    try:
        blob = asyncio.run(go())
    finally:
        store.close()
    names = {b.name: b.size for b in emu.client().list_blobs(GCS_BUCKET, prefix=prefix)}
    assert names == {f"{prefix}/{blob[:2]}/{blob[2:4]}/{blob}": 11 * MiB}


def test_azure_blocks_commit_at_close_and_abort_drops_them(request: pytest.FixtureRequest) -> None:
    az: Azurite = request.getfixturevalue("azurite")
    prefix = f"al-{uuid.uuid4().hex[:8]}"
    store = AzureBlobStore(azure_config(az, prefix, PART))
    container = az.service().get_container_client(AZURE_CONTAINER)

    def listed() -> dict[str, int]:
        got = container.list_blobs(name_starts_with=prefix, include=["uncommittedblobs"])
        return {b.name: int(b.size) for b in got}

    async def go() -> str:
        w = store.new_writer()
        for _ in range(11):
            await w.write(os.urandom(MiB))
        await w._settle()  # type: ignore[attr-defined]  # two blocks are staged
        key = store.key(w.blob_id)
        committed, uncommitted = container.get_blob_client(key).get_block_list("all")
        assert (len(committed), len(uncommitted)) == (0, 2)
        assert not list(container.list_blobs(name_starts_with=prefix))  # invisible until committed
        await w.close()
        committed, uncommitted = container.get_blob_client(key).get_block_list("all")
        assert (len(committed), len(uncommitted)) == (3, 0)  # 5 + 5 + 1 MiB
        aborted = store.new_writer()
        for _ in range(6):
            await aborted.write(os.urandom(MiB))
        await aborted._settle()  # type: ignore[attr-defined]
        await aborted.abort()
        return w.blob_id

    try:
        blob = asyncio.run(go())
    finally:
        store.close()
    assert listed() == {f"{prefix}/{blob[:2]}/{blob[2:4]}/{blob}": 11 * MiB}  # no staged leftovers


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--backend", "gcs"], "the gcs backend needs a bucket"),
        (["--backend", "azure", "--backend-bucket", "c"], "the azure backend needs a connection string"),
    ],
)
def test_incomplete_settings_are_refused(tmp_path: Path, args: list[str], expected: str) -> None:
    err = serve_fails(tmp_path, *args)
    assert expected in err and "Traceback" not in err


def _store(
    kind: str, request: pytest.FixtureRequest, prefix: str, **kw: Any
) -> GCSBlobStore | AzureBlobStore:
    if kind == "gcs":
        return GCSBlobStore(replace(gcs_config(request.getfixturevalue("gcs_emu"), prefix, PART), **kw))
    return AzureBlobStore(replace(azure_config(request.getfixturevalue("azurite"), prefix, PART), **kw))


@pytest.mark.parametrize("kind", ["gcs", "azure"])
def test_remembers_what_it_wrote(kind: str, request: pytest.FixtureRequest) -> None:
    """Size and header probes of a blob this gateway just wrote are answered from memory: they still
    answer after the object is removed behind the store's back, while reads past the header fail."""
    store = _store(kind, request, f"hc-{uuid.uuid4().hex[:8]}", head_cache=100)
    data = os.urandom(1000)

    async def go() -> None:
        w = store.new_writer()
        await w.write(data)
        await w.close()
        key = store.key(w.blob_id)
        if isinstance(store, GCSBlobStore):
            store.bucket.delete_blob(key)
        else:
            store.container.delete_blob(key)
        assert await store.size(w.blob_id) == 1000
        assert b"".join([c async for c in store.read(w.blob_id, 10, 54)]) == data[10:64]
        with pytest.raises(errors.S3Error, match="missing"):
            [c async for c in store.read(w.blob_id, 900)]
        await store.delete([w.blob_id])
        with pytest.raises(errors.S3Error, match="missing"):
            await store.size(w.blob_id)

    try:
        asyncio.run(go())
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["gcs", "azure"])
def test_unreachable_upstream_is_503(kind: str) -> None:
    port = free_port()
    store: GCSBlobStore | AzureBlobStore
    if kind == "gcs":
        store = GCSBlobStore(
            GCSBackendConfig("b", "p", "test", f"http://127.0.0.1:{port}", retry_seconds=1.5)
        )
    else:
        conn = Azurite(port, Path("."), None).connection_string  # type: ignore[arg-type]
        store = AzureBlobStore(AzureBackendConfig("c", "p", conn, attempts=1))

    async def go() -> None:
        with pytest.raises(errors.S3Error) as caught:
            await store.exists(uuid.uuid4().hex)
        assert (caught.value.code, caught.value.status) == ("ServiceUnavailable", 503)
        with pytest.raises(errors.S3Error) as caught:
            [c async for c in store.read(uuid.uuid4().hex, 0, 10)]
        assert caught.value.status == 503
        w = store.new_writer()
        await w.write(b"x")
        with pytest.raises(errors.S3Error) as caught:
            await w.close()
        assert caught.value.status == 503

    try:
        asyncio.run(go())
    finally:
        store.close()
