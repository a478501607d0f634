"""The Python API's versioning calls: set_versioning_enabled, list_versions, get_version."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from blob_access import blob_ids
from rs3gw import errors
from rs3gw.storage import StorageEngine


def stored_blobs(root: Path) -> int:
    """Stored blobs, files and packed rows (small ones are rows of smallblobs.db)."""
    return len(blob_ids(root))


async def settle(engine: StorageEngine) -> None:
    """Let the background blob deletions the last call scheduled finish."""
    for _ in range(100):
        await asyncio.sleep(0.01)
        if not engine._engine._gc_tasks:
            return


def test_versions_through_python_api(tmp_path: Path) -> None:
    async def run() -> None:
        async with StorageEngine(tmp_path, fsync=False) as s:
            await s.create_bucket("docs")
            await s.put_object("docs", "a.txt", "text/plain", {}, b"unversioned")
            assert await s.get_versioning("docs") == ""
            await s.set_versioning_enabled("docs", True)
            assert await s.get_versioning("docs") == "Enabled"
            for i in range(3):
                await s.put_object("docs", "a.txt", "text/plain", {"n": str(i)}, f"v{i}".encode())
            await s.put_object("docs", "b.txt", "text/plain", {}, b"other")

            listed = await s.list_versions("docs", "a.txt")
            assert [v.key for v in listed] == ["a.txt"] * 4
            assert [v.is_latest for v in listed] == [True, False, False, False]
            assert listed[-1].version_id == "null"
            assert len({v.version_id for v in listed}) == 4
            for i, v in enumerate(reversed(listed[:3])):
                data, meta = await s.get_version("docs", "a.txt", v.version_id)
                assert data == f"v{i}".encode() and meta.meta.user_meta == {"n": str(i)}
            assert (await s.get_version("docs", "a.txt", "null"))[0] == b"unversioned"
            assert len(await s.list_versions("docs")) == 5

            # A plain delete adds a marker; the data of every version stays.
            await s.delete_object("docs", "a.txt")
            with pytest.raises(errors.NoSuchKey):
                await s.get_object("docs", "a.txt")
            marker = (await s.list_versions("docs", "a.txt"))[0]
            assert marker.delete_marker and marker.is_latest
            with pytest.raises(errors.MethodNotAllowed):
                await s.get_version("docs", "a.txt", marker.version_id)
            await s.delete_object("docs", "a.txt", marker.version_id)
            assert (await s.get_object("docs", "a.txt"))[0] == b"v2"

            # Deleting one version frees exactly its blob.
            await settle(s)
            before = stored_blobs(tmp_path)
            await s.delete_object("docs", "a.txt", listed[1].version_id)
            await settle(s)
            assert stored_blobs(tmp_path) == before - 1
            with pytest.raises(errors.NoSuchVersion):
                await s.get_version("docs", "a.txt", listed[1].version_id)

            # Suspended: overwrites replace only the null version.
            await s.set_versioning_enabled("docs", False)
            assert await s.get_versioning("docs") == "Suspended"
            await s.put_object("docs", "a.txt", "text/plain", {}, b"null-2")
            after = await s.list_versions("docs", "a.txt")
            assert [v.version_id for v in after] == ["null", listed[0].version_id, listed[2].version_id]
            assert (await s.get_version("docs", "a.txt", "null"))[0] == b"null-2"

    asyncio.run(run())


def test_versioning_errors(tmp_path: Path) -> None:
    async def run() -> None:
        async with StorageEngine(tmp_path, fsync=False) as s:
            with pytest.raises(errors.NoSuchBucket):
                await s.set_versioning_enabled("missing", True)
            await s.create_bucket("docs")
            await s.put_object("docs", "k", "text/plain", {}, b"x")
            with pytest.raises(errors.InvalidArgument):
                await s.get_version("docs", "k", "not/an id")
            with pytest.raises(errors.NoSuchVersion):
                await s.get_version("docs", "k", "0123abcd")
            assert [v.version_id for v in await s.list_versions("docs", "k")] == ["null"]

    asyncio.run(run())
