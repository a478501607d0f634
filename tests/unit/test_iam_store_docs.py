"""Server documents (the store half of users and keys) on SQLite and PostgreSQL, and sealed secrets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from pg_cluster import shared_cluster
from rs3gw import errors
from rs3gw.auth.users import KEY_DOC, Iam, KeyRing
from rs3gw.blobs.keys import KeyError_, LocalKeyProvider
from rs3gw.meta.postgres import PostgresStore
from rs3gw.meta.sqlite import SqliteStore
from rs3gw.meta.store import MetadataStore
from rs3gw.model import Owner

Opener = Callable[[], MetadataStore]


@pytest.fixture(params=["sqlite", "postgresql"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    if request.param == "sqlite":
        return lambda: SqliteStore(tmp_path / "meta.db", fsync=False)
    dsn = shared_cluster().create_database("iamdocs")
    return lambda: PostgresStore(dsn, max_size=2, gc_grace=0)


def run(opener: Opener, body: Callable[[MetadataStore], Awaitable[None]]) -> None:
    async def main() -> None:
        store = opener()
        await store.open()
        try:
            await body(store)
        finally:
            await store.close()

    asyncio.run(main())


def test_server_docs(opener: Opener) -> None:
    async def body(s: MetadataStore) -> None:
        assert await s.get_server_doc("k", "a") is None
        assert await s.put_server_doc("k", "a", "one", create=True)
        assert not await s.put_server_doc("k", "a", "two", create=True)  # create never overwrites
        assert await s.get_server_doc("k", "a") == "one"
        assert await s.put_server_doc("k", "a", "three")
        await s.put_server_doc("k", "b", "x")
        await s.put_server_doc("other", "a", "y")
        assert await s.list_server_docs("k") == {"a": "three", "b": "x"}
        assert await s.put_server_doc("k", "a", None)
        assert not await s.put_server_doc("k", "a", None)  # nothing left to delete
        assert await s.list_server_docs("k") == {"b": "x"}

    run(opener, body)


def test_sealed_secrets(tmp_path: Path) -> None:
    async def body(s: MetadataStore) -> None:
        iam = Iam(s, LocalKeyProvider(tmp_path), ["admin"], ["ADMINKEY"])
        with pytest.raises(errors.EntityAlreadyExists):
            await iam.create_user("admin")
        with pytest.raises(errors.InvalidArgument):
            await iam.create_user("no/slash")
        await iam.create_user("u")
        k1, s1 = await iam.create_key("u")
        k2, s2 = await iam.create_key("u")
        docs = await s.list_server_docs(KEY_DOC)
        assert s1 not in json.dumps(docs) and s2 not in json.dumps(docs)
        assert iam.secret_of(k1) == s1 and iam.secret_of(k2) == s2
        swapped = type(k1)(k1.access_key, k1.user, k1.created, True, k2.kek_ref, k2.sealed)
        with pytest.raises(KeyError_):  # each sealed secret is bound to its own access key
            iam.secret_of(swapped)
        owners: dict[str, Owner] = {}
        ring = KeyRing(iam, owners)
        await ring.refresh()
        acct = ring.get(k1.access_key)
        assert acct is not None and acct.secret_key == s1 and acct.owner == Owner.for_account("u")
        await iam.set_key_enabled(k1.access_key, False)
        await ring.refresh()
        assert ring.get(k1.access_key) is None and ring.get(k2.access_key) is not None
        await iam.set_user_enabled("u", False)
        await ring.refresh()
        assert ring.get(k2.access_key) is None
        assert Owner.for_account("u").id in owners

    run(lambda: SqliteStore(tmp_path / "meta.db", fsync=False), body)
