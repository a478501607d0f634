"""Formatting and parsing of the two timestamp forms S3 speaks: ISO 8601 in XML, HTTP-date in headers.

Kept free of rs3gw imports so every layer can use it.
"""

from __future__ import annotations

import email.utils
import time
from datetime import UTC, datetime
from functools import lru_cache

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUM = {name: i + 1 for i, name in enumerate(_MONTHS)}


def _micros(ts: float) -> int:
    # Rounding to microseconds first keeps float noise (x.123 stored as x.12299999) from losing a
    # millisecond, and gives every formatter the same idea of which second ts falls in.
    return round(ts * 1_000_000)


def whole_seconds(ts: float) -> int:
    """The second that http_date/iso8601 show for ts; conditional checks compare at this grain."""
    return _micros(ts) // 1_000_000


@lru_cache(maxsize=8192)
def _iso_second(secs: int) -> str:
    # Cached per second: objects written in bursts share seconds, and a 1000-key listing
    # formats 1000 of them.
    t = time.gmtime(secs)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


def iso8601(ts: float) -> str:
    """XML timestamp with millisecond precision, truncated so it agrees with second-level headers."""
    secs, rem = divmod(_micros(ts), 1_000_000)
    return f"{_iso_second(secs)}.{rem // 1000:03d}Z"


@lru_cache(maxsize=8192)
def _http_date_second(secs: int) -> str:
    t = time.gmtime(secs)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


def http_date(ts: float) -> str:
    """RFC 7231 IMF-fixdate (Last-Modified, Date); sub-second part is dropped as HTTP requires."""
    return _http_date_second(whole_seconds(ts))


def _parse_fixdate(s: str) -> float | None:
    """Fast path for the IMF-fixdate every modern client sends: 'Sun, 06 Nov 1994 08:49:37 GMT'."""
    if len(s) != 29 or s[3:5] != ", " or s[25:] != " GMT" or s[16] != " " or s[19] != ":" or s[22] != ":":
        return None
    month = _MONTH_NUM.get(s[8:11])
    if month is None or s[7] != " " or s[11] != " ":
        return None
    try:
        day, year = int(s[5:7]), int(s[12:16])
        hour, minute, sec = int(s[17:19]), int(s[20:22]), int(s[23:25])
    except ValueError:
        return None
    return _timestamp(year, month, day, hour, minute, sec)


def _timestamp(year: int, month: int, day: int, hour: int, minute: int, sec: int) -> float | None:
    """POSIX time of a UTC calendar time, None for impossible dates (Feb 30) instead of rolling over."""
    try:
        return datetime(year, month, day, hour, minute, sec, tzinfo=UTC).timestamp()
    except (ValueError, OverflowError):
        return None


def parse_http_date(s: str) -> float | None:
    """POSIX time of an HTTP-date (IMF-fixdate, RFC 850 or asctime); None when unparseable.

    Callers treat None as "header absent", which is what S3 does with bad conditional dates.
    """
    s = s.strip()
    fast = _parse_fixdate(s)
    if fast is not None:
        return fast
    try:
        parsed = email.utils.parsedate_tz(s)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    base = _timestamp(*parsed[:6])
    if base is None:
        return None
    return base - (parsed[9] or 0)
