"""Two edges of the worker changes, found in review:

1. ``KeyRing.catch_up`` (``S3App._fresh`` calls it before each signature check once a sibling
   process bumped the IAM generation) keeps the previous key set when the reload fails, as the
   periodic reload does, and the requests waiting for it share that one failed attempt: before,
   each ran a reload of its own and each got the error (a 500 and a traceback per request).
2. ``WriteTurn``'s lock-file descriptor is closed with its store, even one built and dropped
   without ``open``/``close`` (the library API, an error path before ``open``).
"""

from __future__ import annotations

import asyncio
import gc
import os
from pathlib import Path

import pytest

from rs3gw.auth.generation import open_generation
from rs3gw.auth.users import Iam, KeyRing, User
from rs3gw.blobs.keys import LocalKeyProvider
from rs3gw.meta.sqlite import SqliteStore


def test_a_failing_reload_is_shared_by_the_requests_waiting_for_it(tmp_path: Path) -> None:
    """Five requests arrive while the IAM generation moved and the store read fails: at most one
    reload is attempted for them (as a successful reload is shared), not five in a row."""

    async def main() -> None:
        store = SqliteStore(tmp_path / "meta.db", fsync=False)
        await store.open()
        try:
            iam = Iam(store, LocalKeyProvider(tmp_path), (), (), open_generation(tmp_path))
            ring = KeyRing(iam, {}, interval=3600)
            await ring.refresh()
            other = Iam(store, LocalKeyProvider(tmp_path), (), (), open_generation(tmp_path))
            await other.create_user("ann")  # a sibling process's change: bumps the counter
            assert ring.stale()

            attempts = 0

            async def store_down() -> list[User]:
                nonlocal attempts
                attempts += 1
                await asyncio.sleep(0.01)  # a slow failure, as a store timing out would be
                raise OSError("metadata store unreachable")

            iam.list_users = store_down  # type: ignore[method-assign]
            results = await asyncio.gather(*(ring.catch_up() for _ in range(5)), return_exceptions=True)
            # The previous key set stays in force (as after a failed periodic reload), no error
            # reaches the requests, and the map stays stale so a later request tries again.
            assert results == [None] * 5
            assert attempts <= 1, f"{attempts} reloads run back to back for 5 waiting requests"
            assert ring.stale()
            await ring.catch_up()  # within the second after the failure: no new attempt
            assert attempts == 1
        finally:
            await store.close()

    asyncio.run(main())


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts /proc/self/fd")
def test_a_store_never_opened_holds_no_descriptor(tmp_path: Path) -> None:
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    gc.collect()  # descriptors of earlier tests' dropped objects close first
    before = open_fds()
    for _ in range(20):
        SqliteStore(tmp_path / "meta.db", fsync=False)  # built, then dropped without open/close
    gc.collect()
    assert open_fds() - before == 0
