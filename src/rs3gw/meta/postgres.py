"""PostgreSQL metadata store: several gateway processes (or machines) share one database.

Same semantics as ``SqliteStore`` (records are encoded the same way, listings go through the same
scanner), but every write is one PostgreSQL transaction that serialises against other gateways by
database locks, never by in-process ones:

* a transaction-scoped advisory lock per (bucket, key) orders all writers of one key — conditional
  writes, overwrites, deletes, versioning and multipart completion — including keys that have no
  row yet (an If-None-Match: * create race), which a row lock could not cover;
* writers take ``FOR KEY SHARE`` on their bucket's row and DeleteBucket takes ``FOR UPDATE``, so a
  bucket is never deleted under a concurrent PUT;
* part uploads share-lock their upload row, completion and abort lock it exclusively, so no part
  lands in an upload that is being completed;
* a unique index allows one latest version per key, so a bug cannot silently fork a key's history.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace

from rs3gw import errors
from rs3gw.meta.dsn import redact, split_params
from rs3gw.meta.listing import Cursor, Fetch, Seek, scan
from rs3gw.meta.pg_support import Conn, Database, Query, fetchall, fetchone, lock_key
from rs3gw.meta.sqlite import (
    _OBJ_COLS,
    ADD_ACCESS,
    BLOB_USES_OBJECTS,
    BLOB_USES_PARTS,
    _gone_marker_seq,
    _key_text,
    _meta_json,
    _object_listing,
    _Row,
    _row_to_object,
    _upload_from,
    _upload_listing,
    _version_listing,
    blob_uses_from,
)
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

# Another gateway may have read a blob's location just before a write here freed it; it opens
# the blob within milliseconds, so this is generous (a multi-segment object read slower than this
# while being overwritten elsewhere can still lose its later segments).
GC_GRACE = 30.0
_BUCKET_COLS = "name, owner_id, created, region, versioning"
_UPLOAD_COLS = "upload_id, bucket, key, initiated, owner_id, meta, seq"
# FOR KEY SHARE holds the counted version's row until commit: a concurrent delete or overwrite
# (which removes the row and its counts in one transaction) waits, or has already committed and
# the row is skipped, so no count is ever left behind for a version that is gone.
_ADD_ACCESS = ADD_ACCESS.format(not_marker="NOT delete_marker", lock=" FOR KEY SHARE", greatest="greatest")


def _segments_json(obj: ObjectVersion) -> str:
    return json.dumps([[s.blob_id, s.size] for s in obj.segments], separators=(",", ":"))


class PostgresStore(MetadataStore):
    """Metadata in the PostgreSQL database that ``dsn`` (a postgresql:// URL) names."""

    def __init__(
        self, dsn: str, min_size: int = 1, max_size: int = 10, gc_grace: float | None = None
    ) -> None:
        """``gc_grace`` defaults to the URL's ``gc_grace`` parameter, else GC_GRACE; 0 suits a
        database only one gateway uses (tests that watch blobs go away at once)."""
        dsn, own = split_params(dsn)
        if gc_grace is None:
            try:
                gc_grace = float(own.get("gc_grace", GC_GRACE))
            except ValueError:
                raise SystemExit(
                    f"rs3gw: metadata URL: gc_grace must be seconds, got {own['gc_grace']!r}"
                ) from None
        self._db = Database(dsn, min_size, max_size)
        self._last_seq = 0
        self.gc_grace = max(0.0, gc_grace)

    @property
    def label(self) -> str:
        return redact(self._db.dsn)

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    # -- shared steps (inside a transaction) ---------------------------------------------------
    async def _lock_bucket(self, conn: Conn, name: str) -> None:
        if await fetchone(conn, "SELECT 1 FROM buckets WHERE name=%s FOR KEY SHARE", (name,)) is None:
            raise errors.NoSuchBucket(BucketName=name)

    async def _get_object(
        self, conn: Conn, bucket: str, key: bytes, version_id: str | None
    ) -> ObjectVersion | None:
        if version_id is None:
            sql = f"SELECT {_OBJ_COLS} FROM objects WHERE bucket=%s AND key=%s AND is_latest"
            row = await fetchone(conn, sql, (bucket, key))
        else:
            sql = f"SELECT {_OBJ_COLS} FROM objects WHERE bucket=%s AND key=%s AND version_id=%s"
            row = await fetchone(conn, sql, (bucket, key, version_id))
        return _row_to_object(row) if row else None

    async def _check(self, conn: Conn, obj: ObjectVersion, cond: WriteCondition) -> None:
        """Runs under the key's lock, so the state checked is the state the write replaces."""
        if not cond.if_none_match_any and cond.if_match is None:
            return
        cur = await self._get_object(conn, obj.bucket, obj.key.encode(), None)
        exists = cur is not None and not cur.delete_marker
        if cond.if_none_match_any and exists:
            raise errors.PreconditionFailed(Condition="If-None-Match")
        matched = cur is not None and cond.if_match in ("*", cur.etag)
        if cond.if_match is not None and (not exists or not matched):
            if not exists and cond.if_match != "*":  # If-Match: * (RFC 9110) fails with 412
                raise errors.NoSuchKey(Key=obj.key)
            raise errors.PreconditionFailed(Condition="If-Match")

    async def _next_seq(self, conn: Conn, bucket: str, key: bytes) -> int:
        """Commit-time order, kept above the key's newest seq even if gateways' clocks disagree."""
        row = await fetchone(conn, "SELECT max(seq) FROM objects WHERE bucket=%s AND key=%s", (bucket, key))
        newest = (row[0] if row else None) or 0
        self._last_seq = max(time.time_ns(), self._last_seq + 1, newest + 1)
        return self._last_seq

    async def _insert(self, conn: Conn, obj: ObjectVersion, keep_old: bool) -> list[str]:
        """Make ``obj`` the latest version of its key (key locked); returns blobs of a replaced null version."""
        key = obj.key.encode()
        freed: list[str] = []
        if not keep_old or obj.version_id == NULL_VERSION:
            freed = await self._remove_version(conn, obj.bucket, key, NULL_VERSION)
        await conn.execute(
            "UPDATE objects SET is_latest=false WHERE bucket=%s AND key=%s AND is_latest", (obj.bucket, key)
        )
        seq = await self._next_seq(conn, obj.bucket, key)
        await conn.execute(
            f"INSERT INTO objects ({_OBJ_COLS}) VALUES (%s,%s,%s,%s,true,%s,%s,%s,%s,%s,%s,%s,%s)",
            (
                obj.bucket,
                key,
                seq,
                obj.version_id,
                obj.delete_marker,
                obj.size,
                obj.etag,
                obj.last_modified,
                obj.owner_id,
                obj.parts_count,
                _meta_json(obj.meta),
                _segments_json(obj),
            ),
        )
        return freed

    async def _remove_version(self, conn: Conn, bucket: str, key: bytes, version_id: str) -> list[str]:
        row = await fetchone(
            conn,
            "DELETE FROM objects WHERE bucket=%s AND key=%s AND version_id=%s RETURNING segments, is_latest",
            (bucket, key, version_id),
        )
        if row is None:
            return []
        # Its GET counts go with it: a later version under the same id ("null") starts at zero.
        await conn.execute(
            "DELETE FROM object_access WHERE bucket=%s AND key=%s AND version_id=%s",
            (bucket, key, version_id),
        )
        if row[1]:  # promote the next newest version
            await conn.execute(
                "UPDATE objects SET is_latest=true WHERE bucket=%s AND key=%s AND seq="
                "(SELECT max(seq) FROM objects WHERE bucket=%s AND key=%s)",
                (bucket, key, bucket, key),
            )
        return await self._queue_gc(conn, [b for b, _ in json.loads(row[0])])

    async def _queue_gc(self, conn: Conn, blobs: list[str]) -> list[str]:
        if blobs:
            now = time.time()
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO blob_gc VALUES (%s, %s) ON CONFLICT DO NOTHING", [(b, now) for b in blobs]
                )
        return blobs

    async def _drop_upload(self, conn: Conn, upload_id: str, keep: set[int] | None = None) -> list[str]:
        rows = await fetchall(
            conn, "DELETE FROM parts WHERE upload_id=%s RETURNING part_number, blob_id", (upload_id,)
        )
        await conn.execute("DELETE FROM uploads WHERE upload_id=%s", (upload_id,))
        keep = keep or set()
        return await self._queue_gc(conn, [r[1] for r in rows if r[0] not in keep])

    async def _lock_upload(self, conn: Conn, upload_id: str, mode: str) -> str:
        """The upload's bucket, with its row locked (``mode``: SHARE or UPDATE); raises NoSuchUpload."""
        row = await fetchone(conn, f"SELECT bucket FROM uploads WHERE upload_id=%s FOR {mode}", (upload_id,))
        if row is None:
            raise errors.NoSuchUpload(UploadId=upload_id)
        return str(row[0])

    # -- buckets -------------------------------------------------------------------------------
    async def create_bucket(self, bucket: Bucket) -> None:
        async def fn(conn: Conn) -> None:
            inserted = await fetchone(
                conn,
                f"INSERT INTO buckets ({_BUCKET_COLS}) VALUES (%s,%s,%s,%s,%s) "
                "ON CONFLICT (name) DO NOTHING RETURNING name",
                (bucket.name, bucket.owner_id, bucket.created, bucket.region, bucket.versioning),
            )
            if inserted is not None:
                return
            row = await fetchone(conn, "SELECT owner_id FROM buckets WHERE name=%s", (bucket.name,))
            if row is not None and row[0] == bucket.owner_id:
                raise errors.BucketAlreadyOwnedByYou(BucketName=bucket.name)
            raise errors.BucketAlreadyExists(BucketName=bucket.name)

        await self._db.tx(fn)

    async def get_bucket(self, name: str) -> Bucket | None:
        row = await self._db.one(f"SELECT {_BUCKET_COLS} FROM buckets WHERE name=%s", (name,))
        return Bucket(*row) if row else None

    async def list_buckets(self, owner_id: str) -> list[Bucket]:
        rows = await self._db.all(
            f'SELECT {_BUCKET_COLS} FROM buckets WHERE owner_id=%s ORDER BY name COLLATE "C"', (owner_id,)
        )
        return [Bucket(*r) for r in rows]

    async def list_all_buckets(self) -> list[Bucket]:
        rows = await self._db.all(f'SELECT {_BUCKET_COLS} FROM buckets ORDER BY name COLLATE "C"')
        return [Bucket(*r) for r in rows]

    async def delete_bucket(self, name: str) -> list[str]:
        async def fn(conn: Conn) -> list[str]:
            # FOR UPDATE waits for every writer holding the bucket (FOR KEY SHARE) to commit.
            if await fetchone(conn, "SELECT 1 FROM buckets WHERE name=%s FOR UPDATE", (name,)) is None:
                raise errors.NoSuchBucket(BucketName=name)
            if await fetchone(conn, "SELECT 1 FROM objects WHERE bucket=%s LIMIT 1", (name,)):
                raise errors.BucketNotEmpty(BucketName=name)
            freed: list[str] = []
            for (uid,) in await fetchall(conn, "SELECT upload_id FROM uploads WHERE bucket=%s", (name,)):
                freed += await self._drop_upload(conn, uid)
            await conn.execute("DELETE FROM buckets WHERE name=%s", (name,))
            await conn.execute("DELETE FROM bucket_config WHERE bucket=%s", (name,))
            await conn.execute("DELETE FROM object_access WHERE bucket=%s", (name,))  # belt and braces
            return freed

        return await self._db.tx(fn)

    async def set_versioning(self, name: str, status: str) -> None:
        async def fn(conn: Conn) -> None:
            await conn.execute("UPDATE buckets SET versioning=%s WHERE name=%s", (status, name))

        await self._db.tx(fn)

    async def get_bucket_config(self, bucket: str, name: str) -> str | None:
        row = await self._db.one(
            "SELECT value FROM bucket_config WHERE bucket=%s AND name=%s", (bucket, name)
        )
        return str(row[0]) if row else None

    async def get_bucket_with_config(self, bucket: str, name: str) -> tuple[Bucket | None, str | None]:
        """One round trip instead of two: the per-request authorization read (bucket + its policy)."""
        row = await self._db.one(
            "SELECT b.name, b.owner_id, b.created, b.region, b.versioning, c.value FROM buckets b "
            "LEFT JOIN bucket_config c ON c.bucket=b.name AND c.name=%s WHERE b.name=%s",
            (name, bucket),
        )
        if row is None:
            return None, None
        return Bucket(*row[:5]), (str(row[5]) if row[5] is not None else None)

    async def get_bucket_with_configs(
        self, bucket: str, names: tuple[str, ...]
    ) -> tuple[Bucket | None, tuple[str | None, ...]]:
        """One round trip for the bucket and several of its documents (authorization of
        GET/HEAD/PUT: the policy and the lifecycle document)."""
        row = await self._db.one(bucket_with_configs_sql(len(names), "%s"), (*names, bucket))
        if row is None:
            return None, (None,) * len(names)
        return Bucket(*row[:5]), tuple(str(v) if v is not None else None for v in row[5:])

    async def get_bucket_configs(self, bucket: str, names: Sequence[str]) -> dict[str, str]:
        """One round trip for the documents a PutObject reads (the base class makes one per name)."""
        rows = await self._db.all(
            "SELECT name, value FROM bucket_config WHERE bucket=%s AND name = ANY(%s)", (bucket, list(names))
        )
        return {str(n): str(v) for n, v in rows}

    async def put_bucket_config(self, bucket: str, name: str, value: str | None) -> None:
        async def fn(conn: Conn) -> None:
            await self._lock_bucket(conn, bucket)
            if value is None:
                await conn.execute("DELETE FROM bucket_config WHERE bucket=%s AND name=%s", (bucket, name))
            else:
                await conn.execute(
                    "INSERT INTO bucket_config VALUES (%s,%s,%s) "
                    "ON CONFLICT (bucket, name) DO UPDATE SET value=EXCLUDED.value",
                    (bucket, name, value),
                )

        await self._db.tx(fn)

    async def get_server_doc(self, kind: str, name: str) -> str | None:
        row = await self._db.one("SELECT value FROM server_docs WHERE kind=%s AND name=%s", (kind, name))
        return str(row[0]) if row else None

    async def list_server_docs(self, kind: str) -> dict[str, str]:
        rows = await self._db.all("SELECT name, value FROM server_docs WHERE kind=%s", (kind,))
        return {str(n): str(v) for n, v in rows}

    async def put_server_doc(self, kind: str, name: str, value: str | None, create: bool = False) -> bool:
        async def fn(conn: Conn) -> bool:
            args: tuple[str, ...]
            if value is None:
                sql, args = "DELETE FROM server_docs WHERE kind=%s AND name=%s", (kind, name)
            else:
                clause = "NOTHING" if create else "UPDATE SET value=EXCLUDED.value"
                sql = f"INSERT INTO server_docs VALUES (%s,%s,%s) ON CONFLICT (kind, name) DO {clause}"
                args = (kind, name, value)
            cur = await conn.execute(sql, args)
            return cur.rowcount > 0

        return await self._db.tx(fn)

    # -- registry ------------------------------------------------------------------------------
    async def registry_get(self, kind: str, name: str) -> tuple[str, int] | None:
        row = await self._db.one("SELECT doc, rev FROM registry WHERE kind=%s AND name=%s", (kind, name))
        return (str(row[0]), int(row[1])) if row else None

    async def registry_put(self, kind: str, name: str, doc: str, expect_revision: int) -> int:
        async def fn(conn: Conn) -> int:
            if expect_revision == 0:
                cur = await conn.execute(
                    "INSERT INTO registry VALUES (%s,%s,%s,1) ON CONFLICT (kind, name) DO NOTHING",
                    (kind, name, doc),
                )
            else:
                cur = await conn.execute(
                    "UPDATE registry SET doc=%s, rev=rev+1 WHERE kind=%s AND name=%s AND rev=%s",
                    (doc, kind, name, expect_revision),
                )
            if cur.rowcount != 1:
                raise errors.RegistryConflict(f"{kind} {name!r} was changed concurrently or already exists")
            return expect_revision + 1

        return await self._db.tx(fn)

    async def registry_list(self, kind: str, prefix: str = "") -> list[tuple[str, str, int]]:
        rows = await self._db.all(
            'SELECT name, doc, rev FROM registry WHERE kind=%s AND left(name, %s)=%s ORDER BY name COLLATE "C"',
            (kind, len(prefix), prefix),
        )
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    # -- objects -------------------------------------------------------------------------------
    async def get_object(self, bucket: str, key: str, version_id: str | None = None) -> ObjectVersion | None:
        async with self._db.connection() as conn:
            return await self._get_object(conn, bucket, key.encode(), version_id)

    async def put_object(self, obj: ObjectVersion, cond: WriteCondition, keep_old: bool) -> list[str]:
        async def fn(conn: Conn) -> list[str]:
            await self._lock_bucket(conn, obj.bucket)
            await lock_key(conn, obj.bucket, obj.key.encode())
            await self._check(conn, obj, cond)
            return await self._insert(conn, obj, keep_old)

        return await self._db.tx(fn)

    async def delete_object(
        self,
        bucket: str,
        key: str,
        version_id: str | None,
        marker: ObjectVersion | None,
        if_match: str | None = None,
    ) -> DeleteOutcome:
        kb = key.encode()

        async def check(conn: Conn) -> None:
            """Under the key's lock: no PUT (from any gateway) lands between check and delete."""
            if if_match is not None:
                check_delete_match(await self._get_object(conn, bucket, kb, version_id), key, if_match)

        async def fn(conn: Conn) -> DeleteOutcome:
            if version_id is None and marker is not None:
                await self._lock_bucket(conn, bucket)
                await lock_key(conn, bucket, kb)
                await check(conn)
                freed = await self._insert(conn, marker, keep_old=marker.version_id != NULL_VERSION)
                return DeleteOutcome(None, marker, freed)
            await lock_key(conn, bucket, kb)
            await check(conn)
            vid = version_id or NULL_VERSION
            existing = await self._get_object(conn, bucket, kb, vid)
            freed = await self._remove_version(conn, bucket, kb, vid)
            return DeleteOutcome(existing, None, freed)

        return await self._db.tx(fn)

    async def update_object_meta(
        self,
        bucket: str,
        key: str,
        version_id: str | None,
        meta: ObjectMeta,
        expect: ObjectVersion | None = None,
    ) -> ObjectVersion:
        kb = key.encode()

        async def fn(conn: Conn) -> ObjectVersion:
            await lock_key(conn, bucket, kb)
            cur = await self._get_object(conn, bucket, kb, version_id)
            if cur is None and version_id is not None:
                raise errors.NoSuchVersion(Key=key, VersionId=version_id)
            if cur is None or cur.delete_marker:  # a marker has no metadata to change
                raise errors.NoSuchKey(Key=key) if version_id is None else errors.MethodNotAllowed()
            if not same_version(cur, expect):
                raise errors.PreconditionFailed()
            await conn.execute(
                "UPDATE objects SET meta=%s WHERE bucket=%s AND key=%s AND version_id=%s",
                (_meta_json(meta), bucket, kb, cur.version_id),
            )
            return replace(cur, meta=meta)

        return await self._db.tx(fn)

    async def replace_segments(
        self,
        bucket: str,
        key: str,
        version_id: str,
        segments: tuple[Segment, ...],
        meta: ObjectMeta,
        expect: ObjectVersion,
    ) -> list[str]:
        kb = key.encode()

        async def fn(conn: Conn) -> list[str]:
            await lock_key(conn, bucket, kb)
            cur = await self._get_object(conn, bucket, kb, version_id)
            old = check_replacement(cur, key, version_id, segments, expect)
            await conn.execute(
                "UPDATE objects SET segments=%s, meta=%s WHERE bucket=%s AND key=%s AND version_id=%s",
                (
                    json.dumps([[s.blob_id, s.size] for s in segments], separators=(",", ":")),
                    _meta_json(meta),
                    bucket,
                    kb,
                    version_id,
                ),
            )
            return await self._queue_gc(conn, old)

        return await self._db.tx(fn)

    # -- listings (the shared scanner on a thread; see Database.run_sync) ---------------------
    @staticmethod
    def _seek(query: Query, bucket: str, latest: bool) -> Seek:
        where = "is_latest AND NOT delete_marker AND " if latest else ""
        sql = f"SELECT key FROM objects WHERE {where}bucket=%s AND key >= %s ORDER BY key LIMIT 1"

        def seek(cur: Cursor) -> bytes | None:
            rows = query(sql, (bucket, cur.key))
            return bytes(rows[0][0]) if rows else None

        return seek

    @staticmethod
    def _fetch_latest(query: Query, bucket: str) -> Fetch[_Row]:
        def fetch(cur: Cursor, limit: int) -> Iterator[tuple[bytes, int, _Row]]:
            op = ">=" if cur.inclusive else ">"
            sql = (
                f"SELECT {_OBJ_COLS} FROM objects WHERE bucket=%s AND key {op} %s AND is_latest "
                "AND NOT delete_marker ORDER BY key LIMIT %s"
            )
            for r in query(sql, (bucket, cur.key, limit)):
                yield bytes(r[1]), r[2], r

        return fetch

    async def list_objects(self, bucket: str, q: ListQuery) -> ObjectListing:
        def run(query: Query) -> ObjectListing:
            res = scan(
                self._fetch_latest(query, bucket),
                q.prefix,
                q.delimiter,
                q.start_after,
                q.max_keys,
                seek=self._seek(query, bucket, latest=True),
            )
            return _object_listing(res)

        return await self._db.run_sync(run)

    @staticmethod
    def _fetch_versions(query: Query, bucket: str) -> Fetch[_Row]:
        def fetch(cur: Cursor, limit: int) -> Iterator[tuple[bytes, int, _Row]]:
            op = ">=" if cur.inclusive else ">"
            if cur.seq is not None:  # the rest of this key's versions (newest first) come first
                sql = (
                    f"SELECT {_OBJ_COLS} FROM objects WHERE bucket=%s AND key=%s AND seq<%s "
                    "ORDER BY seq DESC LIMIT %s"
                )
                for r in query(sql, (bucket, cur.key, cur.seq, limit)):
                    yield bytes(r[1]), r[2], r
                op = ">"
            sql = (
                f"SELECT {_OBJ_COLS} FROM objects WHERE bucket=%s AND key {op} %s "
                "ORDER BY key, seq DESC LIMIT %s"
            )
            for r in query(sql, (bucket, cur.key, limit)):
                yield bytes(r[1]), r[2], r

        return fetch

    async def list_versions(self, bucket: str, q: VersionQuery) -> VersionListing:
        def run(query: Query) -> VersionListing:
            start: Cursor | None = None
            if q.key_marker and q.version_id_marker:
                rows = query(
                    "SELECT seq FROM objects WHERE bucket=%s AND key=%s AND version_id=%s",
                    (bucket, q.key_marker.encode(), q.version_id_marker),
                )
                start = Cursor(q.key_marker.encode(), seq=rows[0][0] if rows else _gone_marker_seq(q))
            res = scan(
                self._fetch_versions(query, bucket),
                q.prefix,
                q.delimiter,
                q.key_marker,
                q.max_keys,
                start,
                versions=True,
                seek=self._seek(query, bucket, latest=False),
            )
            return _version_listing(res)

        return await self._db.run_sync(run)

    # -- multipart -----------------------------------------------------------------------------
    async def create_upload(self, upload: Upload) -> None:
        async def fn(conn: Conn) -> None:
            await self._lock_bucket(conn, upload.bucket)
            await conn.execute(
                "INSERT INTO uploads (upload_id, bucket, key, initiated, owner_id, meta) "
                "VALUES (%s,%s,%s,%s,%s,%s)",
                (
                    upload.upload_id,
                    upload.bucket,
                    upload.key.encode(),
                    upload.initiated,
                    upload.owner_id,
                    _meta_json(upload.meta),
                ),
            )

        await self._db.tx(fn)

    async def get_upload(self, upload_id: str) -> Upload | None:
        row = await self._db.one(f"SELECT {_UPLOAD_COLS} FROM uploads WHERE upload_id=%s", (upload_id,))
        return _upload_from(row) if row else None

    async def put_part(self, upload_id: str, part: Part) -> list[str]:
        async def fn(conn: Conn) -> list[str]:
            await self._lock_upload(conn, upload_id, "SHARE")
            old = await fetchone(
                conn,
                "SELECT blob_id FROM parts WHERE upload_id=%s AND part_number=%s FOR UPDATE",
                (upload_id, part.part_number),
            )
            await conn.execute(
                "INSERT INTO parts VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (upload_id, part_number) "
                "DO UPDATE SET size=EXCLUDED.size, etag=EXCLUDED.etag, last_modified=EXCLUDED.last_modified, "
                "blob_id=EXCLUDED.blob_id, checksums=EXCLUDED.checksums",
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
            return await self._queue_gc(conn, [old[0]]) if old and old[0] != part.blob_id else []

        return await self._db.tx(fn)

    async def _parts(self, upload_id: str, marker: int, limit: int) -> list[Part]:
        rows = await self._db.all(
            "SELECT part_number, size, etag, last_modified, blob_id, checksums FROM parts "
            "WHERE upload_id=%s AND part_number>%s ORDER BY part_number LIMIT %s",
            (upload_id, marker, limit),
        )
        return [Part(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    async def get_parts(self, upload_id: str) -> dict[int, Part]:
        return {p.part_number: p for p in await self._parts(upload_id, 0, 20000)}

    async def list_parts(self, upload_id: str, marker: int, max_parts: int) -> PartListing:
        parts = await self._parts(upload_id, marker, max_parts + 1)
        truncated = len(parts) > max_parts
        parts = parts[:max_parts]
        return PartListing(parts, truncated, parts[-1].part_number if parts else 0)

    async def complete_upload(
        self, upload_id: str, obj: ObjectVersion, used_parts: set[int], cond: WriteCondition, keep_old: bool
    ) -> list[str]:
        async def fn(conn: Conn) -> list[str]:
            # Lock order bucket -> upload -> key everywhere, so gateways never deadlock on these.
            await self._lock_bucket(conn, obj.bucket)
            await self._lock_upload(conn, upload_id, "UPDATE")
            await lock_key(conn, obj.bucket, obj.key.encode())
            await self._check(conn, obj, cond)
            freed = await self._drop_upload(conn, upload_id, keep=used_parts)
            return freed + await self._insert(conn, obj, keep_old)

        return await self._db.tx(fn)

    async def abort_upload(self, upload_id: str) -> list[str]:
        async def fn(conn: Conn) -> list[str]:
            await self._lock_upload(conn, upload_id, "UPDATE")
            return await self._drop_upload(conn, upload_id)

        return await self._db.tx(fn)

    async def list_uploads(
        self,
        bucket: str,
        prefix: str,
        delimiter: str,
        key_marker: str,
        upload_id_marker: str,
        max_uploads: int,
    ) -> UploadListing:
        # Uploads of one key list oldest first: expose seq as -seq so the generic "entries of this
        # key after seq" cursor (which walks seq downwards) walks them in creation order.
        def run(query: Query) -> UploadListing:
            def fetch(cur: Cursor, limit: int) -> Iterator[tuple[bytes, int, _Row]]:
                op = ">=" if cur.inclusive else ">"
                if cur.seq is not None:
                    sql = (
                        f"SELECT {_UPLOAD_COLS} FROM uploads WHERE bucket=%s AND key=%s AND seq>%s "
                        "ORDER BY seq LIMIT %s"
                    )
                    for r in query(sql, (bucket, cur.key, -cur.seq, limit)):
                        yield bytes(r[2]), -r[6], r
                    op = ">"
                sql = (
                    f"SELECT {_UPLOAD_COLS} FROM uploads WHERE bucket=%s AND key {op} %s "
                    "ORDER BY key, seq LIMIT %s"
                )
                for r in query(sql, (bucket, cur.key, limit)):
                    yield bytes(r[2]), -r[6], r

            start: Cursor | None = None
            if key_marker and upload_id_marker:
                rows = query(
                    "SELECT seq FROM uploads WHERE bucket=%s AND key=%s AND upload_id=%s",
                    (bucket, key_marker.encode(), upload_id_marker),
                )
                start = Cursor(key_marker.encode(), seq=-rows[0][0]) if rows else Cursor(key_marker.encode())
            res = scan(fetch, prefix, delimiter, key_marker, max_uploads, start, versions=True)
            return _upload_listing(res)

        return await self._db.run_sync(run)

    # -- GET counts ----------------------------------------------------------------------------
    async def add_access(self, hits: Sequence[AccessHit]) -> int:
        # Sorted, so two gateways flushing overlapping keys lock the access rows in one order.
        rows = sorted(
            (h.bucket, h.key.encode(), h.version_id, h.etag, h.last_modified, h.last, h.count)
            for h in hits
            if h.count > 0
        )
        if not rows:
            return 0

        async def fn(conn: Conn) -> int:
            done = 0
            async with conn.cursor() as cur:
                for b, k, vid, etag, lm, last, n in rows:
                    await cur.execute(_ADD_ACCESS, (last, n, b, k, vid, etag, lm))
                    done += max(cur.rowcount, 0)
            return done

        return await self._db.tx(fn)

    async def get_access(self, bucket: str, key: str, version_id: str) -> AccessStats | None:
        row = await self._db.one(
            "SELECT last_access, gets FROM object_access WHERE bucket=%s AND key=%s AND version_id=%s",
            (bucket, key.encode(), version_id),
        )
        return AccessStats(float(row[0]), int(row[1])) if row else None

    async def bucket_access(self, bucket: str) -> dict[tuple[str, str], AccessStats]:
        rows = await self._db.all(
            "SELECT key, version_id, last_access, gets FROM object_access WHERE bucket=%s", (bucket,)
        )
        return {(_key_text(k), str(v)): AccessStats(float(t), int(n)) for k, v, t, n in rows}

    # -- blob GC -------------------------------------------------------------------------------
    async def pending_gc(self, limit: int = 1000) -> list[str]:
        rows = await self._db.all(
            "SELECT blob_id FROM blob_gc WHERE queued <= %s ORDER BY queued LIMIT %s",
            (time.time() - self.gc_grace, limit),
        )
        return [r[0] for r in rows]

    async def gc_done(self, blob_ids: list[str]) -> None:
        async def fn(conn: Conn) -> None:
            await conn.execute("DELETE FROM blob_gc WHERE blob_id = ANY(%s)", (blob_ids,))

        await self._db.tx(fn)

    async def bucket_usage(self, bucket: str) -> tuple[int, int]:
        row = await self._db.one(
            "SELECT count(*), coalesce(sum(size), 0) FROM objects WHERE bucket=%s AND NOT delete_marker",
            (bucket,),
        )
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def referenced_blobs(self) -> set[str]:
        out: set[str] = set()
        for (segs,) in await self._db.all("SELECT segments FROM objects"):
            out.update(b for b, _ in json.loads(segs))
        out.update(r[0] for r in await self._db.all("SELECT blob_id FROM parts"))
        return out

    async def blob_uses(self) -> list[BlobUse]:
        objects = await self._db.all(BLOB_USES_OBJECTS.format(live="NOT delete_marker"))
        return blob_uses_from(objects, await self._db.all(BLOB_USES_PARTS))

    async def queued_blobs(self) -> set[str]:
        return {r[0] for r in await self._db.all("SELECT blob_id FROM blob_gc")}


__all__ = ["PostgresStore"]
