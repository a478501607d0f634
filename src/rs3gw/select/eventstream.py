"""AWS event-stream framing (application/vnd.amazon.eventstream) for SelectObjectContent replies.

Frame: total length, headers length, prelude CRC32, headers, payload, message CRC32 (all big-endian).
"""

from __future__ import annotations

import struct
import zlib

_STRING = 7


def _headers(headers: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        n, v = name.encode(), value.encode()
        out += struct.pack(">B", len(n)) + n + struct.pack(">BH", _STRING, len(v)) + v
    return bytes(out)


def frame(headers: dict[str, str], payload: bytes = b"") -> bytes:
    h = _headers(headers)
    total = 12 + len(h) + len(payload) + 4
    prelude = struct.pack(">II", total, len(h))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + h + payload
    return body + struct.pack(">I", zlib.crc32(body))


def _event(kind: str, payload: bytes = b"", content_type: str | None = None) -> bytes:
    h = {":event-type": kind}
    if content_type:
        h[":content-type"] = content_type
    h[":message-type"] = "event"
    return frame(h, payload)


def records(payload: bytes) -> bytes:
    return _event("Records", payload, "application/octet-stream")


def _counters(tag: str, scanned: int, processed: int, returned: int) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><{tag} xmlns="">'
        f"<BytesScanned>{scanned}</BytesScanned><BytesProcessed>{processed}</BytesProcessed>"
        f"<BytesReturned>{returned}</BytesReturned></{tag}>"
    ).encode()


def stats(scanned: int, processed: int, returned: int) -> bytes:
    return _event("Stats", _counters("Stats", scanned, processed, returned), "text/xml")


def progress(scanned: int, processed: int, returned: int) -> bytes:
    return _event("Progress", _counters("Progress", scanned, processed, returned), "text/xml")


def cont() -> bytes:
    """Keep-alive while a long scan has produced no rows yet."""
    return _event("Cont")


def end() -> bytes:
    return _event("End")


def error(code: str, message: str) -> bytes:
    text = message.replace("\n", " ")  # header values are one line
    return frame({":error-code": code, ":error-message": text, ":message-type": "error"})
