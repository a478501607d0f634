"""Policy Condition blocks, evaluated as the IAM "Condition operators" page describes.

Semantics: several values for one key match if any matches (OR); several keys and several
operators must all hold (AND). A key missing from the request makes a condition false, except
that negated operators (``StringNotEquals``, ``NotIpAddress``, ...) are then true and
``...IfExists`` is true; ``Null`` tests presence itself. ``ForAnyValue:`` / ``ForAllValues:``
compare a multivalued key (``s3:RequestObjectTagKeys``) value by value.

A key rs3gw does not know is accepted, as AWS accepts it: the request never carries it, so the
condition sees an absent key. Structure that cannot be evaluated (an unknown operator, a value
of the wrong shape, an unparsable number, date or CIDR) is MalformedPolicy, refused at PUT.
"""

from __future__ import annotations

import ipaddress
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from rs3gw import errors

MalformedPolicy = errors.error_class("MalformedPolicy")

# A request's condition context: lower-case key (tag keys keep their case after the slash) →
# one value, or a tuple for a multivalued key.
ContextValue = str | tuple[str, ...]
Context = Mapping[str, ContextValue]

SOURCE_IP = "aws:sourceip"
SECURE_TRANSPORT = "aws:securetransport"
REFERER = "aws:referer"
USER_AGENT = "aws:useragent"
USERNAME = "aws:username"
USERID = "aws:userid"
CURRENT_TIME = "aws:currenttime"
EPOCH_TIME = "aws:epochtime"
PREFIX = "s3:prefix"
DELIMITER = "s3:delimiter"
MAX_KEYS = "s3:max-keys"
VERSION_ID = "s3:versionid"
SSE = "s3:x-amz-server-side-encryption"
SIGNATURE_VERSION = "s3:signatureversion"
AUTH_TYPE = "s3:authtype"
REQUEST_TAG_KEYS = "s3:requestobjecttagkeys"
EXISTING_TAG = "s3:existingobjecttag/"  # + tag key
REQUEST_TAG = "s3:requestobjecttag/"  # + tag key
_TAG_PREFIXES = (EXISTING_TAG, REQUEST_TAG)

# Request headers whose value is the condition key of the same name ("s3:" + header).
HEADER_KEYS = (
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-acl",
    "x-amz-grant-read",
    "x-amz-grant-write",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
    "x-amz-copy-source",
    "x-amz-metadata-directive",
    "x-amz-storage-class",
    "x-amz-content-sha256",
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
)

# The keys rs3gw fills in, by value type; a typed key refuses operators of another type only where
# AWS's validator does (an IP key takes IP operators, IP operators take an IP key).
_KEY_TYPES: dict[str, str] = {
    SOURCE_IP: "ip",
    SECURE_TRANSPORT: "bool",
    MAX_KEYS: "numeric",
    CURRENT_TIME: "date",
    EPOCH_TIME: "date",
    REQUEST_TAG_KEYS: "multi",
    **dict.fromkeys(
        (
            REFERER,
            USER_AGENT,
            USERNAME,
            USERID,
            PREFIX,
            DELIMITER,
            VERSION_ID,
            SIGNATURE_VERSION,
            AUTH_TYPE,
            *(f"s3:{h}" for h in HEADER_KEYS),
        ),
        "string",
    ),
}
KEYS = frozenset(_KEY_TYPES)

_CMP: dict[str, Callable[[float, float], bool]] = {
    "Equals": operator.eq,
    "NotEquals": operator.eq,  # negated below
    "LessThan": operator.lt,
    "LessThanEquals": operator.le,
    "GreaterThan": operator.gt,
    "GreaterThanEquals": operator.ge,
}
_STRING_OPS = frozenset(
    {
        "StringEquals",
        "StringNotEquals",
        "StringEqualsIgnoreCase",
        "StringNotEqualsIgnoreCase",
        "StringLike",
        "StringNotLike",
        "ArnEquals",
        "ArnNotEquals",
        "ArnLike",
        "ArnNotLike",
    }
)
_NUMERIC_OPS = frozenset("Numeric" + c for c in _CMP)
_DATE_OPS = frozenset("Date" + c for c in _CMP)
_IP_OPS = frozenset({"IpAddress", "NotIpAddress"})
OPERATORS = _STRING_OPS | _NUMERIC_OPS | _DATE_OPS | _IP_OPS | {"Bool", "Null"}
_NEGATED = frozenset(
    {
        "StringNotEquals",
        "StringNotEqualsIgnoreCase",
        "StringNotLike",
        "ArnNotEquals",
        "ArnNotLike",
        "NumericNotEquals",
        "DateNotEquals",
        "NotIpAddress",
    }
)
FOR_ANY = "ForAnyValue"
FOR_ALL = "ForAllValues"


@dataclass(frozen=True)
class Condition:
    operator: str  # without the IfExists suffix and the ForAnyValue:/ForAllValues: qualifier
    key: str  # lower-case condition key (a tag key after "…tag/" keeps its case)
    values: tuple[str, ...]
    if_exists: bool = False
    qualifier: str = ""  # "", FOR_ANY or FOR_ALL

    def holds(self, facts: Context) -> bool:
        value = facts.get(self.key)
        items: tuple[str, ...] = () if value is None else value if isinstance(value, tuple) else (value,)
        if self.operator == "Null":
            return (not items) == (self.values[0] == "true")
        if self.qualifier == FOR_ALL:  # every request value matches; vacuously true when none
            return all(self._one(v) for v in items)
        if not items:
            return self.if_exists or (not self.qualifier and self.operator in _NEGATED)
        if self.qualifier == FOR_ANY:
            return any(self._one(v) for v in items)
        matched = any(_match(self.operator, e, v) for e in self.values for v in items)
        return not matched if self.operator in _NEGATED else matched

    def _one(self, actual: str) -> bool:
        matched = any(_match(self.operator, e, actual) for e in self.values)
        return not matched if self.operator in _NEGATED else matched


def _match(op: str, expected: str, actual: str) -> bool:
    """Whether ``actual`` matches one policy value under the un-negated form of ``op``."""
    if op in ("StringEquals", "StringNotEquals"):
        return expected == actual
    if op in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return expected.lower() == actual.lower()
    if op in _STRING_OPS:  # StringLike, ArnEquals/ArnLike (ARN values may use wildcards)
        return wildcard(expected).fullmatch(actual) is not None
    if op == "Bool":
        return expected == actual.lower()
    if op in _NUMERIC_OPS:
        a, e = _number(actual), _number(expected)
        return a is not None and e is not None and _CMP[op[7:]](a, e)
    if op in _DATE_OPS:
        a, e = _date(actual), _date(expected)
        return a is not None and e is not None and _CMP[op[4:]](a, e)
    try:  # IpAddress / NotIpAddress: values were checked at parse time
        return ipaddress.ip_address(actual) in _network(expected)
    except ValueError:
        return False


def _number(text: str) -> float | None:
    try:
        n = float(text)
    except ValueError:
        return None
    return None if n != n else n  # NaN compares with nothing


@lru_cache(maxsize=1024)
def _date(text: str) -> float | None:
    """IAM dates: ISO 8601 (``2026-01-01``, ``2026-01-01T00:00:00Z``) or epoch seconds."""
    n = _number(text)
    if n is not None:
        return n
    try:
        d = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        return None
    return (d if d.tzinfo else d.replace(tzinfo=UTC)).timestamp()


@lru_cache(maxsize=1024)
def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(cidr, strict=False)


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
        op, if_exists, qualifier = _operator(op_name)
        if not isinstance(body, dict) or not body:
            raise MalformedPolicy("Invalid Condition type")
        for key_name, value in body.items():
            key = canonical_key(key_name)
            out.append(Condition(op, key, _values(op, key, value, qualifier), if_exists, qualifier))
    return tuple(out)


def canonical_key(name: object) -> str:
    """Condition key names are case-insensitive; the tag key after ``…ObjectTag/`` is not."""
    if not isinstance(name, str) or not name:
        raise MalformedPolicy("Invalid Condition key")
    lowered = name.lower()
    for prefix in _TAG_PREFIXES:
        if lowered.startswith(prefix) and len(name) > len(prefix):
            return prefix + name[len(prefix) :]
    return lowered


def _operator(name: object) -> tuple[str, bool, str]:
    if not isinstance(name, str):
        raise MalformedPolicy("Invalid Condition type")
    qualifier, sep, rest = name.partition(":")
    if not sep:
        qualifier, rest = "", name
    elif qualifier not in (FOR_ANY, FOR_ALL):
        raise MalformedPolicy(f"Invalid Condition type : {name}")
    base, if_exists = (rest[:-8], True) if rest.endswith("IfExists") else (rest, False)
    if base not in OPERATORS or (base == "Null" and (if_exists or qualifier)):
        raise MalformedPolicy(f"Invalid Condition type : {name}")
    return base, if_exists, qualifier


def _values(op: str, key: str, raw: object, qualifier: str) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise MalformedPolicy(f"Invalid Condition value for {key}")
    values = tuple(_scalar(v, key) for v in items)
    kind = _KEY_TYPES.get(key)
    if op != "Null" and (
        (op in _IP_OPS and kind not in (None, "ip")) or (kind == "ip" and op not in _IP_OPS)
    ):
        raise MalformedPolicy(f"Invalid Condition type : {op} cannot be used with {key}")
    if qualifier and kind not in (None, "multi"):
        raise MalformedPolicy(f"Invalid Condition type : {qualifier} needs a multivalued key, not {key}")
    if op in _IP_OPS:
        for v in values:
            try:
                _network(v)
            except ValueError:
                raise MalformedPolicy(f"Invalid IP address or CIDR in Condition: {v}") from None
    elif op in _NUMERIC_OPS:
        if any(_number(v) is None for v in values):
            raise MalformedPolicy(f"Invalid Condition value for {op}: expected a number")
    elif op in _DATE_OPS:
        if any(_date(v) is None for v in values):
            raise MalformedPolicy(f"Invalid Condition value for {op}: expected a date")
    elif op in ("Bool", "Null"):
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


def names_existing_tags(conditions: tuple[Condition, ...]) -> bool:
    """Whether evaluating these needs the tags of the object the request acts on (a store read)."""
    return any(c.key.startswith(EXISTING_TAG) for c in conditions)


def narrows_source(conditions: tuple[Condition, ...]) -> bool:
    """True when an IpAddress condition pins aws:SourceIp to fixed ranges, which AWS's
    "the meaning of public" counts as non-public (an IPv4 range of /8 or narrower, IPv6 /32)."""
    for c in conditions:
        if c.operator == "IpAddress" and c.key == SOURCE_IP and not c.if_exists and not c.qualifier:
            nets = [_network(v) for v in c.values]
            if all(n.prefixlen >= (8 if n.version == 4 else 32) for n in nets):
                return True
    return False
