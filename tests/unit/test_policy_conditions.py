"""Condition operators as the IAM "Condition operators" page defines them, without a server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rs3gw import errors
from rs3gw.access.conditions import Condition, Context, parse_block
from rs3gw.access.policy import load


def holds(block: dict[str, Any], ctx: Context) -> bool:
    """All conditions of one Condition element (keys and operators are AND-ed)."""
    return all(c.holds(ctx) for c in parse_block(block))


@pytest.mark.parametrize(
    "op,value,actual,expected",
    [
        ("StringEquals", ["a", "b"], "b", True),  # several values: OR
        ("StringEquals", "A", "a", False),
        ("StringNotEquals", ["a", "b"], "b", False),
        ("StringNotEquals", ["a", "b"], "c", True),
        ("StringEqualsIgnoreCase", "ABC", "abc", True),
        ("StringNotEqualsIgnoreCase", "ABC", "abc", False),
        ("StringLike", "pre/*/x?", "pre/a/b/xy", True),
        ("StringLike", "pre/*", "other", False),
        ("StringNotLike", "pre/*", "other", True),
        ("ArnLike", "arn:aws:s3:::b/*", "arn:aws:s3:::b/k", True),
    ],
)
def test_string_operators(op: str, value: Any, actual: str, expected: bool) -> None:
    assert holds({op: {"aws:Referer": value}}, {"aws:referer": actual}) is expected


@pytest.mark.parametrize(
    "op,value,actual,expected",
    [
        ("NumericEquals", "10", "10.0", True),
        ("NumericNotEquals", "10", "10", False),
        ("NumericLessThan", "10", "9", True),
        ("NumericLessThan", "10", "10", False),
        ("NumericLessThanEquals", "10", "10", True),
        ("NumericGreaterThan", ["5", "100"], "50", True),  # OR: greater than 5
        ("NumericGreaterThanEquals", 7, "6", False),
        ("NumericLessThan", "10", "not-a-number", False),
    ],
)
def test_numeric_operators(op: str, value: Any, actual: str, expected: bool) -> None:
    assert holds({op: {"s3:max-keys": value}}, {"s3:max-keys": actual}) is expected


@pytest.mark.parametrize(
    "op,value,actual,expected",
    [
        ("DateLessThan", "2030-01-01T00:00:00Z", "2026-12-03T10:00:00Z", True),
        ("DateGreaterThan", "2030-01-01", "2026-12-03T10:00:00Z", False),
        ("DateEquals", "2026-01-01T00:00:00Z", "1767225600", True),  # epoch seconds
        ("DateNotEquals", "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00Z", False),
    ],
)
def test_date_operators(op: str, value: str, actual: str, expected: bool) -> None:
    assert holds({op: {"aws:CurrentTime": value}}, {"aws:currenttime": actual}) is expected


def test_missing_key_rules() -> None:
    """Absent key: positive operators false, negated ones true, IfExists true, Null tests it."""
    assert not holds({"StringEquals": {"aws:Referer": "x"}}, {})
    assert holds({"StringNotEquals": {"aws:Referer": "x"}}, {})
    assert holds({"StringLikeIfExists": {"aws:Referer": "x*"}}, {})
    assert not holds({"StringLikeIfExists": {"aws:Referer": "x*"}}, {"aws:referer": "y"})
    assert holds({"NumericLessThanIfExists": {"s3:max-keys": "5"}}, {})
    assert holds({"Null": {"aws:Referer": "true"}}, {})
    assert not holds({"Null": {"aws:Referer": "false"}}, {})
    assert holds({"Null": {"aws:Referer": False}}, {"aws:referer": ""})


def test_unknown_keys_parse_and_are_absent() -> None:
    block = {"StringEquals": {"aws:PrincipalOrgID": "o-1"}, "StringEqualsIfExists": {"aws:SourceVpc": "v"}}
    conds = parse_block(block)
    assert [c.key for c in conds] == ["aws:principalorgid", "aws:sourcevpc"]
    assert not conds[0].holds({}) and conds[1].holds({})


def test_several_keys_and_operators_are_anded() -> None:
    block = {"StringEquals": {"s3:prefix": "a/", "s3:delimiter": "/"}, "NumericLessThan": {"s3:max-keys": 10}}
    assert holds(block, {"s3:prefix": "a/", "s3:delimiter": "/", "s3:max-keys": "5"})
    assert not holds(block, {"s3:prefix": "a/", "s3:delimiter": "/", "s3:max-keys": "50"})
    assert not holds(block, {"s3:prefix": "a/", "s3:max-keys": "5"})


def test_tag_keys_keep_their_case() -> None:
    """Condition key names are case-insensitive; the tag key after the slash is not."""
    (c,) = parse_block({"StringEquals": {"S3:ExistingObjectTag/Security": "public"}})
    assert c.key == "s3:existingobjecttag/Security"
    assert c.holds({"s3:existingobjecttag/Security": "public"})
    assert not c.holds({"s3:existingobjecttag/security": "public"})


def test_set_qualifiers_on_multivalued_keys() -> None:
    keys = "s3:requestobjecttagkeys"
    all_of = {"ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["a", "b"]}}
    any_of = {"ForAnyValue:StringLike": {"s3:RequestObjectTagKeys": ["x*"]}}
    assert holds(all_of, {keys: ("a", "b")})
    assert not holds(all_of, {keys: ("a", "c")})
    assert holds(all_of, {})  # vacuously: no values to check
    assert holds(any_of, {keys: ("a", "xy")})
    assert not holds(any_of, {keys: ("a",)})
    assert not holds(any_of, {})
    none_of = {"ForAllValues:StringNotEquals": {"s3:RequestObjectTagKeys": ["secret"]}}
    assert holds(none_of, {keys: ("a", "b")}) and not holds(none_of, {keys: ("a", "secret")})


def test_bool_and_ip() -> None:
    assert holds({"Bool": {"aws:SecureTransport": True}}, {"aws:securetransport": "true"})
    assert not holds({"BoolIfExists": {"aws:SecureTransport": "false"}}, {"aws:securetransport": "true"})
    assert holds({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "::1/128"]}}, {"aws:sourceip": "::1"})
    assert holds({"NotIpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}}, {})


@pytest.mark.parametrize(
    "block",
    [
        {"NumericLessThan": {"s3:max-keys": "ten"}},
        {"DateLessThan": {"aws:CurrentTime": "soon"}},
        {"StringEqualsSometimes": {"s3:prefix": "a"}},
        {"NullIfExists": {"s3:prefix": "true"}},
        {"ForAnyValue:Null": {"s3:RequestObjectTagKeys": "true"}},
        {"ForEveryValue:StringEquals": {"s3:RequestObjectTagKeys": "a"}},
        {"IpAddress": {"s3:prefix": "10.0.0.0/8"}},  # an IP operator on a string key
        {"StringEquals": {"aws:Referer": {"nested": 1}}},
        {"StringEquals": {"aws:Referer": []}},
        {"StringEquals": {}},
    ],
)
def test_malformed(block: dict[str, Any]) -> None:
    with pytest.raises(errors.S3Error) as exc:
        parse_block(block)
    assert exc.value.code == "MalformedPolicy"


def test_condition_defaults_stay_positional() -> None:
    """Existing callers build Condition(op, key, values[, if_exists]); the qualifier defaults off."""
    c = Condition("StringEquals", "s3:prefix", ("a",), True)
    assert c.qualifier == "" and c.holds({})


def _doc(principal: Any, condition: dict[str, Any] | None = None) -> str:
    st: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": principal,
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::bkt/*",
    }
    if condition:
        st["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [st]})


def test_root_principals() -> None:
    tenant = load(_doc({"AWS": "arn:aws:iam::s3tenant1:root"}), "bkt")
    assert tenant.statements[0].principals == frozenset({"id:s3tenant1"})
    assert not tenant.public
    account = load(_doc({"AWS": "arn:aws:iam::123456789012:root"}), "bkt")
    assert account.statements[0].principals == frozenset({"id:123456789012"})
    for bad in ("arn:aws:iam::1:root", "arn:aws:iam::*:root", "arn:aws:iam:::root"):
        with pytest.raises(errors.S3Error):
            load(_doc({"AWS": bad}), "bkt")


def test_existing_tag_need_is_known_at_load() -> None:
    """Authorization reads an object's tags only for policies that name s3:ExistingObjectTag."""
    assert not load(_doc("*"), "bkt").needs_existing_tags
    assert not load(_doc("*", {"StringEquals": {"s3:RequestObjectTag/a": "b"}}), "bkt").needs_existing_tags
    assert load(_doc("*", {"StringEquals": {"s3:ExistingObjectTag/a": "b"}}), "bkt").needs_existing_tags
