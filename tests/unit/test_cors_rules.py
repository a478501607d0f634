"""engine.cors: validation, first-match evaluation, wildcard origins/headers and the response headers."""

from __future__ import annotations

import pytest

from rs3gw import errors
from rs3gw.engine.cors import CorsRule, dumps, find_rule, loads, response_headers, split_header_list, validate
from rs3gw.protocol.xml_parse import parse_cors

RULES = [
    CorsRule(("PUT", "POST"), ("https://*.example.com",), ("x-amz-*", "content-type"), ("ETag",), 300, "one"),
    CorsRule(("GET",), ("*",)),
]


def test_first_matching_rule_wins() -> None:
    assert find_rule(RULES, "https://app.example.com", "PUT", ["content-type", "x-amz-date"]) is RULES[0]
    assert find_rule(RULES, "https://app.example.com", "GET", []) is RULES[1]
    assert find_rule(RULES, "https://other.org", "GET", []) is RULES[1]


@pytest.mark.parametrize(
    ("origin", "method", "headers"),
    [
        ("https://other.org", "PUT", []),  # origin not allowed for PUT
        ("https://app.example.com", "DELETE", []),  # method in no rule
        ("https://app.example.com", "PUT", ["authorization"]),  # header not allowed
        ("http://app.example.com", "PUT", []),  # scheme is part of the origin
        ("https://app.example.com", "get", []),  # methods are case-sensitive
        ("https://x.org", "GET", ["x-custom"]),  # rule 2 allows no headers
    ],
)
def test_no_match(origin: str, method: str, headers: list[str]) -> None:
    assert find_rule(RULES, origin, method, headers) is None


def test_wildcard_needs_prefix_and_suffix() -> None:
    rules = [CorsRule(("GET",), ("http://*.test:8080",))]
    assert find_rule(rules, "http://a.test:8080", "GET", []) is not None
    assert find_rule(rules, "http://.test:8080", "GET", []) is not None
    assert find_rule(rules, "http://a.test:8081", "GET", []) is None
    assert find_rule(rules, "http:/", "GET", []) is None


def test_response_headers_specific_and_any_origin() -> None:
    h = response_headers(RULES[0], "https://app.example.com", ["content-type"])
    assert h["access-control-allow-origin"] == "https://app.example.com"
    assert h["access-control-allow-credentials"] == "true"
    assert h["access-control-allow-methods"] == "PUT, POST"
    assert h["access-control-allow-headers"] == "content-type"
    assert h["access-control-expose-headers"] == "ETag"
    assert h["access-control-max-age"] == "300"
    assert "Origin" in h["vary"]
    h2 = response_headers(RULES[1], "https://x.org")
    assert h2["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in h2
    assert "access-control-max-age" not in h2 and "access-control-allow-headers" not in h2


def test_split_header_list() -> None:
    assert split_header_list(" Content-Type , X-Amz-Date,,") == ["content-type", "x-amz-date"]
    assert split_header_list(None) == []


@pytest.mark.parametrize(
    ("rules", "code"),
    [
        ([], "MalformedXML"),
        ([CorsRule((), ("*",))], "MalformedXML"),
        ([CorsRule(("GET",), ())], "MalformedXML"),
        ([CorsRule(("GET",), ("*",))] * 101, "MalformedXML"),
        ([CorsRule(("PATCH",), ("*",))], "InvalidRequest"),
        ([CorsRule(("GET",), ("http://*.*.com",))], "InvalidRequest"),
        ([CorsRule(("GET",), ("*",), ("x-*-*",))], "InvalidRequest"),
        ([CorsRule(("GET",), ("*",), (), ("*",))], "InvalidRequest"),
        ([CorsRule(("GET",), ("*",), id="i" * 256)], "InvalidRequest"),
    ],
)
def test_validate_refuses(rules: list[CorsRule], code: str) -> None:
    with pytest.raises(errors.S3Error) as e:
        validate(rules)
    assert e.value.code == code


def test_validate_accepts_limits() -> None:
    validate([CorsRule(("GET", "PUT", "POST", "DELETE", "HEAD"), ("*",), ("*",))] * 100)


def test_store_roundtrip() -> None:
    assert loads(dumps(RULES)) == RULES


def test_parse_cors_xml() -> None:
    body = (
        b'<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><CORSRule><ID>r</ID>'
        b"<AllowedOrigin>https://a.b</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
        b"<AllowedMethod>PUT</AllowedMethod><AllowedHeader>*</AllowedHeader>"
        b"<ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>60</MaxAgeSeconds></CORSRule>"
        b"<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>HEAD</AllowedMethod></CORSRule>"
        b"</CORSConfiguration>"
    )
    assert parse_cors(body) == [
        CorsRule(("GET", "PUT"), ("https://a.b",), ("*",), ("ETag",), 60, "r"),
        CorsRule(("HEAD",), ("*",)),
    ]
    for bad in (
        b"<CORSConfiguration><CORSRule><MaxAgeSeconds>x</MaxAgeSeconds></CORSRule></CORSConfiguration>",
        b"<Nope/>",
        b"garbage",
    ):
        with pytest.raises(errors.S3Error) as e:
            parse_cors(bad)
        assert e.value.code == "MalformedXML"
