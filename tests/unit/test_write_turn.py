"""The cross-process write turn: a database's writers in other processes wait for it in the
kernel, and a turn that cannot be taken never stops a write."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from rs3gw.blobs.smallpack import SmallPack
from rs3gw.meta.sqlite import SqliteStore
from rs3gw.model import Bucket
from rs3gw.write_turn import WriteTurn

HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _hold_in_other_process(path: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_small_blob_writes_wait_for_another_process_turn(tmp_path: Path) -> None:
    db = tmp_path / "smallblobs.db"
    pack = SmallPack(db, fsync=True)
    holder = _hold_in_other_process(WriteTurn(db).path, 0.6)
    try:
        t0 = time.monotonic()
        asyncio.run(pack.put("b1", b"data"))
        waited = time.monotonic() - t0
    finally:
        holder.wait(10)
        pack.close()
    assert waited >= 0.4, f"the write did not wait for the other process's turn ({waited:.2f} s)"
    assert SmallPack(db, fsync=True).get("b1") == b"data"


def test_metadata_writes_wait_for_another_process_turn(tmp_path: Path) -> None:
    db = tmp_path / "meta.db"

    async def run() -> float:
        store = SqliteStore(db)
        await store.open()
        holder = _hold_in_other_process(WriteTurn(db).path, 0.6)
        try:
            t0 = time.monotonic()
            await store.create_bucket(Bucket("turn-bucket", "owner", time.time(), "us-east-1", ""))
            waited = time.monotonic() - t0
            assert await store.get_bucket("turn-bucket") is not None
        finally:
            holder.wait(10)
            await store.close()
        return waited

    assert asyncio.run(run()) >= 0.4


def test_a_turn_that_cannot_be_made_does_not_stop_writes(tmp_path: Path) -> None:
    db = tmp_path / "smallblobs.db"
    pack = SmallPack(db, fsync=True)
    pack._turn.close()
    pack._turn.path = tmp_path / "missing-dir" / "smallblobs.db-turn"  # cannot be created
    asyncio.run(pack.put("b2", b"still written"))
    assert pack.get("b2") == b"still written"
    pack.close()
