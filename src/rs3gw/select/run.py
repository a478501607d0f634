"""Runs one S3 Select query: records in, event-stream frames out, on a worker thread.

Parsing and evaluation are CPU work, so they run off the event loop; object bytes are fetched on
the loop one chunk at a time, which keeps memory bounded whatever the object's size.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from typing import Any

from rs3gw import errors
from rs3gw.select import eventstream
from rs3gw.select.evaluate import TICK, Binding, Program, TupleBinding
from rs3gw.select.nodes import Query
from rs3gw.select.readers import Source, open_input
from rs3gw.select.request import CsvOutput, JsonOutput, SelectRequest
from rs3gw.select.values import MISSING, to_string

log = logging.getLogger(__name__)
RECORDS_FLUSH = 256 * 1024
KEEPALIVE_S = 1.0
TICK_EVERY = 4096
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="s3select")

OpenRange = Callable[[int, int], AsyncIterator[bytes]]


# -- output serialization ---------------------------------------------------------------------------
def csv_writer(o: CsvOutput) -> Callable[[Sequence[str], Sequence[Any]], str]:
    q, esc, fd, rd = o.quote, o.quote_escape, o.field_delimiter, o.record_delimiter
    always = o.quote_fields == "ALWAYS"
    specials = {q, fd, "\n", "\r", *rd}

    def field(v: Any) -> str:
        s = to_string(v)
        if always or any(c in s for c in specials):
            return q + s.replace(q, esc + q) + q
        return s

    return lambda names, values: fd.join([field(v) for v in values]) + rd


def _json_default(v: Any) -> Any:
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, datetime):
        return to_string(v)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


def json_writer(o: JsonOutput) -> Callable[[Sequence[str], Sequence[Any]], str]:
    rd = o.record_delimiter
    dumps = json.JSONEncoder(default=_json_default, separators=(",", ":"), ensure_ascii=False).encode
    return lambda names, values: (
        dumps({k: v for k, v in zip(names, values, strict=False) if v is not MISSING}) + rd
    )


# -- the frame generator ------------------------------------------------------------------------------
class BridgedSource:
    """Byte ranges of the object, read on the event loop and handed to the worker thread."""

    def __init__(self, size: int, open_range: OpenRange, loop: asyncio.AbstractEventLoop) -> None:
        self.size = size
        self.scanned = 0
        self.cancelled = False
        self._open, self._loop = open_range, loop

    def read(self, start: int, length: int) -> Iterator[bytes]:
        if length <= 0:
            return
        it = self._open(start, length)
        try:
            while True:
                if self.cancelled:
                    raise errors.error_class("RequestTimeout")("The client went away")
                chunk = self._wait(asyncio.run_coroutine_threadsafe(_next(it), self._loop))
                if chunk is None:
                    return
                self.scanned += len(chunk)
                yield chunk
        finally:
            closing = getattr(it, "aclose", None)
            if closing is not None and self._loop.is_running():
                self._wait(asyncio.run_coroutine_threadsafe(closing(), self._loop))

    def _wait(self, fut: Future[Any]) -> Any:
        """A result from the loop, unless the loop stops first (server shutdown): never hang the thread."""
        while True:
            try:
                return fut.result(timeout=1.0)
            except TimeoutError:
                if not self._loop.is_running():
                    fut.cancel()
                    raise errors.error_class("ServiceUnavailable")("The server is shutting down") from None


async def _next(it: AsyncIterator[bytes]) -> bytes | None:
    return await anext(it, None)


def _with_ticks(records: Iterator[Any]) -> Iterator[Any]:
    for n, rec in enumerate(records, 1):
        yield rec
        if n % TICK_EVERY == 0:
            yield TICK


def execute(req: SelectRequest, query: Query, src: Source) -> Generator[bytes]:
    """All frames of one response; an S3 error mid-way becomes an error event (as AWS sends it)."""
    returned = 0
    try:
        opened = open_input(req, query, src)
        binding: Binding = TupleBinding(opened.names) if req.input_format != "JSON" else Binding()
        program = Program(query, binding)
        write = csv_writer(req.output) if isinstance(req.output, CsvOutput) else json_writer(req.output)
        buf: list[str] = []
        size = 0
        last = time.monotonic()
        for row in program.run(_with_ticks(opened.records)):
            if row is not None:
                text = write(*row)
                buf.append(text)
                size += len(text)
            if size >= RECORDS_FLUSH or (row is None and time.monotonic() - last > KEEPALIVE_S):
                if size:
                    payload = "".join(buf).encode()
                    returned += len(payload)
                    yield eventstream.records(payload)
                    buf, size = [], 0
                elif req.progress:
                    yield eventstream.progress(src.scanned, opened.processed(), returned)
                else:
                    yield eventstream.cont()
                last = time.monotonic()
        if buf:
            payload = "".join(buf).encode()
            returned += len(payload)
            yield eventstream.records(payload)
        processed = opened.processed()
        if req.progress:
            yield eventstream.progress(src.scanned, processed, returned)
        yield eventstream.stats(src.scanned, processed, returned)
        yield eventstream.end()
    except errors.S3Error as e:
        yield eventstream.error(e.code, e.message)
    except Exception:
        # Headers are out: an unexpected failure can only be reported as an event, never as a 500.
        log.exception("select failed")
        yield eventstream.error("InternalError", errors.InternalError.default_message)


# -- the async side -----------------------------------------------------------------------------------
async def select_stream(
    req: SelectRequest, query: Query, size: int, open_range: OpenRange
) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    src = BridgedSource(size, open_range, loop)
    gen = execute(req, query, src)
    finished = False
    try:
        while True:
            frame = await loop.run_in_executor(_POOL, next, gen, None)
            if frame is None:
                finished = True
                return
            yield frame
    finally:
        if not finished:
            src.cancelled = True
            try:
                await loop.run_in_executor(_POOL, gen.close)
            except ValueError:
                pass  # still running in the worker: it stops at its next read
