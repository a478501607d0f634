"""Responses as values: handlers return them; one place sends them and renders S3 errors."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from rs3gw.blobs.plainfile import FileSpan
from rs3gw.errors import S3Error
from rs3gw.protocol.request import Receive, Send
from rs3gw.protocol.xml_write import XmlBuilder

XML = "application/xml"
ZEROCOPY = "http.response.zerocopy"  # ASGI extension: send a file span (rs3gw.httpserver)
CORK = "rs3gw.cork"  # on http.response.start: the body follows at once, send both in one write


@dataclass
class Response:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None
    length: int | None = None  # Content-Length for streamed bodies and HEAD
    file: FileSpan | None = None  # the stream's bytes as a file span: sent with sendfile where possible


def xml_response(builder: XmlBuilder, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    h = {"content-type": XML}
    if headers:
        h.update(headers)
    return Response(status, h, builder.to_bytes())


def error_response(err: S3Error, resource: str, request_id: str, head: bool) -> Response:
    headers = {"content-type": XML, **err.headers}
    if head:  # HEAD responses carry no body; clients read the code from the status
        return Response(err.status, headers, b"")
    x = XmlBuilder("Error", namespace=False)
    x.elem("Code", err.code).elem("Message", err.message)
    for k, v in err.extra.items():
        x.elem(k, v)
    x.elem("Resource", resource).elem("RequestId", request_id)
    return Response(err.status, headers, x.to_bytes())


async def prime(resp: Response) -> Response:
    """Pull the first body chunk before the status line goes out, so a failure to open the data
    (missing blob, unreadable file) still becomes a proper S3 error response instead of a cut stream."""
    if resp.stream is None or resp.file is not None:  # an open file has nothing left to fail
        return resp
    stream = resp.stream
    try:
        first = await anext(stream)
    except StopAsyncIteration:
        return _with(resp, resp.body, _chain(None, stream))
    if type(first) is bytes and resp.length is not None and len(first) == resp.length:
        # The whole body came in the first chunk (every small GET): see the stream end now and send
        # the bytes as a plain body, one send less and no generator left to drive. Only for bytes:
        # a memoryview may point into a mapping that ending the stream unmaps.
        try:
            more = await anext(stream)
        except StopAsyncIteration:
            await _close(stream)
            return _with(resp, first, None)
        except Exception as e:  # as before: the first chunk goes out, then the error cuts the stream
            return _with(resp, resp.body, _chain(first, _raising(e, stream)))
        return _with(resp, resp.body, _chain(first, _chain(more, stream)))
    return _with(resp, resp.body, _chain(first, stream))


def _with(resp: Response, body: bytes, stream: AsyncIterator[bytes] | None) -> Response:
    """``dataclasses.replace(resp, body=..., stream=...)`` without its per-field introspection
    (a few microseconds of every GET); every other field is carried over (a field added to
    Response must be added here too: tests/unit/test_request_fastpaths.py checks)."""
    return Response(resp.status, resp.headers, body, stream, resp.length, resp.file)


async def _chain(first: bytes | None, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        if first is not None:
            yield first
        async for chunk in rest:
            yield chunk
    finally:
        await _close(rest)


async def _raising(error: Exception, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """A stream whose next step already failed: raises that error where it would have."""
    try:
        raise error
        yield b""  # an async generator, like the stream it stands for
    finally:
        await _close(stream)


async def _close(stream: AsyncIterator[bytes]) -> None:
    """Closing the generator runs the blob reader's ``finally`` now, not at garbage collection."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


async def _send_file(send: Send, resp: Response, span: FileSpan, request_id: str) -> None:
    headers = [(b"x-amz-request-id", request_id.encode()), (b"x-amz-id-2", request_id.encode())]
    headers += [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in resp.headers.items()]
    headers.append((b"content-length", str(span.count).encode()))
    try:
        await send({"type": "http.response.start", "status": resp.status, "headers": headers})
        await send({"type": ZEROCOPY, "file": span.file, "offset": span.offset, "count": span.count})
    finally:
        span.close()
        if resp.stream is not None:
            await _close(resp.stream)


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def send_response(
    send: Send,
    resp: Response,
    request_id: str,
    head: bool,
    receive: Receive | None = None,
    zerocopy: bool = False,
) -> None:
    """Streams stop as soon as the client is gone: the server answers a closed socket's send()
    without waiting, so an unwatched loop would read the whole object for nobody, never yielding.
    ``zerocopy``: the server takes ``http.response.zerocopy`` (rs3gw.httpserver) for file spans."""
    if resp.file is not None and zerocopy and resp.length == resp.file.count:
        await _send_file(send, resp, resp.file, request_id)
        return
    headers = [(b"x-amz-request-id", request_id.encode()), (b"x-amz-id-2", request_id.encode())]
    headers += [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in resp.headers.items()]
    if resp.stream is None:
        length = resp.length if (head and resp.length is not None) else len(resp.body)
        if resp.status != 304 and resp.status != 204:
            headers.append((b"content-length", str(length).encode()))
        body = b"" if head else resp.body
        start: dict[str, Any] = {"type": "http.response.start", "status": resp.status, "headers": headers}
        if body:  # without one, the head goes alone anyway: nothing to hold it for
            start[CORK] = True
        await send(start)
        await send({"type": "http.response.body", "body": body})
        return
    if resp.length is not None:
        headers.append((b"content-length", str(resp.length).encode()))
    await send({"type": "http.response.start", "status": resp.status, "headers": headers})
    watcher: asyncio.Future[None] | None = None
    sent = 0
    try:
        async for chunk in resp.stream:
            if watcher is not None and watcher.done():
                return
            if watcher is None and sent and receive is not None:
                # Only multi-chunk bodies pay for a watcher task; small GETs stay cheap.
                watcher = asyncio.ensure_future(_until_disconnect(receive))
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent += 1
            if watcher is not None:
                # send() to a gone client returns without suspending; let the watcher run.
                await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": b""})
    finally:
        await _close(resp.stream)
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
