"""engine.tags: S3's tag limits, reserved prefix, charset, and the x-amz-tagging header encoding."""

from __future__ import annotations

import pytest

from rs3gw import errors
from rs3gw.engine.tags import MAX_BUCKET_TAGS, MAX_OBJECT_TAGS, dumps, loads, parse_header, validate


def test_validate_keeps_order_and_unicode() -> None:
    pairs = [("b", "2"), ("ä ü", "välue +-=._:/@"), ("a", ""), ("日本", "٣\u00a0x")]
    assert list(validate(pairs, MAX_OBJECT_TAGS).items()) == pairs


def test_limits_at_the_edge() -> None:
    validate([(f"k{i}", "v") for i in range(MAX_OBJECT_TAGS)], MAX_OBJECT_TAGS)
    validate([(f"k{i}", "v") for i in range(MAX_BUCKET_TAGS)], MAX_BUCKET_TAGS, kind="Bucket")
    validate([("k" * 128, "é" * 256)], MAX_OBJECT_TAGS)


@pytest.mark.parametrize(
    ("pairs", "limit"),
    [
        ([("k" * 129, "v")], MAX_OBJECT_TAGS),
        ([("k", "v" * 257)], MAX_OBJECT_TAGS),
        ([("AWS:x", "v")], MAX_OBJECT_TAGS),
        ([("", "v")], MAX_OBJECT_TAGS),
        ([("a", "1"), ("a", "2")], MAX_OBJECT_TAGS),
        ([("a#", "1")], MAX_OBJECT_TAGS),
        ([("a", "1;")], MAX_OBJECT_TAGS),
        ([("a", "tab\there")], MAX_OBJECT_TAGS),
        ([("a", "comma,")], MAX_OBJECT_TAGS),
        ([("a", "(paren)")], MAX_OBJECT_TAGS),
    ],
)
def test_invalid_tag(pairs: list[tuple[str, str]], limit: int) -> None:
    with pytest.raises(errors.S3Error) as e:
        validate(pairs, limit)
    assert e.value.code == "InvalidTag"


@pytest.mark.parametrize(
    ("count", "limit", "kind", "message"),
    [
        (11, MAX_OBJECT_TAGS, "Object", "Object tags cannot be greater than 10"),
        (51, MAX_BUCKET_TAGS, "Bucket", "Bucket tag count cannot be greater than 50"),
    ],
)
def test_too_many_tags_is_bad_request(count: int, limit: int, kind: str, message: str) -> None:
    with pytest.raises(errors.S3Error) as e:
        validate([(f"k{i}", "v") for i in range(count)], limit, kind=kind)
    assert (e.value.code, e.value.status, e.value.message) == ("BadRequest", 400, message)


def test_parse_header() -> None:
    assert parse_header("a=1&b=&c&d=x%20y+z%2B") == {"a": "1", "b": "", "c": "", "d": "x y z+"}
    assert parse_header("") == {}
    # Non-ASCII arrives as latin-1 text of UTF-8 bytes, or percent-encoded UTF-8.
    assert parse_header("k=%C3%A9") == {"k": "é"}
    assert parse_header("k=é".encode().decode("latin-1")) == {"k": "é"}


@pytest.mark.parametrize("value", ["a=1&a=2", "k=%FF"])
def test_parse_header_bad_encoding(value: str) -> None:
    with pytest.raises(errors.S3Error) as e:
        parse_header(value)
    assert e.value.code == "InvalidArgument"


def test_parse_header_limits() -> None:
    with pytest.raises(errors.S3Error) as e:
        parse_header("&".join(f"k{i}=v" for i in range(11)))
    assert e.value.code == "BadRequest"


def test_store_roundtrip() -> None:
    tags = {"z": "1", "a": "é"}
    assert list(loads(dumps(tags)).items()) == list(tags.items())
