"""Checks the SigV4 primitives against AWS's published S3 examples and the encoding rules."""

from __future__ import annotations

import hashlib

import pytest

from rs3gw.auth import sigv4

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
SCOPE = "20130524/us-east-1/s3/aws4_request"


def _sign(method: str, uri: str, query: str, headers: dict[str, str], payload: str) -> tuple[str, str]:
    signed = sorted(headers)
    canonical = sigv4.canonical_request(method, uri, query, headers, signed, payload)
    to_sign = sigv4.string_to_sign("20130524T000000Z", SCOPE, canonical)
    return canonical, sigv4.signature(sigv4.signing_key(SECRET, "20130524", "us-east-1"), to_sign)


def test_signing_key_matches_aws_derivation_example() -> None:
    key = sigv4.signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam")
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def test_signing_key_is_cached() -> None:
    assert sigv4.signing_key(SECRET, "20130524", "us-east-1") is sigv4.signing_key(
        SECRET, "20130524", "us-east-1"
    )


def test_aws_example_get_object_with_range() -> None:
    headers = {
        "host": "examplebucket.s3.amazonaws.com",
        "range": "bytes=0-9",
        "x-amz-content-sha256": EMPTY,
        "x-amz-date": "20130524T000000Z",
    }
    canonical, sig = _sign("GET", "/test.txt", "", headers, EMPTY)
    assert hashlib.sha256(canonical.encode()).hexdigest() == (
        "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
    )
    assert sig == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"


def test_aws_example_put_object_with_dollar_in_key() -> None:
    payload = hashlib.sha256(b"Welcome to Amazon S3.").hexdigest()
    headers = {
        "date": "Fri, 24 May 2013 00:00:00 GMT",
        "host": "examplebucket.s3.amazonaws.com",
        "x-amz-content-sha256": payload,
        "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
    }
    _, sig = _sign("PUT", sigv4.canonical_uri("/test$file.text"), "", headers, payload)
    assert sig == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"


def test_aws_example_list_objects_query() -> None:
    headers = {
        "host": "examplebucket.s3.amazonaws.com",
        "x-amz-content-sha256": EMPTY,
        "x-amz-date": "20130524T000000Z",
    }
    query = sigv4.canonical_query([("prefix", "J"), ("max-keys", "2")])
    assert query == "max-keys=2&prefix=J"
    _, sig = _sign("GET", "/", query, headers, EMPTY)
    assert sig == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", "/"),
        ("/", "/"),
        ("/b/a b", "/b/a%20b"),
        ("/b/a%20b", "/b/a%20b"),
        ("/b/a+b", "/b/a%2Bb"),
        ("/b/~x_y-z.", "/b/~x_y-z."),
        ("/b/%7Ex", "/b/~x"),
        ("/b/caf%c3%a9", "/b/caf%C3%A9"),
        ("/b/café", "/b/caf%C3%A9"),
        ("/b//double/../dot", "/b//double/../dot"),
        ("/b/a%2Fb", "/b/a/b"),
    ],
)
def test_canonical_uri_reencodes_without_normalising(raw: str, expected: str) -> None:
    assert sigv4.canonical_uri(raw) == expected


def test_uri_encode_only_keeps_unreserved() -> None:
    assert sigv4.uri_encode("AZaz09-_.~") == "AZaz09-_.~"
    assert sigv4.uri_encode("a/b =+!*'()&") == "a%2Fb%20%3D%2B%21%2A%27%28%29%26"
    assert sigv4.uri_encode("a/b", keep_slash=True) == "a/b"
    assert sigv4.uri_encode("é") == "%C3%A9"


def test_canonical_query_sorts_by_encoded_key_then_value() -> None:
    pairs = [("b", "2"), ("a", "z"), ("a", "y"), ("acl", ""), ("A", "1"), ("a b", "c+d")]
    assert sigv4.canonical_query(pairs) == "A=1&a=y&a=z&a%20b=c%2Bd&acl=&b=2"


def test_canonical_headers_trim_and_collapse() -> None:
    headers = {"x-a": "  hello   big \t world ", "x-b": "v1,v2"}
    assert sigv4.canonical_headers(headers, ["x-a", "x-b", "x-missing"]) == (
        "x-a:hello big world\nx-b:v1,v2\nx-missing:\n"
    )


def test_string_to_sign_layout() -> None:
    to_sign = sigv4.string_to_sign("20130524T000000Z", SCOPE, "req")
    assert to_sign.split("\n") == [
        "AWS4-HMAC-SHA256",
        "20130524T000000Z",
        SCOPE,
        hashlib.sha256(b"req").hexdigest(),
    ]
    assert sigv4.scope("20130524", "us-east-1") == SCOPE
