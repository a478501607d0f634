"""Archival tiers, restores and access tracking: the engine component behind GLACIER/DEEP_ARCHIVE.

State per object version lives in ``ObjectMeta.system``:

* ``archive-tier``: the tier whose directory holds the bytes (set once the move committed);
* ``restore-state`` ``ongoing``/``done``, ``restore-ready`` (when an ongoing restore completes),
  ``restore-days``, ``restore-expiry`` (when a done restore's temporary copy goes away);
* ``access-last``/``access-count``: GETs, counted in memory and flushed in batches;
* ``it-tier``: the INTELLIGENT_TIERING access tier (FREQUENT, INFREQUENT, ARCHIVE_INSTANT).

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
from rs3gw.model import ObjectVersion
from rs3gw.timefmt import http_date

if TYPE_CHECKING:
    from rs3gw.engine.core import ObjectEngine

log = logging.getLogger("rs3gw.archive")
IT_TIERS = ("FREQUENT", "INFREQUENT", "ARCHIVE_INSTANT")
_RESTORE_KEYS = ("restore-state", "restore-ready", "restore-days", "restore-expiry")
VKey = tuple[str, str, str]  # bucket, key, version id
FLUSH_LIMIT = 256  # access-count writes per background tick


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
        self._access: dict[VKey, tuple[float, int]] = {}
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
        k = (obj.bucket, obj.key, obj.version_id)
        _, n = self._access.get(k, (0.0, 0))
        self._access[k] = (self.clock(), n + 1)

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
        """Write buffered GET counts; ``limit`` caps the writes of one background tick (the rest,
        oldest first, wait for the next), so heavy GET traffic over many keys never turns into
        a flood of metadata writes competing with the GETs themselves."""
        if limit is None or len(self._access) <= limit:
            batch, self._access = self._access, {}
        else:
            keys = list(self._access)[:limit]
            batch = {k: self._access.pop(k) for k in keys}
        for k, (last, n) in batch.items():
            obj = await self.engine.store.get_object(*k)
            if obj is None or obj.delete_marker:
                continue
            s = dict(obj.meta.system)
            s["access-last"] = repr(max(last, float(s.get("access-last", "0"))))
            s["access-count"] = str(int(s.get("access-count", "0")) + n)
            if obj.meta.storage_class == "INTELLIGENT_TIERING":
                s["it-tier"] = "FREQUENT"  # any access brings it back to the frequent tier
            with contextlib.suppress(errors.S3Error):
                await self._put_system(obj, s)

    def it_tier(self, obj: ObjectVersion, now: float) -> str:
        """The access tier an INTELLIGENT_TIERING version belongs in, by days since last access."""
        last = float(obj.meta.system.get("access-last", "0")) or obj.last_modified
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
                async for v in stored_versions(self.engine.store, bucket.name):
                    await self._scan_one(v, now)

    async def _scan_one(self, v: ObjectVersion, now: float) -> None:
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
        if v.meta.storage_class == "INTELLIGENT_TIERING" and k not in self._access:
            want = self.it_tier(v, now)
            if s.get("it-tier", "FREQUENT") != want:
                full = await self.engine.store.get_object(*k)
                if full is not None:
                    with contextlib.suppress(errors.S3Error):
                        await self._put_system(full, {**full.meta.system, "it-tier": want})

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
