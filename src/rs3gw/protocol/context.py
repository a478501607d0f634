"""Per-request context handed to every handler: who is asking, for what, and the decoded body."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

from rs3gw import errors
from rs3gw.auth.chunked import AwsChunkedDecoder
from rs3gw.auth.verify import AuthResult, PayloadMode
from rs3gw.codecs.checksums import algorithm_from_header
from rs3gw.engine import Engine
from rs3gw.engine.ingest import BodyChecks
from rs3gw.model import Account, Bucket, Owner
from rs3gw.protocol.authorize import LIFECYCLE, Access
from rs3gw.protocol.request import Request
from rs3gw.transform import TransformService

STREAMING = (
    PayloadMode.STREAMING_SIGNED,
    PayloadMode.STREAMING_SIGNED_TRAILER,
    PayloadMode.STREAMING_UNSIGNED_TRAILER,
)
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@dataclass
class Ctx:
    req: Request
    engine: Engine
    account: Account
    auth: AuthResult
    operation: str
    region: str
    _decoder: AwsChunkedDecoder | None = None
    # Every account by canonical id, so listings can name the owner of another account's object.
    owners: Mapping[str, Owner] = field(default_factory=dict)
    # The request's authorizer, for checks a handler makes itself (copy source, each key deleted).
    access: Access | None = None
    # GET ?x-rs3gw-transform: configured steps, access points and result cache (None: defaults).
    transforms: TransformService | None = None

    @property
    def bucket(self) -> str:
        assert self.req.bucket is not None
        return self.req.bucket

    @property
    def key(self) -> str:
        assert self.req.key is not None
        return self.req.key

    @property
    def owner_id(self) -> str:
        return self.account.owner.id

    def known_bucket(self) -> Bucket | None:
        """The request bucket's record as authorization read it (None if it did not): passed to
        the engine so the hot paths (GET, HEAD, PUT, LIST) read the bucket once per request."""
        return self.access.known_bucket(self.bucket) if self.access is not None else None

    async def lifecycle_doc(self) -> str | None:
        """The request bucket's stored lifecycle document (x-amz-expiration): as authorization read
        it with the bucket on GET/HEAD/PUT/Copy/Complete, so the hot paths make no extra query;
        read here only when authorization did not read it."""
        if self.access is not None:
            read, doc = self.access.known_lifecycle(self.bucket)
            if read:
                return doc
        return await self.engine.store.get_bucket_config(self.bucket, LIFECYCLE)

    def q(self, name: str, default: str | None = None) -> str | None:
        return self.req.query.get(name, default)

    def h(self, name: str, default: str | None = None) -> str | None:
        return self.req.headers.get(name, default)

    def body(self) -> AsyncIterator[bytes]:
        """The payload, aws-chunked framing removed and chunk signatures verified."""
        raw = self.req.raw_body()
        if self.auth.payload not in STREAMING:
            return raw
        trailer = self.auth.payload != PayloadMode.STREAMING_SIGNED
        self._decoder = AwsChunkedDecoder(
            raw, signer=self.auth.chunk_signer, expect_trailer=trailer, decoded_length=self.decoded_length()
        )
        return aiter(self._decoder)

    def decoded_length(self) -> int | None:
        if self.auth.payload in STREAMING:
            value = self.h("x-amz-decoded-content-length")
            if value is None:
                raise errors.MissingContentLength()
            return _int_header("x-amz-decoded-content-length", value)
        value = self.h("content-length")
        return None if value is None else _int_header("content-length", value)

    def body_checks(self) -> BodyChecks:
        """Everything the client declared about the body, for the engine to verify."""
        sums: dict[str, str] = {}
        for name, value in self.req.headers.items():
            if name.startswith("x-amz-checksum-") and name not in (
                "x-amz-checksum-type",
                "x-amz-checksum-algorithm",
            ):
                alg = algorithm_from_header(name)
                if alg is None:
                    raise errors.InvalidRequest(f"Unsupported checksum header {name}")
                sums[alg] = value
        if len(sums) > 1:
            raise errors.InvalidRequest(
                "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
            )
        trailer_algs: tuple[str, ...] = ()
        declared = self.h("x-amz-trailer")
        if declared and self.auth.payload in STREAMING:
            algs = [algorithm_from_header(t.strip().lower()) for t in declared.split(",") if t.strip()]
            if any(a is None for a in algs):
                raise errors.InvalidRequest(f"Unsupported trailer {declared}")
            trailer_algs = tuple(a for a in algs if a)
        sha = self.auth.content_sha256 if self.auth.payload == PayloadMode.SIGNED else None
        sdk = self.h("x-amz-sdk-checksum-algorithm")
        return BodyChecks(
            content_length=self.decoded_length(),
            content_md5=self.h("content-md5"),
            sha256=sha,
            checksums=sums,
            trailer_algorithms=trailer_algs,
            trailers=self._trailers if trailer_algs else None,
            sdk_algorithm=sdk.upper() if sdk else None,
        )

    def _trailers(self) -> dict[str, str]:
        return dict(self._decoder.trailers) if self._decoder is not None else {}

    async def read_body(self, limit: int = 1 << 20) -> bytes:
        """Small XML bodies, fully read and verified against any declared digest."""
        out = bytearray()
        async for chunk in self.body():
            out += chunk
            if len(out) > limit:
                raise errors.error_class("MaxMessageLengthExceeded")()
        data = bytes(out)
        _verify_small(self, data)
        return data


def _verify_small(ctx: Ctx, data: bytes) -> None:
    md5 = ctx.h("content-md5")
    if md5 is not None:
        try:
            ok = base64.b64decode(md5, validate=True) == hashlib.md5(data, usedforsecurity=False).digest()
        except ValueError:
            raise errors.InvalidDigest() from None
        if not ok:
            raise errors.BadDigest()
    if ctx.auth.payload == PayloadMode.SIGNED and ctx.auth.content_sha256 is not None:
        got = hashlib.sha256(data).hexdigest()
        if got != ctx.auth.content_sha256:
            raise errors.XAmzContentSHA256Mismatch(
                ClientComputedContentSHA256=ctx.auth.content_sha256, S3ComputedContentSHA256=got
            )


def _int_header(name: str, value: str) -> int:
    if not (value.isascii() and value.isdigit()):  # str.isdigit alone accepts '²', which int() rejects
        raise errors.InvalidArgument(f"Invalid {name}", ArgumentName=name, ArgumentValue=value)
    return int(value)
