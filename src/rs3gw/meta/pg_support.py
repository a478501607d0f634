"""PostgreSQL plumbing for ``PostgresStore``: the pool, migrations, retried transactions, key locks.

Kept apart from the S3 semantics so the store module reads as the SQLite one does: one method per
operation, each a single transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, TypeVar

from psycopg import AsyncConnection, OperationalError
from psycopg import errors as pg_errors
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from rs3gw import errors
from rs3gw.meta.dsn import redact

R = TypeVar("R")
Conn = AsyncConnection[tuple[Any, ...]]
Query = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]

# Every version the code knows; a database at a lower version gets the later steps, in order,
# each in one transaction with its version bump. Version 1 is the whole of schema_pg.sql; version 2
# added ``object_access`` (GET counts out of the metadata documents): every statement of the file
# is IF NOT EXISTS, so running it again on a version-1 database creates just what is missing.
_SCHEMA = resources.files("rs3gw.meta").joinpath("schema_pg.sql").read_text()
MIGRATIONS: dict[int, str] = {1: _SCHEMA, 2: _SCHEMA}
SCHEMA_VERSION = max(MIGRATIONS)
_MIGRATION_LOCK = 0x7273336777  # "rs3gw": one gateway migrates while the others wait
_RETRIES = 8  # serialization failures and deadlocks are retried; each is a fresh transaction


def key_lock_id(bucket: str, key: bytes) -> int:
    """A 64-bit advisory-lock id for one key. A hash collision only serialises two unrelated keys."""
    digest = hashlib.blake2b(bucket.encode() + b"\0" + key, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Database:
    """An async connection pool (autocommit: reads are single statements) with retried transactions."""

    def __init__(self, dsn: str, min_size: int = 1, max_size: int = 10) -> None:
        self.dsn = dsn
        self._min, self._max = min_size, max_size
        self._pool: AsyncConnectionPool[Conn] | None = None
        # Listings run the shared synchronous scanner (meta.listing) on these threads; each of its
        # queries is handed back to the event loop, so the pool stays async.
        self._lister = ThreadPoolExecutor(max_workers=8, thread_name_prefix="rs3gw-pg-list")

    @property
    def pool(self) -> AsyncConnectionPool[Conn]:
        if self._pool is None:
            raise RuntimeError("PostgreSQL store used before open()")
        return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        """A pooled connection. Losing the database (down, restarting, unreachable: the pool's wait
        times out or the server drops the connection) is the client's 503 ServiceUnavailable, as a
        down blob backend is, not a 500; the pool reconnects by itself once the database is back.
        Serialization failures and deadlocks pass through for ``tx`` to retry."""
        try:
            async with self.pool.connection() as conn:
                yield conn
        except (pg_errors.TransactionRollback, pg_errors.SerializationFailure, pg_errors.DeadlockDetected):
            raise
        except OperationalError as exc:  # PoolTimeout, AdminShutdown, connection refused/closed
            raise errors.error_class("ServiceUnavailable")("The metadata database is unavailable.") from exc

    async def open(self) -> None:
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            self.dsn,
            min_size=self._min,
            max_size=self._max,
            open=False,
            kwargs={"autocommit": True},
            name="rs3gw-meta",
        )
        try:
            await pool.open(wait=True, timeout=30)
        except PoolTimeout:
            await pool.close()
            raise RuntimeError(
                f"metadata: cannot connect to PostgreSQL at {redact(self.dsn)} within 30 s"
            ) from None
        self._pool = pool
        await self.migrate()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        self._lister.shutdown(wait=True)

    async def migrate(self) -> None:
        """Bring the schema to ``SCHEMA_VERSION``; concurrent gateways starting together wait in turn."""
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
            row = await (await conn.execute("SELECT max(version) FROM schema_version")).fetchone()
            current = (row[0] if row else None) or 0
            if current > SCHEMA_VERSION:
                raise RuntimeError(
                    f"metadata schema version {current} is newer than this rs3gw understands ({SCHEMA_VERSION})"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                await conn.execute(MIGRATIONS[version])
                await conn.execute("DELETE FROM schema_version")
                await conn.execute("INSERT INTO schema_version VALUES (%s)", (version,))

    async def tx(self, fn: Callable[[Conn], Awaitable[R]]) -> R:
        """Run ``fn`` in one transaction; a serialization failure or deadlock between gateways reruns it."""
        for attempt in range(_RETRIES):
            try:
                async with self.connection() as conn, conn.transaction():
                    return await fn(conn)
            except (pg_errors.SerializationFailure, pg_errors.DeadlockDetected):
                if attempt == _RETRIES - 1:
                    raise
                await asyncio.sleep(random.uniform(0, 0.01 * 2**attempt))
        raise AssertionError("unreachable")

    async def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        async with self.connection() as conn:
            return await (await conn.execute(sql, params)).fetchone()

    async def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self.connection() as conn:
            return await (await conn.execute(sql, params)).fetchall()

    async def run_sync(self, fn: Callable[[Query], R]) -> R:
        """Run the synchronous ``fn`` on a thread, giving it a blocking ``query`` that executes on
        this event loop over one pooled connection (held until ``fn`` has finished, even when the
        caller is cancelled, so the connection is never in two hands)."""
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        async with self.connection() as conn:

            async def fetch(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
                return await (await conn.execute(sql, params)).fetchall()

            def query(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
                if stop.is_set():
                    raise asyncio.CancelledError
                return asyncio.run_coroutine_threadsafe(fetch(sql, params), loop).result()

            work = loop.run_in_executor(self._lister, fn, query)
            try:
                return await asyncio.shield(work)
            finally:
                stop.set()
                if not work.done():
                    await asyncio.wait([work])


async def lock_key(conn: Conn, bucket: str, key: bytes) -> None:
    """Writers of one key take turns (until commit), also across gateways; readers never wait."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (key_lock_id(bucket, key),))


async def fetchone(conn: Conn, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
    return await (await conn.execute(sql, params)).fetchone()


async def fetchall(conn: Conn, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    return await (await conn.execute(sql, params)).fetchall()
