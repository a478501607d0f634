"""A small PUT queued while the small-blob writer is committing must not stall the event loop.

The commit holds the write connection's lock through its fsync (milliseconds on a real disk); a
PUT that took that lock just to queue itself blocked every request on the loop for that long."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from rs3gw.blobs.smallpack import SmallPack


def test_queueing_a_put_does_not_wait_for_a_commit_in_progress(tmp_path: Path) -> None:
    pack = SmallPack(tmp_path / "smallblobs.db", fsync=True)
    committing = threading.Event()
    release = threading.Event()

    def slow_commit() -> None:
        with pack._wlock:  # what a commit and its fsync hold
            committing.set()
            release.wait(5)

    async def main() -> tuple[float, bytes | None]:
        holder = threading.Thread(target=slow_commit)
        holder.start()
        committing.wait(5)
        put = asyncio.ensure_future(pack.put("b1", b"x" * 100))
        t0 = time.monotonic()
        await asyncio.sleep(0.05)  # the loop keeps serving while the put waits its turn
        stalled = time.monotonic() - t0
        release.set()
        await asyncio.wait_for(put, 10)
        holder.join()
        return stalled, pack.get("b1")

    try:
        stalled, data = asyncio.run(main())
    finally:
        release.set()
        pack.close()
    assert stalled < 0.5, f"event loop blocked {stalled:.2f} s behind a commit"
    assert data == b"x" * 100
