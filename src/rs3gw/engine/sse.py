"""Server-side encryption semantics: which key a write uses, who may read, what S3 reports.

Per-object settings live in ``ObjectMeta.system``: ``sse-alg`` ("AES256" | "aws:kms"),
``sse-kms-key`` (the KMS key id), and for SSE-C ``sse-c-alg`` plus ``sse-c-hmac`` (a random salt
and HMAC-SHA256 of the customer key under it: enough to verify a presented key, useless to
recover it). The bytes themselves are sealed by ``blobs.encrypted`` below compression.

Every new blob is bound (``blobs.binding``) to what it is: a single-part object's blob to bucket,
key and version id, a part's blob to bucket, key, upload id and part number. A completed multipart
object records its upload in ``bind-upload`` (and, unless its parts are 1..n, their numbers in
``bind-parts``) so that reads can say which binding each segment must carry (``read_bindings``).
Copies never share blobs: they stream the source through decryption into a new blob bound to the
destination, so a copy is always re-encrypted under its own data key and identity.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass

from rs3gw import errors
from rs3gw.blobs import binding
from rs3gw.blobs.base import Encryption
from rs3gw.blobs.encrypted import CUSTOMER_KEY, key_md5
from rs3gw.blobs.keys import KEY_NAME, SSE_S3_KEY
from rs3gw.model import ObjectVersion

AES256, KMS = "AES256", "aws:kms"
CONFIG_NAME = "encryption"  # bucket config document: {"alg": ..., "kms_key_id": ..., "bucket_key": ...}
BIND_UPLOAD, BIND_PARTS = "bind-upload", "bind-parts"  # a multipart object's part bindings
# Never carried from a request or a copy's source: they describe the stored bytes of one version.
SSE_KEYS = ("sse-alg", "sse-kms-key", "sse-c-alg", "sse-c-hmac", BIND_UPLOAD, BIND_PARTS)


@dataclass(frozen=True)
class SseRequest:
    """The SSE headers of one request, already validated by the protocol layer."""

    alg: str | None = None  # x-amz-server-side-encryption
    kms_key_id: str | None = None
    customer_key: bytes | None = None  # SSE-C, 32 bytes, its MD5 already checked

    @property
    def requested(self) -> bool:
        return self.alg is not None or self.customer_key is not None


NO_SSE = SseRequest()


@dataclass(frozen=True)
class BucketEncryption:
    alg: str
    kms_key_id: str | None = None
    bucket_key: bool = False

    def dump(self) -> str:
        return json.dumps({"alg": self.alg, "kms_key_id": self.kms_key_id, "bucket_key": self.bucket_key})

    @staticmethod
    def load(text: str) -> BucketEncryption:
        d = json.loads(text)
        return BucketEncryption(str(d["alg"]), d.get("kms_key_id"), bool(d.get("bucket_key")))


def check_kms_key_id(key_id: str) -> None:
    if not KEY_NAME.fullmatch(key_id):
        raise errors.InvalidArgument(
            "Invalid KMS key id",
            ArgumentName="x-amz-server-side-encryption-aws-kms-key-id",
            ArgumentValue=key_id,
        )


def customer_hmac(key: bytes, salt: bytes | None = None) -> str:
    salt = secrets.token_bytes(16) if salt is None else salt
    return base64.b64encode(salt + hmac.new(salt, key, hashlib.sha256).digest()).decode()


def write_settings(
    req: SseRequest, bucket_default: BucketEncryption | None, server_default: str
) -> tuple[dict[str, str], Encryption | None]:
    """(system metadata, blob encryption) of a new object: the request wins, then the bucket's
    default encryption, then the server's ``[encryption] default``."""
    if req.customer_key is not None:
        system = {"sse-c-alg": AES256, "sse-c-hmac": customer_hmac(req.customer_key)}
        return system, Encryption(customer_key=req.customer_key)
    alg, kms_key = req.alg, req.kms_key_id
    if alg is None and bucket_default is not None:
        alg, kms_key = bucket_default.alg, bucket_default.kms_key_id
    if alg is None and server_default == AES256:
        alg = AES256
    if alg is None:
        return {}, None
    if alg == KMS:
        name = kms_key or SSE_S3_KEY
        return {"sse-alg": KMS, "sse-kms-key": name}, Encryption(name)
    return {"sse-alg": AES256}, Encryption(SSE_S3_KEY)


def encryption_of(system: dict[str, str], customer_key: bytes | None) -> Encryption | None:
    """The blob encryption recorded for an object or upload (parts of an upload use it)."""
    if "sse-c-hmac" in system:
        return Encryption(customer_key=customer_key)
    if "sse-alg" in system:
        return Encryption(system.get("sse-kms-key") or SSE_S3_KEY)
    return None


def check_read(system: dict[str, str], req: SseRequest) -> None:
    """SSE-C objects open only with their key (400 without one, 403 with another); SSE-C headers
    on any other object are refused as S3 does."""
    stored = system.get("sse-c-hmac")
    if stored is None:
        if req.customer_key is not None:
            raise errors.InvalidRequest("The encryption parameters are not applicable to this object.")
        return
    if req.customer_key is None:
        raise errors.InvalidRequest(
            "The object was stored using a form of Server Side Encryption. "
            "The correct parameters must be provided to retrieve the object."
        )
    raw = base64.b64decode(stored)
    if not hmac.compare_digest(customer_hmac(req.customer_key, raw[:16]), stored):
        raise errors.AccessDenied()


def response_headers(system: dict[str, str], req: SseRequest = NO_SSE) -> dict[str, str]:
    h: dict[str, str] = {}
    if alg := system.get("sse-alg"):
        h["x-amz-server-side-encryption"] = alg
        if alg == KMS:
            h["x-amz-server-side-encryption-aws-kms-key-id"] = system.get("sse-kms-key") or SSE_S3_KEY
    if system.get("sse-c-alg"):
        h["x-amz-server-side-encryption-customer-algorithm"] = system["sse-c-alg"]
        if req.customer_key is not None:
            h["x-amz-server-side-encryption-customer-key-md5"] = key_md5(req.customer_key)
    return h


def without_sse(system: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in system.items() if k not in SSE_KEYS}


def write_binding(bucket: str, key: str, version_id: str) -> bytes:
    """The binding of a new single-part object's blob (its version id is chosen before the write)."""
    return binding.object_binding(bucket, key, version_id)


def part_binding(bucket: str, key: str, upload_id: str, part_number: int) -> bytes:
    return binding.part_binding(bucket, key, upload_id, part_number)


def multipart_bindings(upload_id: str, part_numbers: Sequence[int]) -> dict[str, str]:
    """System metadata of a completed multipart object: which upload and part numbers its segments'
    blobs are bound to (part numbers as ranges, "1-4,7", and only when they are not 1..n)."""
    out = {BIND_UPLOAD: upload_id}
    if list(part_numbers) != list(range(1, len(part_numbers) + 1)):
        runs: list[str] = []
        start = prev = part_numbers[0]
        for n in [*part_numbers[1:], -1]:
            if n == prev + 1:
                prev = n
                continue
            runs.append(str(start) if start == prev else f"{start}-{prev}")
            start = prev = n
        out[BIND_PARTS] = ",".join(runs)
    return out


def _part_numbers(text: str) -> list[int]:
    out: list[int] = []
    for run in text.split(","):
        a, _, b = run.partition("-")
        lo, hi = int(a), int(b or a)
        if not 1 <= lo <= hi <= 10_000:
            raise ValueError(run)
        out.extend(range(lo, hi + 1))
    return out


def read_bindings(obj: ObjectVersion) -> dict[str, bytes]:
    """blob id -> the binding that blob must carry, for a read of ``obj``. Objects stored before
    bindings existed are in the old blob format, which the blob layer checks by blob id alone."""
    if obj.parts_count == 0:
        b = write_binding(obj.bucket, obj.key, obj.version_id)
        return {seg.blob_id: b for seg in obj.segments}
    upload = obj.meta.system.get(BIND_UPLOAD)
    if upload is None:
        return {}
    try:
        numbers = _part_numbers(obj.meta.system[BIND_PARTS]) if BIND_PARTS in obj.meta.system else []
    except ValueError:
        return {}
    numbers = numbers or list(range(1, len(obj.segments) + 1))
    if len(numbers) != len(obj.segments):
        return {}
    return {
        s.blob_id: part_binding(obj.bucket, obj.key, upload, n)
        for s, n in zip(obj.segments, numbers, strict=True)
    }


class LazyBindings(Mapping[str, bytes]):
    """``read_bindings(obj)``, computed on first lookup: only encrypted blobs look their binding
    up, so a GET of plain data never encodes one."""

    __slots__ = ("_map", "_obj")

    def __init__(self, obj: ObjectVersion) -> None:
        self._obj = obj
        self._map: dict[str, bytes] | None = None

    def _bindings(self) -> dict[str, bytes]:
        if self._map is None:
            self._map = read_bindings(self._obj)
        return self._map

    def __getitem__(self, blob_id: str) -> bytes:
        return self._bindings()[blob_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._bindings())

    def __len__(self) -> int:
        return len(self._bindings())


async def with_customer_key(
    key: bytes | None, body: AsyncIterator[bytes], bindings: Mapping[str, bytes] | None = None
) -> AsyncIterator[bytes]:
    """Run each step of ``body`` with the SSE-C key (and the bindings its blobs must carry, see
    ``read_bindings``) visible to the blob layer, and only then."""
    try:
        while True:
            token = CUSTOMER_KEY.set(key)
            expect = binding.EXPECTED.set(bindings)
            try:
                chunk = await anext(body, None)
            finally:
                binding.EXPECTED.reset(expect)
                CUSTOMER_KEY.reset(token)
            if chunk is None:
                return
            yield chunk
    finally:
        aclose = getattr(body, "aclose", None)
        if aclose is not None:
            await aclose()
