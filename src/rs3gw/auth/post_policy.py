"""Browser-based uploads (POST Object): who signed the form, and whether the form obeys its policy.

A POST form carries no Authorization header: the client signs the base64 policy document itself
(SigV4: HMAC-SHA256 with the day's signing key from ``x-amz-credential``; SigV2: HMAC-SHA1 with
the secret, base64) and the policy's conditions bound what the unsigned rest of the form may say.
Pure and I/O-free like ``verify``: the caller supplies the secret lookup and the clock. Field names
arrive lower-cased (S3 matches form field names case-insensitively).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rs3gw import errors
from rs3gw.auth import sigv2, sigv4
from rs3gw.auth.verify import AuthResult, PayloadMode, parse_credential, secret_for_key

# Fields the policy never has to mention (AWS "Creating a POST policy"): the signature material,
# the policy itself and the file; plus any ``x-ignore-*`` field.
EXEMPT_FIELDS = frozenset({"policy", "x-amz-signature", "signature", "awsaccesskeyid", "file"})
IGNORE_PREFIX = "x-ignore-"
_SIGV4_FIELDS = ("x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature")
_SIGV2_FIELDS = ("awsaccesskeyid", "signature")
_POLICY_LIMIT = 64 * 1024  # decoded policy documents are a few hundred bytes; bound the JSON parse
# AWS "POST Policy", Conditions: these support exact matching only; a starts-with condition would
# leave the signing time and credential a form may claim open instead of fixed by its signer.
EXACT_ONLY = frozenset({"x-amz-algorithm", "x-amz-credential", "x-amz-date"})
# A starts-with condition on Content-Type reads the value as a comma-separated list: every listed
# type must start with the prefix (AWS "POST Policy", Condition Matching).
LIST_FIELDS = frozenset({"content-type"})
_AMZ_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class Condition:
    """One ``eq`` / ``starts-with`` condition on a field (lower-case name without the ``$``)."""

    op: str
    field: str
    value: str

    def describe(self) -> str:
        """How AWS names the failed condition in its AccessDenied message."""
        return json.dumps([self.op, "$" + self.field, self.value])


@dataclass(frozen=True)
class PostPolicy:
    expiration: float  # epoch seconds
    conditions: tuple[Condition, ...]
    length_range: tuple[int, int] | None  # content-length-range (min, max), inclusive

    def covers(self, name: str) -> bool:
        return any(c.field == name for c in self.conditions)


def authenticate_form(
    fields: Mapping[str, str], secret_for: Callable[[str], str | None], region: str
) -> AuthResult | None:
    """The signer of a POST form; None for a form without signature fields (an anonymous upload,
    which only a bucket policy or ACL grant lets through). The payload is unsigned: the policy,
    not a body hash, is what the signature protects."""
    if any(f in fields for f in _SIGV4_FIELDS):
        access_key = _sigv4(fields, secret_for, region)
    elif any(f in fields for f in _SIGV2_FIELDS):
        access_key = _sigv2(fields, secret_for)
    else:
        return None
    return AuthResult(access_key, PayloadMode.UNSIGNED, None, None, False)


def _required(fields: Mapping[str, str], name: str, shown: str) -> str:
    value = fields.get(name)
    if value is None or value == "":
        raise errors.InvalidArgument(
            f"Bucket POST must contain a field named '{shown}'.  If it is specified, please check the "
            "order of the fields.",
            ArgumentName=shown,
            ArgumentValue="",
        )
    return value


def _sigv4(fields: Mapping[str, str], secret_for: Callable[[str], str | None], region: str) -> str:
    algorithm = _required(fields, "x-amz-algorithm", "X-Amz-Algorithm")
    if algorithm != sigv4.ALGORITHM:
        raise errors.InvalidArgument(
            'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"',
            ArgumentName="X-Amz-Algorithm",
            ArgumentValue=algorithm,
        )
    credential = _required(fields, "x-amz-credential", "X-Amz-Credential")
    amz_date = _required(fields, "x-amz-date", "X-Amz-Date")
    provided = _required(fields, "x-amz-signature", "X-Amz-Signature")
    policy = _required(fields, "policy", "Policy")
    access_key, date8 = parse_credential(credential, region, errors.InvalidArgument)
    _check_amz_date(amz_date, date8)
    secret = secret_for_key(secret_for, access_key)
    expected = sigv4.signature(sigv4.signing_key(secret, date8, region), policy)
    if not hmac.compare_digest(expected.encode(), provided.encode("utf-8", "replace")):
        raise errors.SignatureDoesNotMatch(
            AWSAccessKeyId=access_key, StringToSign=policy, SignatureProvided=provided
        )
    return access_key


def _check_amz_date(amz_date: str, date8: str) -> None:
    """The form's x-amz-date is "the same date used in creating the signing key" (AWS): an ISO 8601
    long-form time on the credential's day. The policy's own x-amz-date condition (exact, see
    EXACT_ONLY) then ties the signed policy to that time; the messages are presigned URLs'."""
    if not _valid_amz_date(amz_date):
        raise errors.InvalidArgument(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
            ArgumentName="X-Amz-Date",
            ArgumentValue=amz_date,
        )
    if amz_date[:8] != date8:
        raise errors.InvalidArgument(
            f'Invalid credential date "{date8}". This date is not the same as X-Amz-Date: "{amz_date[:8]}".',
            ArgumentName="X-Amz-Date",
            ArgumentValue=amz_date,
        )


def _valid_amz_date(value: str) -> bool:
    """Shape and calendar (``20260301T250000Z`` has the shape of a time but is none)."""
    if _AMZ_DATE.fullmatch(value) is None:
        return False
    try:
        datetime.strptime(value, _AMZ_DATE_FORMAT)
    except ValueError:
        return False
    return True


def _sigv2(fields: Mapping[str, str], secret_for: Callable[[str], str | None]) -> str:
    access_key = _required(fields, "awsaccesskeyid", "AWSAccessKeyId")
    provided = _required(fields, "signature", "Signature")
    policy = _required(fields, "policy", "Policy")
    secret = secret_for_key(secret_for, access_key)
    if not sigv2.matches(secret, policy, provided):
        raise errors.SignatureDoesNotMatch(
            AWSAccessKeyId=access_key, StringToSign=policy, SignatureProvided=provided
        )
    return access_key


# --- the policy document ---------------------------------------------------------------------


def _invalid(detail: str) -> errors.S3Error:
    return errors.InvalidPolicyDocument(f"Invalid Policy: {detail}")


def parse_policy(encoded: str) -> PostPolicy:
    """The base64 JSON policy: ``expiration`` and ``conditions`` are required (names are
    case-sensitive, as on S3); anything malformed is InvalidPolicyDocument (400)."""
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("Invalid 'POST' form field: policy is not base64 encoded.") from None
    if len(raw) > _POLICY_LIMIT:
        raise _invalid("Policy document is too large.")
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise _invalid("Invalid JSON.") from None
    if not isinstance(doc, dict):
        raise _invalid("Invalid JSON.")
    if "expiration" not in doc:
        raise _invalid("Policy missing expiration.")
    if "conditions" not in doc:
        raise _invalid("Policy missing conditions.")
    expiration = _parse_expiration(doc["expiration"])
    if not isinstance(doc["conditions"], list):
        raise _invalid("Invalid Policy: Conditions must be an array.")
    conditions: list[Condition] = []
    length_range: tuple[int, int] | None = None
    for item in doc["conditions"]:
        if isinstance(item, dict):
            conditions.append(_simple_condition(item))
        elif isinstance(item, list) and item and isinstance(item[0], str):
            op = item[0].lower()
            if op == "content-length-range":
                length_range = _length_range(item)
            else:
                conditions.append(_operator_condition(op, item))
        else:
            raise _invalid(f"Invalid Condition: {json.dumps(item)}")
    return PostPolicy(expiration, tuple(conditions), length_range)


def _parse_expiration(value: Any) -> float:
    """ISO 8601 in UTC (``2026-12-01T12:00:00Z``, optionally with fractional seconds)."""
    if isinstance(value, str) and value.endswith("Z"):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return when.replace(tzinfo=when.tzinfo or UTC).timestamp()
    raise _invalid(f"Invalid 'expiration' value: '{value}'")


def _simple_condition(item: dict[str, Any]) -> Condition:
    if len(item) != 1:
        raise _invalid(
            "Invalid Simple-Condition: Simple-Conditions must have exactly one property specified."
        )
    ((name, value),) = item.items()
    if not isinstance(value, str):
        raise _invalid(f"Invalid Simple-Condition: value for {name} must be a string.")
    return Condition("eq", name.lower(), value)


def _operator_condition(op: str, item: list[Any]) -> Condition:
    if op not in ("eq", "starts-with"):
        raise _invalid(f"Invalid Condition: unknown operation '{item[0]}'.")
    if len(item) != 3 or not all(isinstance(v, str) for v in item[1:]):
        raise _invalid(f"Invalid {item[0]} condition: wrong number or type of arguments.")
    name, value = item[1], item[2]
    if not name.startswith("$") or len(name) < 2:
        raise _invalid(f"Invalid {item[0]} condition: the field name must start with '$'.")
    return Condition(op, name[1:].lower(), value)


def _length_range(item: list[Any]) -> tuple[int, int]:
    bounds = item[1:]
    if len(bounds) != 2:
        raise _invalid("Invalid content-length-range condition: wrong number of arguments.")
    out: list[int] = []
    for b in bounds:
        if isinstance(b, bool) or not isinstance(b, (int, str)):
            raise _invalid("Invalid content-length-range condition: bounds must be integers.")
        try:
            n = int(b)
        except ValueError:
            raise _invalid("Invalid content-length-range condition: bounds must be integers.") from None
        if n < 0:
            raise _invalid("Invalid content-length-range condition: bounds must not be negative.")
        out.append(n)
    if out[0] > out[1]:
        raise _invalid("Invalid content-length-range condition: minimum exceeds maximum.")
    return out[0], out[1]


def check_form(policy: PostPolicy, fields: Mapping[str, str], bucket: str, now: float) -> None:
    """AccessDenied "Invalid according to Policy: ..." unless the form obeys the policy: not
    expired, every condition holds (a field the form lacks counts as empty; ``bucket`` is the
    URL's bucket), and every field but the exempt ones is named by some condition. ``fields``
    must already carry the key with ``${filename}`` substituted, as S3 checks that key."""
    if now > policy.expiration:
        raise errors.AccessDenied("Invalid according to Policy: Policy expired.")
    for cond in policy.conditions:
        actual = bucket if cond.field == "bucket" else fields.get(cond.field, "")
        if not _holds(cond, actual):
            raise errors.AccessDenied(
                f"Invalid according to Policy: Policy Condition failed: {cond.describe()}"
            )
    extra = [
        name
        for name in fields
        if name not in EXEMPT_FIELDS and not name.startswith(IGNORE_PREFIX) and not policy.covers(name)
    ]
    if extra:
        raise errors.AccessDenied(f"Invalid according to Policy: Extra input fields: {', '.join(extra)}")


def _holds(cond: Condition, actual: str) -> bool:
    """Whether ``actual`` satisfies ``cond``. starts-with is refused outright on the EXACT_ONLY
    fields, and applies to each value of a LIST_FIELDS list (``image/jpg,text/plain`` fails
    ``image/``); an exact match always compares the whole value."""
    if cond.op == "eq":
        return actual == cond.value
    if cond.field in EXACT_ONLY:
        return False
    if cond.field in LIST_FIELDS:
        return all(v.strip().startswith(cond.value) for v in actual.split(","))
    return actual.startswith(cond.value)
