"""Event-stream frames as botocore decodes them: CRCs, headers, and the SelectObjectContent events."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer, EventStreamMessage

from rs3gw.select import eventstream


def decode(data: bytes) -> list[EventStreamMessage]:
    buf = EventStreamBuffer()
    buf.add_data(data)
    return list(buf)


def test_records_frame_round_trips() -> None:
    (msg,) = decode(eventstream.records(b"a,b\n1,2\n"))
    assert msg.headers == {
        ":event-type": "Records",
        ":content-type": "application/octet-stream",
        ":message-type": "event",
    }
    assert msg.payload == b"a,b\n1,2\n"


def test_stats_progress_cont_end_and_error() -> None:
    frames = [
        eventstream.stats(10, 20, 5),
        eventstream.progress(1, 2, 3),
        eventstream.cont(),
        eventstream.end(),
        eventstream.error("CastFailed", "bad\ncast"),
    ]
    stats, prog, cont, end, err = decode(b"".join(frames))
    assert stats.headers[":event-type"] == "Stats" and stats.headers[":content-type"] == "text/xml"
    assert b"<BytesScanned>10</BytesScanned><BytesProcessed>20</BytesProcessed>" in stats.payload
    assert b"<BytesReturned>3</BytesReturned>" in prog.payload
    assert cont.headers == {":event-type": "Cont", ":message-type": "event"} and cont.payload == b""
    assert end.headers[":event-type"] == "End"
    assert err.headers == {
        ":error-code": "CastFailed",
        ":error-message": "bad cast",
        ":message-type": "error",
    }


def test_botocore_parser_builds_select_events() -> None:
    """The same parser boto3's select_object_content uses, given the S3 operation's output shape."""
    import botocore.session
    from botocore.eventstream import EventStream
    from botocore.parsers import EventStreamXMLParser

    model = botocore.session.get_session().get_service_model("s3")
    shape = model.operation_model("SelectObjectContent").output_shape.members["Payload"]

    class Raw:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def stream(self) -> Any:
            yield self.data

    body = eventstream.records(b"x\n") + eventstream.stats(1, 1, 2) + eventstream.end()
    events = list(EventStream(Raw(body), shape, EventStreamXMLParser(), "SelectObjectContent"))
    assert events[0] == {"Records": {"Payload": b"x\n"}}
    assert events[1] == {"Stats": {"Details": {"BytesScanned": 1, "BytesProcessed": 1, "BytesReturned": 2}}}
    assert events[2] == {"End": {}}


@pytest.mark.parametrize("where", ["prelude", "message"])
def test_crcs_are_real(where: str) -> None:
    data = bytearray(eventstream.records(b"payload"))
    if where == "prelude":
        data[8] ^= 0xFF  # the prelude CRC itself
    else:
        data[-1] ^= 0xFF
    with pytest.raises(ChecksumMismatch):
        decode(bytes(data))


def test_layout_matches_the_spec() -> None:
    data = eventstream.end()
    total, hlen, pcrc = struct.unpack(">III", data[:12])
    assert total == len(data) and pcrc == zlib.crc32(data[:8])
    assert struct.unpack(">I", data[-4:])[0] == zlib.crc32(data[:-4])
    assert 12 + hlen + 4 == total  # End carries no payload


class MemorySource:
    """An object held in memory, handed out in small chunks like the engine's reads."""

    def __init__(self, data: bytes) -> None:
        self.data, self.size, self.scanned = data, len(data), 0

    def read(self, start: int, length: int) -> Any:
        for i in range(start, start + length, 1000):
            chunk = self.data[i : min(i + 1000, start + length)]
            self.scanned += len(chunk)
            yield chunk


def test_long_scans_send_keepalives_and_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    from rs3gw.select import run
    from rs3gw.select.request import SelectRequest
    from rs3gw.select.sql import parse

    monkeypatch.setattr(run, "KEEPALIVE_S", 0.0)
    data = b"".join(b"%d\n" % i for i in range(3 * run.TICK_EVERY))
    sql = "SELECT COUNT(*) FROM S3Object WHERE _1 = 'none'"
    kinds = [
        m.headers[":event-type"]
        for m in decode(b"".join(run.execute(SelectRequest(sql, "CSV"), parse(sql), MemorySource(data))))
    ]
    assert kinds == ["Cont", "Cont", "Cont", "Records", "Stats", "End"]
    req = SelectRequest(sql, "CSV", progress=True)
    msgs = decode(b"".join(run.execute(req, parse(sql), MemorySource(data))))
    assert [m.headers[":event-type"] for m in msgs][:3] == ["Progress"] * 3
    assert (
        msgs[-2].headers[":event-type"] == "Stats"
        and f"<BytesScanned>{len(data)}<".encode() in msgs[-2].payload
    )
