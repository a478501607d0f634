"""SQLite (WAL) metadata store, the embedded default.

Reads run on the caller's thread with their own connection (they are microseconds and WAL never
blocks them); every write runs on one writer thread in a ``BEGIN IMMEDIATE`` transaction, so the
event loop never waits on a commit's fsync and cross-process writers serialise in SQLite itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar, cast

from rs3gw import errors
from rs3gw.meta.bucket_reads import MISS, BucketReads
from rs3gw.meta.listing import Cursor, Fetch, ScanResult, Seek, key_successor, scan
from rs3gw.meta.object_reads import ObjectReads
from rs3gw.meta.store import (
    AccessHit,
    AccessStats,
    BlobUse,
    DeleteOutcome,
    ListQuery,
    MetadataStore,
    VersionQuery,
    WriteCondition,
    bucket_with_configs_sql,
    check_delete_match,
    check_replacement,
    same_version,
    version_time,
)
from rs3gw.model import (
    NULL_VERSION,
    Bucket,
    ObjectListing,
    ObjectMeta,
    ObjectVersion,
    Part,
    PartListing,
    Segment,
    Upload,
    UploadListing,
    VersionListing,
)
from rs3gw.write_turn import WriteTurn

R = TypeVar("R")
_Row = tuple[Any, ...]  # a raw result row, converted to a record only when returned
SCHEMA_VERSION = 2  # v2: object_access (created on open by schema.sql's IF NOT EXISTS)
GC_FLUSH_DELAY = 0.5  # seconds a finished GC row waits for another write's commit to carry it
_OBJ_COLS = (
    "bucket, key, seq, version_id, is_latest, delete_marker, size, etag, last_modified, owner_id, "
    "parts_count, meta, segments"
)
# Listings also take what they render from the metadata document, extracted by SQLite (C): the
# rest of the document is parsed only if something asks for it (see _ListedMeta).
_LIST_COLS = (
    _OBJ_COLS + ", json_extract(meta, '$.sc'), json_extract(meta, '$.ctype'), json_extract(meta, '$.c')"
)


def _meta_json(m: ObjectMeta) -> str:
    return json.dumps(
        {
            "ct": m.content_type,
            "h": m.headers,
            "u": m.user_meta,
            "c": m.checksums,
            "ctype": m.checksum_type,
            "sc": m.storage_class,
            "t": m.tags,
            "x": m.system,
        },
        separators=(",", ":"),
    )


# Each JSONDecoder instance builds its C scanner as ``scan_once`` (undeclared in typeshed).
_scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _loads(text: str) -> Any:
    """json.loads for the compact JSON this module writes, through the C scanner directly:
    a 1000-key listing decodes 2000 of these, and loads' wrapper layers were most of its cost."""
    try:
        value, end = _scan_json(text, 0)
    except StopIteration:
        return json.loads(text)  # not compact (never written by us): the general path
    return value if end == len(text) else json.loads(text)


_META_FIELDS = (
    "content_type", "headers", "user_meta", "checksums", "checksum_type", "storage_class", "tags", "system",
)  # fmt: skip
_OBJ_FIELDS = (
    "bucket", "key", "version_id", "size", "etag", "last_modified", "meta", "segments", "owner_id",
    "parts_count", "is_latest", "delete_marker",
)  # fmt: skip
# A 1000-key listing builds 1000 of each record: filling __dict__ directly skips the frozen
# dataclass __init__ (one object.__setattr__ per field), about half of a row's cost. Only while the
# field sets match exactly; a model change falls back to the constructors.
_FAST = (
    {f.name for f in fields(ObjectMeta)} == set(_META_FIELDS)
    and {f.name for f in fields(ObjectVersion)} == set(_OBJ_FIELDS)
    and {f.name for f in fields(Segment)} == {"blob_id", "size"}
)
_new = object.__new__


def _meta_from(text: str) -> ObjectMeta:
    d = _loads(text)
    if not _FAST:
        return ObjectMeta(
            d["ct"], d["h"], d["u"], d["c"], d["ctype"], d["sc"], d.get("t") or {}, d.get("x") or {}
        )
    m: ObjectMeta = _new(ObjectMeta)
    m.__dict__.update(
        content_type=d["ct"],
        headers=d["h"],
        user_meta=d["u"],
        checksums=d["c"],
        checksum_type=d["ctype"],
        storage_class=d["sc"],
        tags=d.get("t") or {},
        system=d.get("x") or {},
    )
    return m


class _Parsed:
    """A field of ``_ListedMeta`` not filled yet: parses the whole document into the instance's
    ``__dict__`` on first read. A non-data descriptor, so a filled field is a plain dict lookup
    (and it shadows the dataclass's class-level defaults, which ``__getattr__`` would not)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        d = obj.__dict__
        d.update((k, v) for k, v in _meta_from(d.pop("_text")).__dict__.items() if k not in d)
        return d[self.name]


class _ListedMeta(ObjectMeta):
    """A listed version's metadata: storage class and checksums (what a listing renders) filled from
    SQLite's ``json_extract``, the whole document parsed on first access to any other field.

    Why: documents that differ per object (GET counts as older versions wrote them into ``system``,
    which upgraded data directories still carry; per-object user metadata) defeat the per-listing
    memo of parsed documents, and parsing 1000 JSON documents was the difference between 50 and 30
    LISTs/s. GET counts now live in ``object_access`` and leave the documents alone."""

    content_type = _Parsed()
    headers = _Parsed()
    user_meta = _Parsed()
    checksums = _Parsed()
    checksum_type = _Parsed()
    storage_class = _Parsed()
    tags = _Parsed()
    system = _Parsed()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ObjectMeta):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in _META_FIELDS)

    __hash__ = ObjectMeta.__hash__


def _listed_meta(r: sqlite3.Row | tuple[Any, ...]) -> ObjectMeta:
    if not _FAST:
        return _meta_from(r[11])
    m: ObjectMeta = _new(_ListedMeta)
    checksums = r[15]
    m.__dict__.update(
        _text=r[11],
        storage_class=r[13],
        checksum_type=r[14],
        checksums={} if checksums == "{}" else _loads(checksums),
    )
    return m


def _segment(blob_id: str, size: int) -> Segment:
    if not _FAST:
        return Segment(blob_id, size)
    seg: Segment = _new(Segment)
    seg.__dict__.update(blob_id=blob_id, size=size)
    return seg


def _row_to_object(
    r: sqlite3.Row | tuple[Any, ...], memo: dict[str, ObjectMeta] | None = None, with_segments: bool = True
) -> ObjectVersion:
    """``memo`` lets the rows of one listing share one ObjectMeta per distinct metadata text
    (it is frozen and never mutated): most of a bucket's objects carry identical metadata.
    Listings pass ``with_segments=False``: nothing renders data locations, and parsing them was a
    quarter of a 1000-key listing's cost; such records carry an empty ``segments``."""
    segments = tuple([_segment(b, s) for b, s in _loads(r[12])]) if with_segments else ()
    meta = None if memo is None else memo.get(r[11])
    if meta is None:
        meta = _listed_meta(r) if len(r) > 13 else _meta_from(r[11])
        if memo is not None:
            memo[r[11]] = meta
    values = {
        "bucket": r[0],
        "key": bytes(r[1]).decode(),
        "version_id": r[3],
        "is_latest": bool(r[4]),
        "delete_marker": bool(r[5]),
        "size": r[6],
        "etag": r[7],
        "last_modified": r[8],
        "owner_id": r[9],
        "parts_count": r[10],
        "meta": meta,
        "segments": segments,
    }
    if not _FAST:
        return ObjectVersion(**values)
    o: ObjectVersion = _new(ObjectVersion)
    o.__dict__.update(values)
    return o


def _gone_marker_seq(q: VersionQuery) -> int:
    """Where a listing resumes when its version-id-marker's version was deleted after the previous
    page (clients that delete what they list do this): just before the versions created after it.
    Our ids carry their creation time and seq is commit time, so the time places the marker; a
    vanished null version cannot be placed, so that key is resumed from its newest version."""
    if q.version_id_marker == NULL_VERSION:
        return 2**63 - 1
    t = version_time(q.version_id_marker)
    if t is None:
        raise errors.InvalidArgument(
            "Invalid version id specified",
            ArgumentName="version-id-marker",
            ArgumentValue=q.version_id_marker,
        )
    return t


def _upload_from(r: tuple[Any, ...]) -> Upload:
    return Upload(r[0], r[1], bytes(r[2]).decode(), r[3], r[4], _meta_from(r[5]))


# A scan's rows as the page a listing returns; the PostgreSQL store's rows have the same columns.
def _object_listing(res: ScanResult[_Row]) -> ObjectListing:
    memo: dict[str, ObjectMeta] = {}
    objects = [_row_to_object(r, memo, with_segments=False) for r in res.items]
    return ObjectListing(objects, res.prefixes, res.truncated, res.last if res.truncated else None)


def _version_listing(res: ScanResult[_Row]) -> VersionListing:
    memo: dict[str, ObjectMeta] = {}
    versions = [_row_to_object(r, memo, with_segments=False) for r in res.items]
    next_vid = versions[-1].version_id if res.truncated and res.last_seq is not None else None
    return VersionListing(
        versions, res.prefixes, res.truncated, res.last if res.truncated else None, next_vid
    )


def _upload_listing(res: ScanResult[_Row]) -> UploadListing:
    uploads = [_upload_from(r) for r in res.items]
    last_upload = uploads[-1].upload_id if res.truncated and res.last_seq is not None else None
    return UploadListing(
        uploads, res.prefixes, res.truncated, res.last if res.truncated else None, last_upload
    )


def _storage_error(e: BaseException) -> BaseException:
    """SQLite's "database or disk is full" (SQLITE_FULL, or an I/O error from ENOSPC/EDQUOT) as the
    clean 507 a client can retry later, rather than a 500."""
    full = isinstance(e, sqlite3.Error) and getattr(e, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_FULL
    if full or (isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)):
        return errors.InsufficientStorage()
    return e


def _settle(fut: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if fut.cancelled():  # the caller gave up waiting; the write itself has already happened
        return
    ok, value = outcome
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)


class SqliteStore(MetadataStore):
    """Metadata in ``<data_dir>/meta.db``."""

    def __init__(self, path: Path, fsync: bool = True) -> None:
        self._path = path
        self._fsync = fsync
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rs3gw-sqlite-writer")
        self._turn = WriteTurn(path)
        self._reads = BucketReads()  # opened with the store
        self._wconn: sqlite3.Connection | None = None
        self._local = threading.local()
        self._last_seq = 0
        self._pending_lock = threading.Lock()
        self._pending: list[
            tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any], asyncio.AbstractEventLoop, bool]
        ] = []
        # Blobs deleted (``gc_done``) whose queue rows the next group commit removes (under
        # ``_pending_lock``): a commit of their own per overwrite cost a writer hop (and with fsync
        # a WAL sync). Losing them in a crash only means deleting already-gone files once more.
        self._gc_finished: list[str] = []
        self._drain_queued = False  # a ``_drain`` is submitted and has not yet taken the queue
        self._gc_flush: asyncio.AbstractEventLoop | None = None  # the loop a flush is scheduled on

    # -- connections ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if self._fsync else 'OFF'}")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @property
    def _r(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            self._local.objects = ObjectReads()  # that connection's kept object rows
        return conn

    async def _write(self, fn: Callable[[sqlite3.Connection], R], buckets: bool = False) -> R:
        """Queue ``fn`` for the next group commit; resolves only once its transaction has committed.
        ``buckets``: ``fn`` writes bucket rows or documents, so the writer thread bumps the bucket
        read counter (``bucket_reads``) after the commit and before ``fn``'s caller hears of it."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[R] = loop.create_future()
        with self._pending_lock:
            self._pending.append((fn, fut, loop, buckets))
            # A drain submitted but not yet started takes this write too: one wake of the writer
            # thread per batch rather than per write (each costs context switches on the loop).
            submit, self._drain_queued = not self._drain_queued, True
        if submit:
            self._writer.submit(self._drain)
        return await fut

    def _drain(self) -> None:
        """Group commit: every write queued so far shares one BEGIN IMMEDIATE…COMMIT (one WAL fsync).

        Each closure runs inside its own SAVEPOINT, so one that raises is rolled back alone and
        gets its own error while the others still commit. Every ``_write`` submits a drain; the
        first takes the whole queue and the rest find it empty.
        """
        with self._pending_lock:
            batch, self._pending = self._pending, []
            finished, self._gc_finished = self._gc_finished, []
            self._drain_queued = False
        if not batch and not finished:
            return
        if self._wconn is None:
            self._wconn = self._connect()
        conn = self._wconn
        outcomes: list[tuple[bool, Any]] = []
        with self._turn:  # other worker processes' writers queue here, not in a busy wait
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if finished:
                        conn.executemany("DELETE FROM blob_gc WHERE blob_id=?", [(b,) for b in finished])
                    # A lone write needs no savepoint (two statements less): if it fails, the whole
                    # transaction is rolled back below and the error is its alone anyway.
                    isolate = len(batch) > 1
                    for fn, _, _, _ in batch:
                        if isolate:
                            conn.execute("SAVEPOINT w")
                        try:
                            result = fn(conn)
                            if isinstance(result, sqlite3.Cursor):
                                # Closed here, on the writer thread: a cursor finalized later by the
                                # event loop's garbage collection would race this connection's next
                                # statement ("bad parameter or other API misuse").
                                result.close()
                                result = None
                            outcomes.append((True, result))
                        except BaseException as e:  # delivered to that caller alone
                            # Not isolated, or SQLite rolled it all back (SQLITE_FULL, ...): all of it.
                            if not isolate or not conn.in_transaction:
                                raise
                            conn.execute("ROLLBACK TO w")
                            outcomes.append((False, _storage_error(e)))
                        if isolate:
                            conn.execute("RELEASE w")
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except BaseException as e:  # nothing committed: all callers get it
                outcomes = [(False, _storage_error(e))] * len(batch)
                if conn.in_transaction:  # ROLLBACK failed too: a fresh connection, not a wedged one
                    self._wconn = None
                    with contextlib.suppress(sqlite3.Error):
                        conn.close()
        if any(job[3] for job in batch):
            self._reads.changed()
        for (_, fut, loop, _), outcome in zip(batch, outcomes, strict=True):
            try:
                loop.call_soon_threadsafe(_settle, fut, outcome)
            except RuntimeError:  # that caller's event loop is closed: nobody is waiting
                pass

    async def open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        schema = resources.files("rs3gw.meta").joinpath("schema.sql").read_text()

        def init(conn: sqlite3.Connection) -> None:
            conn.executescript(schema)  # every statement IF NOT EXISTS: adds v2's tables to a v1 file
            if conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 0:
                conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            else:
                conn.execute(
                    "UPDATE schema_version SET version=? WHERE version<?", (SCHEMA_VERSION, SCHEMA_VERSION)
                )

        def run() -> None:
            with self._turn:  # workers starting together take turns at the schema
                self._wconn = self._connect()
                self._wconn.executescript("PRAGMA journal_mode=WAL;")
                init(self._wconn)

        await asyncio.get_running_loop().run_in_executor(self._writer, run)
        self._reads.open(self._path)

    async def close(self) -> None:
        def shut() -> None:
            self._drain()  # rows of deleted blobs still waiting for a commit
            if self._wconn is not None:
                self._wconn.close()
                self._wconn = None
            self._turn.close()

        await asyncio.get_running_loop().run_in_executor(self._writer, shut)
        self._writer.shutdown(wait=True)
        self._reads.close()

    def _next_seq(self, conn: sqlite3.Connection, bucket: str, key: bytes) -> int:
        row = conn.execute("SELECT max(seq) FROM objects WHERE bucket=? AND key=?", (bucket, key)).fetchone()
        self._last_seq = max(time.time_ns(), self._last_seq + 1, (row[0] or 0) + 1)
        return self._last_seq

    # -- buckets -------------------------------------------------------------------------------
    async def create_bucket(self, bucket: Bucket) -> None:
        def fn(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT owner_id FROM buckets WHERE name=?", (bucket.name,)).fetchone()
            if row is not None:
                if row[0] == bucket.owner_id:
                    raise errors.BucketAlreadyOwnedByYou(BucketName=bucket.name)
                raise errors.BucketAlreadyExists(BucketName=bucket.name)
            conn.execute(
                "INSERT INTO buckets (name, owner_id, created, region, versioning) VALUES (?,?,?,?,?)",
                (bucket.name, bucket.owner_id, bucket.created, bucket.region, bucket.versioning),
            )

        await self._write(fn, buckets=True)

    async def get_bucket(self, name: str) -> Bucket | None:
        row = self._r.execute(
            "SELECT name, owner_id, created, region, versioning FROM buckets WHERE name=?", (name,)
        ).fetchone()
        return Bucket(*row) if row else None

    async def list_buckets(self, owner_id: str) -> list[Bucket]:
        rows = self._r.execute(
            "SELECT name, owner_id, created, region, versioning FROM buckets WHERE owner_id=? ORDER BY name",
            (owner_id,),
        ).fetchall()
        return [Bucket(*r) for r in rows]

    async def list_all_buckets(self) -> list[Bucket]:
        sql = "SELECT name, owner_id, created, region, versioning FROM buckets ORDER BY name"
        return [Bucket(*r) for r in self._r.execute(sql).fetchall()]

    async def delete_bucket(self, name: str) -> list[str]:
        def fn(conn: sqlite3.Connection) -> list[str]:
            if conn.execute("SELECT 1 FROM objects WHERE bucket=? LIMIT 1", (name,)).fetchone():
                raise errors.BucketNotEmpty(BucketName=name)
            ids = [u[0] for u in conn.execute("SELECT upload_id FROM uploads WHERE bucket=?", (name,))]
            freed: list[str] = []
            for uid in ids:
                freed += self._drop_upload(conn, uid)
            if conn.execute("DELETE FROM buckets WHERE name=?", (name,)).rowcount == 0:
                raise errors.NoSuchBucket(BucketName=name)
            conn.execute("DELETE FROM bucket_config WHERE bucket=?", (name,))
            conn.execute("DELETE FROM object_access WHERE bucket=?", (name,))  # none left: belt and braces
            return freed

        return await self._write(fn, buckets=True)

    async def set_versioning(self, name: str, status: str) -> None:
        await self._write(
            lambda c: c.execute("UPDATE buckets SET versioning=? WHERE name=?", (status, name)), buckets=True
        )

    async def get_bucket_config(self, bucket: str, name: str) -> str | None:
        key, gen = ("doc", bucket, name), self._reads.generation()
        if (hit := self._reads.get(key, gen)) is not MISS:
            return cast("str | None", hit)
        row = self._r.execute(
            "SELECT value FROM bucket_config WHERE bucket=? AND name=?", (bucket, name)
        ).fetchone()
        value = row[0] if row else None
        self._reads.put(bucket, key, gen, value)
        return value

    async def get_bucket_with_config(self, bucket: str, name: str) -> tuple[Bucket | None, str | None]:
        """One query instead of two: the per-request authorization read (bucket + its policy)."""
        rec, docs = await self.get_bucket_with_configs(bucket, (name,))
        return rec, docs[0]

    async def get_bucket_with_configs(
        self, bucket: str, names: tuple[str, ...]
    ) -> tuple[Bucket | None, tuple[str | None, ...]]:
        """One query for the bucket and several of its documents (authorization of GET/HEAD/PUT:
        the policy and the lifecycle document), each document a primary-key join; none at all
        while the process's memo of them holds (``bucket_reads``)."""
        key, gen = (bucket, names), self._reads.generation()
        if (hit := self._reads.get(key, gen)) is not MISS:
            return cast("tuple[Bucket | None, tuple[str | None, ...]]", hit)
        row = self._r.execute(bucket_with_configs_sql(len(names), "?"), (*names, bucket)).fetchone()
        result: tuple[Bucket | None, tuple[str | None, ...]] = (
            (None, (None,) * len(names)) if row is None else (Bucket(*row[:5]), tuple(row[5:]))
        )
        self._reads.put(bucket, key, gen, result)
        return result

    async def get_bucket_configs(self, bucket: str, names: Sequence[str]) -> dict[str, str]:
        """One query for the documents a PutObject reads (instead of one per document)."""
        marks = ",".join("?" * len(names))
        sql = f"SELECT name, value FROM bucket_config WHERE bucket=? AND name IN ({marks})"
        return dict(self._r.execute(sql, (bucket, *names)).fetchall())

    async def put_bucket_config(self, bucket: str, name: str, value: str | None) -> None:
        def fn(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM buckets WHERE name=?", (bucket,)).fetchone() is None:
                raise errors.NoSuchBucket(BucketName=bucket)
            if value is None:
                conn.execute("DELETE FROM bucket_config WHERE bucket=? AND name=?", (bucket, name))
            else:
                conn.execute("INSERT OR REPLACE INTO bucket_config VALUES (?,?,?)", (bucket, name, value))

        await self._write(fn, buckets=True)

    async def get_server_doc(self, kind: str, name: str) -> str | None:
        row = self._r.execute(
            "SELECT value FROM server_docs WHERE kind=? AND name=?", (kind, name)
        ).fetchone()
        return str(row[0]) if row else None

    async def list_server_docs(self, kind: str) -> dict[str, str]:
        rows = self._r.execute("SELECT name, value FROM server_docs WHERE kind=?", (kind,)).fetchall()
        return {str(n): str(v) for n, v in rows}

    async def put_server_doc(self, kind: str, name: str, value: str | None, create: bool = False) -> bool:
        def fn(conn: sqlite3.Connection) -> bool:
            args: tuple[str, ...]
            if value is None:
                sql, args = "DELETE FROM server_docs WHERE kind=? AND name=?", (kind, name)
            else:
                verb = "INSERT OR IGNORE" if create else "INSERT OR REPLACE"
                sql, args = f"{verb} INTO server_docs VALUES (?,?,?)", (kind, name, value)
            return conn.execute(sql, args).rowcount > 0

        return await self._write(fn)

    # -- registry ------------------------------------------------------------------------------
    async def registry_get(self, kind: str, name: str) -> tuple[str, int] | None:
        row = self._r.execute(
            "SELECT doc, rev FROM registry WHERE kind=? AND name=?", (kind, name)
        ).fetchone()
        return (row[0], row[1]) if row else None

    async def registry_put(self, kind: str, name: str, doc: str, expect_revision: int) -> int:
        def fn(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT rev FROM registry WHERE kind=? AND name=?", (kind, name)).fetchone()
            if (row[0] if row else 0) != expect_revision:
                raise errors.RegistryConflict(f"{kind} {name!r} was changed concurrently or already exists")
            conn.execute(
                "INSERT OR REPLACE INTO registry VALUES (?,?,?,?)", (kind, name, doc, expect_revision + 1)
            )
            return expect_revision + 1

        return await self._write(fn)

    async def registry_list(self, kind: str, prefix: str = "") -> list[tuple[str, str, int]]:
        rows = self._r.execute(
            "SELECT name, doc, rev FROM registry WHERE kind=? AND substr(name, 1, ?)=? ORDER BY name",
            (kind, len(prefix), prefix),
        ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    async def update_object_meta(
        self,
        bucket: str,
        key: str,
        version_id: str | None,
        meta: ObjectMeta,
        expect: ObjectVersion | None = None,
    ) -> ObjectVersion:
        def fn(conn: sqlite3.Connection) -> ObjectVersion:
            cur = self._get_object(conn, bucket, key.encode(), version_id)
            if cur is None and version_id is not None:
                raise errors.NoSuchVersion(Key=key, VersionId=version_id)
            if cur is None or cur.delete_marker:  # a marker has no metadata to change
                raise errors.NoSuchKey(Key=key) if version_id is None else errors.MethodNotAllowed()
            if not same_version(cur, expect):
                raise errors.PreconditionFailed()
            conn.execute(
                "UPDATE objects SET meta=? WHERE bucket=? AND key=? AND version_id=?",
                (_meta_json(meta), bucket, key.encode(), cur.version_id),
            )
            return replace(cur, meta=meta)

        return await self._write(fn)

    async def replace_segments(
        self,
        bucket: str,
        key: str,
        version_id: str,
        segments: tuple[Segment, ...],
        meta: ObjectMeta,
        expect: ObjectVersion,
    ) -> list[str]:
        def fn(conn: sqlite3.Connection) -> list[str]:
            cur = self._get_object(conn, bucket, key.encode(), version_id)
            old = check_replacement(cur, key, version_id, segments, expect)
            conn.execute(
                "UPDATE objects SET segments=?, meta=? WHERE bucket=? AND key=? AND version_id=?",
                (
                    json.dumps([[s.blob_id, s.size] for s in segments], separators=(",", ":")),
                    _meta_json(meta),
                    bucket,
                    key.encode(),
                    version_id,
                ),
            )
            return self._queue_gc(conn, old)

        return await self._write(fn)

    # -- objects -------------------------------------------------------------------------------
    async def get_object(self, bucket: str, key: str, version_id: str | None = None) -> ObjectVersion | None:
        conn, kb = self._r, key.encode()
        objects: ObjectReads = self._local.objects
        return cast(
            "ObjectVersion | None",
            objects.read(
                conn, bucket, kb, version_id, lambda: self._get_object(conn, bucket, kb, version_id)
            ),
        )

    def _get_object(
        self, conn: sqlite3.Connection, bucket: str, key: bytes, version_id: str | None
    ) -> ObjectVersion | None:
        if version_id is None:
            sql = f"SELECT {_OBJ_COLS} FROM objects WHERE bucket=? AND key=? AND is_latest=1"
            row = conn.execute(sql, (bucket, key)).fetchone()
        else:
            sql = f"SELECT {_OBJ_COLS} FROM objects WHERE bucket=? AND key=? AND version_id=?"
            row = conn.execute(sql, (bucket, key, version_id)).fetchone()
        return _row_to_object(row) if row else None

    def _check(self, conn: sqlite3.Connection, obj: ObjectVersion, cond: WriteCondition) -> None:
        if not cond.if_none_match_any and cond.if_match is None:
            return
        cur = self._get_object(conn, obj.bucket, obj.key.encode(), None)
        exists = cur is not None and not cur.delete_marker
        if cond.if_none_match_any and exists:
            raise errors.PreconditionFailed(Condition="If-None-Match")
        matched = cur is not None and cond.if_match in ("*", cur.etag)
        if cond.if_match is not None and (not exists or not matched):
            if not exists and cond.if_match != "*":  # If-Match: * (RFC 9110) fails with 412
                raise errors.NoSuchKey(Key=obj.key)
            raise errors.PreconditionFailed(Condition="If-Match")

    def _insert(self, conn: sqlite3.Connection, obj: ObjectVersion, keep_old: bool) -> list[str]:
        """Make ``obj`` the latest version of its key; returns blobs freed by a replaced null version."""
        if conn.execute("SELECT 1 FROM buckets WHERE name=?", (obj.bucket,)).fetchone() is None:
            raise errors.NoSuchBucket(BucketName=obj.bucket)
        key = obj.key.encode()
        freed: list[str] = []
        if not keep_old or obj.version_id == NULL_VERSION:
            # No promotion of the next newest: the UPDATE below would demote it again at once.
            freed = self._remove_version(conn, obj.bucket, key, NULL_VERSION, promote=False)
        conn.execute(
            "UPDATE objects SET is_latest=0 WHERE bucket=? AND key=? AND is_latest=1", (obj.bucket, key)
        )
        seq = self._next_seq(conn, obj.bucket, key)
        conn.execute(
            f"INSERT INTO objects ({_OBJ_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                obj.bucket,
                key,
                seq,
                obj.version_id,
                1,
                int(obj.delete_marker),
                obj.size,
                obj.etag,
                obj.last_modified,
                obj.owner_id,
                obj.parts_count,
                _meta_json(obj.meta),
                json.dumps([[s.blob_id, s.size] for s in obj.segments], separators=(",", ":")),
            ),
        )
        return freed

    def _remove_version(
        self, conn: sqlite3.Connection, bucket: str, key: bytes, version_id: str, promote: bool = True
    ) -> list[str]:
        row = conn.execute(
            "SELECT seq, segments, is_latest FROM objects WHERE bucket=? AND key=? AND version_id=?",
            (bucket, key, version_id),
        ).fetchone()
        if row is None:
            return []
        conn.execute("DELETE FROM objects WHERE bucket=? AND key=? AND seq=?", (bucket, key, row[0]))
        # Its GET counts go with it: a later version under the same id ("null") starts at zero.
        conn.execute(
            "DELETE FROM object_access WHERE bucket=? AND key=? AND version_id=?", (bucket, key, version_id)
        )
        if row[2] and promote:  # promote the next newest version
            conn.execute(
                "UPDATE objects SET is_latest=1 WHERE bucket=? AND key=? AND seq="
                "(SELECT max(seq) FROM objects WHERE bucket=? AND key=?)",
                (bucket, key, bucket, key),
            )
        blobs = [b for b, _ in json.loads(row[1])]
        return self._queue_gc(conn, blobs)

    def _queue_gc(self, conn: sqlite3.Connection, blobs: list[str]) -> list[str]:
        now = time.time()
        conn.executemany("INSERT OR IGNORE INTO blob_gc VALUES (?, ?)", [(b, now) for b in blobs])
        return blobs

    async def put_object(self, obj: ObjectVersion, cond: WriteCondition, keep_old: bool) -> list[str]:
        def fn(conn: sqlite3.Connection) -> list[str]:
            self._check(conn, obj, cond)
            return self._insert(conn, obj, keep_old)

        return await self._write(fn)

    async def delete_object(
        self,
        bucket: str,
        key: str,
        version_id: str | None,
        marker: ObjectVersion | None,
        if_match: str | None = None,
    ) -> DeleteOutcome:
        kb = key.encode()

        def fn(conn: sqlite3.Connection) -> DeleteOutcome:
            if if_match is not None:  # in the transaction: no PUT can land between check and delete
                check_delete_match(self._get_object(conn, bucket, kb, version_id), key, if_match)
            if version_id is None and marker is not None:
                freed = self._insert(conn, marker, keep_old=marker.version_id != NULL_VERSION)
                return DeleteOutcome(None, marker, freed)
            vid = version_id or NULL_VERSION
            existing = self._get_object(conn, bucket, kb, vid)
            freed = self._remove_version(conn, bucket, kb, vid)
            return DeleteOutcome(existing, None, freed)

        return await self._write(fn)

    def _fetch_latest(self, bucket: str) -> Fetch[_Row]:
        def fetch(cur: Cursor, limit: int) -> Iterator[tuple[bytes, int, _Row]]:
            op = ">=" if cur.inclusive else ">"
            sql = (
                f"SELECT {_LIST_COLS} FROM objects WHERE bucket=? AND key {op} ? AND is_latest=1 "
                "AND delete_marker=0 ORDER BY key LIMIT ?"
            )
            for r in self._r.execute(sql, (bucket, cur.key, limit)):
                yield r[1], r[2], r

        return fetch

    def _seek(self, bucket: str, latest: bool) -> Seek:
        where = "is_latest=1 AND delete_marker=0 AND " if latest else ""
        sql = f"SELECT key FROM objects WHERE {where}bucket=? AND key >= ? ORDER BY key LIMIT 1"

        def seek(cur: Cursor) -> bytes | None:
            row = self._r.execute(sql, (bucket, cur.key)).fetchone()
            return None if row is None else bytes(row[0])

        return seek

    async def list_objects(self, bucket: str, q: ListQuery) -> ObjectListing:
        res = scan(
            self._fetch_latest(bucket),
            q.prefix,
            q.delimiter,
            q.start_after,
            q.max_keys,
            seek=self._seek(bucket, latest=True),
        )
        return _object_listing(res)

    def _fetch_versions(self, bucket: str) -> Fetch[_Row]:
        def fetch(cur: Cursor, limit: int) -> Iterator[tuple[bytes, int, _Row]]:
            op = ">=" if cur.inclusive else ">"
            if cur.seq is not None:  # the rest of this key's versions (newest first) come first
                sql = (
                    f"SELECT {_LIST_COLS} FROM objects WHERE bucket=? AND key=? AND seq<? "
                    "ORDER BY seq DESC LIMIT ?"
                )
                for r in self._r.execute(sql, (bucket, cur.key, cur.seq, limit)):
                    yield r[1], r[2], r
                op = ">"
            sql = f"SELECT {_LIST_COLS} FROM objects WHERE bucket=? AND key {op} ? ORDER BY key, seq DESC LIMIT ?"
            for r in self._r.execute(sql, (bucket, cur.key, limit)):
                yield r[1], r[2], r

        return fetch

    async def list_versions(self, bucket: str, q: VersionQuery) -> VersionListing:
        start: Cursor | None = None
        if q.key_marker and q.version_id_marker:
            row = self._r.execute(
                "SELECT seq FROM objects WHERE bucket=? AND key=? AND version_id=?",
                (bucket, q.key_marker.encode(), q.version_id_marker),
            ).fetchone()
            start = Cursor(q.key_marker.encode(), seq=row[0] if row else _gone_marker_seq(q))
        res = scan(
            self._fetch_versions(bucket),
            q.prefix,
            q.delimiter,
            q.key_marker,
            q.max_keys,
            start,
            versions=True,
            seek=self._seek(bucket, latest=False),
        )
        return _version_listing(res)

    # -- multipart -----------------------------------------------------------------------------
    async def create_upload(self, upload: Upload) -> None:
        await self._write(
            lambda c: c.execute(
                "INSERT INTO uploads VALUES (?,?,?,?,?,?)",
                (
                    upload.upload_id,
                    upload.bucket,
                    upload.key.encode(),
                    upload.initiated,
                    upload.owner_id,
                    _meta_json(upload.meta),
                ),
            )
        )

    async def get_upload(self, upload_id: str) -> Upload | None:
        row = self._r.execute("SELECT * FROM uploads WHERE upload_id=?", (upload_id,)).fetchone()
        return _upload_from(row) if row else None

    async def put_part(self, upload_id: str, part: Part) -> list[str]:
        def fn(conn: sqlite3.Connection) -> list[str]:
            if conn.execute("SELECT 1 FROM uploads WHERE upload_id=?", (upload_id,)).fetchone() is None:
                raise errors.NoSuchUpload(UploadId=upload_id)
            old = conn.execute(
                "SELECT blob_id FROM parts WHERE upload_id=? AND part_number=?", (upload_id, part.part_number)
            ).fetchone()
            conn.execute(
                "INSERT OR REPLACE INTO parts VALUES (?,?,?,?,?,?,?)",
                (
                    upload_id,
                    part.part_number,
                    part.size,
                    part.etag,
                    part.last_modified,
                    part.blob_id,
                    json.dumps(part.checksums),
                ),
            )
            return self._queue_gc(conn, [old[0]]) if old and old[0] != part.blob_id else []

        return await self._write(fn)

    def _parts(self, conn: sqlite3.Connection, upload_id: str, marker: int, limit: int) -> list[Part]:
        rows = conn.execute(
            "SELECT part_number, size, etag, last_modified, blob_id, checksums FROM parts "
            "WHERE upload_id=? AND part_number>? ORDER BY part_number LIMIT ?",
            (upload_id, marker, limit),
        )
        return [Part(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    async def get_parts(self, upload_id: str) -> dict[int, Part]:
        return {p.part_number: p for p in self._parts(self._r, upload_id, 0, 20000)}

    async def list_parts(self, upload_id: str, marker: int, max_parts: int) -> PartListing:
        parts = self._parts(self._r, upload_id, marker, max_parts + 1)
        truncated = len(parts) > max_parts
        parts = parts[:max_parts]
        return PartListing(parts, truncated, parts[-1].part_number if parts else 0)

    def _drop_upload(
        self, conn: sqlite3.Connection, upload_id: str, keep: set[int] | None = None
    ) -> list[str]:
        keep = keep or set()
        blobs = [
            r[1]
            for r in conn.execute("SELECT part_number, blob_id FROM parts WHERE upload_id=?", (upload_id,))
            if r[0] not in keep
        ]
        conn.execute("DELETE FROM parts WHERE upload_id=?", (upload_id,))
        conn.execute("DELETE FROM uploads WHERE upload_id=?", (upload_id,))
        return self._queue_gc(conn, blobs)

    async def complete_upload(
        self, upload_id: str, obj: ObjectVersion, used_parts: set[int], cond: WriteCondition, keep_old: bool
    ) -> list[str]:
        def fn(conn: sqlite3.Connection) -> list[str]:
            if conn.execute("SELECT 1 FROM uploads WHERE upload_id=?", (upload_id,)).fetchone() is None:
                raise errors.NoSuchUpload(UploadId=upload_id)
            self._check(conn, obj, cond)
            freed = self._drop_upload(conn, upload_id, keep=used_parts)
            return freed + self._insert(conn, obj, keep_old)

        return await self._write(fn)

    async def abort_upload(self, upload_id: str) -> list[str]:
        def fn(conn: sqlite3.Connection) -> list[str]:
            if conn.execute("SELECT 1 FROM uploads WHERE upload_id=?", (upload_id,)).fetchone() is None:
                raise errors.NoSuchUpload(UploadId=upload_id)
            return self._drop_upload(conn, upload_id)

        return await self._write(fn)

    async def list_uploads(
        self,
        bucket: str,
        prefix: str,
        delimiter: str,
        key_marker: str,
        upload_id_marker: str,
        max_uploads: int,
    ) -> UploadListing:
        # Several uploads share a key: order them by rowid (creation) and expose seq = -rowid so
        # the generic "entries of this key after seq" cursor walks them oldest first.
        cols = "upload_id, bucket, key, initiated, owner_id, meta, rowid"

        def fetch(cur: Cursor, limit: int) -> Iterator[tuple[bytes, int, _Row]]:
            op = ">=" if cur.inclusive else ">"
            if cur.seq is not None:
                sql = (
                    f"SELECT {cols} FROM uploads WHERE bucket=? AND key=? AND rowid>? ORDER BY rowid LIMIT ?"
                )
                for r in self._r.execute(sql, (bucket, cur.key, -cur.seq, limit)):
                    yield r[2], -r[6], r
                op = ">"
            sql = f"SELECT {cols} FROM uploads WHERE bucket=? AND key {op} ? ORDER BY key, rowid LIMIT ?"
            for r in self._r.execute(sql, (bucket, cur.key, limit)):
                yield r[2], -r[6], r

        start: Cursor | None = None
        if key_marker and upload_id_marker:
            row = self._r.execute(
                "SELECT rowid FROM uploads WHERE bucket=? AND key=? AND upload_id=?",
                (bucket, key_marker.encode(), upload_id_marker),
            ).fetchone()
            start = Cursor(key_marker.encode(), seq=-row[0]) if row else Cursor(key_marker.encode())
        res = scan(fetch, prefix, delimiter, key_marker, max_uploads, start, versions=True)
        return _upload_listing(res)

    # -- GET counts ----------------------------------------------------------------------------
    async def add_access(self, hits: Sequence[AccessHit]) -> int:
        rows = [
            (h.last, h.count, h.bucket, h.key.encode(), h.version_id, h.etag, h.last_modified)
            for h in hits
            if h.count > 0
        ]
        if not rows:
            return 0

        def fn(conn: sqlite3.Connection) -> int:
            # On the writer thread, inside the transaction: the version checked is the one counted.
            return conn.executemany(_ADD_ACCESS, rows).rowcount

        return await self._write(fn)

    async def get_access(self, bucket: str, key: str, version_id: str) -> AccessStats | None:
        row = self._r.execute(
            "SELECT last_access, gets FROM object_access WHERE bucket=? AND key=? AND version_id=?",
            (bucket, key.encode(), version_id),
        ).fetchone()
        return AccessStats(row[0], row[1]) if row else None

    async def bucket_access(self, bucket: str) -> dict[tuple[str, str], AccessStats]:
        def run() -> dict[tuple[str, str], AccessStats]:  # a whole bucket's rows: off the event loop
            sql = "SELECT key, version_id, last_access, gets FROM object_access WHERE bucket=?"
            return {(_key_text(k), v): AccessStats(t, n) for k, v, t, n in self._r.execute(sql, (bucket,))}

        return await asyncio.to_thread(run)

    # -- blob GC -------------------------------------------------------------------------------
    async def pending_gc(self, limit: int = 1000) -> list[str]:
        with self._pending_lock:
            done = set(self._gc_finished)
        rows = self._r.execute("SELECT blob_id FROM blob_gc LIMIT ?", (limit + len(done),))
        return [r[0] for r in rows if r[0] not in done][:limit]

    async def gc_done(self, blob_ids: list[str]) -> None:
        """Rows removed by the next group commit, not one of their own; an idle store commits them
        after ``GC_FLUSH_DELAY`` (and ``close`` does). Until then ``pending_gc`` and
        ``queued_blobs`` leave them out, so this process sees them done at once."""
        if not blob_ids:
            return
        with self._pending_lock:
            self._gc_finished.extend(blob_ids)
        loop = asyncio.get_running_loop()
        if self._gc_flush is not loop:  # none scheduled, or on another (maybe closed) loop
            self._gc_flush = loop
            loop.call_later(GC_FLUSH_DELAY, self._flush_gc)

    def _flush_gc(self) -> None:
        self._gc_flush = None
        with self._pending_lock:
            idle = bool(self._gc_finished)
        if idle:
            with contextlib.suppress(RuntimeError):  # shut down meanwhile: close() drained them
                self._writer.submit(self._drain)

    async def bucket_usage(self, bucket: str) -> tuple[int, int]:
        def run() -> tuple[int, int]:  # a scan of the bucket's rows: off the event loop
            sql = "SELECT count(*), coalesce(sum(size), 0) FROM objects WHERE bucket=? AND delete_marker=0"
            n, size = self._r.execute(sql, (bucket,)).fetchone()
            return int(n), int(size)

        return await asyncio.to_thread(run)

    async def referenced_blobs(self) -> set[str]:
        out: set[str] = set()
        for (segs,) in self._r.execute("SELECT segments FROM objects"):
            out.update(b for b, _ in json.loads(segs))
        out.update(r[0] for r in self._r.execute("SELECT blob_id FROM parts"))
        return out

    async def blob_uses(self) -> list[BlobUse]:
        def run() -> list[BlobUse]:  # a scan of every version: off the event loop
            objects = self._r.execute(BLOB_USES_OBJECTS.format(live="delete_marker=0")).fetchall()
            return blob_uses_from(objects, self._r.execute(BLOB_USES_PARTS).fetchall())

        return await asyncio.to_thread(run)

    async def queued_blobs(self) -> set[str]:
        with self._pending_lock:
            done = set(self._gc_finished)
        return {r[0] for r in self._r.execute("SELECT blob_id FROM blob_gc")} - done


# ``add_access``'s upsert, shared with the PostgreSQL store (SQLite swaps in ``?``; max() of two
# values is SQLite's greatest()). It inserts only while the version read is still stored (same
# etag and last-modified, not a marker), so a count for a version replaced or deleted since the
# GET is dropped; {lock} lets PostgreSQL hold that row until commit.
ADD_ACCESS = (
    "INSERT INTO object_access (bucket, key, version_id, last_access, gets) "
    "SELECT bucket, key, version_id, %s, %s FROM objects WHERE bucket=%s AND key=%s AND version_id=%s "
    "AND etag=%s AND last_modified=%s AND {not_marker}{lock} "
    "ON CONFLICT (bucket, key, version_id) DO UPDATE SET "
    "last_access={greatest}(object_access.last_access, excluded.last_access), "
    "gets=object_access.gets + excluded.gets"
)
_ADD_ACCESS = ADD_ACCESS.format(not_marker="delete_marker=0", lock="", greatest="max").replace("%s", "?")

# The queries behind ``blob_uses``, shared with the PostgreSQL store ({live}: "not a delete marker").
BLOB_USES_OBJECTS = "SELECT bucket, key, version_id, segments FROM objects WHERE {live}"
BLOB_USES_PARTS = (
    "SELECT u.bucket, u.key, p.upload_id, p.part_number, p.blob_id, p.size "
    "FROM parts p LEFT JOIN uploads u ON u.upload_id = p.upload_id"
)


def _key_text(raw: object) -> str:
    """A stored key as text; bytes that are not UTF-8 (never written by rs3gw) survive as escapes."""
    return bytes(raw).decode("utf-8", "surrogateescape") if isinstance(raw, bytes | memoryview) else str(raw)


def blob_uses_from(objects: list[Any], parts: list[Any]) -> list[BlobUse]:
    """``blob_uses`` from the rows of BLOB_USES_OBJECTS and BLOB_USES_PARTS (either store's)."""
    out = [
        BlobUse(bucket, _key_text(key), vid, blob_id, size)
        for bucket, key, vid, segs in objects
        for blob_id, size in json.loads(segs)
    ]
    out += [
        BlobUse(bucket or "", _key_text(key or b""), f"upload:{upload_id}#{part}", blob_id, size)
        for bucket, key, upload_id, part, blob_id, size in parts
    ]
    return out


__all__ = ["SqliteStore", "key_successor"]
