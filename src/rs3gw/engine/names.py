"""Validation of bucket names, object keys and user metadata, with AWS's limits and error codes."""

from __future__ import annotations

import ipaddress
import re

from rs3gw import errors

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
MAX_KEY_BYTES = 1024
MAX_USER_META_BYTES = 2048


def check_bucket_name(name: str) -> None:
    """AWS general-purpose bucket naming rules (docs: "Bucket naming rules")."""
    bad = (
        not _BUCKET_RE.match(name)
        or ".." in name
        or ".-" in name
        or "-." in name
        or name.startswith(("xn--", "sthree-", "amzn-s3-demo-"))
        or name.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"))
        or _is_ip(name)
    )
    if bad:
        raise errors.InvalidBucketName(BucketName=name)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


def check_key(key: str) -> None:
    if not key:
        raise errors.InvalidArgument("Object key must not be empty")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise errors.KeyTooLongError(Size=str(len(key.encode())), MaxSizeAllowed=str(MAX_KEY_BYTES))


def check_user_meta(meta: dict[str, str]) -> None:
    size = sum(len(k.encode()) + len(v.encode()) for k, v in meta.items())
    if size > MAX_USER_META_BYTES:
        raise errors.MetadataTooLarge(Size=str(size), MaxSizeAllowed=str(MAX_USER_META_BYTES))
