"""The analytics request observer: per-minute series per bucket and read counts per key.

Everything is in memory for ``window_hours`` and written every ``persist_interval`` seconds (and at
shutdown) to ``DATA/.rs3gw/analytics/requests-<pid>-<start>.json``. Each process writes only its own
file and only its own counts, so with ``--workers N`` (and across restarts, which start new files)
readers get the whole picture by summing every file in the directory; a file whose newest minute
left the window is deleted. The process answering an admin request uses its in-memory series
instead of its own file, so what other workers counted is at most ``persist_interval`` old.

Access counts per key cover the window approximately: a key's count restarts once it has gone a
whole window unread (keeping exact per-minute counts per key would cost far more memory).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rs3gw.analytics.settings import AnalyticsSettings
from rs3gw.diskspace import free_bytes, has_room
from rs3gw.protocol.admin import ADMIN_BUCKET
from rs3gw.protocol.observe import RequestEvent

log = logging.getLogger("rs3gw.analytics")
CATEGORIES = ("GET", "HEAD", "PUT", "DELETE", "LIST", "OTHER")
_CATEGORY = {
    "GetObject": "GET",
    "GetObjectAttributes": "GET",
    "GetObjectTagging": "GET",
    "SelectObjectContent": "GET",
    "HeadObject": "HEAD",
    "HeadBucket": "HEAD",
    "PutObject": "PUT",
    "CopyObject": "PUT",
    "UploadPart": "PUT",
    "UploadPartCopy": "PUT",
    "CreateMultipartUpload": "PUT",
    "CompleteMultipartUpload": "PUT",
    "PostObject": "PUT",
    "DeleteObject": "DELETE",
    "DeleteObjects": "DELETE",
    "DeleteBucket": "DELETE",
    "ListObjects": "LIST",
    "ListObjectsV2": "LIST",
    "ListObjectVersions": "LIST",
    "ListMultipartUploads": "LIST",
    "ListParts": "LIST",
    "ListBuckets": "LIST",
}
SERVICE = "(service)"  # requests that name no bucket (ListBuckets, failed routing)


def category(operation: str) -> str:
    return _CATEGORY.get(operation, "OTHER")


def empty_tally() -> dict[str, Any]:
    return {**dict.fromkeys(CATEGORIES, 0), "bytes_in": 0, "bytes_out": 0, "errors": {}}


def add_tally(into: dict[str, Any], other: dict[str, Any]) -> None:
    for k in (*CATEGORIES, "bytes_in", "bytes_out"):
        into[k] += int(other.get(k, 0))
    errs = into["errors"]
    for code, n in (other.get("errors") or {}).items():
        errs[code] = errs.get(code, 0) + int(n)


@dataclass
class Series:
    """One process's counts (or several processes' counts summed)."""

    minutes: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)  # minute -> bucket -> tally
    access: dict[str, list[int]] = field(default_factory=dict)  # "bucket/key" -> [reads, first, last minute]

    def merge(self, other: Series) -> None:
        for minute, buckets in other.minutes.items():
            mine = self.minutes.setdefault(minute, {})
            for bucket, tally in buckets.items():
                add_tally(mine.setdefault(bucket, empty_tally()), tally)
        for key, (n, first, last) in other.access.items():
            got = self.access.get(key)
            if got is None:
                self.access[key] = [n, first, last]
            else:
                got[0] += n
                got[1], got[2] = min(got[1], first), max(got[2], last)

    def prune(self, oldest_minute: int) -> None:
        for minute in [m for m in self.minutes if m < oldest_minute]:
            del self.minutes[minute]
        for key in [k for k, v in self.access.items() if v[2] < oldest_minute]:
            del self.access[key]

    def to_json(self) -> dict[str, Any]:
        return {"minutes": {str(m): b for m, b in self.minutes.items()}, "access": self.access}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Series:
        minutes = {int(m): b for m, b in (doc.get("minutes") or {}).items()}
        access = {str(k): [int(x) for x in v] for k, v in (doc.get("access") or {}).items()}
        return cls(minutes, access)


def analytics_dir(data_dir: Path) -> Path:
    return data_dir / ".rs3gw" / "analytics"


class RequestAnalytics:
    """The observer of one process; ``observe`` only updates dictionaries (it runs on the loop)."""

    def __init__(self, data_dir: Path, settings: AnalyticsSettings) -> None:
        self.settings = settings
        self.directory = analytics_dir(data_dir)
        self.file = self.directory / f"requests-{os.getpid()}-{int(time.time() * 1000)}.json"
        self.series = Series()
        self._low = False  # writes skipped for lack of space since the last one that got through
        self._task: asyncio.Task[None] | None = None

    def observe(self, e: RequestEvent) -> None:
        if e.bucket == ADMIN_BUCKET:  # the admin API (these very queries) is not storage traffic
            return
        minute = int(e.started // 60) * 60
        bucket = e.bucket or SERVICE
        # get-then-create, not setdefault: its default (a fresh tally) would be built every request.
        per_bucket = self.series.minutes.get(minute)
        if per_bucket is None:
            per_bucket = self.series.minutes[minute] = {}
        tally = per_bucket.get(bucket)
        if tally is None:
            tally = per_bucket[bucket] = empty_tally()
        tally[category(e.operation)] += 1
        tally["bytes_in"] += e.bytes_in
        if e.method != "HEAD":
            tally["bytes_out"] += e.bytes_out
        if e.error_code:
            tally["errors"][e.error_code] = tally["errors"].get(e.error_code, 0) + 1
        if e.operation == "GetObject" and e.status in (200, 206) and e.bucket and e.key:
            k = f"{e.bucket}/{e.key}"
            got = self.series.access.get(k)
            if got is not None:
                got[0] += 1
                got[2] = minute
            elif len(self.series.access) < self.settings.max_keys:
                self.series.access[k] = [1, minute, minute]

    def oldest_minute(self, now: float) -> int:
        return int((now - self.settings.window_s) // 60) * 60

    def snapshot(self) -> str:
        """This process's file contents; taken on the event loop, where ``observe`` runs."""
        self.series.prune(self.oldest_minute(time.time()))
        return json.dumps(self.series.to_json())

    def write(self, text: str) -> None:
        """Write this process's file (atomically) and delete files that left the window; blocking.

        The file lives in the data directory: a write that would leave less than half the blob
        store's reserve free is skipped (``rs3gw.diskspace``), so that on a full disk the metadata
        store keeps the room it needs to commit the deletes that free space. The counts stay in
        memory and the next write once space is back has them all; expired files are still deleted,
        since that only frees space. One warning per episode: the skip repeats every interval."""
        now = time.time()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._expire(now)
        vfs = os.statvfs(self.directory)
        if not has_room(vfs, len(text.encode()), self._low):
            if not self._low:
                self._low = True
                log.warning(
                    "analytics: disk nearly full (%d bytes free), %s not written", free_bytes(vfs), self.file
                )
            return
        if self._low:
            self._low = False
            log.warning("analytics: disk space is back, writing %s again", self.file)
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.file)

    def _expire(self, now: float) -> None:
        for path in self.directory.glob("requests-*.json"):
            if path != self.file and path.stat().st_mtime < now - self.settings.window_s:
                path.unlink(missing_ok=True)

    async def persist(self) -> None:
        try:
            await asyncio.to_thread(self.write, self.snapshot())
        except OSError:
            log.exception("analytics: writing %s failed", self.file)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.persist_interval)
            await self.persist()

    async def start(self) -> None:
        if self.settings.persist_interval > 0:
            self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.persist()


def load_merged(directory: Path, window_s: float, now: float, skip: Path | None = None) -> Series:
    """Every process's counts within the window, summed (blocking); ``skip``: the caller's own file,
    whose fresher counts it merges from memory."""
    out = Series()
    for path in sorted(directory.glob("requests-*.json")) if directory.is_dir() else []:
        if path == skip:
            continue
        try:
            out.merge(Series.from_json(json.loads(path.read_text())))
        except (OSError, ValueError, TypeError, AttributeError):
            log.warning("analytics: skipping unreadable %s", path)
    out.prune(int((now - window_s) // 60) * 60)
    return out


async def merged_with(live: RequestAnalytics, now: float) -> Series:
    """Other processes' files plus this process's in-memory counts."""
    out = await asyncio.to_thread(load_merged, live.directory, live.settings.window_s, now, live.file)
    out.merge(live.series)
    out.prune(live.oldest_minute(now))
    return out
