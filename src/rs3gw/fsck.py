"""``rs3gw fsck`` and ``rs3gw dedup stats``: offline checks of a data directory against its metadata.

It reads the metadata through the same ``MetadataStore`` the server opens (SQLite in the data dir,
or ``--metadata postgresql://...``) and the blobs through the same stack the server builds, so it
checks a local data directory and an S3/GCS/Azure backend alike.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rs3gw.blobs.base import BlobStore
from rs3gw.blobs.dedup import HEADER, MAGIC, DedupBlobStore
from rs3gw.blobs.local import LocalBlobStore
from rs3gw.config import Settings
from rs3gw.datadir import DedupStats, Use, dedup_stats
from rs3gw.meta.store import MetadataStore


@dataclass
class Report:
    versions_checked: int = 0
    blobs_checked: int = 0
    chunks_verified: int = 0
    missing: list[dict[str, str]] = field(default_factory=list)  # object data absent or damaged
    # Dedup manifests whose bytes are unreadable or (tracked ones) disagree with the references
    # the index records for them: {"blob_id", "tracked", "problem"}.
    damaged_manifests: list[dict[str, object]] = field(default_factory=list)
    refcount_mismatches: list[dict[str, object]] = field(default_factory=list)
    orphan_blobs: list[str] = field(default_factory=list)
    temp_files: list[str] = field(default_factory=list)
    interrupted_writes: int = 0  # dedup writers whose process died; the next start rolls them back
    pending_deletion: int = 0  # queued by the engine, deleted at the next server start
    repaired: list[str] = field(default_factory=list)
    unrepairable: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (
            self.missing
            or self.damaged_manifests
            or self.refcount_mismatches
            or self.orphan_blobs
            or self.temp_files
            or self.interrupted_writes
        )

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "clean": self.clean}


class _Progress:
    """A one-line counter on a terminal; silent when stderr is a pipe or a file."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.n = label, total, 0
        self.on = sys.stderr.isatty()

    def step(self) -> None:
        self.n += 1
        if self.on and (self.n % 100 == 0 or self.n == self.total):
            width = 30
            filled = width * self.n // max(self.total, 1)
            bar = "#" * filled + "-" * (width - filled)
            print(f"\r{self.label} [{bar}] {self.n}/{self.total}", end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.on and self.total:
            print(file=sys.stderr)


class Checker:
    def __init__(
        self, data_dir: Path, local: LocalBlobStore | None, blobs: BlobStore, meta: MetadataStore
    ) -> None:
        """``local`` is the bottom of the stack when it is the local backend (its temp files and
        "is a server running here" lock are checked), None for a remote backend."""
        self.data_dir = data_dir
        self.local = local
        self.meta = meta
        self.blobs = blobs
        self.dedup = blobs if isinstance(blobs, DedupBlobStore) else None
        self.report = Report()
        self.verified: set[bytes] = set()
        self.bad_chunks: dict[bytes, str] = {}
        self.manifests_read: set[str] = set()  # manifests whose bytes were already judged
        # Untracked manifests not read to the end: the references of their unread records are
        # unknown, so no refcount may be lowered on the strength of what was counted.
        self.unread_untracked: set[str] = set()

    async def run(self, repair: bool) -> Report:
        uses = await self.meta.blob_uses()
        bar = _Progress("fsck", len(uses))
        seen: set[str] = set()
        for use in uses:
            if use.blob_id not in seen:
                seen.add(use.blob_id)
                if problem := await self._check_blob(use.blob_id, use.size):
                    self._missing(use, problem)
            elif any(m["blob_id"] == use.blob_id for m in self.report.missing):
                self._missing(use, "shares a damaged blob")
            bar.step()
        bar.done()
        self.report.versions_checked = len(uses)
        self.report.blobs_checked = len(seen)
        fixes = await self._refcounts()
        stale = self.dedup.index.stale_writers(at_start=True) if self.dedup else []
        self.report.interrupted_writes = len(stale)
        queued = await self.meta.queued_blobs()
        self.report.pending_deletion = len(queued)
        keep = seen | queued | (await asyncio.to_thread(self._dedup_private))
        self.report.orphan_blobs = [b async for b in self.blobs.list_ids() if b not in keep]
        if self.local is not None:  # a remote backend's unfinished uploads are the upstream's to expire
            self.report.temp_files = sorted(
                p.name for p in self.local.tmp_dir.iterdir() if _stale_tmp(p.name)
            )
        if repair:
            await self._repair(fixes)
        elif self.report.missing:
            self.report.unrepairable.append(_MISSING_ADVICE)
        return self.report

    def _dedup_private(self) -> set[str]:
        """Inner blobs the dedup layer owns besides manifests (queued garbage, writers' intents)."""
        if self.dedup is None:
            return set()
        return self.dedup.index.private_ids()

    def _missing(self, use: Use, problem: str) -> None:
        self.report.missing.append({**{k: str(v) for k, v in asdict(use).items()}, "problem": problem})

    async def _check_blob(self, blob_id: str, size: int) -> str | None:
        try:
            if self.dedup is not None and (info := self.dedup.index.manifest(blob_id)) is not None:
                if info[0] != size:
                    return f"deduplicated blob holds {info[0]} bytes, metadata says {size}"
                return await self._check_manifest(blob_id)
            if not await self.blobs.exists(blob_id):
                return "blob is missing"
            got = await self.blobs.size(blob_id)
            return None if got == size else f"blob holds {got} bytes, metadata says {size}"
        except Exception as e:  # a damaged blob must not stop the check of the others
            return f"blob is unreadable: {e}"

    async def _check_manifest(self, blob_id: str) -> str | None:
        """Verify every chunk the manifest's records name and judge its bytes (``_judge``), in one
        pass. A damaged manifest loses its object's data whatever its chunks hold, so that problem
        is the one reported."""
        assert self.dedup is not None
        index = self.dedup.index
        held = await asyncio.to_thread(index.held_refs, blob_id)
        info = await asyncio.to_thread(index.manifest, blob_id)
        released = info[2] if info else 0
        counts: Counter[bytes] = Counter()
        problem: str | None = None
        try:
            await self._check_header(blob_id)
            pos = 0
            async for recs in self.dedup.manifest_hashes(blob_id):
                counts.update(h for i, (_, h) in enumerate(recs, pos) if i >= released)
                pos += len(recs)
                if problem is not None:
                    continue  # still counted, for the comparison with the index below
                ids = await asyncio.to_thread(index.blob_ids, [h for _, h in recs])
                for _, h in recs:
                    if h not in ids:
                        problem = f"chunk {h.hex()} is not in the chunk index"
                        break
                    if h not in self.verified:
                        self.verified.add(h)
                        if bad := await self._verify_chunk(ids[h], h):
                            self.bad_chunks[h] = bad
                    if h in self.bad_chunks:
                        problem = f"chunk {h.hex()}: {self.bad_chunks[h]}"
                        break
        except Exception as e:  # truncated, gone, undecodable: the records cannot be trusted
            damage: str | None = f"manifest is unreadable: {e}"
        else:
            damage = _compare(held, counts)
        self._judge(blob_id, held is not None, damage)
        return f"damaged manifest: {damage}" if damage else problem

    async def _check_header(self, blob_id: str) -> None:
        """Reads check the magic first; a manifest whose header is damaged serves nothing."""
        assert self.dedup is not None
        head = b"".join([c async for c in self.dedup.inner.read(blob_id, 0, HEADER.size)])
        if len(head) != HEADER.size or HEADER.unpack(head)[0] != MAGIC:
            raise ValueError("dedup manifest header is damaged")

    def _judge(self, blob_id: str, tracked: bool, damage: str | None) -> None:
        """Record the verdict on a manifest's bytes once (objects sharing it, the mark phase)."""
        if blob_id in self.manifests_read:
            return
        self.manifests_read.add(blob_id)
        if damage:
            self.report.damaged_manifests.append({"blob_id": blob_id, "tracked": tracked, "problem": damage})

    async def _manifest_counts(self, blob_id: str, start: int) -> tuple[Counter[bytes], str | None]:
        """The hashes of a manifest's records from ``start`` on, and why reading stopped short."""
        assert self.dedup is not None
        counts: Counter[bytes] = Counter()
        try:
            await self._check_header(blob_id)
            async for recs in self.dedup.manifest_hashes(blob_id, start):
                counts.update(h for _, h in recs)
        except Exception as e:
            return counts, f"manifest is unreadable: {e}"
        return counts, None

    async def _verify_chunk(self, chunk_blob: str, h: bytes) -> str | None:
        assert self.dedup is not None
        self.report.chunks_verified += 1
        if not await self.dedup.inner.exists(chunk_blob):
            return "chunk blob is missing"
        digest = hashlib.sha256()
        async for c in self.dedup.inner.read(chunk_blob):
            digest.update(c)
        return None if digest.digest() == h else "chunk content does not match its SHA-256"

    async def _refcounts(self) -> dict[bytes, int]:
        """Mark: count references from every manifest still holding them and from writers.

        A tracked manifest holds exactly its ``manifest_refs`` rows (releasing it drops those,
        whatever its bytes say), so they are what it counts for; its bytes are only checked
        against them. An untracked (older) manifest is released from its bytes, so those count."""
        if self.dedup is None:
            return {}
        index = self.dedup.index
        want: Counter[bytes] = Counter()
        for b in await asyncio.to_thread(index.manifest_ids):
            info = await asyncio.to_thread(index.manifest, b)
            if info is None:
                continue  # released meanwhile (a running server)
            held = await asyncio.to_thread(index.held_refs, b)
            if held is not None:
                want.update(held)
                if b not in self.manifests_read:  # no object version uses it: checked here
                    counts, damage = await self._manifest_counts(b, info[2])
                    self._judge(b, True, damage or _compare(held, counts))
                continue
            counts, damage = await self._manifest_counts(b, info[2])
            want.update(counts)
            self._judge(b, False, damage)
            if damage:
                self.unread_untracked.add(b)
        for h, n in await asyncio.to_thread(index.writer_refs):
            want[h] += n
        fixes: dict[bytes, int] = {}
        for hb, refs in await asyncio.to_thread(index.chunk_refs):
            actual = want.pop(hb, 0)
            if actual != refs:
                self.report.refcount_mismatches.append({"hash": hb.hex(), "stored": refs, "actual": actual})
                # Lowering is only safe when every reference was counted; raising always is.
                if actual > refs or not self.unread_untracked:
                    fixes[hb] = actual
        for hb, n in want.items():  # referenced, yet not in the index: the data is gone
            self.report.refcount_mismatches.append({"hash": hb.hex(), "stored": None, "actual": n})
        return fixes

    async def _repair(self, fixes: dict[bytes, int]) -> None:
        if not getattr(self.local, "_alone", True):
            self.report.unrepairable.append("a server is running on this data directory: stop it to repair")
            return
        if self.dedup is not None and fixes:
            freed = await asyncio.to_thread(self.dedup.index.set_refs, fixes)
            await self.dedup._discard(freed)
            self.report.repaired.append(f"fixed {len(fixes)} chunk reference counts")
        if self.dedup is not None and self.report.interrupted_writes:
            await self.dedup.gc(at_start=True)  # rolls back the dead writers, frees their chunks
            self.report.repaired.append(f"rolled back {self.report.interrupted_writes} interrupted writes")
        if self.unread_untracked:
            self.report.unrepairable.append(
                "older (untracked) manifests cannot be read to the end, so their references are "
                "unknown: no reference count was lowered, and they are left in place"
            )
        # Releasing an untracked manifest reads its bytes: one that cannot be read stays.
        orphans = [b for b in self.report.orphan_blobs if b not in self.unread_untracked]
        if orphans:
            # A damaged tracked manifest among them frees exactly the references it holds.
            await self.blobs.delete(orphans)
            self.report.repaired.append(f"removed {len(orphans)} orphan blobs")
        if self.report.temp_files and self.local is not None:
            self.local.clean_tmp()
            self.report.repaired.append(f"removed {len(self.report.temp_files)} temp files")
        if self.dedup is not None:
            await self.dedup.gc()
        if self.report.missing:
            self.report.unrepairable.append(_MISSING_ADVICE)
        if any(m["stored"] is None for m in self.report.refcount_mismatches):
            self.report.unrepairable.append("manifests reference chunks absent from the index (data lost)")


def _compare(held: dict[bytes, int] | None, counts: Counter[bytes]) -> str | None:
    """How a tracked manifest's records (``counts``, from the first unreleased one) differ from
    the references the index holds for it; None when they agree, or for an untracked manifest
    (nothing to compare with)."""
    if held is None or counts == Counter(held):
        return None
    extra = counts - Counter(held)  # records naming references it never took
    short = Counter(held) - counts  # references it holds that no record names
    parts = []
    if extra:
        parts.append(f"{sum(extra.values())} records name chunks it does not hold (e.g. {min(extra).hex()})")
    if short:
        parts.append(
            f"{sum(short.values())} references it holds are named by no record (e.g. {min(short).hex()})"
        )
    return "its records disagree with the chunk index: " + "; ".join(parts)


_MISSING_ADVICE = (
    "object versions listed under 'missing' reference absent or damaged data: restore them from a "
    "backup or delete those versions"
)


def _stale_tmp(name: str) -> bool:
    parts = name.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return True
    pid = int(parts[1])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return pid == os.getpid()


async def fsck(settings: Settings, repair: bool = False) -> Report:
    from rs3gw.wiring import build_blobs, build_store  # late: the CLI imports this module before serving

    pg = settings.metadata.startswith(("postgresql://", "postgres://"))
    if not pg and not (settings.data_dir / "meta.db").exists():  # every blob would look like an orphan
        raise SystemExit(f"rs3gw fsck: no metadata in {settings.data_dir} (meta.db; or give --metadata)")
    meta = build_store(settings)
    await meta.open()
    try:
        bottom, blobs = build_blobs(settings)
        local = bottom if isinstance(bottom, LocalBlobStore) else None
        try:
            return await Checker(settings.data_dir, local, blobs, meta).run(repair)
        finally:
            if isinstance(blobs, DedupBlobStore):
                blobs.close()
    finally:
        await meta.close()


# -- command line -------------------------------------------------------------------------------
Resolve = Callable[[argparse.Namespace], Settings]


def add_commands(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    add_common: Callable[[argparse.ArgumentParser], None],
    resolve: Resolve,
) -> None:
    p = sub.add_parser("fsck", help="check a data directory (stop the server first to --repair)")
    add_common(p)
    p.add_argument("--repair", action="store_true", help="remove orphans and temp files, fix refcounts")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_metadata_arg(p)
    p.set_defaults(func=lambda a: _cmd_fsck(a, resolve))
    d = sub.add_parser("dedup", help="deduplication tools")
    dsub = d.add_subparsers(dest="dedup_command", metavar="COMMAND", required=True)
    st = dsub.add_parser("stats", help="logical vs stored bytes, per bucket and total")
    add_common(st)
    st.add_argument("--json", action="store_true", help="print the statistics as JSON")
    _add_metadata_arg(st)
    st.set_defaults(func=lambda a: _cmd_stats(a, resolve))


def _add_metadata_arg(p: argparse.ArgumentParser) -> None:
    """The data directory's metadata store, as ``serve --metadata`` names it (the backend comes from
    the config file or RS3GW_BACKEND_*, as for the server)."""
    p.add_argument(
        "--metadata", metavar="STORE", help="sqlite (default) or postgresql://... (env RS3GW_METADATA)"
    )


def _cmd_fsck(args: argparse.Namespace, resolve: Resolve) -> int:
    settings = resolve(args)
    report = asyncio.run(fsck(settings, args.repair))
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        _print_report(report)
    if args.repair:
        return 1 if report.missing or report.unrepairable else 0
    return 0 if report.clean else 1


def _print_report(r: Report) -> None:
    print(
        f"checked {r.versions_checked} object versions/parts, {r.blobs_checked} blobs, {r.chunks_verified} chunks"
    )
    for m in r.missing:
        print(f"MISSING {m['bucket']}/{m['key']} version {m['version_id']}: {m['problem']}")
    for d in r.damaged_manifests:
        kind = "" if d["tracked"] else " (untracked)"
        print(f"DAMAGED manifest {d['blob_id']}{kind}: {d['problem']}")
    for c in r.refcount_mismatches:
        print(f"REFCOUNT chunk {c['hash']}: stored {c['stored']}, actual {c['actual']}")
    for b in r.orphan_blobs:
        print(f"ORPHAN blob {b}")
    for t in r.temp_files:
        print(f"TEMP {t}")
    if r.interrupted_writes:
        print(f"INTERRUPTED {r.interrupted_writes} deduplicated writes of a dead process")
    if r.pending_deletion:
        print(f"{r.pending_deletion} blobs queued for deletion (done at the next server start)")
    for line in r.repaired:
        print(f"repaired: {line}")
    for line in r.unrepairable:
        print(f"cannot repair: {line}")
    print("clean" if r.clean else "problems found")


def _cmd_stats(args: argparse.Namespace, resolve: Resolve) -> int:
    settings = resolve(args)
    from rs3gw.wiring import build_blobs

    _, blobs = build_blobs(settings)
    if not isinstance(blobs, DedupBlobStore):
        print("deduplication has never been enabled on this data directory", file=sys.stderr)
        return 1
    try:
        stats = asyncio.run(_stats(settings, blobs))
    finally:
        blobs.close()
    if args.json:
        print(json.dumps(stats.to_json(), indent=2))
        return 0
    print(f"logical {stats.logical_bytes} B, stored {stats.stored_bytes} B, saved {stats.dedup_ratio:.1%}")
    print(f"{stats.manifests} deduplicated blobs, {stats.chunks} distinct chunks")
    for name, b in stats.buckets.items():
        print(
            f"  {name}: {b.blobs} blobs, logical {b.logical_bytes} B, stored {b.stored_bytes} B, saved {b.dedup_ratio:.1%}"
        )
    return 0


async def _stats(settings: Settings, blobs: DedupBlobStore) -> DedupStats:
    from rs3gw.wiring import build_store

    meta = build_store(settings)
    await meta.open()
    try:
        return await dedup_stats(meta, blobs)
    finally:
        await meta.close()
