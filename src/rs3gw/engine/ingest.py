"""Stream a request body into a new blob while hashing it once, then verify what the client declared.

MD5 (the ETag) is always computed; SHA-256 only when the client signed the payload; additional
checksums only when the client asked for them. Nothing is published unless every check passes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

from rs3gw import errors
from rs3gw.blobs.base import NO_OPTIONS, BlobStore, Tap, WriteOptions
from rs3gw.codecs.checksums import is_valid_b64_digest, new_checksum


@dataclass(frozen=True)
class BodyChecks:
    """What the client declared about the body, to be verified after it is stored."""

    content_length: int | None = None
    content_md5: str | None = None  # base64, from Content-MD5
    sha256: str | None = None  # hex, from a signed x-amz-content-sha256
    checksums: Mapping[str, str] = field(default_factory=dict)  # algorithm -> base64 (headers)
    trailer_algorithms: tuple[str, ...] = ()  # algorithms whose values arrive as trailers
    trailers: Callable[[], Mapping[str, str]] | None = None  # read once the body is consumed
    sdk_algorithm: str | None = None  # compute and store this checksum even without a value


@dataclass(frozen=True)
class Ingested:
    blob_id: str
    size: int
    md5_hex: str
    checksums: dict[str, str]  # algorithm -> base64, computed


def _md5_b64(value: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise errors.InvalidDigest(ContentMD5=value) from None
    if len(raw) != 16:
        raise errors.InvalidDigest(ContentMD5=value)
    return raw


def _check_declared(checks: BodyChecks) -> None:
    """Malformed or contradictory checksum headers fail up front, as S3 does (InvalidRequest)."""
    for alg, value in checks.checksums.items():
        if not is_valid_b64_digest(alg.upper(), value):
            raise errors.InvalidRequest(f"Value for x-amz-checksum-{alg.lower()} header is invalid.")
    sdk = checks.sdk_algorithm
    declared = {a.upper() for a in checks.checksums} | {a.upper() for a in checks.trailer_algorithms}
    if sdk and declared and sdk.upper() not in declared:
        raise errors.InvalidRequest("Value for x-amz-sdk-checksum-algorithm header is invalid.")


def wanted_algorithms(checks: BodyChecks) -> list[str]:
    algs = {a.upper() for a in checks.checksums} | {a.upper() for a in checks.trailer_algorithms}
    if checks.sdk_algorithm:
        algs.add(checks.sdk_algorithm.upper())
    return sorted(algs)


async def ingest(
    blobs: BlobStore,
    body: AsyncIterator[bytes],
    checks: BodyChecks,
    max_size: int,
    options: WriteOptions = NO_OPTIONS,
    head: bytearray | None = None,
    head_bytes: int = 0,
) -> Ingested:
    """Write ``body`` to a new blob; raise (and leave nothing behind) if any declared check fails.

    ``head``, if given, receives the body's first ``head_bytes`` bytes (content sniffing) here
    rather than through another async generator wrapped around ``body``: one layer less per chunk.
    """
    if checks.content_md5 is not None:
        _md5_b64(checks.content_md5)  # malformed digests fail before any byte is stored
    _check_declared(checks)
    md5 = hashlib.md5(usedforsecurity=False)
    sha = hashlib.sha256() if checks.sha256 else None
    sums = {a: new_checksum(a) for a in wanted_algorithms(checks)}
    taps: list[Tap] = [md5, *([sha] if sha else []), *sums.values()]
    writer = blobs.new_writer(options)
    size = 0
    try:
        write = writer.write
        async for chunk in body:
            if head is not None and len(head) < head_bytes:
                head += chunk[: head_bytes - len(head)]
            size += len(chunk)
            if size > max_size:
                raise errors.EntityTooLarge(ProposedSize=str(size), MaxSizeAllowed=str(max_size))
            await write(chunk, taps)
        if checks.content_length is not None and size != checks.content_length:
            raise errors.IncompleteBody()
        await writer.close(taps)
    except BaseException:
        await writer.abort()
        raise
    try:
        _verify(checks, md5.digest(), sha, {a: c.b64() for a, c in sums.items()})
    except BaseException:
        await blobs.delete([writer.blob_id])
        raise
    return Ingested(writer.blob_id, size, md5.hexdigest(), {a: c.b64() for a, c in sums.items()})


def _verify(checks: BodyChecks, md5: bytes, sha: object, computed: dict[str, str]) -> None:
    if checks.content_md5 is not None and md5 != _md5_b64(checks.content_md5):
        raise errors.BadDigest(
            ExpectedDigest=checks.content_md5, CalculatedDigest=base64.b64encode(md5).decode()
        )
    if checks.sha256 is not None and sha is not None:
        got = sha.hexdigest()  # type: ignore[attr-defined]
        if got != checks.sha256:
            raise errors.XAmzContentSHA256Mismatch(
                ClientComputedContentSHA256=checks.sha256, S3ComputedContentSHA256=got
            )
    expected = {a.upper(): v for a, v in checks.checksums.items()}
    if checks.trailers is not None:
        trailers = checks.trailers()
        for alg in checks.trailer_algorithms:
            value = trailers.get(f"x-amz-checksum-{alg.lower()}")
            if value is None:
                raise errors.InvalidRequest(f"The trailing checksum x-amz-checksum-{alg.lower()} is missing.")
            if not is_valid_b64_digest(alg.upper(), value):
                raise errors.InvalidRequest(
                    f"Value for x-amz-checksum-{alg.lower()} trailing header is invalid."
                )
            expected[alg.upper()] = value
    for alg, value in expected.items():
        if computed.get(alg) != value:
            raise errors.BadDigest(f"The {alg} you specified did not match the calculated checksum.")
