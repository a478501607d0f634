"""``verify_on_read``: GETs check the bytes they serve against what was recorded at write time.

A full-object GET hashes the body as it streams with the scrubber's digests (``engine.scrub``: the
ETag's MD5 per part, FULL_OBJECT and COMPOSITE CRC/SHA checksums) and compares them with the
scrubber's rules. The verdict is only known after the last byte, so the tail of the body is held
back until then (at least ``HOLD`` bytes): an object that fits in the hold fails with an S3 error
before the status line goes out; a larger one fails mid-stream, which cuts the connection short
of its Content-Length, so a client never gets a clean 200 with wrong bytes. Range GETs cannot be
checked against whole-object sums; with dedup the chunk layer checks each block's SHA-256 instead
(``DedupBlobStore.verify_blocks``), on any read. Whatever the check, a failure is counted
(``on_corrupt``, the ``rs3gw_corrupt_reads_total`` series) and logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from rs3gw import errors
from rs3gw.codecs.checksums import ALGORITHMS, Checksum, new_checksum
from rs3gw.engine.scrub import _compare, _Digests
from rs3gw.model import ObjectVersion

log = logging.getLogger("rs3gw.verify")
HOLD = 1 << 20  # body bytes held back until verified: objects up to this size never start a response
THREAD_MIN = 256 << 10  # chunks at least this big are hashed on a worker thread (hashlib drops the GIL)
MESSAGE = "The object's stored data failed its integrity check on read."


class CorruptRead(errors.S3Error):
    """Stored bytes that do not match their recorded checksums (500: the client did nothing wrong)."""


@dataclass
class ReadVerifier:
    """The engine's read check; the composition root turns it on and points ``on_corrupt`` at metrics."""

    enabled: bool = False
    on_corrupt: Callable[[str], None] | None = None  # told the reason: "checksum" or "unreadable"

    def wrap(self, obj: ObjectVersion, body: AsyncIterator[bytes], full: bool) -> AsyncIterator[bytes]:
        if not self.enabled:
            return body
        return self._verified(obj, body) if full else self._counted(obj, body)

    def _report(self, obj: ObjectVersion, reason: str, problem: str) -> None:
        log.error(
            "corrupt read bucket=%s key=%r version=%s etag=%s: %s",
            obj.bucket,
            obj.key,
            obj.version_id,
            obj.etag,
            problem,
        )
        if self.on_corrupt is not None:
            self.on_corrupt(reason)

    async def _counted(self, obj: ObjectVersion, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """A partial read: only the blob stack's own checks (dedup block hashes, frame decoding) apply."""
        try:
            async for chunk in body:
                yield chunk
        except Exception as e:
            self._report(obj, "unreadable", f"stored data is unreadable: {e}")
            raise CorruptRead(MESSAGE) from e
        finally:
            await _aclose(body)

    async def _verified(self, obj: ObjectVersion, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        hasher = _Hasher(obj)
        held: deque[bytes] = deque()
        held_bytes = 0
        try:
            async for chunk in body:
                if len(chunk) >= THREAD_MIN:
                    await asyncio.to_thread(hasher.update, chunk)
                else:
                    hasher.update(chunk)
                held.append(chunk)
                held_bytes += len(chunk)
                while len(held) > 1 and held_bytes - len(held[0]) >= HOLD:
                    out = held.popleft()
                    held_bytes -= len(out)
                    yield out
        except Exception as e:
            self._report(obj, "unreadable", f"stored data is unreadable: {e}")
            raise CorruptRead(MESSAGE) from e
        finally:
            await _aclose(body)
        problem = hasher.problem()
        if problem is not None:
            self._report(obj, "checksum", problem)
            raise CorruptRead(MESSAGE)
        while held:
            yield held.popleft()


class _Hasher:
    """The scrubber's digests, fed a whole object's body that may cross part boundaries anywhere."""

    def __init__(self, obj: ObjectVersion) -> None:
        self.obj = obj
        algs = [a for a in obj.meta.checksums if a in ALGORITHMS]
        self.composite_algs = algs if obj.meta.checksum_type == "COMPOSITE" else []
        whole = [new_checksum(a) for a in algs if obj.meta.checksum_type == "FULL_OBJECT"]
        self.d = _Digests(whole=whole)
        self.sizes = [s.size for s in obj.segments]
        self.seg = -1
        self.left = 0  # bytes still due in the current segment
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.parts: list[Checksum] = []
        self.total = 0
        self._next_segment()

    def _next_segment(self) -> None:
        if self.seg >= 0:
            self.d.part_md5.append(self.md5.hexdigest())
            for tap in self.parts:
                self.d.part_sums.setdefault(tap.algorithm, []).append(tap.b64())
        self.seg += 1
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.parts = [new_checksum(a) for a in self.composite_algs]
        self.left = self.sizes[self.seg] if self.seg < len(self.sizes) else -1

    def update(self, data: bytes) -> None:
        view = memoryview(data)
        self.total += len(view)
        while view:
            if self.left == 0:
                self._next_segment()
            take = len(view) if self.left < 0 else min(self.left, len(view))
            piece = view[:take]
            self.md5.update(piece)
            for tap in (*self.parts, *self.d.whole):
                tap.update(piece)
            if self.left > 0:
                self.left -= take
            view = view[take:]

    def problem(self) -> str | None:
        if self.total != self.obj.size:
            return f"read {self.total} bytes, metadata says {self.obj.size}"
        while self.seg < len(self.sizes):  # close the last segment and any empty ones after it
            self._next_segment()
        return _compare(self.obj, self.d)


async def _aclose(stream: AsyncIterator[bytes]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
