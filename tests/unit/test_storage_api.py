"""The seed's Python API examples, run as written (async StorageEngine over a data directory)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from rs3gw import errors
from rs3gw.storage import StorageEngine


def test_basic_object_operations(tmp_path: Path) -> None:
    async def run() -> None:
        async with StorageEngine(tmp_path / "storage") as storage:
            await storage.create_bucket("my-bucket")
            etag = await storage.put_object(
                "my-bucket", "hello.txt", "text/plain", {"a": "b"}, b"Hello, World!"
            )
            assert etag == hashlib.md5(b"Hello, World!").hexdigest()
            data, meta = await storage.get_object("my-bucket", "hello.txt")
            assert data == b"Hello, World!"
            assert meta.meta.content_type == "text/plain"
            assert meta.meta.user_meta == {"a": "b"}
            listing = await storage.list_objects("my-bucket")
            assert [o.key for o in listing.objects] == ["hello.txt"]
            await storage.delete_object("my-bucket", "hello.txt")
            with pytest.raises(errors.NoSuchKey):
                await storage.get_object("my-bucket", "hello.txt")
            await storage.delete_bucket("my-bucket")
            assert await storage.list_buckets() == []

    asyncio.run(run())


def test_multipart_upload(tmp_path: Path) -> None:
    async def run() -> None:
        async with StorageEngine(tmp_path / "storage", fsync=False) as storage:
            await storage.create_bucket("my-bucket")
            upload_id = await storage.create_multipart_upload(
                "my-bucket", "large-file.bin", "application/octet-stream", {}
            )
            part1 = await storage.upload_part(
                "my-bucket", "large-file.bin", upload_id, 1, bytes(5 * 1024 * 1024)
            )
            part2 = await storage.upload_part(
                "my-bucket", "large-file.bin", upload_id, 2, b"\x01" * (5 * 1024 * 1024)
            )
            etag = await storage.complete_multipart_upload(
                "my-bucket", "large-file.bin", upload_id, [part1, part2]
            )
            assert etag.endswith("-2")
            data, meta = await storage.get_object("my-bucket", "large-file.bin")
            assert data == bytes(5 * 1024 * 1024) + b"\x01" * (5 * 1024 * 1024)
            assert meta.parts_count == 2

    asyncio.run(run())


def test_data_survives_reopen(tmp_path: Path) -> None:
    async def run() -> None:
        async with StorageEngine(tmp_path / "s") as storage:
            await storage.create_bucket("keep-me")
            await storage.put_object("keep-me", "k", "text/plain", {}, b"persisted")
        async with StorageEngine(tmp_path / "s") as storage:
            data, _ = await storage.get_object("keep-me", "k")
            assert data == b"persisted"

    asyncio.run(run())
