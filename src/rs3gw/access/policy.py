"""Bucket policy documents: strict parsing (MalformedPolicy for anything rs3gw cannot evaluate)
and evaluation of one request against them.

How a policy names an rs3gw user (rs3gw has one namespace of users, each its own "account"):
``"*"`` or ``{"AWS": "*"}`` is everyone, anonymous callers included; ``{"AWS": "<canonical id>"}`` or
``{"CanonicalUser": "<canonical id>"}`` is the user whose Owner ID that is (GetBucketAcl and
ListBuckets show it); ``{"AWS": "arn:aws:iam::<any account id>:user/<name>"}`` is the user called
``<name>`` (the ``--user`` name); ``{"AWS": "arn:aws:iam::<account>:root"}`` is the user whose
canonical id is ``<account>`` (a 12-digit AWS account id, or a tenant-style name as RGW writes it,
e.g. ``s3tenant1``; one that names no user matches nobody); ``{"AWS": "<access key id>"}`` is whoever
signs with that key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache

from rs3gw import errors
from rs3gw.access.actions import KNOWN_ACTIONS
from rs3gw.access.conditions import (
    Condition,
    Context,
    names_existing_tags,
    narrows_source,
    parse_block,
    wildcard,
)

MalformedPolicy = errors.error_class("MalformedPolicy")
MAX_POLICY_BYTES = 20 * 1024
VERSIONS = ("2012-10-17", "2008-10-17")
S3_ARN = "arn:aws:s3:::"
EVERYONE = "*"
_STATEMENT_KEYS = frozenset(
    {
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    }
)
_CANONICAL = re.compile(r"[0-9a-f]{32,64}")
_USER_ARN = re.compile(r"arn:aws:iam::([0-9A-Za-z_-]*):user/(?:[^*?]*/)?([A-Za-z0-9.@_+=,-]{1,64})")
# Root of an account: AWS account ids are 12 digits; RGW tenants are names ("s3tenant1").
_ROOT_ARN = re.compile(r"arn:aws:iam::(\d{12}|[A-Za-z0-9._@+=$-]*[A-Za-z._@+=$-][A-Za-z0-9._@+=$-]*):root")
_ACCESS_KEY = re.compile(r"[A-Za-z0-9._-]{3,128}")  # as rs3gw accepts them (config.py)


@dataclass(frozen=True)
class Requester:
    """Who asks, as policies can name them; ``tokens`` are matched against Principal elements."""

    canonical_id: str
    name: str
    access_key: str
    anonymous: bool

    @property
    def tokens(self) -> frozenset[str]:
        if self.anonymous:
            return frozenset({EVERYONE})
        return frozenset({EVERYONE, f"id:{self.canonical_id}", f"user:{self.name}", f"key:{self.access_key}"})


@dataclass(frozen=True)
class Facts:
    """One request as a policy sees it."""

    requester: Requester
    action: str  # "s3:GetObject"
    resource: str  # "arn:aws:s3:::bucket" or "arn:aws:s3:::bucket/key"
    context: Context  # condition key (lower-case) → value, only keys present


@dataclass(frozen=True)
class Statement:
    effect: str
    principals: frozenset[str]
    not_principal: bool
    actions: tuple[re.Pattern[str], ...]
    not_action: bool
    resources: tuple[re.Pattern[str], ...]
    not_resource: bool
    conditions: tuple[Condition, ...]

    def applies(self, f: Facts) -> bool:
        if bool(self.principals & f.requester.tokens) == self.not_principal:
            return False
        if any(p.fullmatch(f.action) for p in self.actions) == self.not_action:
            return False
        if any(p.fullmatch(f.resource) for p in self.resources) == self.not_resource:
            return False
        return all(c.holds(f.context) for c in self.conditions)

    @property
    def public(self) -> bool:
        """AWS "the meaning of public": an Allow for any principal not pinned by a fixed source."""
        anyone = self.not_principal or EVERYONE in self.principals
        return self.effect == "Allow" and anyone and not narrows_source(self.conditions)


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]

    def evaluate(self, facts: Facts) -> str | None:
        """ "Deny" if any matching statement denies, else "Allow" if one allows, else None."""
        allowed = False
        for st in self.statements:
            if st.applies(facts):
                if st.effect == "Deny":
                    return "Deny"
                allowed = True
        return "Allow" if allowed else None

    @property
    def public(self) -> bool:
        return any(st.public for st in self.statements)

    @cached_property
    def needs_existing_tags(self) -> bool:
        """Whether a condition names s3:ExistingObjectTag/<key>: only then does authorization read
        the object's tags, so requests under other policies pay nothing for the key."""
        return any(names_existing_tags(st.conditions) for st in self.statements)


@lru_cache(maxsize=512)
def load_identity(text: str) -> Policy:
    """An identity policy (attached to a user): the same grammar with no Principal element (the
    policy's user is the principal) and resources in any bucket."""
    return load(text, None)


@lru_cache(maxsize=512)
def load(text: str, bucket: str | None) -> Policy:
    """Parse and validate; cached by document text, so a request pays for a lookup only.
    ``bucket`` None parses an identity policy (see load_identity)."""
    if len(text.encode()) > MAX_POLICY_BYTES:
        raise MalformedPolicy("Policy exceeds the maximum allowed document size.")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        raise MalformedPolicy("This policy contains invalid Json") from None
    if not isinstance(doc, dict):
        raise MalformedPolicy("This policy contains invalid Json")
    extra = set(doc) - {"Version", "Id", "Statement"}
    if extra:
        raise MalformedPolicy(f"Unknown field {sorted(extra)[0]}")
    if "Version" in doc and doc["Version"] not in VERSIONS:
        raise MalformedPolicy("The policy must contain a valid version string")
    raw = doc.get("Statement")
    items = raw if isinstance(raw, list) else [raw] if isinstance(raw, dict) else None
    if not items:
        raise MalformedPolicy("Missing required field Statement")
    return Policy(tuple(_statement(s, bucket) for s in items))


def _statement(raw: object, bucket: str | None) -> Statement:
    if not isinstance(raw, dict):
        raise MalformedPolicy("Statement is not an object")
    if bucket is None:
        if "Principal" in raw or "NotPrincipal" in raw:
            raise MalformedPolicy("Policy document should not specify a principal.")
        raw = {**raw, "Principal": EVERYONE}
    extra = set(raw) - _STATEMENT_KEYS
    if extra:
        raise MalformedPolicy(f"Unknown field {sorted(extra)[0]}")
    if "Sid" in raw and not isinstance(raw["Sid"], str):
        raise MalformedPolicy("Statement IDs (SID) must be strings")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise MalformedPolicy("Invalid effect: " + str(effect))
    principal_raw, not_principal = _one_of(raw, "Principal")
    action_raw, not_action = _one_of(raw, "Action")
    resource_raw, not_resource = _one_of(raw, "Resource")
    actions = _strings(action_raw, "Action")
    resources = _strings(resource_raw, "Resource")
    for a in actions:
        _check_action(a)
    for r in resources:
        _check_resource(r, bucket)
    if not not_action and not not_resource:
        _check_applies(actions, resources, bucket)
    return Statement(
        effect=effect,
        principals=_principals(principal_raw),
        not_principal=not_principal,
        actions=tuple(wildcard(a, ignore_case=True) for a in actions),
        not_action=not_action,
        resources=tuple(wildcard(r) for r in resources),
        not_resource=not_resource,
        conditions=parse_block(raw["Condition"]) if "Condition" in raw else (),
    )


def _one_of(raw: Mapping[str, object], name: str) -> tuple[object, bool]:
    has, has_not = name in raw, f"Not{name}" in raw
    if has == has_not:
        raise MalformedPolicy(f"Missing required field {name}" if not has else f"{name} and Not{name}")
    return (raw[name], False) if has else (raw[f"Not{name}"], True)


def _strings(raw: object, name: str) -> list[str]:
    items = raw if isinstance(raw, list) else [raw]
    if not items or not all(isinstance(i, str) and i for i in items):
        raise MalformedPolicy(f"Policy has invalid {name.lower()}")
    return [str(i) for i in items]


def _principals(raw: object) -> frozenset[str]:
    if raw == EVERYONE:
        return frozenset({EVERYONE})
    if not isinstance(raw, dict) or not raw:
        raise MalformedPolicy("Invalid principal in policy")
    tokens: set[str] = set()
    for kind, value in raw.items():
        if kind not in ("AWS", "CanonicalUser"):
            raise MalformedPolicy(f"Invalid principal in policy: unsupported principal type {kind}")
        for v in _strings(value, "principal"):
            tokens.add(_principal_token(kind, v))
    return frozenset(tokens)


def _principal_token(kind: str, v: str) -> str:
    if kind == "CanonicalUser":
        if not _CANONICAL.fullmatch(v):
            raise MalformedPolicy("Invalid principal in policy")
        return f"id:{v}"
    if v == EVERYONE:
        return EVERYONE
    if _CANONICAL.fullmatch(v):
        return f"id:{v}"
    m = _USER_ARN.fullmatch(v)
    if m:
        return f"user:{m.group(2)}"
    m = _ROOT_ARN.fullmatch(v)
    if m:
        return f"id:{m.group(1)}"
    if _ACCESS_KEY.fullmatch(v):
        return f"key:{v}"
    raise MalformedPolicy("Invalid principal in policy")


def _check_action(a: str) -> None:
    lowered = a.lower()
    if lowered == "*":
        return
    if not lowered.startswith("s3:"):
        raise MalformedPolicy("Policy has invalid action")
    if "*" in a or "?" in a:
        pattern = wildcard(a, ignore_case=True)
        if not any(pattern.fullmatch(k) for k in KNOWN_ACTIONS):
            raise MalformedPolicy("Policy has invalid action")
    elif lowered not in KNOWN_ACTIONS:
        raise MalformedPolicy("Policy has invalid action")


def _check_resource(r: str, bucket: str | None) -> None:
    if not r.startswith(S3_ARN) or len(r) == len(S3_ARN):
        raise MalformedPolicy("Policy has invalid resource")
    if bucket is None:
        return
    segment = r[len(S3_ARN) :].split("/", 1)[0]
    if not wildcard(segment).fullmatch(bucket):
        raise MalformedPolicy("Policy has invalid resource")


def _check_applies(actions: list[str], resources: list[str], bucket: str | None) -> None:
    """AWS refuses a statement whose action cannot act on any of its resources."""
    if bucket is None:
        has_bucket = any("/" not in r or r.endswith("*") for r in resources)
    else:
        has_bucket = any(wildcard(r).fullmatch(S3_ARN + bucket) for r in resources)
    has_object = any("/" in r or r.endswith("*") for r in resources)
    for a in actions:
        if "*" in a or "?" in a:
            continue
        kind = KNOWN_ACTIONS[a.lower()]
        if (kind == "bucket" and not has_bucket) or (kind == "object" and not has_object) or kind == "none":
            raise MalformedPolicy("Action does not apply to any resource(s) in statement")
