"""Request authentication: AWS's published vectors, every failure code, and botocore round trips."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode_sequence
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rs3gw.auth import sigv4
from rs3gw.auth.verify import AuthResult, PayloadMode, SignedRequest, authenticate
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

AK = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"
EMPTY = sigv4.EMPTY_SHA256
T0 = datetime(2013, 5, 24, tzinfo=UTC).timestamp()
GET_SIG = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
SEED_SIG = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"


def secrets(ak: str) -> str | None:
    return {AK: SECRET}.get(ak)


def _auth_header(
    sig: str = GET_SIG, signed: str = "host;range;x-amz-content-sha256;x-amz-date", cred: str = ""
) -> str:
    cred = cred or f"{AK}/20130524/us-east-1/s3/aws4_request"
    return f"AWS4-HMAC-SHA256 Credential={cred},SignedHeaders={signed},Signature={sig}"


def _get_example(**overrides: str | None) -> SignedRequest:
    headers: dict[str, str | None] = {
        "host": "examplebucket.s3.amazonaws.com",
        "range": "bytes=0-9",
        "x-amz-content-sha256": EMPTY,
        "x-amz-date": "20130524T000000Z",
        "authorization": _auth_header(),
    }
    headers.update(overrides)
    return SignedRequest("GET", "/test.txt", [], {k: v for k, v in headers.items() if v is not None})


def _raises(exc: type[S3Error], req: SignedRequest, now: float = T0, region: str = REGION) -> S3Error:
    with pytest.raises(exc) as info:
        authenticate(req, secrets, region, now)
    assert type(info.value) is exc
    return info.value


# --- published vectors -----------------------------------------------------------------------


def test_aws_get_object_vector_is_accepted() -> None:
    result = authenticate(_get_example(), secrets, REGION, T0 + 60)
    assert result == AuthResult(AK, PayloadMode.SIGNED, EMPTY, None, presigned=False)


def test_aws_chunked_put_seed_signature_yields_chunk_signer() -> None:
    headers = {
        "host": "s3.amazonaws.com",
        "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": "66560",
        "content-length": "66824",
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "authorization": _auth_header(
            SEED_SIG,
            "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
            "x-amz-decoded-content-length;x-amz-storage-class",
        ),
    }
    result = authenticate(
        SignedRequest("PUT", "/examplebucket/chunkObject.txt", [], headers), secrets, REGION, T0
    )
    assert result is not None
    assert result.payload is PayloadMode.STREAMING_SIGNED
    assert result.content_sha256 is None
    signer = result.chunk_signer
    assert signer is not None
    assert (signer.amz_date, signer.scope, signer.seed_signature) == (
        "20130524T000000Z",
        "20130524/us-east-1/s3/aws4_request",
        SEED_SIG,
    )
    first = signer.chunk_signature(SEED_SIG, hashlib.sha256(b"a" * 65536).hexdigest())
    assert first == "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"


def test_aws_put_vector_with_date_header_and_raw_path_escape() -> None:
    payload = hashlib.sha256(b"Welcome to Amazon S3.").hexdigest()
    headers = {
        "date": "Fri, 24 May 2013 00:00:00 GMT",
        "host": "examplebucket.s3.amazonaws.com",
        "x-amz-content-sha256": payload,
        "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "authorization": _auth_header(
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
        ),
    }
    for path in ("/test$file.text", "/test%24file.text"):
        result = authenticate(SignedRequest("PUT", path, [], headers), secrets, REGION, T0)
        assert result is not None and result.content_sha256 == payload


def test_anonymous_request_returns_none() -> None:
    req = SignedRequest("GET", "/b/k", [("list-type", "2")], {"host": "h"})
    assert authenticate(req, secrets, REGION, T0) is None


# --- header failures -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 Credential=x",
        f"AWS4-HMAC-SHA256 Credential={AK}/20130524/us-east-1/s3/aws4_request, SignedHeaders=host",
        f"AWS4-HMAC-SHA256 Credential={AK}/20130524/us-east-1/s3,SignedHeaders=host,Signature=ab",
        f"AWS4-HMAC-SHA256 Credential={AK}/2013052/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=ab",
        "AWS4-ECDSA-P256-SHA256 Credential=x,SignedHeaders=host,Signature=ab",
    ],
)
def test_malformed_authorization_header(value: str) -> None:
    _raises(AuthorizationHeaderMalformed, _get_example(authorization=value))


def test_aws_v2_header_signature_checked() -> None:
    _raises(SignatureDoesNotMatch, _get_example(authorization=f"AWS {AK}:frJIUN8DYpKDtOLCwo//yllqDzg="))


def test_aws_v2_documented_example_verifies() -> None:
    """AWS's published SigV2 example (virtual-host GET of /photos/puppy.jpg)."""
    date = "Tue, 27 Mar 2007 19:36:42 +0000"
    headers = {"host": "johnsmith.s3.amazonaws.com", "date": date}
    ok = dict(headers, authorization=f"AWS {AK}:bWq2s1WEIj+Ydj0vQ697zp+IXMU=")
    req = SignedRequest("GET", "/photos/puppy.jpg", [], ok, vhost_bucket="johnsmith")
    t = datetime(2007, 3, 27, 19, 40, tzinfo=UTC).timestamp()
    result = authenticate(req, {AK: SECRET}.get, REGION, t)
    assert result is not None and result.access_key == AK
    bad = dict(headers, authorization=f"AWS {AK}:cWq2s1WEIj+Ydj0vQ697zp+IXMU=")
    _raises(SignatureDoesNotMatch, SignedRequest("GET", "/photos/puppy.jpg", [], bad, "johnsmith"), now=t)
    _raises(RequestTimeTooSkewed, req, now=t + 3600)


def test_v2_presigned_query_expired_and_forged() -> None:
    req = SignedRequest("GET", "/b/k", [("AWSAccessKeyId", AK), ("Expires", "1"), ("Signature", "x")], {})
    assert "expired" in _raises(AccessDenied, req).message
    future = str(int(time.time()) + 60)
    forged = SignedRequest(
        "GET", "/b/k", [("AWSAccessKeyId", AK), ("Expires", future), ("Signature", "x")], {}
    )
    _raises(SignatureDoesNotMatch, forged)


def test_wrong_region_names_expected_region() -> None:
    cred = f"{AK}/20130524/eu-west-1/s3/aws4_request"
    err = _raises(AuthorizationHeaderMalformed, _get_example(authorization=_auth_header(cred=cred)))
    assert "'us-east-1'" in err.message and err.extra["Region"] == "us-east-1"


@pytest.mark.parametrize("cred_tail", ["us-east-1/ec2/aws4_request", "us-east-1/s3/aws5_request"])
def test_wrong_service_or_terminator(cred_tail: str) -> None:
    cred = f"{AK}/20130524/{cred_tail}"
    _raises(AuthorizationHeaderMalformed, _get_example(authorization=_auth_header(cred=cred)))


def test_credential_date_must_match_request_date() -> None:
    cred = f"{AK}/20130525/us-east-1/s3/aws4_request"
    _raises(AuthorizationHeaderMalformed, _get_example(authorization=_auth_header(cred=cred)))


@pytest.mark.parametrize("bad_date", [None, "2013-05-24T00:00:00Z", "yesterday"])
def test_missing_or_invalid_date(bad_date: str | None) -> None:
    err = _raises(AccessDenied, _get_example(**{"x-amz-date": bad_date}))
    assert err.message == "AWS authentication requires a valid Date or x-amz-date header"


@pytest.mark.parametrize("offset", [-901, 901, 86400])
def test_clock_skew(offset: int) -> None:
    _raises(RequestTimeTooSkewed, _get_example(), now=T0 - offset)


def test_skew_within_fifteen_minutes_is_fine() -> None:
    assert authenticate(_get_example(), secrets, REGION, T0 + 899) is not None
    assert authenticate(_get_example(), secrets, REGION, T0 - 899) is not None


@pytest.mark.parametrize("signed", ["range;x-amz-content-sha256;x-amz-date", "host;range;x-amz-date"])
def test_host_and_content_sha256_must_be_signed(signed: str) -> None:
    _raises(AuthorizationHeaderMalformed, _get_example(authorization=_auth_header(signed=signed)))


def test_unknown_access_key() -> None:
    cred = "AKIDONOTEXIST/20130524/us-east-1/s3/aws4_request"
    err = _raises(InvalidAccessKeyId, _get_example(authorization=_auth_header(cred=cred)))
    assert err.extra["AWSAccessKeyId"] == "AKIDONOTEXIST"


def test_wrong_signature() -> None:
    err = _raises(SignatureDoesNotMatch, _get_example(authorization=_auth_header("0" * 64)))
    assert err.extra["SignatureProvided"] == "0" * 64
    assert "CanonicalRequest" in err.extra and "StringToSign" in err.extra


def test_non_ascii_signature_is_a_mismatch_not_a_crash() -> None:
    _raises(SignatureDoesNotMatch, _get_example(authorization=_auth_header("é" * 64)))


def test_missing_content_sha256_header() -> None:
    signed = "host;range;x-amz-date"
    req = _get_example(**{"x-amz-content-sha256": None, "authorization": _auth_header(signed=signed)})
    err = _raises(InvalidRequest, req)
    assert "x-amz-content-sha256" in err.message


@pytest.mark.parametrize(
    "value", ["E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", "abc", "STREAMING-X"]
)
def test_invalid_content_sha256_value(value: str) -> None:
    err = _raises(InvalidArgument, _get_example(**{"x-amz-content-sha256": value}))
    assert "valid sha256" in err.message


def test_header_and_query_auth_together() -> None:
    req = SignedRequest("GET", "/test.txt", [("X-Amz-Algorithm", "AWS4-HMAC-SHA256")], _get_example().headers)
    _raises(InvalidArgument, req)


# --- botocore round trips --------------------------------------------------------------------

KEY_CHARS = st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]) | st.sampled_from(
    list(" +~!*'()&$@=:,;?#%[]^`{}|\\\"<>/")
)
KEYS = st.text(KEY_CHARS, min_size=1, max_size=24)
QUERY = st.dictionaries(
    st.text(KEY_CHARS, min_size=1, max_size=8), st.text(KEY_CHARS, max_size=8), max_size=3
)
META = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)
CREDS = Credentials(AK, SECRET)


def _to_signed_request(method: str, url: str, headers: Mapping[str, Any]) -> SignedRequest:
    parts = urlsplit(url)
    query = []
    for item in parts.query.split("&") if parts.query else []:
        k, _, v = item.partition("=")
        query.append((unquote(k), unquote(v)))
    lowered = {k.lower(): v.decode() if isinstance(v, bytes) else str(v) for k, v in headers.items()}
    return SignedRequest(method, parts.path, query, lowered)


def _botocore(
    key: str, params: dict[str, str], meta: str, *, presign: bool, method: str = "PUT", body: bytes = b"x"
) -> SignedRequest:
    # Encoded the way botocore's serializer builds S3 URLs before any signer sees them.
    url = "http://bucket.s3.example.test:9000/" + quote(key, safe="/~")
    if params:
        url += "?" + percent_encode_sequence(params)
    data = b"" if presign else body  # presigners fold a body into the query string
    request = AWSRequest(method=method, url=url, data=data, headers={"x-amz-meta-m": meta})
    signer = (
        S3SigV4QueryAuth(CREDS, "s3", REGION, expires=300) if presign else S3SigV4Auth(CREDS, "s3", REGION)
    )
    signer.add_auth(request)
    prepared = request.prepare()
    headers = dict(prepared.headers)
    headers.setdefault("host", "bucket.s3.example.test:9000")
    return _to_signed_request(method, prepared.url, headers)


def _mutate_char(text: str, index: int, new: str) -> str:
    index %= len(text)
    replacement = new if text[index] != new else ("b" if new == "a" else "a")
    return text[:index] + replacement + text[index + 1 :]


def _mutate(req: SignedRequest, target: str, index: int, new: str) -> SignedRequest:
    if target == "path":
        decoded = unquote(req.raw_path)
        return SignedRequest(
            req.method, quote(_mutate_char(decoded, index, new), safe="/~"), req.query, req.headers
        )
    if target == "meta":
        headers = dict(req.headers)
        headers["x-amz-meta-m"] = _mutate_char(headers["x-amz-meta-m"], index, new)
        return SignedRequest(req.method, req.raw_path, req.query, headers)
    if target == "method":
        return SignedRequest("POST", req.raw_path, req.query, req.headers)
    if target == "signature":
        return _mutate_signature(req, index, new)
    query = list(req.query)
    user = [i for i, (k, _) in enumerate(query) if not k.startswith("X-Amz-")]
    if not user:
        query.append(("extra", new))
    else:
        i = user[index % len(user)]
        k, v = query[i]
        query[i] = (
            (k, _mutate_char(v + "z", index, new)) if target == "qvalue" else (_mutate_char(k, index, new), v)
        )
    return SignedRequest(req.method, req.raw_path, query, req.headers)


def _mutate_signature(req: SignedRequest, index: int, new: str) -> SignedRequest:
    hexnew = "0123456789abcdef"[ord(new) % 16]
    if "authorization" in req.headers:
        headers = dict(req.headers)
        head, _, sig = headers["authorization"].rpartition("Signature=")
        headers["authorization"] = head + "Signature=" + _mutate_char(sig, index, hexnew)
        return SignedRequest(req.method, req.raw_path, req.query, headers)
    query = [(k, _mutate_char(v, index, hexnew) if k == "X-Amz-Signature" else v) for k, v in req.query]
    return SignedRequest(req.method, req.raw_path, query, req.headers)


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(key=KEYS, params=QUERY, meta=META, presign=st.booleans())
def test_botocore_signed_requests_are_accepted(
    key: str, params: dict[str, str], meta: str, presign: bool
) -> None:
    req = _botocore(key, params, meta, presign=presign)
    result = authenticate(req, secrets, REGION, time.time())
    assert result is not None
    assert result.presigned is presign
    assert result.access_key == AK
    if presign:
        assert result.payload is PayloadMode.UNSIGNED
    else:
        assert result.content_sha256 == hashlib.sha256(b"x").hexdigest()


@FAST
@given(
    key=KEYS,
    params=QUERY,
    meta=META,
    presign=st.booleans(),
    target=st.sampled_from(["path", "meta", "method", "signature", "qkey", "qvalue"]),
    index=st.integers(0, 1000),
    new=st.sampled_from(list("aZ09")),
)
def test_any_one_character_mutation_is_rejected(
    key: str, params: dict[str, str], meta: str, presign: bool, target: str, index: int, new: str
) -> None:
    req = _mutate(_botocore(key, params, meta, presign=presign), target, index, new)
    with pytest.raises(SignatureDoesNotMatch):
        authenticate(req, secrets, REGION, time.time())


def test_botocore_path_escaped_differently_still_verifies() -> None:
    # A client that signs the path exactly as it sent it, with escapes AWS would not use.
    req = _botocore("plain-key", {}, "m", presign=False)
    raw = "/plain%2Dkey"
    headers = dict(req.headers)
    canonical = sigv4.canonical_request(
        "PUT", raw, "", headers, sorted(_signed(headers["authorization"])), headers["x-amz-content-sha256"]
    )
    amz_date = headers["x-amz-date"]
    scope = sigv4.scope(amz_date[:8], REGION)
    sig = sigv4.signature(
        sigv4.signing_key(SECRET, amz_date[:8], REGION), sigv4.string_to_sign(amz_date, scope, canonical)
    )
    head, _, _ = headers["authorization"].rpartition("Signature=")
    headers["authorization"] = head + "Signature=" + sig
    assert authenticate(SignedRequest("PUT", raw, [], headers), secrets, REGION, time.time()) is not None


def _signed(authorization: str) -> list[str]:
    part = authorization.split("SignedHeaders=")[1].split(",")[0]
    return part.split(";")


# --- presigned failures ----------------------------------------------------------------------


def _presigned(**overrides: str | None) -> SignedRequest:
    req = _botocore("k", {"versionId": "v1"}, "m", presign=True, method="GET", body=b"")
    query: dict[str, str | None] = dict(req.query)
    query.update(overrides)
    return SignedRequest(
        req.method, req.raw_path, [(k, v) for k, v in query.items() if v is not None], req.headers
    )


def _issued(req: SignedRequest) -> float:
    date = dict(req.query)["X-Amz-Date"]
    return datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()


def test_presigned_expiry() -> None:
    req = _presigned()
    issued = _issued(req)
    assert authenticate(req, secrets, REGION, issued + 300) is not None
    err = _raises(AccessDenied, req, now=issued + 301)
    assert err.message == "Request has expired"


def test_presigned_from_the_future() -> None:
    req = _presigned()
    _raises(AccessDenied, req, now=_issued(req) - 901)
    assert authenticate(req, secrets, REGION, _issued(req) - 899) is not None


@pytest.mark.parametrize("expires", ["0", "604801", "-1", "1.5", "abc", "+5", " 5"])
def test_presigned_expires_out_of_range(expires: str) -> None:
    _raises(AuthorizationQueryParametersError, _presigned(**{"X-Amz-Expires": expires}))


@pytest.mark.parametrize(
    "overrides",
    [
        {"X-Amz-Algorithm": "AWS4-HMAC-SHA1"},
        {"X-Amz-Date": None},
        {"X-Amz-Signature": None},
        {"X-Amz-SignedHeaders": None},
        {"X-Amz-Credential": f"{AK}/20130524/eu-west-1/s3/aws4_request"},
        {"X-Amz-Credential": "garbage"},
        {"X-Amz-Date": "2013-05-24"},
        {"X-Amz-SignedHeaders": "x-amz-meta-m"},
    ],
)
def test_presigned_parameter_errors(overrides: dict[str, str | None]) -> None:
    _raises(AuthorizationQueryParametersError, _presigned(**overrides))


def test_presigned_signature_excludes_only_x_amz_signature() -> None:
    req = _presigned()
    query = [(k, v) for k, v in req.query if k != "versionId"]
    _raises(
        SignatureDoesNotMatch, SignedRequest(req.method, req.raw_path, query, req.headers), now=_issued(req)
    )


def test_presigned_unknown_key() -> None:
    req = _presigned()
    cred = dict(req.query)["X-Amz-Credential"].replace(AK, "AKIDUNKNOWN")
    _raises(InvalidAccessKeyId, _presigned(**{"X-Amz-Credential": cred}), now=_issued(req))


def test_presigned_with_signed_content_sha256_header() -> None:
    headers = {"host": "h", "x-amz-content-sha256": EMPTY}
    date8 = "20130524"
    base = [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Credential", f"{AK}/{date8}/{REGION}/s3/aws4_request"),
        ("X-Amz-Date", "20130524T000000Z"),
        ("X-Amz-Expires", "60"),
        ("X-Amz-SignedHeaders", "host;x-amz-content-sha256"),
    ]
    canonical = sigv4.canonical_request(
        "PUT", "/b/k", sigv4.canonical_query(base), headers, ["host", "x-amz-content-sha256"], EMPTY
    )
    to_sign = sigv4.string_to_sign("20130524T000000Z", sigv4.scope(date8, REGION), canonical)
    sig = sigv4.signature(sigv4.signing_key(SECRET, date8, REGION), to_sign)
    result = authenticate(
        SignedRequest("PUT", "/b/k", [*base, ("X-Amz-Signature", sig)], headers), secrets, REGION, T0
    )
    assert result is not None and result.payload is PayloadMode.SIGNED and result.content_sha256 == EMPTY
