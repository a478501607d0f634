"""Responses as values: handlers return them; one place sends them and renders S3 errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from rs3gw.errors import S3Error
from rs3gw.protocol.request import Send
from rs3gw.protocol.xml_write import XmlBuilder

XML = "application/xml"


@dataclass
class Response:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None
    length: int | None = None  # Content-Length for streamed bodies and HEAD


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


async def send_response(send: Send, resp: Response, request_id: str, head: bool) -> None:
    headers = [(b"x-amz-request-id", request_id.encode()), (b"x-amz-id-2", request_id.encode())]
    headers += [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in resp.headers.items()]
    if resp.stream is None:
        length = resp.length if (head and resp.length is not None) else len(resp.body)
        if resp.status != 304 and resp.status != 204:
            headers.append((b"content-length", str(length).encode()))
        await send({"type": "http.response.start", "status": resp.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else resp.body})
        return
    if resp.length is not None:
        headers.append((b"content-length", str(resp.length).encode()))
    await send({"type": "http.response.start", "status": resp.status, "headers": headers})
    async for chunk in resp.stream:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
