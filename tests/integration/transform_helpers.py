"""How a boto3 client sends GET ?x-rs3gw-transform: a ``Transform`` parameter added through events.

``enable_transform_param(client)`` moves ``Transform=...`` out of the API parameters (botocore
would reject an unknown one) before validation and appends it to the URL before signing, so it is
part of the SigV4 canonical request, for ``get_object`` and ``generate_presigned_url`` alike.
"""

from __future__ import annotations

import http.client
import io
from typing import Any
from urllib.parse import quote

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from PIL import Image

from conftest import ACCESS_KEY, SECRET_KEY, Server

PARAM = "x-rs3gw-transform"


def enable_transform_param(client: Any) -> Any:
    def stash(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if "Transform" in params:
            context["rs3gw_transform"] = params.pop("Transform")

    def add(request: Any, **_: Any) -> None:
        spec = request.context.get("rs3gw_transform")
        if spec is not None:
            sep = "&" if "?" in request.url else "?"
            request.url += f"{sep}{PARAM}={quote(spec, safe='')}"

    client.meta.events.register("before-parameter-build.s3.GetObject", stash)
    client.meta.events.register("before-sign.s3.GetObject", add)
    return client


def signed_get(
    server: Server, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One raw SigV4-signed GET (path already URL-encoded, query included)."""
    req = AWSRequest(method="GET", url=f"{server.endpoint}{path}", headers=dict(headers or {}))
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(req)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", path, headers=dict(req.headers.items()))
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def image_bytes(fmt: str, size: tuple[int, int] = (320, 240), mode: str = "RGB") -> bytes:
    """A real encoded image with some structure (a gradient), so resampling has work to do."""
    img = Image.new(mode, size)
    img.putdata(
        [((x * 255) // size[0], (y * 255) // size[1], 90) for y in range(size[1]) for x in range(size[0])]
    )
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def error_code(body: bytes) -> str:
    start = body.find(b"<Code>") + 6
    return body[start : body.find(b"</Code>")].decode()
