"""Conditional request evaluation (If-Match & co., RFC 7232 section 6) as S3 applies it.

Used for GET/HEAD (failures are 412 or 304) and for copy sources (every failure is 412).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rs3gw.errors import NotModified, PreconditionFailed
from rs3gw.timefmt import http_date, parse_http_date, whole_seconds

_NAMES = ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since")


@dataclass(frozen=True, slots=True)
class Conditions:
    """The four precondition headers, raw as received; absent headers are None."""

    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: str | None = None
    if_unmodified_since: str | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], prefix: str = "") -> Conditions:
        """Collect the headers; prefix "x-amz-copy-source-" selects CopyObject's source conditions.

        Header names are matched case-insensitively because callers may pass raw HTTP headers.
        """
        prefix = prefix.lower()
        wanted = {prefix + n: i for i, n in enumerate(_NAMES)}
        values: list[str | None] = [None, None, None, None]
        for key, value in headers.items():
            idx = wanted.get(key.lower())
            if idx is not None:
                values[idx] = value
        return cls(*values)

    @property
    def empty(self) -> bool:
        """Lets callers skip evaluation entirely on the common unconditional request."""
        return (
            self.if_match is None
            and self.if_none_match is None
            and self.if_modified_since is None
            and self.if_unmodified_since is None
        )


def _etag_matches(header: str, etag: str) -> bool:
    """Whether a (possibly listed, quoted, weak, or '*') ETag header names this object.

    S3 ETags are opaque and always strong, so W/ is tolerated and compared like a strong tag.
    """
    bare = etag.strip('"')
    for item in header.split(","):
        token = item.strip()
        if token == "*":
            return True
        if token[:2] in ("W/", "w/"):
            token = token[2:]
        if token.strip('"') == bare:
            return True
    return False


def _evaluate(cond: Conditions, etag: str, last_modified: float) -> tuple[int, str]:
    """(0, "") when the request may proceed, else the RFC 7232 section 6 status and the header.

    The precedence below yields S3's documented combinations: a true If-Match overrides a false
    If-Unmodified-Since (200), and If-None-Match overrides If-Modified-Since (304 when it fails).
    """
    lm: int | None = None
    if cond.if_match is not None:
        if not _etag_matches(cond.if_match, etag):
            return 412, "If-Match"
    elif cond.if_unmodified_since is not None:
        since = parse_http_date(cond.if_unmodified_since)
        if since is not None:
            lm = whole_seconds(last_modified)
            if lm > since:
                return 412, "If-Unmodified-Since"
    if cond.if_none_match is not None:
        if _etag_matches(cond.if_none_match, etag):
            return 304, "If-None-Match"
    elif cond.if_modified_since is not None:
        since = parse_http_date(cond.if_modified_since)
        if since is not None:
            if lm is None:
                lm = whole_seconds(last_modified)
            if lm <= since:
                return 304, "If-Modified-Since"
    return 0, ""


def check_read(cond: Conditions, etag: str, last_modified: float) -> None:
    """Raise PreconditionFailed or NotModified when a GET/HEAD must not return the object.

    The 412 carries S3's <Condition> field naming the header that failed.
    """
    status, header = _evaluate(cond, etag, last_modified)
    if status == 412:
        raise PreconditionFailed(Condition=header)
    if status == 304:
        # RFC 7232 section 4.1: a 304 still names the representation, and S3 sends both.
        err = NotModified()
        err.headers["etag"] = f'"{etag}"'
        err.headers["last-modified"] = http_date(last_modified)
        raise err


def check_copy_source(cond: Conditions, etag: str, last_modified: float) -> None:
    """Copy-source conditions: S3 answers 412 for every failure, a copy never yields 304."""
    status, header = _evaluate(cond, etag, last_modified)
    if status:
        raise PreconditionFailed(Condition="x-amz-copy-source-" + header)
