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

Slow and stalled clients: uvicorn waits forever for a request head that never ends, and for a body
whose client stopped sending (a PUT held its blob writer and temp file open indefinitely). A head
not complete ``header_timeout`` seconds after its first byte (or the connect) now drops the
connection; a body with no byte for ``body_timeout`` seconds ends, for the app, in an
``http.disconnect`` marked ``BODY_TIMEOUT``: the request reader raises RequestTimeout, the writer is
aborted, the client gets AWS's 400 RequestTimeout and the connection is closed. Both are checked by
one timer per server (``_Sweeper``) against a timestamp each ``data_received`` stores: no timer per
chunk or per request on the hot path.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import socket
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from time import monotonic as _monotonic
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from rs3gw.protocol.metrics import ZEROCOPY_SENT

ZEROCOPY = "http.response.zerocopy"  # the same name as rs3gw.protocol.response.ZEROCOPY
CORK = "rs3gw.cork"  # the same name as rs3gw.protocol.response.CORK
BODY_TIMEOUT = "rs3gw.body_timeout"  # the same name as rs3gw.protocol.request.BODY_TIMEOUT


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


def _peer(proto: HttpToolsProtocol) -> str:
    return f"{proto.client[0]}:{proto.client[1]}" if proto.client else "client"


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


# A request line plus headers larger than this is refused (400 RequestHeaderSectionTooLarge). AWS
# documents 8 KB of headers; 64 KiB leaves room for long presigned URLs and session tokens.
MAX_HEAD_BYTES = 64 << 10
DEFAULT_CLIENT_TIMEOUT = 60.0  # seconds, for heads and stalled bodies alike: nginx's default
_timeouts: tuple[float, float] | None = None  # (header, body) for this process; see client_timeouts()


def set_client_timeouts(header: float, body: float) -> None:
    """The header and body timeouts of connections accepted from now on (``rs3gw serve``)."""
    global _timeouts
    _timeouts = (float(header), float(body))


def client_timeouts() -> tuple[float, float]:
    """(header, body) seconds. A ``--workers N`` child never ran ``set_client_timeouts``: uvicorn
    builds its protocol from the class alone, so the values come from the settings its parent
    exported (RS3GW_SETTINGS_JSON, already validated there), once per process."""
    global _timeouts
    if _timeouts is None:
        header = body = DEFAULT_CLIENT_TIMEOUT
        from rs3gw.config import SETTINGS_JSON_ENV

        text = os.environ.get(SETTINGS_JSON_ENV)
        if text:
            try:
                data = json.loads(text)
                header = float(data.get("http_header_timeout") or header)
                body = float(data.get("http_body_timeout") or body)
            except (ValueError, TypeError, AttributeError):
                pass  # the worker's own settings_from_json reports a broken value
        _timeouts = (header, body)
    return _timeouts


class _Sweeper:
    """One timer per server that checks every connection's deadlines, every ``period`` seconds
    (a quarter of the shorter timeout, at most 5 s): a stalled body is cut between T and T + period
    after its last byte; a head, which the sweep notices at most a period after its first byte,
    between T and T + 2 periods after it.
    It stops when the server has no connections and the next connection starts it again."""

    __slots__ = ("connections", "handle", "loop", "period")

    def __init__(self, loop: asyncio.AbstractEventLoop, connections: set[Any], period: float) -> None:
        self.loop = loop
        self.connections = connections
        self.period = period
        self.handle: asyncio.TimerHandle | None = None

    def ensure(self, period: float) -> None:
        if period < self.period:
            self.period = period
            if self.handle is not None:
                self.handle.cancel()
                self.handle = None
        if self.handle is None:
            self.handle = self.loop.call_later(self.period, self.tick)

    def tick(self) -> None:
        self.handle = None
        if not self.connections:
            return
        now = _monotonic()
        for conn in tuple(self.connections):
            if isinstance(conn, GracefulHttpToolsProtocol):
                try:
                    conn.check_deadlines(now)
                except Exception:  # one odd connection must not end the checks for all others
                    conn.logger.exception("checking a connection's timeouts failed")
        self.handle = self.loop.call_later(self.period, self.tick)


_BODY_METHODS = frozenset({"PUT", "POST"})
_ZEROCOPY_ONLY: dict[str, Any] = {
    ZEROCOPY: {}
}  # the extensions of a plain-HTTP scope (read only)  # S3 requests that carry a body, answerable on a stall
_SWEEPERS: weakref.WeakKeyDictionary[ServerState, _Sweeper] = weakref.WeakKeyDictionary()


class GracefulHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout, self.body_timeout = client_timeouts()
        self.rx_at = 0.0  # time.monotonic() of the last bytes received
        # The head being read: its scope (uvicorn makes one per request at its first byte; None
        # before any) and when the sweep first saw it (the connect, for the first).
        self.head_scope: Any = None
        self.head_since = 0.0
        self.answerable: RequestResponseCycle | None = None  # its receive is _timed_receive's
        self.stalled: RequestResponseCycle | None = None  # the request whose body timed out
        self.stalled_at = 0.0
        self.unparsable = False  # bytes after an unanswered request were not HTTP: BadRequest after it
        self.head_open = False  # a request line and headers are being received
        self.head_bytes = 0  # bytes received since they began

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.rx_at = self.head_since = _monotonic()
        period = min(5.0, max(0.05, min(self.header_timeout, self.body_timeout) / 4))
        sweeper = _SWEEPERS.get(self.server_state)
        if sweeper is None or sweeper.loop is not self.loop:
            sweeper = _SWEEPERS[self.server_state] = _Sweeper(self.loop, self.connections, period)
        sweeper.ensure(period)

    def data_received(self, data: bytes) -> None:
        # The whole per-chunk cost of both timeouts (~0.15 us: the base class is called directly,
        # no super() object; time.monotonic is a C function). Nothing is added per request.
        self.rx_at = _monotonic()
        HttpToolsProtocol.data_received(self, data)
        if self.head_open:
            # The parser keeps a header it has not seen the end of: without a cap, one endless
            # header line (or URL) would grow until the process runs out of memory.
            self.head_bytes += len(data)
            if self.head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
                self.logger.info("%s: request head over %d bytes: refused", _peer(self), MAX_HEAD_BYTES)
                self.head_open = False
                self._bad_request(
                    "RequestHeaderSectionTooLarge",
                    "Your request header section exceeds the maximum allowed size.",
                )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_open, self.head_bytes = True, 0

    def on_headers_complete(self) -> None:
        self.head_open = False
        super().on_headers_complete()

    def check_deadlines(self, now: float) -> None:
        """Called by the server's ``_Sweeper``: cut a connection whose head or body is overdue."""
        if self.transport.is_closing():
            return
        cycle, scope = self.cycle, self.scope
        if cycle is None or scope is not cycle.scope:  # a head is being read, or none came yet
            if cycle is not None and not cycle.response_complete:
                self.head_since = now  # a pipelined head waits for the response before it: not late
            elif scope is not self.head_scope:  # its first byte came since the last sweep
                self.head_scope, self.head_since = scope, now
            elif now - self.head_since >= self.header_timeout:
                self._head_timed_out()
            return
        if cycle.response_complete or not cycle.more_body:
            return  # idle keep-alive (uvicorn's own timeout), or the body is all here
        if self.stalled is cycle:
            if now - self.stalled_at >= self.body_timeout:  # the app never answered: cut it
                self.transport.abort()
            return
        if self.flow.read_paused or cycle.waiting_for_100_continue:
            self.rx_at = now  # the app is not reading yet: the silence is ours, not the client's
            return
        if now - self.rx_at >= self.body_timeout:
            self._body_timed_out(cycle, now)

    def _head_timed_out(self) -> None:
        what = "no request" if self.scope is None else "request head incomplete"  # debug: scanners do this
        self.logger.debug("%s: %s after %.3g s, connection dropped", _peer(self), what, self.header_timeout)
        # Nothing is owed to the client (every earlier response is complete); abort, not close: over
        # TLS a close would wait for the stalled client's close_notify.
        self.transport.abort()

    def _body_timed_out(self, cycle: RequestResponseCycle, now: float) -> None:
        self.logger.info("%s: request body stalled %.3g s: RequestTimeout", _peer(self), self.body_timeout)
        if cycle.response_started or cycle is not self.answerable:
            self.transport.abort()  # nothing can be answered: the app sees the connection go
            return
        # The app's receive() returns http.disconnect marked BODY_TIMEOUT (see _start_asgi_task); its
        # error response goes out as usual, then uvicorn closes the connection (keep_alive off).
        self.stalled, self.stalled_at = cycle, now
        cycle.keep_alive = False
        self.flow.pause_reading()  # whatever the client sends now belongs to no request
        cycle.message_event.set()

    def send_400_response(self, msg: str) -> None:
        """Bytes that are not HTTP (a bad Content-Length, control characters in a header, a body
        longer than its Content-Length read as the next request): S3 answers 400 BadRequest in its
        XML error format, not uvicorn's text/plain line. A complete request still being answered when
        the bad bytes arrive (pipelined, or the tail of a body longer than declared) gets its own
        response first: uvicorn would have cut it off and answered its 400 in that response's place."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete and not cycle.more_body:
            self.unparsable = True
            self.flow.pause_reading()
            return
        self._bad_request()

    def _bad_request(
        self, code: str = "BadRequest", message: str = "An error occurred when parsing the HTTP request."
    ) -> None:
        held = self.cycle.transport if self.cycle is not None else None
        if isinstance(held, _Cork):  # the response just completed is still corked: it goes first
            held.release()
        request_id = os.urandom(8).hex().upper()
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        ).encode()
        head = [STATUS_LINE[400]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head.append(
            b"content-type: application/xml\r\ncontent-length: %d\r\nx-amz-request-id: %s\r\n"
            b"connection: close\r\n\r\n" % (len(body), request_id.encode())
        )
        self.transport.write(b"".join(head) + body)
        self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.unparsable and not self.pipeline and not self.transport.is_closing():
            if self.timeout_keep_alive_task is not None:
                self.timeout_keep_alive_task.cancel()
                self.timeout_keep_alive_task = None
            self._bad_request()

    def shutdown(self) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self.transport.abort()
        else:
            self.cycle.keep_alive = False

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        zerocopy = cycle.scope.get("scheme") == "http"
        if zerocopy:
            extensions = cycle.scope.get("extensions")
            cycle.scope["extensions"] = {**extensions, ZEROCOPY: {}} if extensions else _ZEROCOPY_ONLY
        cycle.send = self._app_send(cycle, zerocopy)  # type: ignore[method-assign, assignment]
        if cycle.more_body and cycle.scope["method"] in _BODY_METHODS:
            cycle.receive = self._timed_receive(cycle)  # type: ignore[method-assign, assignment]
            self.answerable = cycle
        super()._start_asgi_task(cycle, app)

    def _timed_receive(self, cycle: RequestResponseCycle) -> Callable[[], Awaitable[Any]]:
        """uvicorn's receive, except that once the body stalled (``_body_timed_out``) it answers
        ``http.disconnect`` marked ``BODY_TIMEOUT``, while the response can still be sent."""
        receive = cycle.receive

        async def timed_receive() -> Any:
            message = await receive()
            if self.stalled is cycle:
                return {"type": "http.disconnect", BODY_TIMEOUT: True}
            return message

        return timed_receive

    def _app_send(self, cycle: RequestResponseCycle, zerocopy: bool) -> Callable[[Any], Awaitable[None]]:
        """The ``send`` the app gets: uvicorn's, plus the ``CORK`` mark and, on plain HTTP, the
        zero-copy message. One wrapper for both: each layer was a coroutine per message.

        A start message marked ``CORK`` (the app sends the body right after it) is held in a
        ``_Cork`` until the next message has been written too."""
        send = cycle.send
        held: _Cork | None = None

        async def app_send(message: Any) -> None:
            nonlocal held
            kind = message["type"]
            if held is not None:
                cork, held = held, None
                try:
                    if kind == ZEROCOPY:
                        cork.release()  # sendfile writes to the socket itself: the headers go first
                        if zerocopy:
                            await self._send_zerocopy(cycle, send, message)
                            return
                    await send(message)
                finally:
                    cork.release()
                return
            if kind == ZEROCOPY and zerocopy:
                await self._send_zerocopy(cycle, send, message)
                return
            if kind == "http.response.start" and message.get(CORK) and not cycle.response_started:
                cork = _Cork(cycle)
                try:
                    await send(message)
                except BaseException:
                    cork.release()
                    raise
                held = cork
                return
            await send(message)

        return app_send

    async def _send_zerocopy(
        self, cycle: RequestResponseCycle, send: Callable[[Any], Awaitable[None]], message: Any
    ) -> None:
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


class _WorkerListener(socket.socket):
    """The listening socket ``--workers N`` hands each worker: pickled for a spawned worker, it
    becomes that worker's own ``SO_REUSEPORT`` socket on the same address instead of a copy of one
    shared socket.

    With one shared socket every idle worker wakes for each connection and the first to call
    accept(2) takes it, so a client's pool of keep-alive connections, opened at once, landed as
    unevenly as 16/0 or 15/1 on two workers (counted with ``ss -tnp`` under s3bench at c=16) and one
    core did all the work. With a socket per worker the kernel spreads connections by their address
    hash. The parent's socket is bound and never listens: it only holds the port (so that the bind
    of a busy port fails in the parent, with its clear message) and is never handed connections."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_reuseport_socket, (self.family, self.getsockname()))


def _reuseport_socket(family: int, address: tuple[Any, ...], cls: type[socket.socket] = socket.socket) -> Any:
    sock = cls(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def worker_listener(host: str, port: int) -> socket.socket:
    """The socket to give uvicorn's ``Multiprocess`` for ``--workers N`` (see ``_WorkerListener``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock: socket.socket = _reuseport_socket(family, (host, port), _WorkerListener)
    sock.set_inheritable(True)
    return sock
