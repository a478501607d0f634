"""Checksum taps for the S3 flexible-checksum algorithms, plus multipart combination rules.

Data-path hashing runs in C (hashlib, awscrt); only O(log n) CRC arithmetic is done in Python.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from functools import lru_cache
from typing import Protocol

from awscrt import checksums as _crt

from rs3gw.errors import InvalidRequest

ALGORITHMS: tuple[str, ...] = ("CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME")

_HEADER_PREFIX = "x-amz-checksum-"

# Raw digest size in bytes per algorithm.
_DIGEST_SIZE: dict[str, int] = {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8, "SHA1": 20, "SHA256": 32}

# Reflected polynomial and width of the CRCs; all three use init = xorout = all ones, which is
# what makes crc(A||B) = crc(A) * x^(8|B|) mod P  xor  crc(B) hold.
_CRC_PARAMS: dict[str, tuple[int, int]] = {
    "CRC32": (0xEDB88320, 32),
    "CRC32C": (0x82F63B78, 32),
    "CRC64NVME": (0x9A6C9329AC4BC9B5, 64),
}

_CRC_FUNCS: dict[str, Callable[[bytes | memoryview, int], int]] = {
    "CRC32": _crt.crc32,
    "CRC32C": _crt.crc32c,
    "CRC64NVME": _crt.crc64nvme,
}

_HASH_NAMES: dict[str, str] = {"SHA1": "sha1", "SHA256": "sha256"}


class Checksum(Protocol):
    """What the data path needs from a checksum: feed bytes, read the digest once at the end."""

    algorithm: str

    def update(self, data: bytes | memoryview) -> None: ...

    def digest(self) -> bytes: ...

    def b64(self) -> str: ...


class _CrcChecksum:
    """Running CRC; awscrt takes the previous value so no per-byte Python loop is needed."""

    __slots__ = ("_crc", "_fn", "_size", "algorithm")

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self._fn = _CRC_FUNCS[algorithm]
        self._size = _DIGEST_SIZE[algorithm]
        self._crc = 0

    def update(self, data: bytes | memoryview) -> None:
        self._crc = int(self._fn(data, self._crc))

    def digest(self) -> bytes:
        return self._crc.to_bytes(self._size, "big")

    def b64(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")


class _HashChecksum:
    """hashlib wrapper so SHA digests share the CRC taps' interface."""

    __slots__ = ("_h", "algorithm")

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self._h = hashlib.new(_HASH_NAMES[algorithm])

    def update(self, data: bytes | memoryview) -> None:
        self._h.update(data)

    def digest(self) -> bytes:
        return self._h.digest()

    def b64(self) -> str:
        return base64.b64encode(self._h.digest()).decode("ascii")


def _canonical(algorithm: str) -> str:
    """Clients send the algorithm in any case; everything internal uses the upper-case name."""
    name = algorithm.upper()
    if name not in _DIGEST_SIZE:
        raise InvalidRequest(f"Checksum algorithm {algorithm} is not supported.")
    return name


def new_checksum(algorithm: str) -> Checksum:
    """Start a tap for a client-named algorithm, rejecting names S3 would reject."""
    name = _canonical(algorithm)
    if name in _CRC_FUNCS:
        return _CrcChecksum(name)
    return _HashChecksum(name)


def header_name(algorithm: str) -> str:
    """Header carrying this algorithm's value, as S3 spells it (lower case)."""
    return _HEADER_PREFIX + _canonical(algorithm).lower()


def algorithm_from_header(name: str) -> str | None:
    """Recognise x-amz-checksum-<alg> headers; other x-amz-checksum-* (type, algorithm) give None."""
    lower = name.lower()
    if not lower.startswith(_HEADER_PREFIX):
        return None
    alg = lower[len(_HEADER_PREFIX) :].upper()
    return alg if alg in _DIGEST_SIZE else None


def _decode(algorithm: str, value: str) -> bytes | None:
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    return raw if len(raw) == _DIGEST_SIZE[algorithm] else None


def is_valid_b64_digest(algorithm: str, value: str) -> bool:
    """A client value must decode to exactly the algorithm's digest size, else S3 rejects it."""
    name = algorithm.upper()
    if name not in _DIGEST_SIZE:
        return False
    return _decode(name, value) is not None


def _raw_digest(algorithm: str, value: str) -> bytes:
    raw = _decode(algorithm, value)
    if raw is None:
        raise InvalidRequest(f"Value for x-amz-checksum-{algorithm.lower()} header is invalid.")
    return raw


def composite(algorithm: str, part_digests_b64: list[str]) -> str:
    """Multipart COMPOSITE checksum: a checksum of the parts' checksums, suffixed with the count."""
    name = _canonical(algorithm)
    tap = new_checksum(name)
    for value in part_digests_b64:
        tap.update(_raw_digest(name, value))
    return f"{tap.b64()}-{len(part_digests_b64)}"


# --- CRC combination -------------------------------------------------------------------------
# Polynomials are kept in reflected bit order (x^0 is the top bit), as the CRC registers are.


def _mulmod(a: int, b: int, poly: int, width: int) -> int:
    """a * b mod P in the reflected representation (shift-and-add over GF(2))."""
    top = 1 << (width - 1)
    result = 0
    m = top
    while a:
        if a & m:
            result ^= b
            a ^= m
        m >>= 1
        b = (b >> 1) ^ poly if b & 1 else b >> 1
    return result


@lru_cache(maxsize=8)
def _pow2_table(poly: int, width: int) -> tuple[int, ...]:
    """x^(2^k) mod P for k < 67, enough to raise x to any 64-bit byte count times 8."""
    table = [1 << (width - 2)]  # x^1
    for _ in range(66):
        table.append(_mulmod(table[-1], table[-1], poly, width))
    return tuple(table)


@lru_cache(maxsize=256)
def _x8n(poly: int, width: int, nbytes: int) -> int:
    """x^(8*nbytes) mod P; cached because multipart parts almost always share one length."""
    table = _pow2_table(poly, width)
    result = 1 << (width - 1)  # x^0
    k = 3  # 8 * n  ==  n << 3
    n = nbytes
    while n:
        if n & 1:
            result = _mulmod(table[k], result, poly, width)
        n >>= 1
        k += 1
    return result


def crc_combine(algorithm: str, crc1: int, crc2: int, len2: int) -> int:
    """CRC of A||B from crc(A), crc(B), |B| (zlib's crc32_combine method, any reflected CRC)."""
    poly, width = _CRC_PARAMS[_canonical(algorithm)]
    if len2 < 0:
        raise ValueError("part length must not be negative")
    if len2 == 0:
        return crc1
    return _mulmod(_x8n(poly, width, len2), crc1, poly, width) ^ crc2


def combine_full_object(algorithm: str, parts: list[tuple[str, int]]) -> str:
    """FULL_OBJECT checksum of a multipart object from part CRCs and lengths, without rereading data."""
    name = _canonical(algorithm)
    if name not in _CRC_PARAMS:
        raise InvalidRequest(f"The FULL_OBJECT checksum type cannot be used with the {name} algorithm.")
    crc = 0
    for value, length in parts:
        part_crc = int.from_bytes(_raw_digest(name, value), "big")
        crc = crc_combine(name, crc, part_crc, length)
    return base64.b64encode(crc.to_bytes(_DIGEST_SIZE[name], "big")).decode("ascii")


def md5_etag_multipart(part_md5_hex: list[str]) -> str:
    """S3's multipart ETag (without quotes): md5 of the raw part md5s, suffixed with the count."""
    h = hashlib.md5(usedforsecurity=False)
    for hex_digest in part_md5_hex:
        h.update(bytes.fromhex(hex_digest.strip('"')))
    return f"{h.hexdigest()}-{len(part_md5_hex)}"
