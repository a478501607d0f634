"""A response whose body follows its start at once goes out in one write (rs3gw.httpserver._Cork).

Driven through the real protocol class uvicorn runs for us, with a transport that records each
``write``/``writelines`` call: the count of those calls is what the change is about and what no
client on the other end of a socket can observe reliably. The bytes are checked too, and the
paths where the held headers must still go out: connection: close, an app failing after the
start, pipelined requests, HEAD, and a streamed (unmarked) response that keeps its own writes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from rs3gw.httpserver import GracefulHttpToolsProtocol
from rs3gw.protocol.response import CORK


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[bytes]] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.calls.append([bytes(data)])

    def writelines(self, list_of_data: Any) -> None:
        self.calls.append([bytes(d) for d in list_of_data])

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 9000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    @property
    def wire(self) -> bytes:
        return b"".join(b"".join(c) for c in self.calls)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers like send_response does: path /small (marked start, body right after), /stream
    (unmarked start, two chunks), /fail (marked start, then the app raises)."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"6")]})
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        await send({"type": "http.response.body", "body": b"def"})
        return
    body = b"hello world"
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers, CORK: True})
    if path == "/fail":
        raise RuntimeError("the app failed after its start")
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


async def serve(raw: bytes) -> RecordingTransport:
    config = Config(app=app, lifespan="off", access_log=False, log_level="critical")
    config.load()
    state = ServerState()
    proto = GracefulHttpToolsProtocol(config=config, server_state=state, app_state={})
    transport = RecordingTransport()
    proto.connection_made(transport)
    proto.data_received(raw)
    for _ in range(200):  # until every request's task (pipelined ones start one after another) ended
        await asyncio.sleep(0)
        if not state.tasks and not proto.pipeline:
            break
    return transport


def test_small_response_is_one_write() -> None:
    t = asyncio.run(serve(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert len(t.calls) == 1
    assert t.wire.startswith(b"HTTP/1.1 200 OK\r\n")
    assert t.wire.endswith(b"\r\n\r\nhello world")
    assert not t.closed


def test_head_is_one_write_without_body() -> None:
    t = asyncio.run(serve(b"HEAD /small HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert len(t.calls) == 1
    assert t.wire.endswith(b"content-length: 11\r\n\r\n")


def test_connection_close_sends_before_closing() -> None:
    t = asyncio.run(serve(b"GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert t.wire.endswith(b"hello world")
    assert len(t.calls) == 1
    assert t.closed


def test_pipelined_requests_keep_their_order() -> None:
    t = asyncio.run(
        serve(
            b"GET /small HTTP/1.1\r\nHost: x\r\n\r\nHEAD /small HTTP/1.1\r\nHost: x\r\n\r\nGET /small HTTP/1.1\r\nHost: x\r\n\r\n"
        )
    )
    assert t.wire.count(b"HTTP/1.1 200 OK") == 3
    assert t.wire.count(b"hello world") == 2
    assert len(t.calls) == 3  # one write per response


def test_streamed_response_is_not_held() -> None:
    t = asyncio.run(serve(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert [c for call in t.calls for c in call][1:] == [b"abc", b"def"]  # headers went out on their own
    assert t.wire.endswith(b"\r\n\r\nabcdef")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_app_failing_after_start_still_sends_the_headers_then_closes() -> None:
    t = asyncio.run(serve(b"GET /fail HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert t.wire.startswith(b"HTTP/1.1 200 OK\r\n")  # as before the change: the start was sent
    assert t.closed
