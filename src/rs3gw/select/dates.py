"""S3 Select's date functions: EXTRACT, DATE_ADD, DATE_DIFF, TO_STRING, TO_TIMESTAMP, UTCNOW. Pure.

Timestamps are ``datetime`` values (from CAST/TO_TIMESTAMP or a Parquet timestamp column); one
without an offset is taken as UTC, as S3 Select does for ``2010T``-style values.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from rs3gw import errors
from rs3gw.select.values import cast, num

UNIT_SECONDS = {"DAY": 86400, "HOUR": 3600, "MINUTE": 60, "SECOND": 1}


def _err(code: str, msg: str | None = None) -> errors.S3Error:
    return errors.error_class(code)(msg)


def _ts(v: Any, fn: str) -> dt.datetime | None:
    if v is None:
        return None
    if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
        v = dt.datetime(v.year, v.month, v.day)
    if not isinstance(v, dt.datetime):
        if not isinstance(v, str):
            raise _err("IncorrectSqlFunctionArgumentType", f"{fn} needs a timestamp")
        v = cast(v, "TIMESTAMP")
    t: dt.datetime = v
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


def _int(v: Any, fn: str) -> int:
    n = num(v)
    if not isinstance(n, int):
        raise _err("IncorrectSqlFunctionArgumentType", f"{fn} needs an integer quantity")
    return n


def _add_months(t: dt.datetime, months: int) -> dt.datetime:
    total = t.year * 12 + t.month - 1 + months
    year, month = divmod(total, 12)
    day = min(t.day, calendar.monthrange(year, month + 1)[1])
    return t.replace(year=year, month=month + 1, day=day)


def extract(part: str, v: Any) -> Any:
    t = _ts(v, "EXTRACT")
    if t is None:
        return None
    if part.startswith("TIMEZONE_"):
        off = int((t.utcoffset() or dt.timedelta()).total_seconds()) // 60
        hours, minutes = divmod(abs(off), 60)
        sign = -1 if off < 0 else 1
        return sign * (hours if part == "TIMEZONE_HOUR" else minutes)
    return int(getattr(t, part.lower()))


def date_add(part: str, quantity: Any, v: Any) -> Any:
    t = _ts(v, "DATE_ADD")
    if t is None or quantity is None:
        return None
    q = _int(quantity, "DATE_ADD")
    if part in ("YEAR", "MONTH"):
        return _add_months(t, q * 12 if part == "YEAR" else q)
    return t + dt.timedelta(seconds=q * UNIT_SECONDS[part])


def date_diff(part: str, a: Any, b: Any) -> Any:
    """Whole date parts from ``a`` to ``b``, truncated toward zero (a partial unit does not count)."""
    t1, t2 = _ts(a, "DATE_DIFF"), _ts(b, "DATE_DIFF")
    if t1 is None or t2 is None:
        return None
    if part in ("YEAR", "MONTH"):
        t2 = t2.astimezone(t1.tzinfo)
        months = (t2.year - t1.year) * 12 + t2.month - t1.month
        rest1 = (t1.day, t1.time())
        rest2 = (t2.day, t2.time())
        if months > 0 and rest2 < rest1:
            months -= 1
        elif months < 0 and rest2 > rest1:
            months += 1
        return int(months / 12) if part == "YEAR" else months
    seconds = (t2 - t1).total_seconds()
    return int(seconds / UNIT_SECONDS[part])


def to_timestamp(v: Any) -> Any:
    return None if v is None else _ts(v, "TO_TIMESTAMP")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_PATTERN = re.compile(r"'(?:[^']|'')*'|([A-Za-z])\1*|[^A-Za-z']+")


def _offset(t: dt.datetime, sym: str, width: int) -> str:
    off = int((t.utcoffset() or dt.timedelta()).total_seconds()) // 60
    if off == 0 and sym == "X":
        return "Z"
    sign = "-" if off < 0 else "+"
    h, m = divmod(abs(off), 60)
    if width == 1:
        return f"{sign}{h:02d}" + (f"{m:02d}" if m else "")
    return f"{sign}{h:02d}{':' if width >= 3 else ''}{m:02d}"


def _field(t: dt.datetime, sym: str, width: int) -> str:
    h12 = t.hour % 12 or 12
    if sym == "y":
        return f"{t.year % 100:02d}" if width == 2 else f"{t.year:0{width}d}"
    if sym == "M":
        if width >= 3:
            name = calendar.month_name[t.month]
            return name[:3] if width == 3 else name if width == 4 else name[0]
        return f"{t.month:0{width}d}"
    simple = {"d": t.day, "H": t.hour, "h": h12, "m": t.minute, "s": t.second}
    if sym in simple:
        return f"{simple[sym]:0{width}d}"
    if sym == "a":
        return "AM" if t.hour < 12 else "PM"
    if sym == "S":  # fraction of a second, to as many digits as asked
        return f"{t.microsecond:06d}000"[:width].ljust(width, "0")
    if sym == "n":
        return str(t.microsecond * 1000)
    if sym in ("X", "x"):
        return _offset(t, sym, width)
    raise _err("EvaluatorInvalidTimestampFormatPatternSymbol", f"Invalid format symbol {sym!r}")


def to_string(v: Any, pattern: Any) -> Any:
    """Java-style patterns as S3 Select documents them: yyyy MM dd HH mm ss SSS a X, 'quoted' text."""
    t = _ts(v, "TO_STRING")
    if t is None or pattern is None:
        return None
    if not isinstance(pattern, str):
        raise _err("IncorrectSqlFunctionArgumentType", "TO_STRING needs a string pattern")
    out: list[str] = []
    for m in _PATTERN.finditer(pattern):
        tok = m.group()
        if tok.startswith("'"):
            out.append(tok[1:-1].replace("''", "'") if len(tok) > 2 else "'")
        elif m.group(1):
            out.append(_field(t, tok[0], len(tok)))
        else:
            out.append(tok)
    return "".join(out)


DATE_FUNCS: dict[str, Callable[..., Any]] = {
    "EXTRACT": extract,
    "DATE_ADD": date_add,
    "DATE_DIFF": date_diff,
    "TO_STRING": to_string,
    "TO_TIMESTAMP": to_timestamp,
    "UTCNOW": utcnow,
}
