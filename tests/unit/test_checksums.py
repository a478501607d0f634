"""Checksum taps and multipart combination against botocore's and zlib's implementations."""

from __future__ import annotations

import base64
import hashlib
import itertools
import zlib

import pytest
from botocore.httpchecksum import (  # type: ignore[import-untyped]
    CrtCrc32cChecksum,
    CrtCrc32Checksum,
    CrtCrc64NvmeChecksum,
    Sha1Checksum,
    Sha256Checksum,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from rs3gw.codecs import checksums as cs
from rs3gw.errors import InvalidRequest

_BOTO = {
    "CRC32": CrtCrc32Checksum,
    "CRC32C": CrtCrc32cChecksum,
    "CRC64NVME": CrtCrc64NvmeChecksum,
    "SHA1": Sha1Checksum,
    "SHA256": Sha256Checksum,
}


def _boto_b64(algorithm: str, data: bytes) -> str:
    c = _BOTO[algorithm]()
    c.update(data)
    return str(c.b64digest())


def _ours_b64(algorithm: str, data: bytes) -> str:
    c = cs.new_checksum(algorithm)
    c.update(data)
    return c.b64()


def test_algorithms_tuple() -> None:
    assert set(cs.ALGORITHMS) == set(_BOTO)


@pytest.mark.parametrize("algorithm", cs.ALGORITHMS)
@pytest.mark.parametrize("data", [b"", b"a", b"123456789", bytes(range(256)) * 41])
def test_matches_botocore(algorithm: str, data: bytes) -> None:
    assert _ours_b64(algorithm, data) == _boto_b64(algorithm, data)


def test_check_values() -> None:
    # Published "check" values of each CRC over b"123456789".
    expected = {"CRC32": 0xCBF43926, "CRC32C": 0xE3069283, "CRC64NVME": 0xAE8B14860A799888}
    for alg, value in expected.items():
        c = cs.new_checksum(alg)
        c.update(b"123456789")
        assert int.from_bytes(c.digest(), "big") == value


def test_crc32_matches_zlib_incrementally() -> None:
    data = bytes(range(256)) * 100
    c = cs.new_checksum("crc32")
    view = memoryview(data)
    for i in range(0, len(data), 777):
        c.update(view[i : i + 777])
    assert c.digest() == zlib.crc32(data).to_bytes(4, "big")
    assert c.algorithm == "CRC32"


def test_digest_sizes_and_sha_values() -> None:
    sizes = {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8, "SHA1": 20, "SHA256": 32}
    for alg, size in sizes.items():
        assert len(cs.new_checksum(alg).digest()) == size
    c = cs.new_checksum("Sha256")
    c.update(b"abc")
    assert c.digest() == hashlib.sha256(b"abc").digest()


def test_unknown_algorithm() -> None:
    with pytest.raises(InvalidRequest):
        cs.new_checksum("MD5")
    with pytest.raises(InvalidRequest):
        cs.header_name("xxhash")


def test_header_names() -> None:
    assert cs.header_name("crc32c") == "x-amz-checksum-crc32c"
    assert cs.header_name("CRC64NVME") == "x-amz-checksum-crc64nvme"
    assert cs.algorithm_from_header("x-amz-checksum-sha256") == "SHA256"
    assert cs.algorithm_from_header("X-Amz-Checksum-CRC32") == "CRC32"
    assert cs.algorithm_from_header("x-amz-checksum-type") is None
    assert cs.algorithm_from_header("x-amz-checksum-algorithm") is None
    assert cs.algorithm_from_header("content-md5") is None


def test_is_valid_b64_digest() -> None:
    for alg in cs.ALGORITHMS:
        assert cs.is_valid_b64_digest(alg, _ours_b64(alg, b"x"))
        assert cs.is_valid_b64_digest(alg.lower(), _ours_b64(alg, b"x"))
    good32 = _ours_b64("CRC32", b"x")
    assert not cs.is_valid_b64_digest("CRC64NVME", good32)
    assert not cs.is_valid_b64_digest("SHA256", good32)
    assert not cs.is_valid_b64_digest("CRC32", good32[:-1])
    assert not cs.is_valid_b64_digest("CRC32", "!!!!!!==")
    assert not cs.is_valid_b64_digest("CRC32", "é")
    assert not cs.is_valid_b64_digest("NOPE", good32)
    assert not cs.is_valid_b64_digest("CRC32", "")


@pytest.mark.parametrize("algorithm", cs.ALGORITHMS)
def test_composite_hand_computed(algorithm: str) -> None:
    parts = [b"part one", b"part two data", b"3"]
    b64s = [_boto_b64(algorithm, p) for p in parts]
    raw = b"".join(base64.b64decode(b) for b in b64s)
    assert cs.composite(algorithm, b64s) == f"{_boto_b64(algorithm, raw)}-3"


def test_composite_known_sha256() -> None:
    d1 = hashlib.sha256(b"a").digest()
    d2 = hashlib.sha256(b"b").digest()
    expected = base64.b64encode(hashlib.sha256(d1 + d2).digest()).decode()
    b64s = [base64.b64encode(d).decode() for d in (d1, d2)]
    assert cs.composite("sha256", b64s) == expected + "-2"


def test_composite_rejects_bad_digest() -> None:
    with pytest.raises(InvalidRequest):
        cs.composite("CRC32", ["not base64"])


_CRCS = ("CRC32", "CRC32C", "CRC64NVME")


@settings(max_examples=60, deadline=None)
@given(
    algorithm=st.sampled_from(_CRCS),
    data=st.binary(max_size=3000),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=8),
)
def test_combine_full_object_random_splits(algorithm: str, data: bytes, cuts: list[int]) -> None:
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    pieces = [data[a:b] for a, b in itertools.pairwise(bounds)] or [data]
    parts = [(_ours_b64(algorithm, p), len(p)) for p in pieces]
    assert cs.combine_full_object(algorithm, parts) == _boto_b64(algorithm, data)


@pytest.mark.parametrize("algorithm", _CRCS)
def test_combine_large_lengths_against_awscrt(algorithm: str) -> None:
    from awscrt import checksums as crt

    native = {"CRC32": crt.combine_crc32, "CRC32C": crt.combine_crc32c, "CRC64NVME": crt.combine_crc64nvme}
    for len2 in (1, 7, 5 * 2**20, 5 * 2**30 + 3, 2**40 - 1):
        assert cs.crc_combine(algorithm, 0x12345678, 0x9ABCDEF0, len2) == native[algorithm](
            0x12345678, 0x9ABCDEF0, len2
        )


def test_combine_rejects_sha() -> None:
    with pytest.raises(InvalidRequest):
        cs.combine_full_object("SHA256", [(_ours_b64("SHA256", b"x"), 1)])


def test_combine_single_part_is_identity() -> None:
    b64 = _ours_b64("CRC32C", b"hello")
    assert cs.combine_full_object("crc32c", [(b64, 5)]) == b64


def test_md5_etag_multipart() -> None:
    md5s = [hashlib.md5(p).hexdigest() for p in (b"one", b"two")]
    raw = b"".join(hashlib.md5(p).digest() for p in (b"one", b"two"))
    assert cs.md5_etag_multipart(md5s) == hashlib.md5(raw).hexdigest() + "-2"
    assert cs.md5_etag_multipart([f'"{m}"' for m in md5s]) == cs.md5_etag_multipart(md5s)
