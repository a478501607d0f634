"""The scrubber: re-reads every stored object version through the whole blob stack (dedup,
compression, disk) and checks the bytes against what was recorded when they were written: the
ETag (MD5 of a single-part object, MD5 of the part MD5s for a multipart one) and any CRC/SHA
checksums (FULL_OBJECT or COMPOSITE). A version that fails is repaired from a known-good copy
when the pass has a repair source (a backup, see ``repair``) that holds that very version, and is
otherwise quarantined (see ``quarantine``). With a source, versions quarantined by earlier passes
are offered for repair again, so configuring a backup later heals what was found before.

Reads go through ``ObjectEngine.read_segments`` so that an overwrite during the scrub cannot
delete a blob under it; any finding is confirmed against fresh metadata before it counts, so a
version replaced or deleted meanwhile is never reported as corrupt.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING

from rs3gw.blobs import binding
from rs3gw.blobs.base import Tap
from rs3gw.blobs.predictive_cache import bypass as cache_bypass
from rs3gw.codecs.checksums import ALGORITHMS, Checksum, composite, new_checksum
from rs3gw.codecs.checksums import md5_etag_multipart as multipart_etag
from rs3gw.engine.quarantine import QUARANTINE_KEY, QUARANTINE_TIME_KEY, is_quarantined
from rs3gw.engine.repair import Repairer, RepairSource
from rs3gw.engine.sse import read_bindings
from rs3gw.engine.version_walk import stored_versions
from rs3gw.meta.store import all_buckets
from rs3gw.model import ObjectVersion, Segment

if TYPE_CHECKING:
    from rs3gw.engine.core import ObjectEngine

log = logging.getLogger("rs3gw.scrub")
_MD5_HEX = re.compile(r"[0-9a-f]{32}")
HASH_BATCH = 1 << 20  # bytes hashed per worker-thread hop (hashlib releases the GIL)
_CUSTOMER_KEYED = "sse-c-"  # SSE-C system keys: without the client's key the bytes cannot be read


@dataclass(frozen=True)
class Finding:
    """One corrupt object version."""

    bucket: str
    key: str
    version_id: str
    etag: str
    size: int
    problem: str
    quarantined: bool  # False when repaired, already quarantined, or changed before it could be marked
    repaired: bool = False  # rewritten from a verified copy: it reads correctly again
    repair: str = ""  # how it was repaired, or why it could not be (empty: no repair source)


@dataclass
class ScrubReport:
    started: float = 0.0
    finished: float = 0.0
    versions_checked: int = 0
    bytes_checked: int = 0
    skipped: int = 0  # SSE-C versions: unreadable without the customer's key (SSE-S3/KMS are checked)
    already_quarantined: int = 0  # quarantined by an earlier scrub and still so after this one
    corrupt: list[Finding] = field(default_factory=list)
    released: list[Finding] = field(default_factory=list)  # quarantined earlier, repaired by this pass
    repair_source: str = ""  # the backup repairs came from (empty: none configured)

    @property
    def quarantined_now(self) -> int:
        """Versions this scrub found quarantined or quarantined itself."""
        return self.already_quarantined + sum(1 for f in self.corrupt if f.quarantined)

    @property
    def repaired(self) -> int:
        """Versions this scrub rewrote from a good copy (found now, or quarantined before)."""
        return sum(1 for f in self.corrupt if f.repaired) + len(self.released)

    def to_json(self) -> dict[str, object]:
        out = asdict(self)
        out["duration"] = max(self.finished - self.started, 0.0)
        out["quarantined"] = self.quarantined_now
        out["repaired"] = self.repaired
        # Clean: no damaged data is left (every corrupt version found was repaired, none quarantined).
        out["clean"] = all(f.repaired for f in self.corrupt) and not self.already_quarantined
        return out


class RateLimit:
    """Keeps the average read rate at or below ``bytes_per_s`` (0: unlimited) by sleeping."""

    def __init__(self, bytes_per_s: float) -> None:
        self.rate = bytes_per_s
        self.start = time.monotonic()
        self.done = 0

    async def consume(self, n: int) -> None:
        if self.rate <= 0:
            return
        self.done += n
        ahead = self.done / self.rate - (time.monotonic() - self.start)
        if ahead > 0:
            await asyncio.sleep(ahead)


def _feed(chunks: list[bytes], taps: Sequence[Tap]) -> None:
    for c in chunks:
        for t in taps:
            t.update(c)


def _customer_keyed(obj: ObjectVersion) -> bool:
    return any(k.startswith(_CUSTOMER_KEYED) for k in obj.meta.system)


@dataclass
class _Digests:
    part_md5: list[str] = field(default_factory=list)
    part_sums: dict[str, list[str]] = field(default_factory=dict)
    whole: list[Checksum] = field(default_factory=list)


async def _read_segment(engine: ObjectEngine, seg: Segment, taps: Sequence[Tap], limit: RateLimit) -> int:
    got, pending, batch = 0, 0, []
    with cache_bypass():  # verify the stored bytes, not the predictive cache's copy
        async for chunk in engine.read_segments([seg], 0, seg.size):
            batch.append(chunk)
            got += len(chunk)
            pending += len(chunk)
            if pending >= HASH_BATCH:
                await asyncio.to_thread(_feed, batch, taps)
                batch, pending = [], 0
            await limit.consume(len(chunk))
    _feed(batch, taps)
    return got


async def _digest(engine: ObjectEngine, obj: ObjectVersion, limit: RateLimit) -> tuple[_Digests, str | None]:
    algs = [a for a in obj.meta.checksums if a in ALGORITHMS]
    composite_algs = algs if obj.meta.checksum_type == "COMPOSITE" else []
    d = _Digests(whole=[new_checksum(a) for a in algs if obj.meta.checksum_type == "FULL_OBJECT"])
    for i, seg in enumerate(obj.segments, 1):
        md5 = hashlib.md5(usedforsecurity=False)
        parts = [new_checksum(a) for a in composite_algs]
        got = await _read_segment(engine, seg, [md5, *parts, *d.whole], limit)
        if got != seg.size:
            return d, f"part {i} holds {got} bytes, metadata says {seg.size}"
        d.part_md5.append(md5.hexdigest())
        for tap in parts:
            d.part_sums.setdefault(tap.algorithm, []).append(tap.b64())
    return d, None


def _compare(obj: ObjectVersion, d: _Digests) -> str | None:
    """The first recorded checksum the bytes read do not match, or None."""
    single = obj.parts_count == 0 and _MD5_HEX.fullmatch(obj.etag) and d.part_md5
    if single and d.part_md5[0] != obj.etag:
        return f"content MD5 {d.part_md5[0]} does not match the ETag {obj.etag}"
    if obj.parts_count > 0 and obj.etag.endswith(f"-{len(obj.segments)}"):
        got = multipart_etag(d.part_md5)
        if got != obj.etag:
            return f"multipart ETag of the parts read is {got}, stored ETag is {obj.etag}"
    for tap in d.whole:
        want = obj.meta.checksums[tap.algorithm]
        if tap.b64() != want:
            return f"{tap.algorithm} checksum {tap.b64()} does not match the stored {want}"
    for alg, values in d.part_sums.items():
        want = obj.meta.checksums[alg]
        got = composite(alg, values)
        if got != want:
            return f"composite {alg} checksum {got} does not match the stored {want}"
    return None


async def verify_version(engine: ObjectEngine, obj: ObjectVersion, limit: RateLimit) -> str | None:
    """Read one version through the blob stack; a description of what is wrong, or None.

    The read expects the blob bindings a GET expects (``engine.sse.read_bindings``), so a blob
    that GET would refuse as another object's bytes is found here too."""
    token = binding.EXPECTED.set(read_bindings(obj))
    try:
        d, problem = await _digest(engine, obj, limit)
    except asyncio.CancelledError:
        raise
    except Exception as e:  # a missing blob, an undecodable frame, a bad manifest: all corruption
        return f"stored data is unreadable: {e}"
    finally:
        binding.EXPECTED.reset(token)
    return problem or _compare(obj, d)


class Scrubber:
    """One pass over every version of every bucket the given owners have."""

    def __init__(
        self,
        engine: ObjectEngine,
        owner_ids: Sequence[str],
        rate_bytes_per_s: float = 0,
        progress: Callable[[int], None] | None = None,
        source: RepairSource | None = None,
    ) -> None:
        self.engine = engine
        self.store = engine.store
        self.owner_ids = list(owner_ids)
        self.limit = RateLimit(rate_bytes_per_s)
        self.progress = progress  # told each version's size once it is checked
        self.source = source
        self.repairer = (
            None
            if source is None
            else Repairer(engine, source, lambda o: verify_version(engine, o, self.limit))
        )

    async def buckets(self) -> list[str]:
        return [b.name for b in await all_buckets(self.store, self.owner_ids)]

    async def total_bytes(self) -> int:
        """What a full pass reads (for progress bars), from the store's cheap usage query."""
        return sum([(await self.store.bucket_usage(b))[1] for b in await self.buckets()])

    async def run(self) -> ScrubReport:
        report = ScrubReport(
            started=time.time(), repair_source=self.source.description if self.source else ""
        )
        self.limit = RateLimit(self.limit.rate)
        for bucket in await self.buckets():
            async for obj in self._versions(bucket):
                await self._check(obj, report)
        report.finished = time.time()
        return report

    async def _versions(self, bucket: str) -> AsyncIterator[ObjectVersion]:
        async for v in stored_versions(self.store, bucket):
            obj = await self.store.get_object(bucket, v.key, v.version_id)  # listings lack segments
            if obj is not None and not obj.delete_marker:
                yield obj

    async def _check(self, obj: ObjectVersion, report: ScrubReport) -> None:
        if is_quarantined(obj):
            if not await self._release(obj, report):
                report.already_quarantined += 1
        elif _customer_keyed(obj):
            report.skipped += 1
        else:
            report.versions_checked += 1
            report.bytes_checked += obj.size
            problem = await verify_version(self.engine, obj, self.limit)
            if problem is not None and await self._still_current(obj):
                await self._corrupt(obj, problem, report)
        if self.progress is not None:
            self.progress(obj.size)

    async def _corrupt(self, obj: ObjectVersion, problem: str, report: ScrubReport) -> None:
        """Repair from the source when it holds a good copy of this version, else quarantine."""
        outcome = await self.repairer.repair(obj) if self.repairer is not None else None
        if outcome is not None and outcome.repaired:
            report.corrupt.append(
                Finding(
                    obj.bucket,
                    obj.key,
                    obj.version_id,
                    obj.etag,
                    obj.size,
                    problem,
                    False,
                    True,
                    outcome.detail,
                )
            )
            log.warning(
                "scrub: repaired corrupt object bucket=%s key=%r version=%s (%s): %s",
                obj.bucket,
                obj.key,
                obj.version_id,
                problem,
                outcome.detail,
            )
            return
        marked = await self._quarantine(obj, problem)
        why = outcome.detail if outcome is not None else ""
        report.corrupt.append(
            Finding(obj.bucket, obj.key, obj.version_id, obj.etag, obj.size, problem, marked, False, why)
        )
        log.error(
            "scrub: corrupt object bucket=%s key=%r version=%s quarantined=%s: %s%s",
            obj.bucket,
            obj.key,
            obj.version_id,
            marked,
            problem,
            f" (not repaired: {why})" if why else "",
        )

    async def _release(self, obj: ObjectVersion, report: ScrubReport) -> bool:
        """Offer a version quarantined by an earlier pass for repair; True when it was repaired."""
        if self.repairer is None or _customer_keyed(obj):
            return False
        outcome = await self.repairer.repair(obj)
        if not outcome.repaired:
            return False
        problem = obj.meta.system.get(QUARANTINE_KEY, "")
        report.released.append(
            Finding(
                obj.bucket, obj.key, obj.version_id, obj.etag, obj.size, problem, False, True, outcome.detail
            )
        )
        log.warning(
            "scrub: repaired quarantined object bucket=%s key=%r version=%s: %s",
            obj.bucket,
            obj.key,
            obj.version_id,
            outcome.detail,
        )
        return True

    async def _still_current(self, obj: ObjectVersion) -> bool:
        """A version overwritten or deleted while it was read may have lost its blobs: not corrupt."""
        cur = await self.store.get_object(obj.bucket, obj.key, obj.version_id)
        return cur is not None and not cur.delete_marker and cur.segments == obj.segments

    async def _quarantine(self, obj: ObjectVersion, problem: str) -> bool:
        cur = await self.store.get_object(obj.bucket, obj.key, obj.version_id)
        if cur is None or cur.segments != obj.segments or is_quarantined(cur):
            return False
        system = {**cur.meta.system, QUARANTINE_KEY: problem[:300], QUARANTINE_TIME_KEY: f"{time.time():.0f}"}
        try:
            await self.store.update_object_meta(
                obj.bucket, obj.key, obj.version_id, replace(cur.meta, system=system), expect=cur
            )
        except Exception:  # deleted in between: nothing left to protect
            log.exception("scrub: could not quarantine %s/%r %s", obj.bucket, obj.key, obj.version_id)
            return False
        return True
