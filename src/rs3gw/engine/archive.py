"""Archival tiers, restores and access tracking: the engine component behind GLACIER/DEEP_ARCHIVE.

State per object version lives in ``ObjectMeta.system``:

* ``archive-tier``: the tier whose directory holds the bytes (set once the move committed);
* ``restore-state`` ``ongoing``/``done``, ``restore-ready`` (when an ongoing restore completes),
  ``restore-days``, ``restore-expiry`` (when a done restore's temporary copy goes away);
* ``it-tier``: the INTELLIGENT_TIERING access tier (FREQUENT, INFREQUENT, ARCHIVE_INSTANT).

GETs are counted in memory and flushed in batches into the store's ``object_access`` table
(``add_access``), not into the document: a read never rewrites metadata, so versions keep
identical texts that a listing parses once. Documents an older rs3gw wrote may still carry
``access-last``/``access-count``; those are added to the table's (``merged_access``).

Every write path (PUT, copy, multipart completion, lifecycle transitions through
``update_object_meta``) calls ``settle``, which moves an archival-class version's bytes into its
tier: copy + fsync, commit ``archive-tier``, then delete the backend copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from rs3gw import errors
from rs3gw.blobs.tiered import TieredBlobStore
from rs3gw.engine.lifecycle_rules import due_time
from rs3gw.engine.tier_settings import ARCHIVE_CLASSES, SLA_HOURS, TierSettings
from rs3gw.engine.version_walk import stored_versions
from rs3gw.meta.store import AccessHit, AccessStats, merged_access
from rs3gw.model import ObjectVersion
from rs3gw.timefmt import http_date

if TYPE_CHECKING:
    from rs3gw.engine.core import ObjectEngine

log = logging.getLogger("rs3gw.archive")
IT_TIERS = ("FREQUENT", "INFREQUENT", "ARCHIVE_INSTANT")
_RESTORE_KEYS = ("restore-state", "restore-ready", "restore-days", "restore-expiry")
# State of one stored version (where its bytes are, its restore, its access tier, GET counts an
# older rs3gw wrote into the document): a copy is a new version and starts without any of it.
VERSION_STATE = ("archive-tier", "it-tier", "access-last", "access-count", *_RESTORE_KEYS)
VKey = tuple[str, str, str]  # bucket, key, version id
# A version as read: version id plus etag and last-modified, since a "null" id names whatever was
# written last and a count must never move to the version that replaced the one read.
ReadKey = tuple[str, str, str, str, float]
FLUSH_LIMIT = 256  # versions whose GET counts one background tick writes


def is_archived(obj: ObjectVersion) -> bool:
    return obj.meta.storage_class in ARCHIVE_CLASSES


def restored(obj: ObjectVersion, now: float) -> bool:
    s = obj.meta.system
    return s.get("restore-state") == "done" and now < float(s.get("restore-expiry", "0"))


def restore_header(system: dict[str, str]) -> dict[str, str]:
    """x-amz-restore as AWS writes it on HEAD and GET."""
    state = system.get("restore-state")
    if state == "ongoing":
        return {"x-amz-restore": 'ongoing-request="true"'}
    if state == "done":
        expiry = http_date(float(system.get("restore-expiry", "0")))
        return {"x-amz-restore": f'ongoing-request="false", expiry-date="{expiry}"'}
    return {}


class Tiers:
    """Archive moves, restore requests and access counts over an engine."""

    def __init__(self, engine: ObjectEngine) -> None:
        self.engine = engine
        self.settings = TierSettings()
        self.day = 86400.0
        self.store: TieredBlobStore | None = None  # None: bytes stay where they are written
        self.clock = time.time
        # GETs since the last flush: (last GET, count, INTELLIGENT_TIERING outside FREQUENT when read)
        self._access: dict[ReadKey, tuple[float, int, bool]] = {}
        self._due: dict[VKey, float] = {}  # restores to complete or expire, and when
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._it_seen = False  # INTELLIGENT_TIERING versions exist: periodic scans are needed

    def configure(self, settings: TierSettings, day_seconds: float, store: TieredBlobStore | None) -> None:
        self.settings, self.day = settings, day_seconds
        self.store = store if store is not None and store.can_move else None

    # -- reads ----------------------------------------------------------------------------------
    def check_readable(self, obj: ObjectVersion) -> None:
        """GET and copy of an archived version are refused until a restore completed."""
        if is_archived(obj) and not restored(obj, self.clock()):
            raise errors.InvalidObjectState(
                "The operation is not valid for the object's storage class",
                StorageClass=obj.meta.storage_class,
            )

    def touch(self, obj: ObjectVersion) -> None:
        """Count a GET; costs one dict update, the store sees it at the next flush."""
        k = (obj.bucket, obj.key, obj.version_id, obj.etag, obj.last_modified)
        got = self._access.get(k)
        if got is None:
            m = obj.meta
            cold = (
                m.storage_class == "INTELLIGENT_TIERING" and m.system.get("it-tier", "FREQUENT") != "FREQUENT"
            )
            self._access[k] = (self.clock(), 1, cold)
        else:
            self._access[k] = (self.clock(), got[1] + 1, got[2])

    # -- archive moves ----------------------------------------------------------------------------
    async def settle(self, obj: ObjectVersion) -> None:
        """Move an archival-class version's bytes into its tier (idempotent; crash-safe order)."""
        if obj.meta.storage_class == "INTELLIGENT_TIERING":
            self._it_seen = True
        if self.store is None or not is_archived(obj) or obj.delete_marker:
            return
        tier = obj.meta.storage_class.lower()
        if tier not in self.store.tiers:
            return
        if not obj.segments and obj.size:  # a record without data locations (a listing entry)
            full = await self.engine.store.get_object(obj.bucket, obj.key, obj.version_id)
            if full is None or not full.segments:
                return
            obj = full
        ids = [s.blob_id for s in obj.segments]
        if obj.meta.system.get("archive-tier") == tier:
            if not restored(obj, self.clock()) and obj.meta.system.get("restore-state") != "done":
                await self.store.drop_from_backend(tier, ids)  # a crash after the commit left these
            return
        present = [b for b in ids if await self.store.in_backend(b)]
        if len(present) != len(ids):  # e.g. deduplicated data: no per-object files to move
            log.info("archive: %s/%s keeps its data in place", obj.bucket, obj.key)
            return
        await self.store.copy_to_tier(tier, ids)
        system = {**obj.meta.system, "archive-tier": tier}
        try:
            await self.engine.update_object_meta(
                obj.bucket, obj.key, obj.version_id, replace(obj.meta, system=system), expect=obj
            )
        except (errors.NoSuchKey, errors.NoSuchVersion, errors.NoSuchBucket, errors.PreconditionFailed):
            return  # deleted or overwritten meanwhile: the tier copy is an orphan the next sweep removes
        await self.store.drop_from_backend(tier, ids)

    # -- restores -------------------------------------------------------------------------------
    async def restore(self, bucket: str, key: str, version_id: str | None, days: int, tier: str) -> int:
        """RestoreObject: 202 for a new restore, 200 when already restored (expiry extended)."""
        # Resolved like a read (delete markers, bad ids) but without SSE-C: restores need no key.
        cur = await self.engine._resolve(bucket, key, version_id)
        if not is_archived(cur):
            raise errors.InvalidObjectState(
                "Restore is not allowed for the object's current storage class",
                StorageClass=cur.meta.storage_class,
            )
        if tier not in SLA_HOURS[cur.meta.storage_class]:
            raise errors.InvalidArgument(
                f"{tier} retrieval is not supported for the {cur.meta.storage_class} storage class",
                ArgumentName="Tier",
                ArgumentValue=tier,
            )
        now = self.clock()
        s = dict(cur.meta.system)
        k = (bucket, key, cur.version_id)
        if s.get("restore-state") == "ongoing":
            raise errors.RestoreAlreadyInProgress()
        if restored(cur, now):
            s["restore-days"] = str(days)
            s["restore-expiry"] = repr(due_time(now, days, self.day))
            await self._put_system(cur, s)
            self._due[k] = float(s["restore-expiry"])
            return 200
        ready = now + self.settings.restore_delay(cur.meta.storage_class, tier, self.day)
        s.update({"restore-state": "ongoing", "restore-ready": repr(ready), "restore-days": str(days)})
        s.pop("restore-expiry", None)
        await self._put_system(cur, s)
        self._due[k] = ready
        return 202

    async def _put_system(self, obj: ObjectVersion, system: dict[str, str]) -> ObjectVersion:
        return await self.engine.update_object_meta(
            obj.bucket, obj.key, obj.version_id, replace(obj.meta, system=system), expect=obj
        )

    async def advance(self, k: VKey) -> float | None:
        """Complete or expire one restore if due; returns when it is next due (None: nothing left)."""
        obj = await self.engine.store.get_object(*k)
        if obj is None or obj.delete_marker or not is_archived(obj):
            return None
        s = dict(obj.meta.system)
        now = self.clock()
        state = s.get("restore-state")
        ids = [seg.blob_id for seg in obj.segments]
        tier = s.get("archive-tier")
        if state == "ongoing":
            ready = float(s.get("restore-ready", "0"))
            if now < ready:
                return ready
            if self.store is not None and tier in self.store.tiers:
                await self.store.copy_from_tier(tier, ids)  # the temporary readable copy
            expiry = due_time(now, int(s.get("restore-days", "1")), self.day)
            s.update({"restore-state": "done", "restore-expiry": repr(expiry)})
            s.pop("restore-ready", None)
            await self._put_system(obj, s)
            return expiry
        if state == "done":
            expiry = float(s.get("restore-expiry", "0"))
            if now < expiry:
                return expiry
            for name in _RESTORE_KEYS:
                s.pop(name, None)
            await self._put_system(obj, s)  # refused from here on, then the copy goes
            if self.store is not None and tier in self.store.tiers:
                await self.store.drop_from_backend(tier, ids)
        return None

    # -- access tracking and INTELLIGENT_TIERING --------------------------------------------------
    async def flush_access(self, limit: int | None = None) -> None:
        """Write buffered GET counts, one store transaction for the batch; ``limit`` caps the
        versions of one background tick (the rest, oldest first, wait for the next), so heavy GET
        traffic over many keys never turns into a flood of writes competing with the GETs.

        No metadata document is rewritten, except for an INTELLIGENT_TIERING version read while
        outside the frequent tier: any access brings it back there (``it-tier`` FREQUENT)."""
        if limit is None or len(self._access) <= limit:
            batch, self._access = self._access, {}
        else:
            keys = list(self._access)[:limit]
            batch = {k: self._access.pop(k) for k in keys}
        if not batch:
            return
        hits = [
            AccessHit(b, key, vid, etag, lm, last, n)
            for (b, key, vid, etag, lm), (last, n, _) in batch.items()
        ]
        try:
            await self.engine.store.add_access(hits)
        except BaseException:
            for k, (last, n, cold) in batch.items():  # kept for the next tick: no GET is lost
                got = self._access.get(k)
                self._access[k] = (
                    (last, n, cold) if got is None else (max(last, got[0]), n + got[1], cold or got[2])
                )
            raise
        for (b, key, vid, etag, lm), (_, _, cold) in batch.items():
            if cold:
                await self._warm(b, key, vid, etag, lm)

    async def _warm(self, bucket: str, key: str, version_id: str, etag: str, last_modified: float) -> None:
        """Back to the frequent tier after an access, unless that version is gone or already there."""
        obj = await self.engine.store.get_object(bucket, key, version_id)
        if obj is None or obj.delete_marker or obj.etag != etag or obj.last_modified != last_modified:
            return  # replaced or deleted since the GET
        s = obj.meta.system
        if obj.meta.storage_class != "INTELLIGENT_TIERING" or s.get("it-tier", "FREQUENT") == "FREQUENT":
            return
        with contextlib.suppress(errors.S3Error):
            await self._put_system(obj, {**s, "it-tier": "FREQUENT"})

    def it_tier(self, obj: ObjectVersion, now: float, access: AccessStats | None = None) -> str:
        """The access tier an INTELLIGENT_TIERING version belongs in, by days since last access.
        ``access``: the version's ``object_access`` row (legacy document counts are added here)."""
        got = merged_access(obj.meta.system, access)
        last = (got.last if got is not None else 0.0) or obj.last_modified
        idle_days = (now - last) / self.day
        if idle_days >= self.settings.it_archive_instant_days:
            return "ARCHIVE_INSTANT"
        if idle_days >= self.settings.it_infrequent_days:
            return "INFREQUENT"
        return "FREQUENT"

    async def scan(self, owner_ids: list[str]) -> None:
        """One pass over every version: picks up restores (after a restart), re-settles archives a
        crash interrupted, and moves INTELLIGENT_TIERING versions between access tiers."""
        now = self.clock()
        self._it_seen = False
        for owner in owner_ids:
            for bucket in await self.engine.store.list_buckets(owner):
                counts = await self.engine.store.bucket_access(bucket.name)
                async for v in stored_versions(self.engine.store, bucket.name):
                    await self._scan_one(v, now, counts.get((v.key, v.version_id)))

    async def _scan_one(self, v: ObjectVersion, now: float, access: AccessStats | None = None) -> None:
        k = (v.bucket, v.key, v.version_id)
        s = v.meta.system
        if "restore-state" in s and k not in self._due:
            self._due[k] = now
        if is_archived(v) and self.store is not None and s.get("archive-tier") is None:
            full = await self.engine.store.get_object(*k)
            if full is not None:
                await self.settle(full)
        if v.meta.storage_class == "INTELLIGENT_TIERING":
            self._it_seen = True
        if v.meta.storage_class == "INTELLIGENT_TIERING" and not self._pending(v):
            want = self.it_tier(v, now, access)
            if s.get("it-tier", "FREQUENT") != want:
                full = await self.engine.store.get_object(*k)
                if full is not None:
                    with contextlib.suppress(errors.S3Error):
                        await self._put_system(full, {**full.meta.system, "it-tier": want})

    def _pending(self, v: ObjectVersion) -> bool:
        """GETs of this version wait in memory for the next flush (it is being accessed now)."""
        return (v.bucket, v.key, v.version_id, v.etag, v.last_modified) in self._access

    # -- the background task ----------------------------------------------------------------------
    async def start(self, owner_ids: list[str], scan_interval: float) -> None:
        self._stop.clear()
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._loop(owner_ids, scan_interval), name="rs3gw-tiers")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.flush_access()

    async def _loop(self, owner_ids: list[str], scan_interval: float) -> None:
        next_scan, first = 0.0, True
        while not self._stop.is_set():
            try:
                # The first scan picks up what a restart interrupted; later ones only matter while
                # INTELLIGENT_TIERING versions exist (restores are tracked in ``_due``).
                if time.monotonic() >= next_scan and (first or self._it_seen):
                    await self.scan(owner_ids)
                    first = False
                    next_scan = time.monotonic() + scan_interval
                await self.flush_access(FLUSH_LIMIT)
                await self._advance_due()
            except Exception:  # a failed tick must not end the worker; the next one retries
                log.exception("tiers: background pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.settings.interval)

    async def _advance_due(self) -> None:
        now = self.clock()
        for k, when in list(self._due.items()):
            if when > now:
                continue
            try:
                nxt = await self.advance(k)
            except errors.PreconditionFailed:
                continue  # overwritten while we worked: stays due and is re-read next tick
            if nxt is None:
                self._due.pop(k, None)
            else:
                self._due[k] = nxt
