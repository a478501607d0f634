"""Scrub repair: rewrite a corrupt object version from a known-good copy of its bytes (a backup).

A copy is used only when it is proven to be the version's own bytes: the source matches it by
version id and ETag (``RepairSource``), the bytes streamed from it must hash to the SHA-256 the
source recorded, and the rewritten data must pass every checksum the version recorded when it was
written (ETag, CRC/SHA, composite) before anything is switched over. Otherwise nothing changes and
the scrubber quarantines the version as before.

The repair:

* Deduplicated data: damaged chunks are first rewritten in place (``DedupBlobStore.replace_chunk``),
  located through the version's own manifest. Chunks are content-addressed, so the good bytes of a
  chunk are exactly those whose SHA-256 is its name, and every object sharing it heals at once.
* Then the copy is written into new blobs (same part layout, the bucket's compression and the
  version's SSE-S3/KMS encryption; with dedup only a new manifest, its chunks exist now), verified,
  and swapped in by one metadata transaction (``MetadataStore.replace_segments`` with the version
  read as the expectation) that also clears a quarantine mark; the old blobs are freed. A version
  overwritten or deleted meanwhile is left alone and the new blobs are deleted.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import IO, TYPE_CHECKING, Protocol, TypeVar

from rs3gw import errors
from rs3gw.blobs.base import WriteOptions
from rs3gw.blobs.dedup import DedupBlobStore
from rs3gw.engine.quarantine import QUARANTINE_KEY, QUARANTINE_TIME_KEY
from rs3gw.engine.sse import encryption_of, read_bindings
from rs3gw.model import ObjectMeta, ObjectVersion, Segment

if TYPE_CHECKING:
    from rs3gw.engine.core import ObjectEngine

log = logging.getLogger("rs3gw.scrub")
READ = 1 << 20  # bytes read from the copy per thread hop
T = TypeVar("T")


@dataclass
class GoodCopy:
    """An open copy of one version's bytes; ``sha256`` is what they must hash to."""

    reader: IO[bytes]  # closed by the repairer
    sha256: str
    origin: str  # where it came from, for reports: "backup DIR snapshot ID"


class RepairSource(Protocol):
    """Where known-good copies come from (``rs3gw.backup.heal_source.BackupSource``)."""

    description: str

    def open_copy(self, obj: ObjectVersion) -> GoodCopy | None:
        """A copy of exactly this version (blocking; called on a worker thread), or None."""


@dataclass(frozen=True)
class Outcome:
    repaired: bool
    detail: str  # how it was repaired, or why it could not be


class BadCopy(Exception):
    """The copy's bytes are not the version's: wrong length or hash."""


class _Stream:
    """Sequential reads of a copy that hash everything read (checked by ``finish``)."""

    def __init__(self, copy: GoodCopy) -> None:
        self.copy = copy
        self.sha = hashlib.sha256()
        self.size = 0

    async def read(self, n: int) -> bytes:
        data = await asyncio.to_thread(self.copy.reader.read, n)
        self.sha.update(data)
        self.size += len(data)
        return data

    async def exact(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = await self.read(min(READ, n - len(out)))
            if not chunk:
                raise BadCopy("the copy is shorter than the object")
            out += chunk
        return bytes(out)

    async def skip(self, n: int) -> None:
        """Read past ``n`` bytes (still hashed), holding at most one read's worth in memory."""
        while n > 0:
            chunk = await self.read(min(READ, n))
            if not chunk:
                raise BadCopy("the copy is shorter than the object")
            n -= len(chunk)

    async def finish(self, size: int) -> None:
        if self.size != size or await self.read(1):
            raise BadCopy("the copy's length differs from the object's")
        if self.sha.hexdigest() != self.copy.sha256:
            raise BadCopy("the copy does not match its recorded SHA-256")


Verify = Callable[[ObjectVersion], Awaitable[str | None]]  # the scrubber's check: a problem or None


class Repairer:
    """Repairs versions of one engine from one source (one per scrub pass)."""

    def __init__(self, engine: ObjectEngine, source: RepairSource, verify: Verify) -> None:
        self.engine = engine
        self.source = source
        self.verify = verify
        self.dedup = engine.blobs if isinstance(engine.blobs, DedupBlobStore) else None

    async def repair(self, obj: ObjectVersion) -> Outcome:
        """Repair ``obj`` (as read by the scrub that found it corrupt, or quarantined earlier)."""
        if "archive-tier" in obj.meta.system:
            return Outcome(False, "archived versions are not repaired in place")
        if any(k.startswith("sse-c-") for k in obj.meta.system):
            return Outcome(False, "SSE-C data cannot be rewritten without the customer's key")
        try:
            chunks = await self._heal_in_place(obj) if self.dedup is not None else 0
            if chunks is None:
                return Outcome(False, f"no intact copy of this version in {self.source.description}")
            return await self._rewrite(obj, chunks)
        except asyncio.CancelledError:
            raise
        except BadCopy as e:
            return Outcome(False, f"the copy in {self.source.description} is not usable: {e}")
        except errors.PreconditionFailed:
            return Outcome(False, "the version changed during the repair")
        except Exception as e:  # a failing write, an unreadable source: quarantine instead
            log.exception("scrub: repair of %s/%r %s failed", obj.bucket, obj.key, obj.version_id)
            return Outcome(False, f"repair failed: {type(e).__name__}: {e}")

    async def _heal_in_place(self, obj: ObjectVersion) -> int | None:
        """Rewrite the damaged chunks of a deduplicated version in place, which heals every object
        sharing them; how many, or None when the source has no copy. The version itself is then
        rewritten all the same (new manifest blobs, swapped in): a cache in front of the blob store
        may hold the old manifest's bytes, never the new one's."""
        try:
            options = await self._options(obj)
            n = await self._with_copy(obj, lambda s: self._heal_chunks(obj.segments, s, options))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # e.g. the manifest itself is damaged: the rewrite replaces it
            log.info("scrub: in-place chunk repair of %s/%r not possible: %s", obj.bucket, obj.key, e)
            return 0
        return None if n is None else n[1]

    async def _with_copy(
        self, obj: ObjectVersion, use: Callable[[_Stream], Awaitable[T]]
    ) -> tuple[str, T] | None:
        copy = await asyncio.to_thread(self.source.open_copy, obj)
        if copy is None:
            return None
        try:
            stream = _Stream(copy)
            result = await use(stream)
            await stream.finish(obj.size)
            return copy.origin, result
        finally:
            await asyncio.to_thread(copy.reader.close)

    async def _options(self, obj: ObjectVersion) -> WriteOptions:
        return replace(
            await self.engine.write_options(obj.bucket), encryption=encryption_of(obj.meta.system, None)
        )

    async def _heal_chunks(
        self, segments: tuple[Segment, ...], stream: _Stream, options: WriteOptions
    ) -> int:
        """Walk the copy along the segments' dedup manifests; rewrite chunks that fail their hash."""
        assert self.dedup is not None
        dedup, healed = self.dedup, 0
        for seg in segments:
            if await asyncio.to_thread(dedup.index.manifest, seg.blob_id) is None:
                await stream.skip(seg.size)  # not deduplicated: the rewrite path handles it
                continue
            start = 0
            async for records in dedup.manifest_hashes(seg.blob_id):
                for end, h in records:
                    data = await stream.exact(end - start)
                    start = end
                    if await asyncio.to_thread(_sha256, data) != h:
                        raise BadCopy("the copy does not match the version's dedup manifest")
                    if not await dedup.chunk_intact(h):
                        healed += await dedup.replace_chunk(h, data, options)
            if start != seg.size:
                raise BadCopy("the dedup manifest does not cover the part")
        return healed

    async def _rewrite(self, obj: ObjectVersion, chunks: int) -> Outcome:
        options = await self._options(obj)
        bound = read_bindings(obj)  # each new blob carries the binding a GET expects of its segment
        new: list[Segment] = []

        async def write(stream: _Stream) -> None:
            for seg in obj.segments:
                w = self.engine.blobs.new_writer(replace(options, binding=bound.get(seg.blob_id, b"")))
                try:
                    left = seg.size
                    while left:
                        chunk = await stream.exact(min(READ, left))
                        await w.write(chunk)
                        left -= len(chunk)
                    size = await w.close()
                except BaseException:
                    await w.abort()
                    raise
                new.append(Segment(w.blob_id, size))

        try:
            got = await self._with_copy(obj, write)
            if got is None:
                return Outcome(False, f"no intact copy of this version in {self.source.description}")
            origin = got[0]
            fixed = replace(obj, segments=tuple(new))
            problem = await self.verify(fixed)
            if problem is not None and self.dedup is not None:
                # The new manifest may share chunks that are themselves damaged: heal those too.
                more = await self._with_copy(obj, lambda s: self._heal_chunks(fixed.segments, s, options))
                chunks += more[1] if more is not None else 0
                problem = await self.verify(fixed)
            if problem is not None:
                raise BadCopy(f"the rewritten data fails its check: {problem}")
            freed = await self.engine.store.replace_segments(
                obj.bucket, obj.key, obj.version_id, fixed.segments, _unquarantined(obj), expect=obj
            )
        except BaseException:
            await self.engine.blobs.delete([s.blob_id for s in new])
            raise
        self.engine.free(freed)
        healed = f" and {chunks} damaged dedup chunk(s)" if chunks else ""
        return Outcome(True, f"rewrote {len(new)} blob(s){healed} from {origin}")


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _unquarantined(obj: ObjectVersion) -> ObjectMeta:
    system = {k: v for k, v in obj.meta.system.items() if k not in (QUARANTINE_KEY, QUARANTINE_TIME_KEY)}
    return replace(obj.meta, system=system)
