"""The chunk index in PostgreSQL: ``dedup_*`` tables in the metadata database, so several gateways
(on several machines) sharing that database and one upstream deduplicate against one chunk table.

Same semantics as ``SqliteChunkIndex``, method for method; what differs is how concurrent changes
are kept apart. Nothing here relies on an in-process lock:

* every change is one transaction; refcounts change only by ``UPDATE ... SET refs = refs ± n`` on
  rows locked ``FOR UPDATE`` in hash order (so two gateways touching the same chunks queue instead
  of deadlocking; a deadlock or serialization failure that still happens reruns the transaction);
* a freshly written chunk goes in by ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING blob_id``:
  when another gateway published the same hash first, the returned blob is theirs and ours is
  garbage, decided by the database, never by a read-then-write;
* a writer's row records its host, pid and a lease (database clock, so skewed machines agree). The
  lease is renewed by every call of the writer and by a heartbeat thread while it runs; another
  gateway rolls a writer back only when its lease expired, or when it ran on the same host under
  a pid that is gone. Each writer step first renews its own row (a row lock), and a rollback first
  deletes that row, so a writer that was rolled back fails its next step instead of committing a
  manifest whose references were released.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from psycopg import Connection, Cursor, OperationalError
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolTimeout

from rs3gw import errors
from rs3gw.blobs.chunk_index import IndexTotals
from rs3gw.blobs.local import pid_alive

R = TypeVar("R")
Cur = Cursor[tuple[Any, ...]]
log = logging.getLogger("rs3gw.dedup")

LEASE = 60.0  # seconds a writer stays live without renewing; renewed every LEASE / 6 while it runs
_RETRIES = 8
_SCHEMA_LOCK = 0x7273336764  # "rs3gd": gateways starting together create the tables in turn

SCHEMA = """
CREATE TABLE IF NOT EXISTS dedup_chunks (hash bytea PRIMARY KEY, blob_id text NOT NULL,
    size bigint NOT NULL, refs bigint NOT NULL);
CREATE TABLE IF NOT EXISTS dedup_manifests (blob_id text PRIMARY KEY, size bigint NOT NULL,
    count bigint NOT NULL, released bigint NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS dedup_writers (writer text PRIMARY KEY, host text NOT NULL,
    pid integer NOT NULL, started timestamptz NOT NULL, lease_until timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS dedup_writer_refs (writer text NOT NULL, hash bytea NOT NULL,
    n bigint NOT NULL, PRIMARY KEY (writer, hash));
CREATE TABLE IF NOT EXISTS dedup_writer_blobs (writer text NOT NULL, blob_id text NOT NULL,
    PRIMARY KEY (writer, blob_id));
CREATE TABLE IF NOT EXISTS dedup_chunk_gc (blob_id text PRIMARY KEY);
CREATE TABLE IF NOT EXISTS dedup_manifest_refs (blob_id text NOT NULL, hash bytea NOT NULL,
    n bigint NOT NULL, PRIMARY KEY (blob_id, hash));
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'dedup_manifests'::regclass
            AND attname = 'tracked' AND NOT attisdropped) THEN
        ALTER TABLE dedup_manifests ADD COLUMN tracked boolean NOT NULL DEFAULT false;
    END IF;
END $$;
"""


def host_id() -> str:
    """This machine, as writers' rows name it: the hostname and the boot id (a pid is only
    meaningful on the host, and only since its boot)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        boot = ""
    return f"{socket.gethostname()}/{boot}"


def has_dedup_state(dsn: str) -> bool:
    """Whether the database holds a chunk index some gateway created (a gateway with dedup turned
    off must still read the manifests written while it was on). True when the database cannot be
    asked: wrapping is the safe answer."""
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=10, autocommit=True) as conn:
            row = conn.execute("SELECT to_regclass('dedup_manifests') IS NOT NULL").fetchone()
            return bool(row and row[0])
    except psycopg.Error:
        return True


class PostgresChunkIndex:
    """The chunk index in the PostgreSQL database ``dsn`` (a libpq URL without rs3gw's parameters).

    The pool opens on first use, so building the blob stack never needs the database; a database
    that is down answers 503 ServiceUnavailable, as the metadata store does."""

    kind = "postgresql"

    def __init__(self, dsn: str, lease: float = LEASE, max_size: int = 10) -> None:
        self.dsn = dsn
        self.lease = lease
        self.host = host_id()
        self.active: set[str] = set()
        self._max = max_size
        self._pool: ConnectionPool[Connection[tuple[Any, ...]]] | None = None
        self._opening = threading.Lock()  # guards opening the pool only, never index state
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # -- plumbing ------------------------------------------------------------------------------
    def _open(self) -> ConnectionPool[Connection[tuple[Any, ...]]]:
        with self._opening:
            if self._pool is not None:
                return self._pool
            pool: ConnectionPool[Connection[tuple[Any, ...]]] = ConnectionPool(
                self.dsn,
                min_size=1,
                max_size=self._max,
                open=False,
                kwargs={"autocommit": True},
                name="rs3gw-dedup",
            )
            try:
                pool.open(wait=True, timeout=30)
            except PoolTimeout:
                pool.close()
                raise errors.error_class("ServiceUnavailable")(
                    "The deduplication index database is unavailable."
                ) from None
            with pool.connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                conn.execute(SCHEMA)
            self._pool = pool
            return pool

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[Cur]:
        pool = self._pool or self._open()
        try:
            with pool.connection() as conn, conn.cursor() as cur:
                yield cur
        except (pg_errors.SerializationFailure, pg_errors.DeadlockDetected):
            raise
        except OperationalError as exc:  # pool timeout, connection lost, database down
            raise errors.error_class("ServiceUnavailable")(
                "The deduplication index database is unavailable."
            ) from exc

    def _txn(self, fn: Callable[[Cur], R]) -> R:
        """``fn`` in one transaction; a deadlock or serialization failure between gateways reruns it."""
        for attempt in range(_RETRIES):
            try:
                with self._cursor() as cur, cur.connection.transaction():
                    return fn(cur)
            except (pg_errors.SerializationFailure, pg_errors.DeadlockDetected):
                if attempt == _RETRIES - 1:
                    raise
                time.sleep(random.uniform(0, 0.01 * 2**attempt))
        raise AssertionError("unreachable")

    def _rows(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._cursor() as cur:
            return cur.execute(sql, args).fetchall()  # type: ignore[arg-type]

    def close(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    # -- writers -------------------------------------------------------------------------------
    def _renew(self, cur: Cur, writer: str) -> None:
        """Lock and renew the writer's row; a writer another gateway rolled back must not go on."""
        row = cur.execute(
            "UPDATE dedup_writers SET lease_until = clock_timestamp() + make_interval(secs => %s) "
            "WHERE writer = %s RETURNING 1",
            (self.lease, writer),
        ).fetchone()
        if row is None:
            raise errors.InternalError("dedup writer was rolled back (its lease expired)")

    def _heartbeat(self) -> None:
        """Renew the leases of this process's running writers (a chunk upload may outlast a lease)."""
        while not self._stop.wait(self.lease / 6):
            if not (mine := sorted(self.active)):
                continue
            try:
                with self._cursor() as cur:
                    cur.execute(
                        "UPDATE dedup_writers SET lease_until = clock_timestamp() + make_interval(secs => %s) "
                        "WHERE writer = ANY(%s::text[])",
                        (self.lease, mine),
                    )
            except Exception as exc:  # the database is away: the next beat tries again
                log.warning("dedup: renewing writer leases failed: %s", exc)

    def begin_writer(self, writer: str) -> None:
        self.active.add(writer)
        if self._beat is None:
            with self._opening:
                if self._beat is None:
                    self._beat = threading.Thread(
                        target=self._heartbeat, name="rs3gw-dedup-lease", daemon=True
                    )
                    self._beat.start()
        self._txn(
            lambda c: c.execute(
                "INSERT INTO dedup_writers VALUES (%s, %s, %s, clock_timestamp(), "
                "clock_timestamp() + make_interval(secs => %s))",
                (writer, self.host, os.getpid(), self.lease),
            )
        )

    def take_refs(self, writer: str, counts: Counter[bytes]) -> list[bytes]:
        def run(c: Cur) -> list[bytes]:
            self._renew(c, writer)
            present = set(_lock_chunks(c, sorted(counts)))
            if present:
                hs = sorted(present)
                ns = [counts[h] for h in hs]
                c.execute(
                    "UPDATE dedup_chunks c SET refs = c.refs + v.n "
                    "FROM unnest(%s::bytea[], %s::bigint[]) AS v(hash, n) WHERE c.hash = v.hash",
                    (hs, ns),
                )
                _add_writer_refs(c, writer, hs, ns)
            return [h for h in counts if h not in present]

        return self._txn(run)

    def add_intents(self, writer: str, blob_ids: Iterable[str]) -> None:
        ids = list(blob_ids)

        def run(c: Cur) -> None:
            self._renew(c, writer)
            c.execute(
                "INSERT INTO dedup_writer_blobs SELECT %s, b FROM unnest(%s::text[]) AS b "
                "ON CONFLICT DO NOTHING",
                (writer, ids),
            )

        self._txn(run)

    def publish(self, writer: str, new: Sequence[tuple[bytes, str, int, int]]) -> list[str]:
        rows = sorted(new)

        def run(c: Cur) -> list[str]:
            self._renew(c, writer)
            hs = [r[0] for r in rows]
            ns = [r[3] for r in rows]
            got = c.execute(
                "INSERT INTO dedup_chunks (hash, blob_id, size, refs) "
                "SELECT * FROM unnest(%s::bytea[], %s::text[], %s::bigint[], %s::bigint[]) ORDER BY 1 "
                "ON CONFLICT (hash) DO UPDATE SET refs = dedup_chunks.refs + excluded.refs "
                "RETURNING hash, blob_id",
                (hs, [r[1] for r in rows], [r[2] for r in rows], ns),
            ).fetchall()
            winner = {bytes(h): str(b) for h, b in got}
            ours = [b for h, b, _, _ in rows if winner[h] == b]
            c.execute(
                "DELETE FROM dedup_writer_blobs WHERE writer = %s AND blob_id = ANY(%s::text[])",
                (writer, ours),
            )
            _add_writer_refs(c, writer, hs, ns)
            return [b for h, b, _, _ in rows if winner[h] != b]

        return self._txn(run)

    def commit_manifest(self, writer: str, blob_id: str, size: int, count: int) -> None:
        def run(c: Cur) -> None:
            self._renew(c, writer)
            c.execute(
                "INSERT INTO dedup_manifests (blob_id, size, count, tracked) VALUES (%s, %s, %s, true)",
                (blob_id, size, count),
            )
            # The writer's refs are exactly the manifest's (one per record): kept, re-keyed.
            c.execute(
                "INSERT INTO dedup_manifest_refs SELECT %s, hash, n FROM dedup_writer_refs WHERE writer = %s",
                (blob_id, writer),
            )
            for table in ("dedup_writer_refs", "dedup_writer_blobs", "dedup_writers"):
                c.execute(f"DELETE FROM {table} WHERE writer = %s", (writer,))  # type: ignore[arg-type]

        try:
            self._txn(run)
        finally:
            self.active.discard(writer)

    def end_writer(self, writer: str) -> list[str]:
        try:
            return self._txn(lambda c: _rollback_writer(c, writer))
        finally:
            self.active.discard(writer)

    def stale_writers(self, at_start: bool) -> list[str]:
        rows = self._rows("SELECT writer, host, pid, lease_until < clock_timestamp() FROM dedup_writers")
        me = os.getpid()
        out = []
        for w, host, pid, expired in rows:
            here = host == self.host
            if (
                expired
                or (here and pid == me and (at_start or w not in self.active))
                or (here and pid != me and not pid_alive(int(pid)))
            ):
                out.append(str(w))
        return out

    # -- manifests -------------------------------------------------------------------------------
    def manifest(self, blob_id: str) -> tuple[int, int, int] | None:
        rows = self._rows("SELECT size, count, released FROM dedup_manifests WHERE blob_id = %s", (blob_id,))
        return (int(rows[0][0]), int(rows[0][1]), int(rows[0][2])) if rows else None

    def release(self, blob_id: str, start: int, hashes: Sequence[bytes]) -> list[str]:
        def run(c: Cur) -> list[str]:
            row = c.execute(
                "SELECT released, tracked FROM dedup_manifests WHERE blob_id = %s FOR UPDATE", (blob_id,)
            ).fetchone()
            if row is None or row[0] != start:
                return []
            counts = Counter(hashes)
            if row[1]:
                counts = _take_manifest_refs(c, blob_id, counts)
            freed = _unref(c, counts)
            c.execute(
                "UPDATE dedup_manifests SET released = %s WHERE blob_id = %s", (start + len(hashes), blob_id)
            )
            return freed

        return self._txn(run)

    def tracks_refs(self, blob_id: str) -> bool:
        rows = self._rows("SELECT tracked FROM dedup_manifests WHERE blob_id = %s", (blob_id,))
        return bool(rows and rows[0][0])

    def held_refs(self, blob_id: str) -> dict[bytes, int] | None:
        # One statement, so the flag and the rows are one snapshot (a release may run meanwhile).
        rows = self._rows(
            "SELECT m.tracked, r.hash, r.n FROM dedup_manifests m LEFT JOIN dedup_manifest_refs r "
            "ON r.blob_id = m.blob_id WHERE m.blob_id = %s",
            (blob_id,),
        )
        if not rows or not rows[0][0]:
            return None
        return {bytes(h): int(n) for _, h, n in rows if h is not None}

    def drop_manifest(self, blob_id: str) -> list[str]:
        def run(c: Cur) -> list[str]:
            # The manifest's row first (as release locks it), then its chunks in hash order.
            c.execute("SELECT 1 FROM dedup_manifests WHERE blob_id = %s FOR UPDATE", (blob_id,))
            left = c.execute(
                "DELETE FROM dedup_manifest_refs WHERE blob_id = %s RETURNING hash, n", (blob_id,)
            ).fetchall()
            freed = _unref(c, Counter({bytes(h): int(n) for h, n in left}))
            c.execute("DELETE FROM dedup_manifests WHERE blob_id = %s", (blob_id,))
            c.execute("INSERT INTO dedup_chunk_gc VALUES (%s) ON CONFLICT DO NOTHING", (blob_id,))
            return freed

        return self._txn(run)

    def blob_ids(self, hashes: Sequence[bytes]) -> dict[bytes, str]:
        rows = self._rows(
            "SELECT hash, blob_id FROM dedup_chunks WHERE hash = ANY(%s::bytea[])", (list(set(hashes)),)
        )
        return {bytes(h): str(b) for h, b in rows}

    def manifest_ids(self) -> list[str]:
        return [str(r[0]) for r in self._rows("SELECT blob_id FROM dedup_manifests")]

    def chunk_blob_ids(self) -> set[str]:
        return {str(r[0]) for r in self._rows("SELECT blob_id FROM dedup_chunks")}

    def private_ids(self) -> set[str]:
        sql = "SELECT blob_id FROM dedup_chunk_gc UNION ALL SELECT blob_id FROM dedup_writer_blobs"
        return {str(r[0]) for r in self._rows(sql)}

    def protected_ids(self) -> set[str]:
        sql = (
            "SELECT blob_id FROM dedup_chunks UNION ALL SELECT blob_id FROM dedup_chunk_gc "
            "UNION ALL SELECT blob_id FROM dedup_writer_blobs UNION ALL SELECT blob_id FROM dedup_manifests"
        )
        return {str(r[0]) for r in self._rows(sql)}

    def chunk_refs(self) -> list[tuple[bytes, int]]:
        return [(bytes(h), int(n)) for h, n in self._rows("SELECT hash, refs FROM dedup_chunks")]

    def writer_refs(self) -> list[tuple[bytes, int]]:
        return [(bytes(h), int(n)) for h, n in self._rows("SELECT hash, n FROM dedup_writer_refs")]

    # -- garbage ---------------------------------------------------------------------------------
    def pending_gc(self) -> list[str]:
        return [str(r[0]) for r in self._rows("SELECT blob_id FROM dedup_chunk_gc LIMIT 1000")]

    def gc_done(self, blob_ids: Sequence[str]) -> None:
        ids = list(blob_ids)
        self._txn(lambda c: c.execute("DELETE FROM dedup_chunk_gc WHERE blob_id = ANY(%s::text[])", (ids,)))

    def totals(self) -> IndexTotals:
        m = self._rows("SELECT count(*), coalesce(sum(size), 0) FROM dedup_manifests")[0]
        c = self._rows("SELECT count(*), coalesce(sum(size), 0) FROM dedup_chunks")[0]
        return IndexTotals(int(m[0]), int(m[1]), int(c[0]), int(c[1]))

    def set_refs(self, fixes: dict[bytes, int]) -> list[str]:
        def run(c: Cur) -> list[str]:
            _lock_chunks(c, sorted(fixes))
            _untrack_below(c, fixes)
            freed = []
            for h, n in sorted(fixes.items()):
                if n > 0:
                    c.execute("UPDATE dedup_chunks SET refs = %s WHERE hash = %s", (n, h))
                    continue
                row = c.execute("DELETE FROM dedup_chunks WHERE hash = %s RETURNING blob_id", (h,)).fetchone()
                if row:
                    c.execute("INSERT INTO dedup_chunk_gc VALUES (%s) ON CONFLICT DO NOTHING", (row[0],))
                    freed.append(str(row[0]))
            return freed

        return self._txn(run)

    def swap_chunk(self, h: bytes, old_blob: str, new_blob: str) -> bool:
        def run(c: Cur) -> bool:
            done = c.execute(
                "UPDATE dedup_chunks SET blob_id = %s WHERE hash = %s AND blob_id = %s",
                (new_blob, h, old_blob),
            ).rowcount
            if not done:
                return False
            c.execute("INSERT INTO dedup_chunk_gc VALUES (%s) ON CONFLICT DO NOTHING", (old_blob,))
            return True

        return self._txn(run)


def _lock_chunks(c: Cur, hashes: list[bytes]) -> list[bytes]:
    """Row-lock the stored chunks among ``hashes`` (sorted), in hash order: every transaction that
    changes refcounts locks this way first, so two of them wait for each other instead of deadlocking."""
    if not hashes:
        return []
    rows = c.execute(
        "SELECT hash FROM dedup_chunks WHERE hash = ANY(%s::bytea[]) ORDER BY hash FOR UPDATE", (hashes,)
    ).fetchall()
    return [bytes(r[0]) for r in rows]


def _add_writer_refs(c: Cur, writer: str, hashes: list[bytes], ns: list[int]) -> None:
    c.execute(
        "INSERT INTO dedup_writer_refs SELECT %s, h, n FROM unnest(%s::bytea[], %s::bigint[]) AS v(h, n) "
        "ON CONFLICT (writer, hash) DO UPDATE SET n = dedup_writer_refs.n + excluded.n",
        (writer, hashes, ns),
    )


def _take_manifest_refs(c: Cur, blob_id: str, counts: Counter[bytes]) -> Counter[bytes]:
    """Of the references a batch of a tracked manifest's records names, those the manifest really
    holds (its ``dedup_manifest_refs`` rows, which shrink by as many): a hash read from damaged
    bytes that the manifest never held releases nothing, not even a chunk another manifest holds.
    The caller holds the manifest's row lock, so no other release of it runs meanwhile."""
    hs = sorted(counts)
    rows = c.execute(
        "SELECT hash, n FROM dedup_manifest_refs WHERE blob_id = %s AND hash = ANY(%s::bytea[])",
        (blob_id, hs),
    ).fetchall()
    take = Counter({bytes(h): min(counts[bytes(h)], int(n)) for h, n in rows})
    if take:
        ts = sorted(take)
        c.execute(
            "UPDATE dedup_manifest_refs r SET n = r.n - v.n "
            "FROM unnest(%s::bytea[], %s::bigint[]) AS v(hash, n) WHERE r.blob_id = %s AND r.hash = v.hash",
            (ts, [take[h] for h in ts], blob_id),
        )
        c.execute("DELETE FROM dedup_manifest_refs WHERE blob_id = %s AND n <= 0", (blob_id,))
    return take


def _untrack_below(c: Cur, fixes: dict[bytes, int]) -> None:
    """fsck counts references from manifest bytes. Where that count is below what the index records
    (tracked manifests' rows and writers), some tracked manifest's bytes are damaged: the manifests
    holding rows of such a chunk fall back to being released from their bytes, as fsck counted
    them, so the forced count and later releases agree (rows released on top of a count that
    already left them out would free a chunk a good manifest still holds)."""
    hs = sorted(fixes)
    rows = c.execute(
        "SELECT hash, sum(n) FROM (SELECT hash, n FROM dedup_manifest_refs WHERE hash = ANY(%s::bytea[]) "
        "UNION ALL SELECT hash, n FROM dedup_writer_refs WHERE hash = ANY(%s::bytea[])) t GROUP BY hash",
        (hs, hs),
    ).fetchall()
    below = sorted(bytes(h) for h, n in rows if fixes[bytes(h)] < int(n))
    if not below:
        return
    ms = c.execute(
        "UPDATE dedup_manifests SET tracked = false WHERE blob_id IN "
        "(SELECT blob_id FROM dedup_manifest_refs WHERE hash = ANY(%s::bytea[])) RETURNING blob_id",
        (below,),
    ).fetchall()
    c.execute("DELETE FROM dedup_manifest_refs WHERE blob_id = ANY(%s::text[])", ([str(r[0]) for r in ms],))


def _unref(c: Cur, counts: Counter[bytes]) -> list[str]:
    """Drop references; chunks that reach zero leave the table and their blobs are queued."""
    hs = sorted(counts)
    if not _lock_chunks(c, hs):
        return []
    c.execute(
        "UPDATE dedup_chunks c SET refs = c.refs - v.n "
        "FROM unnest(%s::bytea[], %s::bigint[]) AS v(hash, n) WHERE c.hash = v.hash",
        (hs, [counts[h] for h in hs]),
    )
    rows = c.execute(
        "DELETE FROM dedup_chunks WHERE hash = ANY(%s::bytea[]) AND refs <= 0 RETURNING blob_id", (hs,)
    ).fetchall()
    freed = [str(r[0]) for r in rows]
    _queue(c, freed)
    return freed


def _queue(c: Cur, blob_ids: list[str]) -> None:
    if blob_ids:
        c.execute("INSERT INTO dedup_chunk_gc SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING", (blob_ids,))


def _rollback_writer(c: Cur, writer: str) -> list[str]:
    """Deleting the writer's row first takes its lock: a step of that writer running elsewhere
    finishes before, and any later step finds the row gone and fails."""
    if c.execute("DELETE FROM dedup_writers WHERE writer = %s RETURNING 1", (writer,)).fetchone() is None:
        return []  # committed or rolled back already (its refs and intents went with its row)
    refs = c.execute(
        "DELETE FROM dedup_writer_refs WHERE writer = %s RETURNING hash, n", (writer,)
    ).fetchall()
    freed = _unref(c, Counter({bytes(h): int(n) for h, n in refs}))
    rows = c.execute(
        "DELETE FROM dedup_writer_blobs WHERE writer = %s RETURNING blob_id", (writer,)
    ).fetchall()
    intents = [str(r[0]) for r in rows]
    _queue(c, intents)
    return freed + intents
