"""MetadataStore.list_all_buckets (SQLite and PostgreSQL) and the all_buckets fallback for stores
without it: every owner's buckets, by name, so workers also see store-managed users' buckets."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from pg_cluster import shared_cluster
from rs3gw.meta.postgres import PostgresStore
from rs3gw.meta.sqlite import SqliteStore
from rs3gw.meta.store import MetadataStore, all_buckets
from rs3gw.model import Bucket


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> MetadataStore:
    if request.param == "sqlite":
        return SqliteStore(tmp_path / "meta.db", fsync=False)
    return PostgresStore(shared_cluster().create_database("allbuckets"), max_size=2, gc_grace=0)


class _NoListAll(SqliteStore):
    """A store written before list_all_buckets existed: inherits the base class's refusal."""

    async def list_all_buckets(self) -> list[Bucket]:
        return await MetadataStore.list_all_buckets(self)


def _fill(store: MetadataStore) -> list[str]:
    async def go() -> list[str]:
        await store.open()
        try:
            for name, owner in (("zeta", "o1"), ("alpha", "o2"), ("mid", "o3"), ("Beta", "o1")):
                await store.create_bucket(Bucket(name, owner, time.time(), "us-east-1"))
            every = [b.name for b in await store.list_all_buckets()]
            assert [b.owner_id for b in await store.list_all_buckets() if b.name == "mid"] == ["o3"]
            assert [b.name for b in await all_buckets(store, ["o1"])] == every
            return every
        finally:
            await store.close()

    return asyncio.run(go())


def test_every_owner_by_name(store: MetadataStore) -> None:
    assert _fill(store) == ["Beta", "alpha", "mid", "zeta"]  # byte order, like ListBuckets


def test_fallback_lists_the_given_owners(tmp_path: Path) -> None:
    store = _NoListAll(tmp_path / "meta.db", fsync=False)

    async def go() -> list[str]:
        await store.open()
        try:
            for name, owner in (("zeta", "o1"), ("alpha", "o2"), ("mid", "o3")):
                await store.create_bucket(Bucket(name, owner, time.time(), "us-east-1"))
            with pytest.raises(NotImplementedError):
                await store.list_all_buckets()
            return [b.name for b in await all_buckets(store, ["o1", "o3", "o1"])]
        finally:
            await store.close()

    assert asyncio.run(go()) == ["mid", "zeta"]
