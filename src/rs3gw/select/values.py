"""S3 Select values: NULL/MISSING, the coercions S3 Select applies (CSV fields are strings), CAST,
comparisons, arithmetic and the scalar SQL functions. Pure."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from rs3gw import errors


def _err(code: str, msg: str | None = None) -> errors.S3Error:
    return errors.error_class(code)(msg)


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # an absent attribute in a SELECT list, unlike a present NULL


def num(v: Any) -> Any:
    """Numbers pass through; numeric strings (every CSV field) become numbers; else None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float, Decimal)):
        return v
    if isinstance(v, str):
        s = v.strip()
        try:
            return int(s)
        except ValueError:
            pass
        try:
            return float(s)
        except ValueError:
            return None
    return None


def pair(a: Any, b: Any) -> tuple[Any, Any]:
    """Make two values comparable, the way S3 Select compares a CSV string with a number."""
    if type(a) is type(b) or a is None or b is None:
        return a, b
    na, nb = num(a), num(b)
    if na is not None and nb is not None:
        if isinstance(na, Decimal) and isinstance(nb, float):
            na = float(na)
        elif isinstance(nb, Decimal) and isinstance(na, float):
            nb = float(nb)
        return na, nb
    if isinstance(a, bool) and isinstance(b, str):
        return a, _bool_or_none(b)
    if isinstance(b, bool) and isinstance(a, str):
        return _bool_or_none(a), b
    if isinstance(a, dt.datetime) and isinstance(b, str):
        return a, _timestamp(b)
    if isinstance(b, dt.datetime) and isinstance(a, str):
        return _timestamp(a), b
    return a, b


def _bool_or_none(s: str) -> bool | None:
    low = s.strip().lower()
    return True if low == "true" else False if low == "false" else None


CMP: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: bool(a == b),
    "<>": lambda a, b: bool(a != b),
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
}


def compare(op: str, a: Any, b: Any) -> bool | None:
    a, b = pair(a, b)
    if a is None or b is None:
        return None
    try:
        return CMP[op](a, b)
    except TypeError:
        if op in ("=", "<>"):
            return op == "<>"
        raise _err("InvalidDataType", f"Cannot compare {type(a).__name__} with {type(b).__name__}") from None


def arith(op: str, a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    if op == "||":
        return to_string(a) + to_string(b)
    x, y = num(a), num(b)
    if x is None or y is None:
        raise _err("InvalidDataType", f"Arithmetic {op} needs numbers")
    if isinstance(x, Decimal) and isinstance(y, float):
        x = float(x)
    elif isinstance(y, Decimal) and isinstance(x, float):
        y = float(y)
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if y == 0:
        raise _err("DivisionByZero")
    if op == "/":
        if isinstance(x, int) and isinstance(y, int):
            q = abs(x) // abs(y)
            return q if (x >= 0) == (y >= 0) else -q
        return x / y
    return math.fmod(x, y) if isinstance(x, float) or isinstance(y, float) else _int_mod(x, y)


def _int_mod(x: Any, y: Any) -> Any:
    r = abs(x) % abs(y)
    return r if x >= 0 else -r


def to_string(v: Any) -> str:
    if v is None or v is MISSING:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, dt.datetime):
        return v.isoformat().replace("+00:00", "Z")
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str, separators=(",", ":"))
    return str(v)


def _timestamp(s: str) -> dt.datetime | None:
    text = s.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def cast(v: Any, typ: str) -> Any:
    if v is None:
        return None
    try:
        return _CASTS[typ](v)
    except (ValueError, TypeError, InvalidOperation, OverflowError):
        raise _err("CastFailed", f"Cannot cast {to_string(v)!r} to {typ}") from None


def _cast_int(v: Any) -> int:
    if isinstance(v, str):
        return int(Decimal(v.strip()))
    return int(v)


def _cast_float(v: Any) -> float:
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    return float(v.strip() if isinstance(v, str) else v)


def _cast_decimal(v: Any) -> Decimal:
    if isinstance(v, float):
        return Decimal(repr(v))
    return Decimal(v.strip() if isinstance(v, str) else v)


def _cast_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float, Decimal)):
        return v != 0
    b = _bool_or_none(str(v))
    if b is None:
        raise ValueError(v)
    return b


def _cast_ts(v: Any) -> dt.datetime:
    if isinstance(v, dt.datetime):
        return v
    t = _timestamp(str(v))
    if t is None:
        raise ValueError(v)
    return t


_CASTS: dict[str, Callable[[Any], Any]] = {
    "INT": _cast_int,
    "FLOAT": _cast_float,
    "DECIMAL": _cast_decimal,
    "STRING": to_string,
    "BOOL": _cast_bool,
    "TIMESTAMP": _cast_ts,
}


def like_regex(pattern: str, escape: str | None) -> re.Pattern[str]:
    if escape is not None and len(escape) != 1:
        raise _err("InvalidDataType", "The LIKE escape must be one character")
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if escape is not None and c == escape and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def truth(v: Any) -> bool | None:
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, str):
        return _bool_or_none(v)
    raise _err("InvalidDataType", "A condition must be boolean")


def and3(a: bool | None, b: Callable[[], bool | None]) -> bool | None:
    if a is False:
        return False
    bv = b()
    if bv is False:
        return False
    return None if a is None or bv is None else True


def or3(a: bool | None, b: Callable[[], bool | None]) -> bool | None:
    if a is True:
        return True
    bv = b()
    if bv is True:
        return True
    return None if a is None or bv is None else False


def _str_arg(v: Any, fn: str) -> str:
    if not isinstance(v, str):
        if isinstance(v, (int, float, Decimal, bool)):
            raise _err("IncorrectSqlFunctionArgumentType", f"{fn} needs a string")
        return to_string(v)
    return v


def _lower(v: Any) -> Any:
    return None if v is None else _str_arg(v, "LOWER").lower()


def _upper(v: Any) -> Any:
    return None if v is None else _str_arg(v, "UPPER").upper()


def _char_length(v: Any) -> Any:
    return None if v is None else len(_str_arg(v, "CHAR_LENGTH"))


def _trim(where: str, v: Any, chars: Any) -> Any:
    if v is None:
        return None
    s = _str_arg(v, "TRIM")
    c = " " if chars is None else to_string(chars)
    return s.lstrip(c) if where == "LEADING" else s.rstrip(c) if where == "TRAILING" else s.strip(c)


def _substring(v: Any, start: Any, length: Any = None) -> Any:
    if v is None or start is None:
        return None
    s = _str_arg(v, "SUBSTRING")
    st, ln = num(start), num(length) if length is not None else None
    if not isinstance(st, int) or (length is not None and not isinstance(ln, int)):
        raise _err("IncorrectSqlFunctionArgumentType", "SUBSTRING positions must be integers")
    # SQL positions are 1-based and may start before the string: SUBSTRING('abc', 0, 2) is 'a'.
    end = len(s) + 1 if ln is None else st + ln
    if ln is not None and ln < 0:
        raise _err("EvaluatorInvalidArguments", "SUBSTRING length must not be negative")
    return s[max(st, 1) - 1 : max(end - 1, 0)]


def _coalesce(*vals: Any) -> Any:
    return next((v for v in vals if v is not None), None)


def _nullif(a: Any, b: Any) -> Any:
    return None if compare("=", a, b) else a


FUNCS: dict[str, Callable[..., Any]] = {
    "LOWER": _lower,
    "UPPER": _upper,
    "CHAR_LENGTH": _char_length,
    "TRIM": _trim,
    "SUBSTRING": _substring,
    "COALESCE": _coalesce,
    "NULLIF": _nullif,
}
