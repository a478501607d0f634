"""AWS Signature Version 2 (HMAC-SHA1), header and presigned-query forms.

Still needed because botocore presigns with it by default whenever a custom endpoint is set, and
older tools (s3cmd, rclone's v2_auth) send it; verification goes through the same entry point
as SigV4 so every route keeps one signature check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

# Sub-resources that take part in the canonical resource (as botocore's HmacV1Auth signs them).
SUBRESOURCES = frozenset(
    {
        "accelerate", "acl", "analytics", "cors", "delete", "inventory", "lifecycle", "location",
        "logging", "metrics", "notification", "object-lock", "partNumber", "policy", "replication",
        "requestPayment", "response-cache-control", "response-content-disposition",
        "response-content-encoding", "response-content-language", "response-content-type",
        "response-expires", "restore", "select", "select-type", "storageClass", "tagging", "torrent",
        "uploadId", "uploads", "versionId", "versioning", "versions", "website",
    }
)  # fmt: skip


def canonical_resource(raw_path: str, query: list[tuple[str, str]], vhost_bucket: str = "") -> str:
    """The path as sent (with the bucket prepended for virtual-host requests) plus sub-resources."""
    buf = f"/{vhost_bucket}{raw_path}" if vhost_bucket else raw_path
    subs = sorted((k, v) for k, v in query if k in SUBRESOURCES)
    if subs:
        buf += "?" + "&".join(f"{k}={v}" if v else k for k, v in subs)
    return buf


def string_to_sign(
    method: str,
    headers: Mapping[str, str],
    date_or_expires: str,
    resource: str,
    extra_amz: Mapping[str, str] | None = None,
) -> str:
    """``extra_amz`` carries x-amz-* values a presigned URL moved into its query string."""
    amz = {k: v.strip() for k, v in headers.items() if k.startswith("x-amz-")}
    for k, v in (extra_amz or {}).items():
        amz.setdefault(k, v.strip())
    lines = [
        method,
        headers.get("content-md5", "").strip(),
        headers.get("content-type", "").strip(),
        date_or_expires,
        *(f"{k}:{amz[k]}" for k in sorted(amz)),
        resource,
    ]
    return "\n".join(lines)


def resource_variants(raw_path: str, query: list[tuple[str, str]], vhost_bucket: str = "") -> list[str]:
    """Bucket-level requests are signed as ``/bucket`` by some clients and ``/bucket/`` by others
    (botocore); AWS accepts both, so both are tried."""
    main = canonical_resource(raw_path, query, vhost_bucket)
    path = f"/{vhost_bucket}{raw_path}" if vhost_bucket else raw_path
    if path.count("/") == 1 and len(path) > 1:
        return [main, canonical_resource(raw_path + "/", query, vhost_bucket)]
    if vhost_bucket and raw_path == "/":
        return [main, canonical_resource("", query, vhost_bucket)]
    return [main]


def signature(secret: str, text: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()).decode()


def matches(secret: str, text: str, provided: str) -> bool:
    return hmac.compare_digest(signature(secret, text).encode(), provided.encode())


def http_date_epoch(value: str) -> float | None:
    """Seconds since the epoch of an RFC 7231 date, or None when it is no date."""
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
