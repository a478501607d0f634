"""Bucket CORS rules: validation as S3 does it, and matching a request against them. No I/O.

Evaluation follows AWS's "How does Amazon S3 evaluate the CORS configuration on a bucket?":
the first rule whose origin, method and (for a preflight) every requested header match wins.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from rs3gw import errors

MAX_RULES = 100
METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD")
VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"


@dataclass(frozen=True)
class CorsRule:
    allowed_methods: tuple[str, ...]
    allowed_origins: tuple[str, ...]
    allowed_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age_seconds: int | None = None
    id: str | None = None


def validate(rules: list[CorsRule]) -> None:
    """MalformedXML for a shape S3's schema refuses, InvalidRequest for values it refuses."""
    if not rules or len(rules) > MAX_RULES:
        raise errors.MalformedXML()
    for rule in rules:
        if not rule.allowed_methods or not rule.allowed_origins:
            raise errors.MalformedXML()
        if rule.id is not None and len(rule.id) > 255:
            raise errors.InvalidRequest("The ID of a CORS rule cannot be longer than 255 characters.")
        for m in rule.allowed_methods:
            if m not in METHODS:
                raise errors.InvalidRequest(
                    f"Found unsupported HTTP method in CORS config. Unsupported method is {m}"
                )
        for o in rule.allowed_origins:
            if o.count("*") > 1:
                raise errors.InvalidRequest(f'AllowedOrigin "{o}" can not have more than one wildcard.')
        for h in rule.allowed_headers:
            if h.count("*") > 1:
                raise errors.InvalidRequest(f'AllowedHeader "{h}" can not have more than one wildcard.')
        for h in rule.expose_headers:
            if "*" in h:
                raise errors.InvalidRequest(
                    f'ExposeHeader "{h}" contains wildcard. We currently do not support wildcard for ExposeHeader.'
                )
        if rule.max_age_seconds is not None and rule.max_age_seconds < 0:
            raise errors.MalformedXML()


def _wild(pattern: str, value: str) -> bool:
    """Match with at most one '*' standing for any run of characters (possibly empty)."""
    head, star, tail = pattern.partition("*")
    if not star:
        return pattern == value
    return len(value) >= len(head) + len(tail) and value.startswith(head) and value.endswith(tail)


def _origin_pattern(rule: CorsRule, origin: str) -> str | None:
    return next((p for p in rule.allowed_origins if _wild(p, origin)), None)


def _headers_ok(rule: CorsRule, requested: list[str]) -> bool:
    allowed = [h.lower() for h in rule.allowed_headers]
    return all(any(_wild(a, h) for a in allowed) for h in requested)


def split_header_list(value: str | None) -> list[str]:
    """Access-Control-Request-Headers as lower-case names."""
    if not value:
        return []
    return [h.strip().lower() for h in value.split(",") if h.strip()]


def find_rule(
    rules: list[CorsRule], origin: str, method: str, requested_headers: list[str]
) -> CorsRule | None:
    for rule in rules:
        if (
            method in rule.allowed_methods
            and _origin_pattern(rule, origin) is not None
            and _headers_ok(rule, requested_headers)
        ):
            return rule
    return None


def response_headers(
    rule: CorsRule, origin: str, requested_headers: list[str] | None = None
) -> dict[str, str]:
    """The Access-Control-* headers S3 sends for a matched rule; ``requested_headers`` only on
    a preflight. A rule allowing any origin answers '*' and no credentials, as S3 does."""
    any_origin = _origin_pattern(rule, origin) == "*"
    h = {
        "access-control-allow-origin": "*" if any_origin else origin,
        "access-control-allow-methods": ", ".join(rule.allowed_methods),
        "vary": VARY,
    }
    if not any_origin:
        h["access-control-allow-credentials"] = "true"
    if requested_headers:
        h["access-control-allow-headers"] = ", ".join(requested_headers)
    if rule.expose_headers:
        h["access-control-expose-headers"] = ", ".join(rule.expose_headers)
    if rule.max_age_seconds is not None:
        h["access-control-max-age"] = str(rule.max_age_seconds)
    return h


def dumps(rules: list[CorsRule]) -> str:
    """The stored form (bucket_config "cors")."""
    return json.dumps([asdict(r) for r in rules], separators=(",", ":"), ensure_ascii=False)


def loads(text: str) -> list[CorsRule]:
    out: list[CorsRule] = []
    for d in json.loads(text):
        out.append(
            CorsRule(
                allowed_methods=tuple(d["allowed_methods"]),
                allowed_origins=tuple(d["allowed_origins"]),
                allowed_headers=tuple(d.get("allowed_headers") or ()),
                expose_headers=tuple(d.get("expose_headers") or ()),
                max_age_seconds=d.get("max_age_seconds"),
                id=d.get("id"),
            )
        )
    return out
