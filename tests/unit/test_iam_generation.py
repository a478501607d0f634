"""The data dir's IAM generation counter (``auth.generation``) and the key ring's use of it: a
change made through one process's ``Iam`` is seen by another process's ``KeyRing`` before its next
signature check, without waiting for the periodic reload."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rs3gw.auth.generation import GENERATION_RELPATH, IamGeneration, open_generation
from rs3gw.auth.users import Iam, KeyRing
from rs3gw.blobs.keys import LocalKeyProvider
from rs3gw.meta.sqlite import SqliteStore
from rs3gw.model import Owner

BUMPER = """
import sys
from pathlib import Path
from rs3gw.auth.generation import IamGeneration
g = IamGeneration(Path(sys.argv[1]))
for _ in range(int(sys.argv[2])):
    g.bump()
"""


def test_a_bump_is_visible_through_another_mapping(tmp_path: Path) -> None:
    reader, writer = IamGeneration(tmp_path), IamGeneration(tmp_path)
    assert (tmp_path / GENERATION_RELPATH).stat().st_size == 8
    assert reader.current() == writer.current() == 0
    assert writer.bump() == 1
    assert reader.current() == 1  # the same page: no reopen, no read(2)
    assert IamGeneration(tmp_path).current() == 1  # a later process starts from the file, not zero


def test_bumps_from_other_processes_are_counted_once_each(tmp_path: Path) -> None:
    """Read-add-write under the flock: concurrent writers lose no increment."""
    reader = IamGeneration(tmp_path)
    procs = [
        subprocess.Popen([sys.executable, "-c", BUMPER, str(tmp_path), "300"], env={**os.environ})
        for _ in range(4)
    ]
    assert [p.wait(60) for p in procs] == [0, 0, 0, 0]
    assert reader.current() == 1200


def test_a_short_file_is_made_whole(tmp_path: Path) -> None:
    path = tmp_path / GENERATION_RELPATH
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x05")  # cut short by hand
    g = IamGeneration(tmp_path)
    assert g.current() == 5
    assert g.bump() == 6


def test_no_counter_for_a_missing_or_unwritable_data_dir(tmp_path: Path) -> None:
    assert open_generation(tmp_path / "absent") is None
    assert not (tmp_path / "absent").exists()  # a typo in --data-dir creates nothing
    if os.geteuid() == 0:
        pytest.skip("root writes through directory modes")
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert open_generation(locked) is None
    finally:
        locked.chmod(0o700)


def _iam(tmp_path: Path, store: SqliteStore) -> Iam:
    return Iam(store, LocalKeyProvider(tmp_path), (), (), open_generation(tmp_path))


def test_every_change_bumps(tmp_path: Path) -> None:
    async def main() -> None:
        store = SqliteStore(tmp_path / "meta.db", fsync=False)
        await store.open()
        try:
            iam = _iam(tmp_path, store)
            assert iam.generation is not None
            seen = iam.generation.current()

            def moved() -> bool:
                nonlocal seen
                now = iam.generation.current() if iam.generation is not None else seen
                moved, seen = now != seen, now
                return moved

            await iam.create_user("ann")
            assert moved()
            key, _ = await iam.create_key("ann")
            assert moved()
            await iam.set_key_enabled(key.access_key, False)
            assert moved()
            await iam.rotate_key(key.access_key)
            assert moved()
            await iam.delete_key(key.access_key)
            assert moved()
            await iam.put_user_policy("ann", '{"Version": "2012-10-17", "Statement": []}')
            assert moved()
            await iam.delete_user_policy("ann")
            assert moved()
            await iam.set_user_enabled("ann", False)
            assert moved()
            await iam.delete_user("ann")
            assert moved()
            await iam.list_users()  # reads count nothing
            assert not moved()
        finally:
            await store.close()

    asyncio.run(main())


def test_a_ring_catches_up_with_a_change_made_by_another_iam(tmp_path: Path) -> None:
    """Two processes in miniature: each its own store connection, counter mapping, Iam and ring."""

    async def main() -> None:
        here_store = SqliteStore(tmp_path / "meta.db", fsync=False)
        there_store = SqliteStore(tmp_path / "meta.db", fsync=False)
        await here_store.open()
        await there_store.open()
        try:
            there = _iam(tmp_path, there_store)
            ring = KeyRing(_iam(tmp_path, here_store), {}, interval=3600)  # no periodic reload here
            await there.create_user("bob")
            key, _ = await there.create_key("bob")
            await ring.refresh()
            assert not ring.stale() and ring.get(key.access_key) is not None
            await there.set_key_enabled(key.access_key, False)
            assert ring.stale() and ring.get(key.access_key) is not None  # not yet reloaded
            await ring.catch_up()
            assert not ring.stale() and ring.get(key.access_key) is None
            await there.put_user_policy("bob", '{"Version": "2012-10-17", "Statement": []}')
            # Concurrent requests share one reload; all of them see the policy afterwards.
            await asyncio.gather(*(ring.catch_up() for _ in range(5)))
            assert ring.policies.get(Owner.for_account("bob").id)
            await ring.catch_up()  # nothing new: no reload, nothing changes
            assert not ring.stale()
        finally:
            await here_store.close()
            await there_store.close()

    asyncio.run(main())


def test_without_a_counter_the_ring_is_never_stale(tmp_path: Path) -> None:
    async def main() -> None:
        store = SqliteStore(tmp_path / "meta.db", fsync=False)
        await store.open()
        try:
            ring = KeyRing(Iam(store, LocalKeyProvider(tmp_path)), {}, interval=3600)
            assert not ring.stale()
            await ring.catch_up()  # a no-op, not an error
        finally:
            await store.close()

    asyncio.run(main())
