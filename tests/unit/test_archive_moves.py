"""Archive moves over the real blob stack (wiring's), including the states a crash can leave:
bytes copied into the tier but not committed, and committed but the backend copy not deleted."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from rs3gw import errors
from rs3gw.config import Settings
from rs3gw.engine.ingest import BodyChecks
from rs3gw.fsck import fsck
from rs3gw.model import ObjectMeta
from rs3gw.wiring import build_engine

OWNER = "o" * 64


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _files(root: Path) -> set[str]:
    return (
        {p.name for p in (root / "blobs").rglob("*") if p.is_file()} if (root / "blobs").exists() else set()
    )


def test_moves_and_crash_states(tmp_path: Path) -> None:
    data = tmp_path / "d"
    tier = data / "tiers" / "glacier"

    async def run() -> None:
        engine = build_engine(Settings(data_dir=data, fsync=False, lifecycle_day_seconds=1.0))
        await engine.start()
        try:
            await engine.create_bucket("bkt", OWNER)
            meta = ObjectMeta(storage_class="GLACIER")
            await engine.put_object("bkt", "k", _body(b"x" * 100), meta, BodyChecks(), OWNER)
            obj = await engine.store.get_object("bkt", "k")
            assert obj is not None and obj.meta.system["archive-tier"] == "glacier"
            blob = obj.segments[0].blob_id
            assert blob in _files(tier) and blob not in _files(data)
            with pytest.raises(errors.InvalidObjectState):
                await engine.get_object("bkt", "k")

            # Crash after the commit, before the backend copy was deleted: settle finishes the move.
            src = tier / "blobs" / blob[:2] / blob
            (data / "blobs" / blob[:2]).mkdir(parents=True, exist_ok=True)
            shutil.copy(src, data / "blobs" / blob[:2] / blob)
            await engine.tiers.scan([OWNER])
            await engine.tiers.settle(obj)
            assert blob not in _files(data) and blob in _files(tier)

            # Crash after the copy, before the commit: the version is GLACIER without archive-tier
            # and its bytes are in both places; the background scan completes the move.
            await engine.put_object("bkt", "s", _body(b"y" * 50), ObjectMeta(), BodyChecks(), OWNER)
            plain = await engine.store.get_object("bkt", "s")
            assert plain is not None
            sblob = plain.segments[0].blob_id
            await engine.tiers.store.copy_to_tier("glacier", [sblob])  # type: ignore[union-attr]
            await engine.store.update_object_meta(
                "bkt", "s", plain.version_id, replace(plain.meta, storage_class="GLACIER")
            )
            await engine.tiers.scan([OWNER])
            after = await engine.store.get_object("bkt", "s")
            assert after is not None and after.meta.system.get("archive-tier") == "glacier"
            assert sblob not in _files(data) and sblob in _files(tier)

            # Restore: a temporary backend copy with the same id; expiry removes only that copy.
            engine.tiers.settings = replace(engine.tiers.settings, restore_seconds={"GLACIER.Expedited": 0})
            assert await engine.tiers.restore("bkt", "s", None, 1, "Expedited") == 202
            with pytest.raises(errors.InvalidObjectState):  # ongoing: still refused
                await engine.get_object("bkt", "s")
            k = ("bkt", "s", after.version_id)
            assert await engine.tiers.advance(k) is not None
            assert sblob in _files(data) and sblob in _files(tier)
            got = await engine.get_object("bkt", "s")
            assert got.body is not None and b"".join([c async for c in got.body]) == b"y" * 50
            engine.tiers.clock = lambda: 1e12  # far beyond the expiry
            assert await engine.tiers.advance(k) is None
            assert sblob not in _files(data) and sblob in _files(tier)
            with pytest.raises(errors.InvalidObjectState):
                await engine.get_object("bkt", "s")
        finally:
            await engine.stop()
        # fsck reads through the same stack: archived bytes are neither missing nor orphans.
        report = await fsck(Settings(data_dir=data, fsync=False))
        assert report.clean, report
        assert report.blobs_checked >= 2

    asyncio.run(run())
