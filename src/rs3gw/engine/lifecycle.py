"""The lifecycle worker: applies each bucket's lifecycle rules in the background.

Every action goes through the engine's own paths (``delete_object``, ``update_object_meta``,
``abort_multipart_upload``), so versioning semantics and Object Lock hold exactly as for a client:
expiring a current version of a versioned bucket adds a delete marker, noncurrent expiration
removes a version for good, and a version the engine refuses to remove (locked) is skipped.

Time: one lifecycle "day" is ``day_seconds`` (86400 normally; tests shorten it). An action is due
``Days`` days after the version's Last-Modified (noncurrent actions: after its successor's, the
moment it became noncurrent; uploads: after initiation), rounded up to the next day boundary as S3
rounds to the next midnight UTC. Date-based actions are due at their (real) date.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from rs3gw import errors
from rs3gw.engine.lifecycle_rules import (
    LifecycleConfig,
    LifecycleRule,
    colder,
    due_time,
    due_transition,
    loads,
    size_allows,
)
from rs3gw.engine.multipart import Engine
from rs3gw.meta.store import VersionQuery, all_buckets
from rs3gw.model import Bucket, ObjectVersion

log = logging.getLogger("rs3gw.lifecycle")
CONFIG_NAME = "lifecycle"
PAGE = 1000


@dataclass
class PassStats:
    """What one pass did; ``skipped`` counts actions the engine refused (e.g. Object Lock)."""

    transitioned: int = 0
    expired: int = 0
    noncurrent_expired: int = 0
    markers_removed: int = 0
    uploads_aborted: int = 0
    skipped: int = 0


class LifecycleWorker:
    """Runs a pass every ``interval`` seconds between ``start()`` and ``stop()``.

    With several server processes on one data directory, an advisory lock on ``lock_path`` lets
    exactly one of them run passes (another takes over if that process exits).
    """

    def __init__(
        self,
        engine: Engine,
        owner_ids: Sequence[str],
        day_seconds: float = 86400.0,
        interval: float = 60.0,
        lock_path: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.owner_ids = list(owner_ids)
        self.day = day_seconds
        self.interval = interval
        self.lock_path = lock_path
        self.clock = clock
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._lock_fd: int | None = None

    async def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="rs3gw-lifecycle")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def _loop(self) -> None:
        while not self._stop.is_set():
            if self._holds_lock():
                try:
                    stats = await self.run_pass()
                    if stats != PassStats():
                        log.info("lifecycle pass: %s", stats)
                except Exception:  # a broken pass must not end the worker; the next one retries
                    log.exception("lifecycle pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)

    def _holds_lock(self) -> bool:
        if self.lock_path is None or self._lock_fd is not None:
            return True
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    # -- one pass ------------------------------------------------------------------------------
    async def run_pass(self) -> PassStats:
        """Apply every bucket's rules once, as of now."""
        stats = PassStats()
        for bucket in await all_buckets(self.engine.store, self.owner_ids):
            if self._stop.is_set():
                return stats
            doc = await self.engine.store.get_bucket_config(bucket.name, CONFIG_NAME)
            if doc is None:
                continue
            try:
                await self._bucket(bucket, loads(doc), stats)
            except errors.NoSuchBucket:  # deleted meanwhile
                continue
            except Exception:  # one broken bucket must not stop the others
                log.exception("lifecycle: pass over bucket %s failed", bucket.name)
        return stats

    async def _bucket(self, bucket: Bucket, config: LifecycleConfig, stats: PassStats) -> None:
        rules = [r for r in config.rules if r.enabled]
        if not rules:
            return
        now = self.clock()
        async for versions in self._keys(bucket.name):
            if self._stop.is_set():  # shutting down: the next start resumes with a fresh pass
                return
            await self._key(bucket, config, rules, versions, now, stats)
        if any(r.abort_days is not None for r in rules):
            await self._uploads(bucket.name, rules, now, stats)

    async def _keys(self, bucket: str) -> AsyncIterator[list[ObjectVersion]]:
        """Each key's versions, newest first, one key at a time (a key may span listing pages)."""
        q = VersionQuery(max_keys=PAGE)
        group: list[ObjectVersion] = []
        while True:
            page = await self.engine.list_object_versions(bucket, q)
            for v in page.versions:
                if group and v.key != group[0].key:
                    yield group
                    group = []
                group.append(v)
            if not page.is_truncated or page.next_key_marker is None:
                break
            q = replace(
                q, key_marker=page.next_key_marker, version_id_marker=page.next_version_id_marker or ""
            )
        if group:
            yield group

    async def _key(
        self,
        bucket: Bucket,
        config: LifecycleConfig,
        rules: list[LifecycleRule],
        versions: list[ObjectVersion],
        now: float,
        stats: PassStats,
    ) -> None:
        latest = versions[0] if versions[0].is_latest else None
        older = versions[1:] if latest is not None else versions
        if latest is not None and not latest.delete_marker:
            await self._current(bucket, config, rules, latest, now, stats)
        kept = 0
        first = len(versions) - len(older)  # index of older[0] in versions
        for i, v in enumerate(older):
            # Noncurrent since its successor (the next newer version) was written.
            pos = first + i
            since = versions[pos - 1].last_modified if pos > 0 else v.last_modified
            if not await self._noncurrent(bucket.name, config, rules, v, i, since, now, stats):
                kept += 1
        if latest is not None and latest.delete_marker and kept == 0:
            await self._lone_marker(bucket.name, rules, latest, stats)

    # -- current versions ------------------------------------------------------------------------
    async def _current(
        self,
        bucket: Bucket,
        config: LifecycleConfig,
        rules: list[LifecycleRule],
        obj: ObjectVersion,
        now: float,
        stats: PassStats,
    ) -> None:
        tags = obj.meta.tags
        applicable = [r for r in rules if r.filter.matches(obj.key, obj.size, tags)]
        for r in applicable:
            exp = r.expiration
            if exp is None or (exp.days is None and exp.date is None):
                continue
            when = exp.date if exp.date is not None else due_time(obj.last_modified, exp.days or 0, self.day)
            if now >= when:  # expiration wins over any transition due at the same time
                await self._expire_current(bucket, obj, stats)
                return
        target: str | None = None
        for r in applicable:
            cls = due_transition(
                config, r, obj.last_modified, obj.size, target or obj.meta.storage_class, now, self.day
            )
            if cls is not None:
                target = cls
        if target is not None:
            await self._transition(bucket.name, obj, target, stats)

    async def _expire_current(self, bucket: Bucket, obj: ObjectVersion, stats: PassStats) -> None:
        cur = await self.engine.store.get_object(bucket.name, obj.key)
        if cur is None or cur.version_id != obj.version_id or cur.last_modified != obj.last_modified:
            return  # overwritten since the listing: the new version has its own age
        # Versioned (or suspended) buckets get a delete marker, exactly as a client's DELETE.
        if await self._delete(bucket.name, obj.key, None, stats):
            stats.expired += 1

    async def _transition(self, bucket: str, obj: ObjectVersion, target: str, stats: PassStats) -> None:
        cur = await self.engine.store.get_object(bucket, obj.key, obj.version_id)
        if cur is None or cur.delete_marker or not colder(target, cur.meta.storage_class):
            return
        try:
            await self.engine.update_object_meta(
                bucket, obj.key, obj.version_id, replace(cur.meta, storage_class=target), expect=cur
            )
        except errors.S3Error as e:
            log.info("lifecycle: transition of %s/%s skipped: %s", bucket, obj.key, e.code)
            stats.skipped += 1
            return
        stats.transitioned += 1

    # -- noncurrent versions and delete markers --------------------------------------------------
    async def _noncurrent(
        self,
        bucket: str,
        config: LifecycleConfig,
        rules: list[LifecycleRule],
        v: ObjectVersion,
        newer: int,
        since: float,
        now: float,
        stats: PassStats,
    ) -> bool:
        """Apply noncurrent rules to ``v`` (``newer`` noncurrent versions are newer than it);
        True when it was removed."""
        size, tags = (0, {}) if v.delete_marker else (v.size, v.meta.tags)
        applicable = [r for r in rules if r.filter.matches(v.key, size, tags)]
        for r in applicable:
            nce = r.noncurrent_expiration
            if nce is None or newer < (nce.newer_noncurrent_versions or 0):
                continue
            if now >= due_time(since, nce.noncurrent_days, self.day):
                if await self._delete(bucket, v.key, v.version_id, stats):
                    stats.noncurrent_expired += 1
                    return True
                return False
        if v.delete_marker:
            return False
        target: str | None = None
        for r in applicable:
            for t in r.noncurrent_transitions:
                if newer < (t.newer_noncurrent_versions or 0):
                    continue
                if now < due_time(since, t.noncurrent_days, self.day):
                    continue
                if colder(t.storage_class, target or v.meta.storage_class) and size_allows(
                    config, r, v.size, t.storage_class
                ):
                    target = t.storage_class
        if target is not None:
            await self._transition(bucket, v, target, stats)
        return False

    async def _lone_marker(
        self, bucket: str, rules: list[LifecycleRule], marker: ObjectVersion, stats: PassStats
    ) -> None:
        """ExpiredObjectDeleteMarker: a delete marker with no versions behind it is removed."""
        for r in rules:
            exp = r.expiration
            if (
                exp is not None
                and exp.expired_object_delete_marker
                and marker.key.startswith(r.filter.prefix)
            ):
                if await self._delete(bucket, marker.key, marker.version_id, stats):
                    stats.markers_removed += 1
                return

    async def _delete(self, bucket: str, key: str, version_id: str | None, stats: PassStats) -> bool:
        """One delete through the engine; a refusal (Object Lock, a vanished version) is skipped."""
        try:
            await self.engine.delete_object(bucket, key, version_id)
        except errors.NoSuchBucket:
            raise
        except errors.S3Error as e:
            log.info("lifecycle: delete of %s/%s (%s) skipped: %s", bucket, key, version_id, e.code)
            stats.skipped += 1
            return False
        return True

    # -- multipart uploads -------------------------------------------------------------------------
    async def _uploads(self, bucket: str, rules: list[LifecycleRule], now: float, stats: PassStats) -> None:
        key_marker = upload_marker = ""
        while True:
            page = await self.engine.list_multipart_uploads(bucket, "", "", key_marker, upload_marker, PAGE)
            for up in page.uploads:
                due = any(
                    r.abort_days is not None
                    and up.key.startswith(r.filter.prefix)
                    and now >= due_time(up.initiated, r.abort_days, self.day)
                    for r in rules
                )
                if not due:
                    continue
                try:
                    await self.engine.abort_multipart_upload(bucket, up.key, up.upload_id)
                    stats.uploads_aborted += 1
                except errors.NoSuchUpload:  # completed or aborted meanwhile
                    continue
            if not page.is_truncated or page.next_key_marker is None:
                return
            key_marker, upload_marker = page.next_key_marker, page.next_upload_id_marker or ""
