"""Authenticates S3 requests signed with AWS SigV4 (Authorization header or presigned query).

Pure: the caller supplies the secret lookup and the clock, and gets back what the body layer needs.
"""

from __future__ import annotations

import enum
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache

from rs3gw.auth import sigv2, sigv4
from rs3gw.errors import (
    AccessDenied,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidRequest,
    RequestTimeTooSkewed,
    S3Error,
    SignatureDoesNotMatch,
)
from rs3gw.model import frozen_from

MAX_SKEW_S = 15 * 60
MAX_PRESIGN_EXPIRES_S = 7 * 24 * 3600
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_AMZ_DATE_RE = re.compile(r"\d{8}T\d{6}Z", re.ASCII)
_SHA256_RE = re.compile(r"[0-9a-f]{64}", re.ASCII)
_DATE_TOKENS_RE = re.compile(r"[\s,]+")
_PRESIGN_KEYS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Expires",
)


class PayloadMode(enum.Enum):
    SIGNED = "signed"
    UNSIGNED = "UNSIGNED-PAYLOAD"
    STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
    STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


_LITERAL_MODES = {m.value: m for m in PayloadMode if m is not PayloadMode.SIGNED}


@dataclass(frozen=True)
class SignedRequest:
    """The request as seen on the wire; raw_path stays encoded because S3 signs it unnormalised."""

    method: str
    raw_path: str
    query: list[tuple[str, str]]
    headers: Mapping[str, str]
    vhost_bucket: str = ""  # set for virtual-host requests: SigV2 signs the bucket in the path


@dataclass(frozen=True)
class ChunkSigner:
    """Carries the seed state so the body decoder can check each aws-chunked signature in turn."""

    signing_key: bytes
    amz_date: str
    scope: str
    seed_signature: str

    def chunk_signature(self, previous: str, chunk_sha256_hex: str) -> str:
        parts = ["AWS4-HMAC-SHA256-PAYLOAD", self.amz_date, self.scope, previous]
        return sigv4.signature(self.signing_key, "\n".join([*parts, sigv4.EMPTY_SHA256, chunk_sha256_hex]))

    def trailer_signature(self, previous: str, trailer_bytes: bytes) -> str:
        parts = ["AWS4-HMAC-SHA256-TRAILER", self.amz_date, self.scope, previous]
        return sigv4.signature(self.signing_key, "\n".join([*parts, sigv4.sha256_hex(trailer_bytes)]))


@dataclass(frozen=True)
class AuthResult:
    access_key: str
    payload: PayloadMode
    content_sha256: str | None
    chunk_signer: ChunkSigner | None
    presigned: bool


@dataclass(frozen=True)
class _Claim:
    """What the client asserts about itself, before we know whether to believe it."""

    access_key: str
    date8: str
    amz_date: str
    signed_headers: list[str]
    signature: str
    presigned: bool


def authenticate(
    req: SignedRequest, secret_for: Callable[[str], str | None], region: str, now: float
) -> AuthResult | None:
    """None when the request carries no credentials at all (anonymous); raises S3Error otherwise on failure."""
    header = req.headers.get("authorization")
    if header is not None and not header.strip():
        header = None  # an empty Authorization header carries no credentials: anonymous (403), as on S3
    query_keys = {k for k, _ in req.query}
    presigned = "X-Amz-Algorithm" in query_keys or "X-Amz-Credential" in query_keys
    if header is None and not presigned:
        if "AWSAccessKeyId" in query_keys or "Signature" in query_keys:
            return _v2_query_auth(req, secret_for, now)
        return None
    if header is not None and header.startswith("AWS ") and not presigned:
        return _v2_header_auth(req, header, secret_for, now)
    if header is not None and presigned:
        raise InvalidArgument(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
            "Signature query string parameter or the Authorization header should be specified"
        )
    if header is not None:
        return _header_auth(req, header, secret_for, region, now)
    return _query_auth(req, secret_for, region, now)


# --- header auth -----------------------------------------------------------------------------


def _header_auth(
    req: SignedRequest, header: str, secret_for: Callable[[str], str | None], region: str, now: float
) -> AuthResult:
    claim = _parse_auth_header(req, header, region)
    skew = _epoch(claim.amz_date) - now
    if abs(skew) > MAX_SKEW_S:
        raise RequestTimeTooSkewed(
            RequestTime=claim.amz_date,
            ServerTime=_format_amz(now),
            MaxAllowedSkewMilliseconds=str(MAX_SKEW_S * 1000),
        )
    declared = req.headers.get("x-amz-content-sha256")
    if declared is None:
        raise InvalidRequest("Missing required header for this request: x-amz-content-sha256")
    mode = payload_mode(declared)
    secret = _secret(secret_for, claim.access_key)
    # Checked only now, as S3 does: a stale or future x-amz-date is RequestTimeTooSkewed and an
    # unknown key InvalidAccessKeyId (both 403) even when the credential date or the signed header
    # list is off too (ceph/s3-tests test_object_create_bad_amz_date_*_aws4 and
    # test_object_create_bad_authorization_incorrect_aws4 get a 403 from S3, never a 400).
    if claim.amz_date[:8] != claim.date8:
        raise AuthorizationHeaderMalformed(
            f'The authorization header is malformed; Invalid credential date. Date is not the same as X-Amz-Date: "{claim.date8}".'
        )
    required = ("host", "x-amz-content-sha256")
    _require_signed(req.headers, claim.signed_headers, required, AuthorizationHeaderMalformed)
    _verify(req, claim, secret, region, [declared], exclude_query=None)
    return _result(claim, secret, region, mode, declared)


def _parse_auth_header(req: SignedRequest, header: str, region: str) -> _Claim:
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != sigv4.ALGORITHM:
        if algorithm.startswith("AWS4-"):
            raise AuthorizationHeaderMalformed(f"Unsupported authorization algorithm '{algorithm}'.")
        # S3's answer to a scheme it does not know ("AWS4 ...", "Bearer ..."): 400 InvalidArgument.
        raise InvalidArgument(
            "Unsupported Authorization Type", ArgumentName="Authorization", ArgumentValue=header
        )
    params = _parse_auth_params(rest)
    access_key, date8 = _parse_credential(params["Credential"], region, AuthorizationHeaderMalformed)
    amz_date = _header_amz_date(req.headers)
    signed = _signed_headers(params["SignedHeaders"], AuthorizationHeaderMalformed)
    return frozen_from(
        _Claim,
        {
            "access_key": access_key,
            "date8": date8,
            "amz_date": amz_date,
            "signed_headers": signed,
            "signature": params["Signature"],
            "presigned": False,
        },
    )


def _parse_auth_params(rest: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in rest.split(","):
        name, eq, value = item.strip().partition("=")
        if eq:
            params[name] = value.strip()
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if not params.get(k)]
    if missing:
        raise AuthorizationHeaderMalformed(
            f"The authorization header is malformed; missing {', '.join(missing)}."
        )
    return params


def _header_amz_date(headers: Mapping[str, str]) -> str:
    """x-amz-date wins; a plain Date header is accepted too, as AWS does, and rewritten to ISO form."""
    value = headers.get("x-amz-date")
    if value is not None:
        value = value.strip()
        # A date before the epoch is no valid date (AccessDenied, as for SigV2), not a skew.
        if not _valid_amz_date(value) or _epoch(value) < 0:
            raise _no_date()
        return value
    value = headers.get("date")
    if value is None:
        raise _no_date()
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise _no_date() from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    # email.utils reads any year below 100 as 19xx/20xx, so "0001" would pass for 2001: a year
    # written with three or more digits must be the year parsed (else: before the epoch, no date).
    years = [t for t in _DATE_TOKENS_RE.split(value) if t.isdigit() and len(t) >= 3]
    if years and int(years[0]) != parsed.year:
        raise _no_date()
    try:
        amz_date = _format_amz(parsed.timestamp())
    except (ValueError, OverflowError, OSError):  # e.g. year 9999 with a negative offset
        raise _no_date() from None
    if not _valid_amz_date(amz_date) or _epoch(amz_date) < 0:  # strftime does not zero-pad years < 1000
        raise _no_date()
    return amz_date


def _no_date() -> S3Error:
    """Built only on failure: every signed request passes through _header_amz_date."""
    return AccessDenied("AWS authentication requires a valid Date or x-amz-date header")


# --- signature version 2 --------------------------------------------------------------------


def _v2_header_auth(
    req: SignedRequest, header: str, secret_for: Callable[[str], str | None], now: float
) -> AuthResult:
    access_key, sep, provided = header[4:].strip().rpartition(":")
    if not sep or not access_key or not provided:
        # S3 answers a SigV2 header without "key:signature" with 400 InvalidArgument
        # (ceph/s3-tests test_object_create_bad_authorization_invalid_aws2).
        raise InvalidArgument(
            "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature",
            ArgumentName="Authorization",
            ArgumentValue=header,
        )
    amz_date = req.headers.get("x-amz-date")
    raw_date = amz_date if amz_date is not None else req.headers.get("date", "")
    stamp = _epoch(raw_date) if _valid_amz_date(raw_date) else sigv2.http_date_epoch(raw_date)
    # A present but empty x-amz-date is no date (it does not fall back to Date); a date before
    # the epoch is not a valid one either: AccessDenied, not RequestTimeTooSkewed.
    if stamp is None or stamp < 0:
        raise AccessDenied("AWS authentication requires a valid Date or x-amz-date header")
    if abs(stamp - now) > MAX_SKEW_S:
        raise RequestTimeTooSkewed(
            RequestTime=amz_date or req.headers.get("date", ""),
            ServerTime=_format_amz(now),
            MaxAllowedSkewMilliseconds=str(MAX_SKEW_S * 1000),
        )
    secret = _secret(secret_for, access_key)
    date_line = "" if amz_date is not None else req.headers.get("date", "")
    resources = sigv2.resource_variants(req.raw_path, req.query, req.vhost_bucket)
    texts = [sigv2.string_to_sign(req.method, req.headers, date_line, r) for r in resources]
    if not any(sigv2.matches(secret, t, provided) for t in texts):
        text = texts[0]
        raise SignatureDoesNotMatch(AWSAccessKeyId=access_key, StringToSign=text, SignatureProvided=provided)
    return AuthResult(access_key, PayloadMode.UNSIGNED, None, None, presigned=False)


def _v2_query_auth(req: SignedRequest, secret_for: Callable[[str], str | None], now: float) -> AuthResult:
    params: dict[str, str] = {}
    for key, value in req.query:
        params.setdefault(key, value)
    access_key, provided, expires = (params.get(k, "") for k in ("AWSAccessKeyId", "Signature", "Expires"))
    if not access_key or not provided or not expires:
        raise AccessDenied(
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters"
        )
    if not (expires.isascii() and expires.isdigit()):
        raise AccessDenied("Invalid date (should be seconds since epoch): " + expires)
    if now > int(expires):
        raise AccessDenied("Request has expired", Expires=_iso(int(expires)), ServerTime=_iso(now))
    secret = _secret(secret_for, access_key)
    headers = dict(req.headers)
    for name in ("content-type", "content-md5"):
        if name in params and name not in headers:
            headers[name] = params[name]
    extra = {k: v for k, v in params.items() if k.startswith("x-amz-")}
    resources = sigv2.resource_variants(req.raw_path, req.query, req.vhost_bucket)
    texts = [sigv2.string_to_sign(req.method, headers, expires, r, extra) for r in resources]
    if not any(sigv2.matches(secret, t, provided) for t in texts):
        text = texts[0]
        raise SignatureDoesNotMatch(AWSAccessKeyId=access_key, StringToSign=text, SignatureProvided=provided)
    return AuthResult(access_key, PayloadMode.UNSIGNED, None, None, presigned=True)


# --- presigned query auth --------------------------------------------------------------------


def _query_auth(
    req: SignedRequest, secret_for: Callable[[str], str | None], region: str, now: float
) -> AuthResult:
    claim, expires = _parse_presigned(req, region)
    issued = _epoch(claim.amz_date)
    if issued - now > MAX_SKEW_S:
        raise AccessDenied("Request is not valid yet")
    if now > issued + expires:
        raise AccessDenied(
            "Request has expired",
            **{"X-Amz-Expires": str(expires), "Expires": _iso(issued + expires), "ServerTime": _iso(now)},
        )
    candidates = ["UNSIGNED-PAYLOAD"]
    declared = req.headers.get("x-amz-content-sha256")
    if declared is not None and "x-amz-content-sha256" in claim.signed_headers:
        payload_mode(declared)
        candidates.insert(0, declared)
    secret = _secret(secret_for, claim.access_key)
    used = _verify(req, claim, secret, region, candidates, exclude_query="X-Amz-Signature")
    return _result(claim, secret, region, payload_mode(used), used)


def _parse_presigned(req: SignedRequest, region: str) -> tuple[_Claim, int]:
    err = AuthorizationQueryParametersError
    params: dict[str, str] = {}
    for key, value in req.query:
        params.setdefault(key, value)
    if params.get("X-Amz-Algorithm") != sigv4.ALGORITHM:
        raise err('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"')
    if any(not params.get(k) for k in _PRESIGN_KEYS):
        raise err(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
            "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
        )
    access_key, date8 = _parse_credential(params["X-Amz-Credential"], region, err)
    amz_date = params["X-Amz-Date"]
    if not _valid_amz_date(amz_date):
        raise err("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    if amz_date[:8] != date8:
        raise err(
            f'Invalid credential date "{date8}". This date is not the same as X-Amz-Date: "{amz_date[:8]}".'
        )
    expires = _parse_expires(params["X-Amz-Expires"])
    signed = _signed_headers(params["X-Amz-SignedHeaders"], err)
    _require_signed(req.headers, signed, ("host",), err)
    claim = _Claim(access_key, date8, amz_date, signed, params["X-Amz-Signature"], presigned=True)
    return claim, expires


def _parse_expires(value: str) -> int:
    digits = value[1:] if value.startswith("-") else value
    if not (digits.isascii() and digits.isdigit()):
        raise AuthorizationQueryParametersError("X-Amz-Expires should be a number")
    expires = int(value)  # a negative number is a number: it fails the range check below, as on S3
    if expires < 1:
        raise AuthorizationQueryParametersError("X-Amz-Expires must be non-negative")
    if expires > MAX_PRESIGN_EXPIRES_S:
        raise AuthorizationQueryParametersError(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800"
        )
    return expires


# --- shared pieces ---------------------------------------------------------------------------


def payload_mode(declared: str) -> PayloadMode:
    """Classify x-amz-content-sha256 so the body layer knows whether and how to check the payload."""
    if declared in _LITERAL_MODES:
        return _LITERAL_MODES[declared]
    if _SHA256_RE.fullmatch(declared):
        return PayloadMode.SIGNED
    raise InvalidArgument(
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, "
        "or a valid sha256 value.",
        ArgumentName="x-amz-content-sha256",
        ArgumentValue=declared,
    )


def _parse_credential(credential: str, region: str, err: type[S3Error]) -> tuple[str, str]:
    """Returns (access key, date8); rsplit because only the four scope fields are '/'-free by rule."""
    parts = credential.rsplit("/", 4)
    if len(parts) != 5 or not all(parts):
        raise err(
            'Error parsing the Credential parameter; the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'
        )
    access_key, date8, cred_region, service, terminator = parts
    if not (len(date8) == 8 and _valid_amz_date(f"{date8}T000000Z")):
        raise err(
            f'Error parsing the Credential parameter; incorrect date format "{date8}". This date in the credential must be in the format "yyyyMMdd".'
        )
    if cred_region != region:
        raise err(
            f"Error parsing the Credential parameter; the region '{cred_region}' is wrong; expecting '{region}'",
            Region=region,
        )
    if service != "s3":
        raise err(
            f'Error parsing the Credential parameter; incorrect service "{service}". This endpoint belongs to "s3".'
        )
    if terminator != sigv4.TERMINATOR:
        raise err(
            f'Error parsing the Credential parameter; incorrect terminal "{terminator}". This endpoint uses "aws4_request".'
        )
    return access_key, date8


def parse_credential(credential: str, region: str, err: type[S3Error]) -> tuple[str, str]:
    """(access key, date8) of a SigV4 credential; shared with POST policy forms (auth.post_policy),
    whose ``x-amz-credential`` field has the same shape and rules as the header's Credential."""
    return _parse_credential(credential, region, err)


def secret_for_key(secret_for: Callable[[str], str | None], access_key: str) -> str:
    """The secret of ``access_key``; InvalidAccessKeyId when unknown (POST forms use it too)."""
    return _secret(secret_for, access_key)


def _signed_headers(value: str, err: type[S3Error]) -> list[str]:
    names = _signed_names(value)
    if names is None:
        raise err("SignedHeaders contains an empty header name.")
    return list(names)


def _signed_names(value: str) -> tuple[str, ...] | None:
    """Cached: a client sends the same SignedHeaders list with every request (a pure function of
    it). Not for long lists: a request head may hold 64 KiB, and 256 of those kept would be 16 MiB."""
    return _signed_names_cached(value) if len(value) <= _CACHED_MAX else _parse_signed_names(value)


def _parse_signed_names(value: str) -> tuple[str, ...] | None:
    names = [n.strip().lower() for n in value.split(";")]
    if not all(names):
        return None
    return tuple(sorted(set(names)))


_CACHED_MAX = 2048  # longest argument the lru_caches here keep (request-controlled strings)
_signed_names_cached = lru_cache(maxsize=256)(_parse_signed_names)


def _require_signed(
    headers: Mapping[str, str], signed: Sequence[str], required: Sequence[str], err: type[S3Error]
) -> None:
    """Unsigned host or payload hash would let a captured signature be replayed elsewhere or altered."""
    for name in required:
        if name in headers and name not in signed:
            raise err(f"The header '{name}' must be signed.")


def _secret(secret_for: Callable[[str], str | None], access_key: str) -> str:
    secret = secret_for(access_key)
    if secret is None:
        raise InvalidAccessKeyId(AWSAccessKeyId=access_key)
    return secret


def _verify(
    req: SignedRequest,
    claim: _Claim,
    secret: str,
    region: str,
    payload_hashes: Sequence[str],
    exclude_query: str | None,
) -> str:
    """Returns the payload hash that verified; tries the re-encoded then the raw path per hash."""
    key = sigv4.signing_key(secret, claim.date8, region)
    scope = sigv4.scope(claim.date8, region)
    query = sigv4.canonical_query((k, v) for k, v in req.query if k != exclude_query)
    uris = dict.fromkeys([sigv4.canonical_uri(req.raw_path), req.raw_path or "/"])
    provided = claim.signature.encode("utf-8", "replace")
    first: tuple[str, str] | None = None
    for payload_hash in payload_hashes:
        for uri in uris:
            canonical = sigv4.canonical_request(
                req.method, uri, query, req.headers, claim.signed_headers, payload_hash
            )
            to_sign = sigv4.string_to_sign(claim.amz_date, scope, canonical)
            if hmac.compare_digest(sigv4.signature(key, to_sign).encode(), provided):
                return payload_hash
            first = first or (canonical, to_sign)
    assert first is not None
    raise SignatureDoesNotMatch(
        AWSAccessKeyId=claim.access_key,
        StringToSign=first[1],
        SignatureProvided=claim.signature,
        CanonicalRequest=first[0],
    )


def _result(claim: _Claim, secret: str, region: str, mode: PayloadMode, declared: str) -> AuthResult:
    signer = None
    if mode in (PayloadMode.STREAMING_SIGNED, PayloadMode.STREAMING_SIGNED_TRAILER):
        key = sigv4.signing_key(secret, claim.date8, region)
        signer = ChunkSigner(key, claim.amz_date, sigv4.scope(claim.date8, region), claim.signature)
    return frozen_from(
        AuthResult,
        {
            "access_key": claim.access_key,
            "payload": mode,
            "content_sha256": declared if mode is PayloadMode.SIGNED else None,
            "chunk_signer": signer,
            "presigned": claim.presigned,
        },
    )


def _amz_epoch(value: str) -> float | None:
    """Cached: strptime was the costliest step of a HEAD, and a client repeats each second's
    timestamp (and each day's credential date) across many requests. Only values of a date's
    length are looked up: a cache of 4,096 arbitrary header values could hold 256 MiB."""
    return _amz_epoch_cached(value) if len(value) == len("20260101T000000Z") else None


@lru_cache(maxsize=4096)
def _amz_epoch_cached(value: str) -> float | None:
    if not _AMZ_DATE_RE.fullmatch(value):
        return None
    try:
        return datetime.strptime(value, _AMZ_DATE_FORMAT).replace(tzinfo=UTC).timestamp()
    except (ValueError, OverflowError):
        return None


def _valid_amz_date(value: str) -> bool:
    """Shape and calendar: 20209999T990000Z matches the pattern but is no date at all."""
    return _amz_epoch(value) is not None


def _epoch(amz_date: str) -> float:
    epoch = _amz_epoch(amz_date)
    if epoch is None:  # callers validate first; this only guards the invariant
        raise ValueError(f"invalid x-amz-date {amz_date!r}")
    return epoch


def _format_amz(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime(_AMZ_DATE_FORMAT)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
