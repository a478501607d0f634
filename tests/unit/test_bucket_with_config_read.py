"""``get_bucket_with_config`` (the one read authorization makes per request: bucket + its policy)
and ``get_bucket_configs`` (the one read of a PutObject's documents) must answer exactly what
``get_bucket`` and ``get_bucket_config`` answer, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pg_cluster import shared_cluster
from rs3gw.meta.postgres import PostgresStore
from rs3gw.meta.sqlite import SqliteStore
from rs3gw.meta.store import MetadataStore
from rs3gw.model import Bucket


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> MetadataStore:
    if request.param == "sqlite":
        return SqliteStore(tmp_path / "meta.db", fsync=False)
    return PostgresStore(shared_cluster().create_database("bucketcfg"), max_size=4, gc_grace=0)


def test_bucket_with_config_matches_separate_reads(store: MetadataStore) -> None:
    async def both(bucket: str, name: str) -> tuple[Bucket | None, str | None]:
        rec = await store.get_bucket(bucket)
        return rec, (await store.get_bucket_config(bucket, name) if rec is not None else None)

    async def main() -> None:
        await store.open()
        try:
            assert await store.get_bucket_with_config("nope", "policy") == (None, None)
            await store.create_bucket(Bucket("b1", "owner1", 1_700_000_000.5, "us-east-1", "Enabled"))
            await store.create_bucket(Bucket("b2", "owner2", 1_700_000_001.0, "us-east-1", ""))
            # No document yet: the bucket alone.
            got = await store.get_bucket_with_config("b1", "policy")
            assert got == await both("b1", "policy")
            assert got[0] is not None and got[0].versioning == "Enabled" and got[1] is None
            # Another bucket's document, or another kind of document, is not this one's policy.
            await store.put_bucket_config("b2", "policy", '{"p": 2}')
            await store.put_bucket_config("b1", "cors", "<CORSConfiguration/>")
            assert await store.get_bucket_with_config("b1", "policy") == await both("b1", "policy")
            assert (await store.get_bucket_with_config("b1", "policy"))[1] is None
            assert await store.get_bucket_with_config("b2", "policy") == await both("b2", "policy")
            assert (await store.get_bucket_with_config("b2", "policy"))[1] == '{"p": 2}'
            assert (await store.get_bucket_with_config("b1", "cors"))[1] == "<CORSConfiguration/>"
            # Replaced and deleted documents are seen at once (nothing is cached).
            await store.put_bucket_config("b2", "policy", '{"p": 3}')
            assert (await store.get_bucket_with_config("b2", "policy"))[1] == '{"p": 3}'
            await store.put_bucket_config("b2", "policy", None)
            assert await store.get_bucket_with_config("b2", "policy") == await both("b2", "policy")
            assert (await store.get_bucket_with_config("b2", "policy"))[1] is None
            await store.delete_bucket("b2")
            assert await store.get_bucket_with_config("b2", "policy") == (None, None)
        finally:
            await store.close()

    asyncio.run(main())


def test_get_bucket_configs_matches_single_reads(store: MetadataStore) -> None:
    async def main() -> None:
        await store.open()
        try:
            await store.create_bucket(Bucket("b", "o", 1_700_000_000.0, "us-east-1", ""))
            await store.create_bucket(Bucket("c", "o", 1_700_000_000.0, "us-east-1", ""))
            await store.put_bucket_config("b", "object-lock", '{"enabled":true}')
            await store.put_bucket_config("b", "compression", "zstd")
            await store.put_bucket_config("c", "encryption", "{}")
            names = ("object-lock", "encryption", "compression")
            got = await store.get_bucket_configs("b", names)
            assert got == {"object-lock": '{"enabled":true}', "compression": "zstd"}
            singles = {n: await store.get_bucket_config("b", n) for n in names}
            assert got == {n: v for n, v in singles.items() if v is not None}
            assert await store.get_bucket_configs("c", names) == {"encryption": "{}"}
            assert await store.get_bucket_configs("missing", names) == {}
        finally:
            await store.close()

    asyncio.run(main())
