"""On-the-fly compression steps (gzip, zstd, lz4 frame), streamed chunk by chunk.

The result is a new representation (``application/gzip``, ``application/zstd``,
``application/x-lz4``), not a Content-Encoding: HTTP clients then never decompress it behind the
caller's back, and ETag and Range name the compressed bytes the client actually receives.
"""

from __future__ import annotations

import zlib

import lz4.frame
import zstandard

from rs3gw.transform.args import Args
from rs3gw.transform.spec import Step
from rs3gw.transform.stage import STREAM, Stage, Streamer

STEPS = frozenset({"gzip", "zstd", "lz4"})
CONTENT_TYPES = {"gzip": "application/gzip", "zstd": "application/zstd", "lz4": "application/x-lz4"}
_LEVELS = {"gzip": (1, 9, 6), "zstd": (1, 19, 3), "lz4": (0, 16, 0)}


class _Gzip:
    def __init__(self, level: int) -> None:
        self.c = zlib.compressobj(level, zlib.DEFLATED, 31)

    def feed(self, data: bytes) -> bytes:
        return self.c.compress(data)

    def flush(self) -> bytes:
        return self.c.flush()


class _Zstd:
    def __init__(self, level: int) -> None:
        self.c = zstandard.ZstdCompressor(level=level).compressobj()

    def feed(self, data: bytes) -> bytes:
        return self.c.compress(data)

    def flush(self) -> bytes:
        return self.c.flush()


class _Lz4:
    def __init__(self, level: int) -> None:
        self.c = lz4.frame.LZ4FrameCompressor(compression_level=level)
        self.started = False

    def feed(self, data: bytes) -> bytes:
        head = b""
        if not self.started:
            self.started = True
            head = self.c.begin()
        return bytes(head + self.c.compress(data))

    def flush(self) -> bytes:
        head = b"" if self.started else self.c.begin()
        self.started = True
        return bytes(head + self.c.flush())


def compile_compress(step: Step) -> Stage:
    lo, hi, default = _LEVELS[step.name]
    a = Args(step, "level")
    level = a.integer("level", lo, hi, default)
    a.done()
    assert level is not None
    kinds: dict[str, type[_Gzip | _Zstd | _Lz4]] = {"gzip": _Gzip, "zstd": _Zstd, "lz4": _Lz4}
    cls = kinds[step.name]

    def make() -> Streamer:
        return cls(level)

    return Stage(step.name, STREAM, CONTENT_TYPES[step.name], streamer=make)
