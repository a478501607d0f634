"""Tag-set rules shared by object and bucket tagging: S3's limits, reserved prefix and charset.

Pure functions; the protocol layer parses XML bodies or the x-amz-tagging header into pairs.
"""

from __future__ import annotations

import json
import unicodedata
from urllib.parse import parse_qsl

from rs3gw import errors

MAX_OBJECT_TAGS = 10
MAX_BUCKET_TAGS = 50
MAX_KEY_LEN = 128
MAX_VALUE_LEN = 256
_ALLOWED_PUNCT = frozenset("_.:/=+-@")


def _allowed(text: str) -> bool:
    """S3's tag pattern ``^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$`` (API_control_S3Tag): letters,
    separators and numbers of any script, plus a few punctuation marks."""
    return all(c in _ALLOWED_PUNCT or unicodedata.category(c)[0] in "LZN" for c in text)


def validate(pairs: list[tuple[str, str]], limit: int, kind: str = "Object") -> dict[str, str]:
    """The tag set as a dict, or InvalidTag naming the first rule broken (AWS's messages).

    Too many tags is 400 BadRequest, not InvalidTag: AWS answers "Object tags cannot be greater
    than 10" (boto/boto3#1213) and "Bucket tag count cannot be greater than 50" (versitygw's tests
    against S3); InvalidTag is for one bad key, value or a duplicate."""
    if len(pairs) > limit:
        what = "tag count" if kind == "Bucket" else "tags"
        raise errors.BadRequest(f"{kind} {what} cannot be greater than {limit}")
    out: dict[str, str] = {}
    for key, value in pairs:
        if not key or not _allowed(key):
            raise errors.InvalidTag("The TagKey you have provided is invalid", TagKey=key)
        if len(key) > MAX_KEY_LEN:
            raise errors.InvalidTag(
                f"The TagKey you have provided is too long, max {MAX_KEY_LEN}", TagKey=key
            )
        if len(value) > MAX_VALUE_LEN:
            raise errors.InvalidTag(
                f"The TagValue you have provided is too long, max {MAX_VALUE_LEN}", TagKey=key, TagValue=value
            )
        if not _allowed(value):
            raise errors.InvalidTag("The TagValue you have provided is invalid", TagKey=key, TagValue=value)
        if key.lower().startswith("aws:"):
            raise errors.InvalidTag("Your TagKey cannot be prefixed with aws:", TagKey=key)
        if key in out:
            raise errors.InvalidTag("Cannot provide multiple Tags with the same key", TagKey=key)
        out[key] = value
    return out


def parse_header(value: str) -> dict[str, str]:
    """x-amz-tagging: URL-encoded query parameters (``k1=v1&k2``); a key without '=' has value ''.

    Header values reach us as latin-1 text, so percent-decoding happens on the raw bytes as UTF-8.
    """
    try:
        raw = value.encode("latin-1").decode("utf-8")
        pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=False, errors="strict")
    except (UnicodeError, ValueError):
        raise _bad_header() from None
    if len({k for k, _ in pairs}) != len(pairs):
        raise _bad_header()
    return validate(pairs, MAX_OBJECT_TAGS)


def _bad_header() -> errors.S3Error:
    return errors.InvalidArgument(
        "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters "
        "without tag name duplicates.",
        ArgumentName="x-amz-tagging",
    )


def dumps(tags: dict[str, str]) -> str:
    """The stored form of a bucket's tag set (bucket_config "tagging")."""
    return json.dumps(list(tags.items()), separators=(",", ":"), ensure_ascii=False)


def loads(text: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in json.loads(text)}
