"""Policy Condition blocks: the operators and keys rs3gw can evaluate, and nothing it cannot.

Semantics from the IAM "Condition operators" page: several values for one key match if any
matches; several keys and several operators must all hold; a key missing from the request makes
a condition false, except that negated operators are then true and ``...IfExists`` is true.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from rs3gw import errors

MalformedPolicy = errors.error_class("MalformedPolicy")

SOURCE_IP = "aws:sourceip"
SECURE_TRANSPORT = "aws:securetransport"
PREFIX = "s3:prefix"
SSE = "s3:x-amz-server-side-encryption"
KEYS = frozenset({SOURCE_IP, SECURE_TRANSPORT, PREFIX, SSE})

_STRING_OPS = frozenset(
    {
        "StringEquals",
        "StringNotEquals",
        "StringEqualsIgnoreCase",
        "StringNotEqualsIgnoreCase",
        "StringLike",
        "StringNotLike",
    }
)
_IP_OPS = frozenset({"IpAddress", "NotIpAddress"})
OPERATORS = _STRING_OPS | _IP_OPS | {"Bool", "Null"}
_NEGATED = frozenset({"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "NotIpAddress"})


@dataclass(frozen=True)
class Condition:
    operator: str  # without the IfExists suffix
    key: str  # lower-case condition key
    values: tuple[str, ...]
    if_exists: bool = False

    def holds(self, facts: Mapping[str, str]) -> bool:
        value = facts.get(self.key)
        if self.operator == "Null":
            return (value is None) == (self.values[0] == "true")
        if value is None:
            return self.if_exists or self.operator in _NEGATED
        matched = any(_match(self.operator, v, value) for v in self.values)
        return not matched if self.operator in _NEGATED else matched


def _match(op: str, expected: str, actual: str) -> bool:
    if op in ("StringEquals", "StringNotEquals"):
        return expected == actual
    if op in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return expected.lower() == actual.lower()
    if op in ("StringLike", "StringNotLike"):
        return wildcard(expected).fullmatch(actual) is not None
    if op == "Bool":
        return expected == actual.lower()
    try:  # IpAddress / NotIpAddress: values were checked at parse time
        return ipaddress.ip_address(actual) in ipaddress.ip_network(expected, strict=False)
    except ValueError:
        return False


@lru_cache(maxsize=4096)
def wildcard(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """IAM wildcards: '*' any run of characters (slashes included), '?' exactly one."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def parse_block(raw: object) -> tuple[Condition, ...]:
    """The Condition element of one statement; MalformedPolicy for anything not evaluable."""
    if not isinstance(raw, dict) or not raw:
        raise MalformedPolicy("Invalid Condition type")
    out: list[Condition] = []
    for op_name, body in raw.items():
        op, if_exists = _operator(op_name)
        if not isinstance(body, dict) or not body:
            raise MalformedPolicy("Invalid Condition type")
        for key_name, value in body.items():
            key = str(key_name).lower()
            if key not in KEYS:
                raise MalformedPolicy(f"Policy has an invalid condition key: {key_name}")
            out.append(Condition(op, key, _values(op, key, value), if_exists))
    return tuple(out)


def _operator(name: object) -> tuple[str, bool]:
    if not isinstance(name, str):
        raise MalformedPolicy("Invalid Condition type")
    base, if_exists = (name[:-8], True) if name.endswith("IfExists") else (name, False)
    if base not in OPERATORS or (if_exists and base == "Null"):
        raise MalformedPolicy(f"Invalid Condition type : {name}")
    return base, if_exists


def _values(op: str, key: str, raw: object) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise MalformedPolicy(f"Invalid Condition value for {key}")
    values = tuple(_scalar(v, key) for v in items)
    if (op in _IP_OPS) != (key == SOURCE_IP) and op != "Null":
        raise MalformedPolicy(f"Invalid Condition type : {op} cannot be used with {key}")
    if op in _IP_OPS:
        for v in values:
            try:
                ipaddress.ip_network(v, strict=False)
            except ValueError:
                raise MalformedPolicy(f"Invalid IP address or CIDR in Condition: {v}") from None
    if op in ("Bool", "Null"):
        values = tuple(v.lower() for v in values)
        if any(v not in ("true", "false") for v in values) or (op == "Null" and len(values) != 1):
            raise MalformedPolicy(f"Invalid Condition value for {op}: expected true or false")
    return values


def _scalar(value: object, key: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise MalformedPolicy(f"Invalid Condition value for {key}")


def narrows_source(conditions: tuple[Condition, ...]) -> bool:
    """True when an IpAddress condition pins aws:SourceIp to fixed ranges, which AWS's
    "the meaning of public" counts as non-public (an IPv4 range of /8 or narrower, IPv6 /32)."""
    for c in conditions:
        if c.operator == "IpAddress" and c.key == SOURCE_IP and not c.if_exists:
            nets = [ipaddress.ip_network(v, strict=False) for v in c.values]
            if all(n.prefixlen >= (8 if n.version == 4 else 32) for n in nets):
                return True
    return False
