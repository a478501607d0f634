"""Pure AWS Signature V4 building blocks: canonical forms, string to sign, keys and signatures.

Everything here is deterministic and I/O-free so that verify.py and the tests share one definition.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from urllib.parse import quote, unquote_to_bytes

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def uri_encode(value: str | bytes, *, keep_slash: bool = False) -> str:
    """AWS URI-encoding: only unreserved characters survive, the rest become %XX (uppercase).

    ``quote`` already treats A-Za-z0-9 and -_.~ as safe and emits uppercase hex, which is exactly
    the AWS rule; S3 paths keep '/' as a separator.
    """
    return quote(value, safe="/" if keep_slash else "")


def canonical_uri(raw_path: str) -> str:
    """Re-encode the decoded path so clients that escape more or less than AWS still agree with us.

    Cached: hot keys are requested over and over, and quote() is pure Python. Not for long paths
    (no S3 key is over 1,024 bytes, ~3 KiB escaped): 4,096 kept 64 KiB paths would be 0.5 GiB."""
    return _canonical_uri_cached(raw_path) if len(raw_path) <= 4096 else _canonical_uri(raw_path)


def _canonical_uri(raw_path: str) -> str:
    if not raw_path:
        return "/"
    return uri_encode(unquote_to_bytes(raw_path), keep_slash=True)


_canonical_uri_cached = lru_cache(maxsize=4096)(_canonical_uri)


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    encoded = sorted((uri_encode(k), uri_encode(v)) for k, v in pairs)
    if not encoded:  # most requests: no query at all
        return ""
    return "&".join(f"{k}={v}" for k, v in encoded)


def _trim_all(value: str) -> str:
    # Same whitespace folding as botocore and the AWS docs' "Trimall".
    return " ".join(value.split())


def _wire_text(value: str) -> str:
    # Header values reach us latin-1 decoded; clients sign the raw (UTF-8) bytes, so sign those.
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def canonical_headers(headers: Mapping[str, str], signed: Sequence[str]) -> str:
    """One ``name:value\\n`` line per signed header; absent headers sign as empty values."""
    return "".join(f"{name}:{_trim_all(_wire_text(headers.get(name, '')))}\n" for name in signed)


def canonical_request(
    method: str,
    uri: str,
    query: str,
    headers: Mapping[str, str],
    signed: Sequence[str],
    payload_hash: str,
) -> str:
    return "\n".join([method, uri, query, canonical_headers(headers, signed), ";".join(signed), payload_hash])


def scope(date8: str, region: str, service: str = "s3") -> str:
    return f"{date8}/{region}/{service}/{TERMINATOR}"


def string_to_sign(amz_date: str, credential_scope: str, canonical: str) -> str:
    return "\n".join([ALGORITHM, amz_date, credential_scope, sha256_hex(canonical.encode("utf-8"))])


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.digest(key, msg.encode("utf-8"), "sha256")


@lru_cache(maxsize=1024)
def signing_key(secret: str, date8: str, region: str, service: str = "s3") -> bytes:
    """Cached because the key only changes daily per credential, yet every request needs it."""
    k_date = _hmac(("AWS4" + secret).encode("utf-8"), date8)
    return _hmac(_hmac(_hmac(k_date, region), service), TERMINATOR)


_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))
_BLOCK = 64  # SHA-256's block size


@lru_cache(maxsize=1024)
def _pads(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """HMAC-SHA256's inner and outer hash states after the key block (RFC 2104), per signing key.

    A key serves a credential for a whole day, so hashing its pads once and copying the states
    per message halves an HMAC's cost; and unlike ``hmac.digest`` (which releases the GIL around
    OpenSSL's one-shot HMAC, so every signature check could hand the loop to another thread)
    small updates here keep it. The cached objects are only ever copied, never updated."""
    block = (key if len(key) <= _BLOCK else hashlib.sha256(key).digest()).ljust(_BLOCK, b"\0")
    return hashlib.sha256(block.translate(_IPAD)), hashlib.sha256(block.translate(_OPAD))


def signature(key: bytes, to_sign: str) -> str:
    """HMAC-SHA256 hex, identical to ``hmac.digest(key, to_sign, "sha256").hex()``."""
    inner, outer = _pads(key)
    h = inner.copy()
    h.update(to_sign.encode("utf-8"))
    o = outer.copy()
    o.update(h.digest())
    return o.hexdigest()
