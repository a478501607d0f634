"""POST Object: a browser-based upload, a ``multipart/form-data`` form POSTed to the bucket URL.

The form's fields before the ``file`` part are small and buffered (``FIELDS_LIMIT`` in all); the
file part is streamed straight into the engine's normal put path (checksums, ETag, encryption,
compression and dedup as for PutObject) by a boundary scanner whose buffer never exceeds one
received chunk plus the boundary. Parts after the file are read and ignored, as on S3.

Dispatch (``protocol.app``) reads the fields with ``read_form``, authenticates them
(``auth.post_policy``), authorizes the signer for PutObject on ``form_key`` with the request
headers ``form_headers`` derives from the form, then calls ``post_object``.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from urllib.parse import quote, urlencode, urlsplit

from rs3gw import errors
from rs3gw.auth.post_policy import check_form, parse_policy
from rs3gw.protocol.context import Ctx
from rs3gw.protocol.handlers.objects import put_headers, store_body
from rs3gw.protocol.request import PostForm, Request
from rs3gw.protocol.response import Response, xml_response
from rs3gw.protocol.xml_parse import parse_tagging
from rs3gw.protocol.xml_write import XmlBuilder

FIELDS_LIMIT = 20 * 1024  # every byte before the file part (fields and part headers)
FILE_FIELD = "file"
# Form fields that are object headers under the same name (besides x-amz-*).
_HEADER_FIELDS = frozenset(
    {
        "content-type",
        "cache-control",
        "content-disposition",
        "content-encoding",
        "content-language",
        "expires",
    }
)
# Request headers a form field stands for that are no object header: the body's digest, which the
# put path verifies (BadDigest) and Object Lock requires, exactly as PutObject's header.
_REQUEST_FIELDS = frozenset({"content-md5"})
# x-amz-* fields that are signature or transport material, not object headers.
_AUTH_FIELDS = frozenset(
    {
        "x-amz-algorithm",
        "x-amz-credential",
        "x-amz-date",
        "x-amz-signature",
        "x-amz-security-token",
        "x-amz-content-sha256",
        "x-amz-decoded-content-length",
        "x-amz-trailer",
    }
)
_PARAM = re.compile(r';\s*([A-Za-z0-9_*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
_BOUNDARY = re.compile(r'boundary\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]+)', re.IGNORECASE)


# --- reading the form ------------------------------------------------------------------------


class _Scanner:
    """A byte buffer over the request body with the few reads a multipart form needs."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self.buf = bytearray()
        self.used = 0  # bytes consumed so far (all of them before the file part)

    async def fill(self) -> bool:
        """Append the next received chunk; False at the end of the body."""
        try:
            chunk = await anext(self._chunks)
        except StopAsyncIteration:
            return False
        self.buf += chunk
        return True

    async def read_until(self, sep: bytes) -> bytes:
        """The bytes before ``sep``, consuming both; bounded by FIELDS_LIMIT."""
        start = 0
        while True:
            i = self.buf.find(sep, start)
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[: i + len(sep)]
                self.used += i + len(sep)
                if self.used > FIELDS_LIMIT:
                    raise errors.MaxPostPreDataLengthExceededError()
                return out
            if self.used + len(self.buf) > FIELDS_LIMIT:
                raise errors.MaxPostPreDataLengthExceededError()
            start = max(0, len(self.buf) - len(sep) + 1)
            if not await self.fill():
                raise errors.MalformedPOSTRequest()

    async def take(self, n: int) -> bytes:
        """The next ``n`` bytes, consumed (the two after a boundary: CRLF, or ``--`` at the end)."""
        while len(self.buf) < n:
            if not await self.fill():
                raise errors.MalformedPOSTRequest()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        self.used += n
        return out

    async def stream_until(self, sep: bytes) -> AsyncIterator[bytes]:
        """Everything before ``sep`` as it arrives (holding back only what could start ``sep``),
        then the rest of the body read and dropped: S3 ignores fields after the file."""
        hold = len(sep) - 1
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                if i:
                    yield bytes(self.buf[:i])
                break
            if len(self.buf) > hold:
                yield bytes(self.buf[: len(self.buf) - hold])
                del self.buf[: len(self.buf) - hold]
            if not await self.fill():
                raise errors.MalformedPOSTRequest("The body ended inside the file part.")
        self.buf.clear()
        while await self.fill():
            self.buf.clear()


def _boundary(content_type: str) -> bytes:
    m = _BOUNDARY.search(content_type)
    if m is None:
        raise errors.MalformedPOSTRequest("The multipart/form-data Content-Type has no boundary.")
    value = m.group(1)
    if value.startswith('"'):
        value = value[1:-1]
    if not value or len(value) > 200:
        raise errors.MalformedPOSTRequest("Invalid multipart/form-data boundary.")
    return value.encode("latin-1")


def _disposition(head: bytes) -> tuple[str, str | None]:
    """(field name, file name or None) from a part's Content-Disposition header."""
    for line in head.decode("utf-8", "replace").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() != "content-disposition":
            continue
        params: dict[str, str] = {}
        for key, raw in _PARAM.findall(value):
            raw = raw.strip()
            if raw.startswith('"'):
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            params.setdefault(key.lower(), raw)
        if "name" in params:
            return params["name"], params.get("filename")
    raise errors.MalformedPOSTRequest("A form part has no Content-Disposition name.")


async def read_form(req: Request) -> PostForm:
    """Read the form up to (not including) its file's bytes: fields buffered, file streamed."""
    boundary = _boundary(req.headers.get("content-type", ""))
    scan = _Scanner(req.raw_body())
    await scan.read_until(b"--" + boundary)
    after = b"\r\n--" + boundary
    fields: dict[str, str] = {}
    while True:
        if await scan.take(2) != b"\r\n":  # "--": the closing delimiter, and no file came
            raise errors.IncorrectNumberOfFilesInPostRequest()
        name, filename = _disposition(await scan.read_until(b"\r\n\r\n"))
        name = name.lower()
        if name == FILE_FIELD:
            return PostForm(fields, filename or "", scan.stream_until(after))
        value = await scan.read_until(after)
        if name in fields:
            raise errors.InvalidArgument(
                f"POST form field '{name}' appears more than once.", ArgumentName=name, ArgumentValue=""
            )
        try:
            fields[name] = value.decode("utf-8")
        except UnicodeDecodeError:
            raise errors.MalformedPOSTRequest(f"Form field '{name}' is not UTF-8.") from None


def form_key(form: PostForm) -> str:
    """The object key: the ``key`` field with ``${filename}`` replaced by the file's name."""
    key = form.fields.get("key")
    if not key:
        raise errors.InvalidArgument(
            "Bucket POST must contain a field named 'key'.  If it is specified, please check the order "
            "of the fields.",
            ArgumentName="key",
            ArgumentValue="",
        )
    return key.replace("${filename}", form.filename)


def form_headers(form: PostForm, host: str) -> dict[str, str]:
    """The request headers a PutObject of this form would carry: what authorization (ACL, SSE
    conditions) and the put path read (Content-Type, metadata, tagging, storage class ...)."""
    out = {"host": host}
    for name, value in form.fields.items():
        if (
            name in _HEADER_FIELDS
            or name in _REQUEST_FIELDS
            or (name.startswith("x-amz-") and name not in _AUTH_FIELDS)
        ):
            out[name] = value
    if "acl" in form.fields:
        out["x-amz-acl"] = form.fields["acl"]
    if "tagging" in form.fields:
        out["x-amz-tagging"] = urlencode(
            parse_tagging(form.fields["tagging"].encode("utf-8")), quote_via=quote
        )
    return out


# --- the handler -----------------------------------------------------------------------------


async def _bounded(body: AsyncIterator[bytes], low: int, high: int | None) -> AsyncIterator[bytes]:
    """The file's bytes within the policy's content-length-range: EntityTooLarge as soon as the
    maximum is passed (the write is abandoned), EntityTooSmall at the end below the minimum."""
    size = 0
    async for chunk in body:
        size += len(chunk)
        if high is not None and size > high:
            raise errors.EntityTooLarge(ProposedSize=str(size), MaxSizeAllowed=str(high))
        yield chunk
    if size < low:
        raise errors.EntityTooSmall(ProposedSize=str(size), MinSizeAllowed=str(low))


def _redirect_url(fields: dict[str, str]) -> str | None:
    url = fields.get("success_action_redirect") or fields.get("redirect")
    if not url:
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


async def post_object(ctx: Ctx) -> Response:
    """Store the form's file under its key; answer as ``success_action_redirect`` (303) or
    ``success_action_status`` (200, 201 with a PostResponse document, else 204) say."""
    form = ctx.req.form
    if form is None:
        raise errors.MalformedPOSTRequest()
    fields = form.fields
    low, high = 0, None
    if fields.get("policy"):
        policy = parse_policy(fields["policy"])
        check_form(policy, {**fields, "key": ctx.key}, ctx.bucket, time.time())
        if policy.length_range is not None:
            low, high = policy.length_range
    res, sse = await store_body(ctx, _bounded(form.file, low, high))
    headers = {**put_headers(res), **sse}
    etag = headers["etag"]
    redirect = _redirect_url(fields)
    if redirect is not None:
        query = urlencode({"bucket": ctx.bucket, "key": ctx.key, "etag": etag}, quote_via=quote)
        headers["location"] = f"{redirect}{'&' if '?' in redirect else '?'}{query}"
        return Response(303, headers)
    base = ctx.req.raw_path.rstrip("/")
    location = f"{ctx.req.scheme}://{ctx.h('host', '')}{base}/{quote(ctx.key)}"
    headers["location"] = location
    status = fields.get("success_action_status", "")
    if status == "201":
        x = XmlBuilder("PostResponse", namespace=False)
        x.elem("Location", location).elem("Bucket", ctx.bucket).elem("Key", ctx.key).elem("ETag", etag)
        return xml_response(x, 201, headers)
    return Response(200 if status == "200" else 204, headers)
