"""Range header interpretation with S3's semantics (RFC 7233, single range only).

S3 ignores a Range header it cannot parse (serving the whole object) but answers 416 to a
well-formed range that selects no byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rs3gw.errors import InvalidRange, S3Error

_RANGE_RE = re.compile(r"bytes\s*=\s*(\d*)\s*-\s*(\d*)", re.IGNORECASE | re.ASCII)

# Any position with more digits than this exceeds every object size; capping avoids int() on
# thousands of digits (which Python refuses) while keeping the 416/clamp semantics.
_MAX_DIGITS = 20
_HUGE = 10**_MAX_DIGITS


def _num(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_DIGITS else _HUGE


@dataclass(frozen=True, slots=True)
class ByteRange:
    """A satisfiable byte range, already clamped to the object; both ends inclusive."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, total: int) -> str:
        """Value of the Content-Range header of the 206 response."""
        return f"bytes {self.start}-{self.end}/{total}"


def _unsatisfiable(size: int) -> S3Error:
    err = InvalidRange(ActualObjectSize=str(size))
    err.headers["Content-Range"] = f"bytes */{size}"
    return err


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range to serve, or None to serve the whole object (no header, or one S3 ignores)."""
    if header is None:
        return None
    m = _RANGE_RE.fullmatch(header.strip())
    if m is None:
        # Not "bytes=", garbage, or several ranges: S3 disregards the header.
        return None
    first, last = m.group(1), m.group(2)
    if first:
        start = _num(first)
        if last:
            end = _num(last)
            if end < start:
                return None  # syntactically invalid per RFC 7233: ignored
            end = min(end, size - 1)
        else:
            end = size - 1
        if start >= size:
            raise _unsatisfiable(size)
        return ByteRange(start, end)
    if not last:
        return None  # "bytes=-"
    suffix = _num(last)
    if suffix == 0 or size == 0:
        raise _unsatisfiable(size)
    return ByteRange(max(0, size - suffix), size - 1)
