"""The HTTP protocol uvicorn runs for us, with two changes.

Shutdown: uvicorn closes an idle keep-alive connection with ``transport.close()``; over TLS that
waits for the client's close_notify, which an idle pooled client (boto3, urllib3) never sends, so
SIGTERM took the whole 30 s grace period whenever a TLS client was connected. Idle connections
carry no request, so aborting them loses nothing; in-flight requests still finish as before.

Zero-copy: uvicorn gives an ASGI app no way to reach the socket, so GET bodies of plain blobs would
be copied through user space twice. On plain-HTTP connections the scope advertises the
``http.response.zerocopy`` extension; its message (``file``, ``offset``, ``count``, after
``http.response.start``) is sent with ``sendfile(2)`` on the socket and completes the response. TLS connections do not advertise it: the bytes must be encrypted in user
space anyway, so the app streams them as usual.
"""

from __future__ import annotations

import asyncio
import os
import select
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from rs3gw.protocol.metrics import ZEROCOPY_SENT

ZEROCOPY = "http.response.zerocopy"  # the same name as rs3gw.protocol.response.ZEROCOPY
CORK = "rs3gw.cork"  # the same name as rs3gw.protocol.response.CORK


SEND_TIMEOUT = 60.0  # seconds a client may keep the socket unwritable before the response is cut
_WAITERS = ThreadPoolExecutor(64, thread_name_prefix="rs3gw-sendfile")  # blocked only in poll()


async def _sendfile(transport: asyncio.Transport, in_fd: int, offset: int, count: int) -> None:
    """``sendfile(2)`` straight onto the connection's socket. uvloop (what uvicorn runs on) has no
    ``loop.sendfile`` and refuses ``add_writer`` on a transport's fd, so the copy runs on the loop
    while the socket takes it and only the wait for room runs on a thread, in ``poll(2)``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SEND_TIMEOUT
    while transport.get_write_buffer_size():  # the status line and headers go first
        if loop.time() > deadline or transport.is_closing():
            raise TimeoutError("client stopped reading")
        await asyncio.sleep(0.0005)
    if transport.is_closing():
        raise ConnectionResetError("connection closed")
    # Our own descriptor of the socket: when the client leaves, the loop closes its fd, whose number
    # another connection may get at once; a dup keeps pointing at this socket (and fails with EPIPE).
    out_fd = os.dup(transport.get_extra_info("socket").fileno())
    try:
        end = offset + count
        while offset < end:
            try:
                sent = os.sendfile(out_fd, in_fd, offset, end - offset)
            except BlockingIOError:
                await loop.run_in_executor(_WAITERS, _wait_writable, out_fd)
                if transport.is_closing():
                    raise ConnectionResetError("connection closed") from None
                continue
            if sent == 0:
                raise OSError("blob file ended before its span")
            offset += sent
    finally:
        os.close(out_fd)


def _corked_send(
    cycle: RequestResponseCycle, send: Callable[[Any], Awaitable[None]]
) -> Callable[[Any], Awaitable[None]]:
    """A start message marked ``CORK`` (the app sends the body right after it) is held in a
    ``_Cork`` until the next message has been written too."""
    held: _Cork | None = None

    async def corked_send(message: Any) -> None:
        nonlocal held
        if held is not None:
            cork, held = held, None
            try:
                if message["type"] == ZEROCOPY:
                    cork.release()  # sendfile writes to the socket itself: the headers go first
                await send(message)
            finally:
                cork.release()
            return
        if message.get(CORK) and message["type"] == "http.response.start" and not cycle.response_started:
            cork = _Cork(cycle)
            try:
                await send(message)
            except BaseException:
                cork.release()
                raise
            held = cork
            return
        await send(message)

    return corked_send


def _wait_writable(fd: int) -> None:
    p = select.poll()
    p.register(fd, select.POLLOUT)
    if not p.poll(SEND_TIMEOUT * 1000):
        raise TimeoutError("client stopped reading")


class _Cork:
    """Stands in for a connection's transport from a response's start to its first body message.

    uvicorn writes the status line and headers the moment ``http.response.start`` arrives, so a
    response whose body follows at once (every small GET, XML answer and error) went out in two
    ``send(2)`` calls and two TCP segments. Held here, both leave in one ``writelines`` (one
    ``writev``, no copy of the body). Anything else uvicorn asks of the transport goes to the real one;
    a close (connection: close, or an app failing after the start) first sends what was held."""

    __slots__ = ("cycle", "parts", "real")

    def __init__(self, cycle: RequestResponseCycle) -> None:
        self.cycle = cycle
        self.real: asyncio.Transport = cycle.transport
        self.parts: list[bytes] = []
        cycle.transport = self  # type: ignore[assignment]  # uvicorn only writes to it until release()

    def write(self, data: bytes) -> None:
        if data:
            self.parts.append(data)

    def release(self) -> None:
        """Give the cycle its transport back and send what was held."""
        transport: Any = self.cycle.transport
        if transport is self:
            self.cycle.transport = self.real
        parts, self.parts = self.parts, []
        if parts and not self.real.is_closing():
            if len(parts) == 1:
                self.real.write(parts[0])
            else:
                self.real.writelines(parts)

    def close(self) -> None:
        self.release()
        self.real.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class GracefulHttpToolsProtocol(HttpToolsProtocol):
    def shutdown(self) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self.transport.abort()
        else:
            self.cycle.keep_alive = False

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        send: Callable[[Any], Awaitable[None]] = cycle.send
        if cycle.scope.get("scheme") == "http":
            extensions = dict(cycle.scope.get("extensions") or {})
            extensions[ZEROCOPY] = {}
            cycle.scope["extensions"] = extensions
            send = self._zerocopy_send(cycle, send)
        cycle.send = _corked_send(cycle, send)  # type: ignore[method-assign, assignment]
        super()._start_asgi_task(cycle, app)

    def _zerocopy_send(
        self, cycle: RequestResponseCycle, send: Callable[[Any], Awaitable[None]]
    ) -> Callable[[Any], Awaitable[None]]:
        async def zerocopy_send(message: Any) -> None:
            if message["type"] != ZEROCOPY:
                await send(message)
                return
            if cycle.flow.write_paused and not cycle.disconnected:
                await cycle.flow.drain()
            if cycle.disconnected:
                return
            if not cycle.response_started or cycle.response_complete:
                raise RuntimeError(f"{ZEROCOPY} sent outside a response body")
            count = int(message["count"])
            if count:
                try:
                    await _sendfile(self.transport, message["file"].fileno(), int(message["offset"]), count)
                except (ConnectionError, TimeoutError):  # the client left or stopped reading
                    self.transport.abort()
                    cycle.disconnected = True
                    return
                except BaseException:
                    self.transport.abort()  # part of the body may be out: only a cut is honest now
                    raise
                cycle.expected_content_length -= count
                ZEROCOPY_SENT.inc(count)
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        return zerocopy_send
