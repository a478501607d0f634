"""The predictive cache (``[cache]``): an in-memory, size-bounded blob cache at the top of the stack.

It caches whole blobs as the engine reads them (after dedup, decompression and decryption), keyed by
blob id. Blob ids are never reused and blobs never change, so an overwrite (a new blob) or a delete
(the object's blob is no longer read; its id is dropped here when the blob is deleted) can never be
answered with stale bytes, and a Range read of a cached blob is a slice.

Policies:

- ``lru``: plain least-recently-used; no TTL, no prefetch.
- ``predictive``: access-pattern detection (``access_patterns``) with adaptive TTL, priority
  eviction (the lowest-priority of the least recently used few, expired entries first) and
  predictive prefetch: after a read of A, the blobs the successor table predicts with confidence at
  or above ``prefetch_confidence`` are read in the background. A read that arrives while its
  prefetch is in flight waits for it instead of reading twice.

Warming (``warming``), on startup, from the statistics the previous run saved in
``DATA/.rs3gw/predictive_cache.json`` (up to half of ``max_bytes``): ``most-frequent``,
``most-recent``, ``highest-priority`` or ``predictive`` (soonest predicted next read), or ``none``.

SSE-C blobs are never cached: their plaintext stays out of memory beyond one request.
Per process: with ``--workers N`` each worker has its own cache.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rs3gw.blobs.access_patterns import BlobStats, Predictor
from rs3gw.blobs.base import NO_OPTIONS, BlobStore, BlobWriter, WriteOptions
from rs3gw.blobs.encrypted import CUSTOMER_KEY

log = logging.getLogger("rs3gw.predictive_cache")
MiB = 1 << 20
POLICIES = ("predictive", "lru")
WARMING = ("none", "most-frequent", "most-recent", "highest-priority", "predictive")
EVICTION_SAMPLE = 8  # least recently used entries among which the lowest priority goes first
SAVED_STATS = 5000
BYPASS: contextvars.ContextVar[bool] = contextvars.ContextVar("rs3gw_cache_bypass", default=False)


@contextmanager
def bypass() -> Iterator[None]:
    """Reads in this block go to the stack, unseen by the cache: the scrubber verifies what is on
    disk, not a copy in memory, and its full sweep must neither evict nor teach the predictor."""
    token = BYPASS.set(True)
    try:
        yield
    finally:
        BYPASS.reset(token)


@dataclass(frozen=True)
class CacheSettings:
    """The ``[cache]`` table."""

    enabled: bool = False
    max_bytes: int = 256 * MiB
    max_object_bytes: int = 8 * MiB  # larger blobs pass through uncached
    max_objects: int = 0  # entry bound beside max_bytes (the seed's [storage.cache] max_objects); 0 = none
    prefetch: bool = True
    policy: str = "predictive"
    prefetch_confidence: float = 0.6  # joint confidence a predicted read needs to be prefetched
    prefetch_depth: int = 2  # how many reads ahead to follow the prediction chain
    ttl: float = 300.0  # base TTL in seconds (adapted per pattern); 0 = entries never expire
    warming: str = "none"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_cache_table(value: object) -> CacheSettings:
    """Validate ``[cache]`` (or the JSON a worker process receives)."""
    if value is None:
        return CacheSettings()
    if isinstance(value, CacheSettings):
        return value
    if not isinstance(value, dict):
        raise ValueError("cache: expected a table")
    known = CacheSettings.__dataclass_fields__
    out: dict[str, Any] = {}
    for key, v in value.items():
        if key not in known:
            raise ValueError(f"cache.{key}: unknown key (known: {', '.join(sorted(known))})")
        default = getattr(CacheSettings(), key)
        if isinstance(default, bool):
            if not isinstance(v, bool):
                raise ValueError(f"cache.{key}: expected true or false")
        elif isinstance(default, int):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"cache.{key}: expected a non-negative integer")
        elif isinstance(default, float):
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise ValueError(f"cache.{key}: expected a non-negative number")
            v = float(v)
        out[key] = v
    s = CacheSettings(**out)
    if s.policy not in POLICIES:
        raise ValueError(f"cache.policy: expected one of {', '.join(POLICIES)}")
    if s.warming not in WARMING:
        raise ValueError(f"cache.warming: expected one of {', '.join(WARMING)}")
    if s.prefetch_confidence > 1:
        raise ValueError("cache.prefetch_confidence: expected a number from 0 to 1")
    return s


async def _close(stream: AsyncIterator[bytes]) -> None:
    """Stop a blob read early (an async generator holds its file or connection until closed)."""
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


@dataclass
class _Entry:
    data: bytes
    expires: float  # monotonic-free wall clock; inf when entries never expire


class PredictiveCacheStore(BlobStore):
    def __init__(self, inner: BlobStore, settings: CacheSettings, state_file: Path | None = None) -> None:
        self.inner = inner
        self.settings = settings
        self.state_file = state_file
        self.predictive = settings.policy == "predictive"
        self.predictor = Predictor()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self.on_event: Callable[[str, int], None] | None = None  # (event, count): metrics hook
        self.counts = {
            "hits": 0,
            "misses": 0,
            "prefetch_issued": 0,
            "prefetch_used": 0,
            "prefetch_waited": 0,
            "evictions": 0,
            "expired": 0,
            "warmed": 0,
        }
        self._prefetched: set[str] = set()
        self._warming: asyncio.Task[int] | None = None

    # -- stats ---------------------------------------------------------------------------------------
    def _count(self, event: str, n: int = 1) -> None:
        self.counts[event] += n
        if self.on_event is not None:
            self.on_event(event, n)

    def stats(self) -> dict[str, Any]:
        looked = self.counts["hits"] + self.counts["misses"]
        patterns: dict[str, int] = {}
        for blob_id in self._entries:
            st = self.predictor.stats.get(blob_id)
            p = st.pattern() if st else "new"
            patterns[p] = patterns.get(p, 0) + 1
        return {
            "policy": self.settings.policy,
            "prefetch": self.settings.prefetch and self.predictive,
            "entries": len(self._entries),
            "bytes": self._bytes,
            "max_bytes": self.settings.max_bytes,
            "hit_rate": self.counts["hits"] / looked if looked else 0.0,
            **self.counts,
            "patterns": patterns,
            "pid": os.getpid(),
        }

    # -- cache core ----------------------------------------------------------------------------------
    def _lookup(self, blob_id: str, now: float) -> bytes | None:
        e = self._entries.get(blob_id)
        if e is None:
            return None
        if e.expires < now:
            self._drop(blob_id)
            self._count("expired")
            return None
        self._entries.move_to_end(blob_id)
        e.expires = self._expiry(self.predictor.stats.get(blob_id), now)  # a read renews the TTL
        return e.data

    def _drop(self, blob_id: str) -> None:
        e = self._entries.pop(blob_id, None)
        if e is not None:
            self._bytes -= len(e.data)
        self._prefetched.discard(blob_id)

    def _expiry(self, st: BlobStats | None, now: float) -> float:
        if not self.predictive or self.settings.ttl <= 0:
            return float("inf")
        return now + (st.ttl(self.settings.ttl) if st is not None else self.settings.ttl)

    def _insert(self, blob_id: str, data: bytes, now: float) -> None:
        if len(data) > self.settings.max_object_bytes or len(data) > self.settings.max_bytes:
            return
        self._drop(blob_id)
        while self._entries and (
            self._bytes + len(data) > self.settings.max_bytes
            or 0 < self.settings.max_objects <= len(self._entries)
        ):
            self._drop(self._victim(now))
            self._count("evictions")
        self._entries[blob_id] = _Entry(data, self._expiry(self.predictor.stats.get(blob_id), now))
        self._bytes += len(data)

    def _victim(self, now: float) -> str:
        if not self.predictive:
            return next(iter(self._entries))
        sample: list[str] = []
        for blob_id, e in self._entries.items():
            if e.expires < now:
                return blob_id
            sample.append(blob_id)
            if len(sample) >= EVICTION_SAMPLE:
                break

        def score(b: str) -> float:
            st = self.predictor.stats.get(b)
            if b in self._prefetched:  # fetched for an imminent read: keep it until that read
                return float("inf")
            return st.priority(now) if st is not None else 0.0

        return min(sample, key=score)

    # -- BlobStore -----------------------------------------------------------------------------------
    def new_writer(self, options: WriteOptions = NO_OPTIONS) -> BlobWriter:
        return self.inner.new_writer(options)

    async def read(self, blob_id: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        if CUSTOMER_KEY.get() is not None or BYPASS.get():
            async for chunk in self.inner.read(blob_id, offset, length):
                yield chunk
            return
        now = time.time()
        if self.predictive:
            self.predictor.record(blob_id, now)
        pending = self._inflight.get(blob_id)
        if pending is not None:  # a hit, but only as fast as the prefetch already under way
            self._count("prefetch_waited")
            await asyncio.shield(pending)
        data = self._lookup(blob_id, now)
        if data is not None:
            self._count("hits")
            if blob_id in self._prefetched:
                self._prefetched.discard(blob_id)
                self._count("prefetch_used")
            self._schedule_prefetch(blob_id)
            end = len(data) if length is None else min(len(data), offset + length)
            yield data[offset:end]
            return
        self._count("misses")
        self._schedule_prefetch(blob_id)
        limit = self.settings.max_object_bytes
        if offset != 0 or (length is not None and length > limit):
            async for chunk in self.inner.read(blob_id, offset, length):
                yield chunk
            return
        # Read the whole blob (at most ``limit`` bytes past what the caller wants): whether a range
        # from 0 is the whole blob is learnt by reading on, without a size probe per miss.
        buf: list[bytes] | None = []
        got = sent = 0
        stream = self.inner.read(blob_id)
        try:
            async for chunk in stream:
                got += len(chunk)
                if length is None or sent < length:
                    part = chunk if length is None or sent + len(chunk) <= length else chunk[: length - sent]
                    sent += len(part)
                    yield part
                if got > limit:
                    buf = None
                elif buf is not None:
                    buf.append(chunk)
                if buf is None and length is not None and sent >= length:
                    break
        finally:
            await _close(stream)
        if buf is not None:
            self._insert(blob_id, b"".join(buf), time.time())

    def _schedule_prefetch(self, blob_id: str) -> None:
        if not (self.predictive and self.settings.prefetch):
            return
        for nxt, _conf in self.predictor.predict(
            blob_id, self.settings.prefetch_confidence, self.settings.prefetch_depth
        ):
            if nxt in self._entries or nxt in self._inflight:
                continue
            self._count("prefetch_issued")
            task = asyncio.create_task(self._fetch(nxt, prefetched=True))
            self._inflight[nxt] = task
            task.add_done_callback(self._settled(nxt))

    def _settled(self, blob_id: str) -> Callable[[asyncio.Task[None]], None]:
        def done(_task: asyncio.Task[None]) -> None:
            self._inflight.pop(blob_id, None)

        return done

    async def _fetch(self, blob_id: str, prefetched: bool) -> None:
        """Read a whole blob into the cache in the background; failures (deleted, too large,
        SSE-C) only mean nothing is cached."""
        try:
            data = bytearray()
            stream = self.inner.read(blob_id)
            try:
                async for chunk in stream:
                    data += chunk
                    if len(data) > self.settings.max_object_bytes:
                        return
            finally:
                await _close(stream)
            self._insert(blob_id, bytes(data), time.time())
            if prefetched and blob_id in self._entries:
                self._prefetched.add(blob_id)
        except Exception:  # a blob deleted meanwhile, an SSE-C blob, a backend hiccup
            log.debug("predictive cache: fetching %s failed", blob_id, exc_info=True)

    async def delete(self, blob_ids: Sequence[str]) -> None:
        for b in blob_ids:
            self._drop(b)
        await self.inner.delete(blob_ids)

    async def exists(self, blob_id: str) -> bool:
        return await self.inner.exists(blob_id)

    def list_ids(self) -> AsyncIterator[str]:
        return self.inner.list_ids()

    async def size(self, blob_id: str) -> int:
        e = self._entries.get(blob_id)
        if e is not None:
            return len(e.data)
        return await self.inner.size(blob_id)

    async def sweep_orphans(self, referenced: Callable[[], Awaitable[set[str]]]) -> int:
        return await self.inner.sweep_orphans(referenced)

    # -- warming -------------------------------------------------------------------------------------
    def save_state(self) -> None:
        """Statistics of the most recently read blobs, for the next run's warming."""
        if self.state_file is None or not self.predictor.stats:
            return
        rows = [
            [b, s.count, s.first, s.last, s.ema_gap, s.ema_var, list(s.recent)]
            for b, s in list(self.predictor.stats.items())[-SAVED_STATS:]
        ]
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"stats": rows}))
        os.replace(tmp, self.state_file)

    def load_state(self) -> None:
        if self.state_file is None or not self.state_file.exists():
            return
        try:
            rows = json.loads(self.state_file.read_text())["stats"]
            for b, count, first, last, gap, var, recent in rows:
                st = BlobStats(int(count), float(first), float(last), float(gap), float(var))
                st.recent.extend(float(t) for t in recent)
                self.predictor.stats[str(b)] = st
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("predictive cache: ignoring unreadable %s", self.state_file)

    async def start(self) -> None:
        """Warming runs in the background: the gateway serves (and caches) meanwhile."""
        if self.settings.warming != "none" and self.predictive:
            self._warming = asyncio.create_task(self.warm())

    async def warm(self) -> int:
        """Fill up to half of ``max_bytes`` by the configured strategy; returns blobs loaded."""
        strategy = self.settings.warming
        if strategy == "none" or not self.predictive:
            return 0
        self.load_state()
        budget = self.settings.max_bytes // 2
        loaded = 0
        for blob_id in self.predictor.ranked(strategy, time.time()):
            if self._bytes >= budget:
                break
            await self._fetch(blob_id, prefetched=False)
            if blob_id in self._entries:
                loaded += 1
        self._count("warmed", loaded)
        return loaded

    async def close(self) -> None:
        if self._warming is not None:
            self._warming.cancel()
        for t in list(self._inflight.values()):
            t.cancel()
        try:
            await asyncio.to_thread(self.save_state)
        except OSError:
            log.warning("predictive cache: could not save %s", self.state_file, exc_info=True)
