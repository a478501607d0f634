"""ML model detection on write: the engine's glue around ``codecs.mlformats``.

PutObject taps the first bytes of the body as it streams into the blob (no extra buffering);
only when they look like a model container does detection read the stored blob, before the
metadata commit, with bounded ranged reads (headers, zip central directories, protobuf field
headers). Ordinary objects pay one 16-byte copy. The findings go into ``ObjectMeta.system`` under
``ml-*`` keys (server-owned, so a client's own ``x-amz-meta-ml-*`` cannot pass for them) and are
reported as ``x-amz-meta-ml-*`` on HEAD and GET.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from rs3gw.codecs import mlformats
from rs3gw.codecs.mlformats import MlMetadata
from rs3gw.model import Segment

if TYPE_CHECKING:
    from rs3gw.engine.core import ObjectEngine

log = logging.getLogger("rs3gw.ml")
PREFIX = "ml-"
SUMMARY_CHARS = 200
SUMMARY_TENSORS = 8


async def tap(body: AsyncIterator[bytes], head: bytearray) -> AsyncIterator[bytes]:
    """Pass ``body`` through, keeping its first ``SNIFF_BYTES`` in ``head``."""
    async for chunk in body:
        if len(head) < mlformats.SNIFF_BYTES:
            head += chunk[: mlformats.SNIFF_BYTES - len(head)]
        yield chunk


def without_ml(system: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in system.items() if not k.startswith(PREFIX)}


def system_keys(meta: MlMetadata) -> dict[str, str]:
    """Short header-sized values: counts and a truncated summary, never the full tensor list."""
    out = {"ml-framework": meta.framework, "ml-format": meta.format}
    if meta.format_version:
        out["ml-format-version"] = meta.format_version[:32]
    if meta.framework_version:
        out["ml-framework-version"] = meta.framework_version[:32]
    if meta.parameter_count is not None:
        out["ml-parameters"] = str(meta.parameter_count)
    if meta.tensors:
        out["ml-tensors"] = str(len(meta.tensors))
        parts = [f"{t.name}:{t.dtype}[{'x'.join(map(str, t.shape))}]" for t in meta.tensors[:SUMMARY_TENSORS]]
        summary = ";".join(parts)
        if len(summary) > SUMMARY_CHARS or len(meta.tensors) > SUMMARY_TENSORS:
            summary = summary[:SUMMARY_CHARS] + "..."
        out["ml-tensor-summary"] = summary
    if meta.extra:
        out["ml-info"] = ",".join(f"{k}={v}" for k, v in sorted(meta.extra.items()))[:SUMMARY_CHARS]
    return out


def reader(engine: ObjectEngine, segments: Sequence[Segment]) -> mlformats.ReadAt:
    async def read(offset: int, length: int) -> bytes:
        return b"".join([c async for c in engine.read_segments(segments, offset, length)])

    return read


async def inspect(engine: ObjectEngine, segments: Sequence[Segment], size: int) -> MlMetadata | None:
    """Full metadata of stored bytes, or None (malformed, hostile, or not a model)."""
    return await mlformats.extract(reader(engine, segments), size)


async def detect(
    engine: ObjectEngine, segments: Sequence[Segment], size: int, head: bytes | None = None
) -> dict[str, str]:
    """The ``ml-*`` system keys for a just-written object; {} for anything that is not a model.

    Never fails the write: a read or parse problem is logged and means "not a model"."""
    try:
        if head is not None and not mlformats.candidate(head[: mlformats.SNIFF_BYTES]):
            return {}
        meta = await inspect(engine, segments, size)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("ML model detection failed; object stored without ml-* metadata")
        return {}
    return system_keys(meta) if meta is not None else {}
