"""Range header parsing with S3's ignore-vs-416 distinction."""

from __future__ import annotations

import pytest

from rs3gw.engine.ranges import ByteRange, parse_range
from rs3gw.errors import InvalidRange


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-9", 100, ByteRange(0, 9)),
        ("bytes=10-", 100, ByteRange(10, 99)),
        ("bytes=-10", 100, ByteRange(90, 99)),
        ("bytes=-1000", 100, ByteRange(0, 99)),
        ("bytes=50-1000", 100, ByteRange(50, 99)),
        ("bytes=99-99", 100, ByteRange(99, 99)),
        ("bytes=0-0", 1, ByteRange(0, 0)),
        ("BYTES=1-2", 100, ByteRange(1, 2)),
        (" bytes = 1 - 2 ", 100, ByteRange(1, 2)),
    ],
)
def test_satisfiable(header: str, size: int, expected: ByteRange) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    "header",
    [
        "items=0-1",
        "bytes=abc",
        "bytes=0-1,3-4",
        "bytes=5-2",
        "bytes=-",
        "bytes=",
        "bytes 0-1",
        "0-1",
        "bytes=1-2-3",
        "bytes=+1-2",
        "bytes=٣-4",
    ],
)
def test_ignored(header: str) -> None:
    assert parse_range(header, 100) is None


def test_none_header() -> None:
    assert parse_range(None, 100) is None
    assert parse_range(None, 0) is None


@pytest.mark.parametrize(
    ("header", "size"),
    [
        ("bytes=100-", 100),
        ("bytes=100-200", 100),
        ("bytes=-0", 100),
        ("bytes=0-", 0),
        ("bytes=0-0", 0),
        ("bytes=40-50", 0),
        ("bytes=-5", 0),
    ],
)
def test_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(InvalidRange) as info:
        parse_range(header, size)
    err = info.value
    assert err.status == 416
    assert err.code == "InvalidRange"
    assert err.extra == {"ActualObjectSize": str(size)}
    assert err.headers["Content-Range"] == f"bytes */{size}"


def test_length_and_content_range() -> None:
    r = ByteRange(10, 19)
    assert r.length == 10
    assert r.content_range(100) == "bytes 10-19/100"


def test_enormous_numbers() -> None:
    big = "9" * 5000
    with pytest.raises(InvalidRange):
        parse_range(f"bytes={big}-", 100)
    assert parse_range(f"bytes=5-{big}", 100) == ByteRange(5, 99)
    assert parse_range(f"bytes=-{big}", 100) == ByteRange(0, 99)
    assert parse_range(f"bytes={big}-5", 100) is None
    zeros = "0" * 5000
    assert parse_range(f"bytes={zeros}5-{zeros}7", 100) == ByteRange(5, 7)
