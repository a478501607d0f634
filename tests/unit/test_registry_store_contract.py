"""The registry table's contract (registry_get/put/list), on SQLite and PostgreSQL alike:
revisions give optimistic concurrency, so exactly one of two racing writers wins."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pg_cluster import shared_cluster
from rs3gw import errors
from rs3gw.meta.postgres import PostgresStore
from rs3gw.meta.sqlite import SqliteStore
from rs3gw.meta.store import MetadataStore


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> MetadataStore:
    if request.param == "sqlite":
        return SqliteStore(tmp_path / "meta.db", fsync=False)
    return PostgresStore(shared_cluster().create_database("registry"), max_size=4, gc_grace=0)


def test_registry_revisions_and_listing(store: MetadataStore) -> None:
    async def main() -> None:
        await store.open()
        try:
            assert await store.registry_get("model", "a") is None
            assert await store.registry_put("model", "a", '{"v": 1}', 0) == 1
            with pytest.raises(errors.RegistryConflict):
                await store.registry_put("model", "a", '{"v": 2}', 0)  # exists already
            with pytest.raises(errors.RegistryConflict):
                await store.registry_put("model", "a", '{"v": 2}', 5)  # stale revision
            assert await store.registry_put("model", "a", '{"v": 2}', 1) == 2
            assert await store.registry_get("model", "a") == ('{"v": 2}', 2)
            results = await asyncio.gather(
                store.registry_put("model", "a", '{"v": "x"}', 2),
                store.registry_put("model", "a", '{"v": "y"}', 2),
                return_exceptions=True,
            )
            assert sorted(type(r).__name__ for r in results) == ["RegistryConflict", "int"]
            await store.registry_put("model", "ab", "{}", 0)
            await store.registry_put("model", "b", "{}", 0)
            await store.registry_put("dataset", "a", "{}", 0)
            assert [n for n, _, _ in await store.registry_list("model", "a")] == ["a", "ab"]
            assert [n for n, _, _ in await store.registry_list("model")] == ["a", "ab", "b"]
            assert [n for n, _, _ in await store.registry_list("dataset")] == ["a"]
        finally:
            await store.close()

    asyncio.run(main())
