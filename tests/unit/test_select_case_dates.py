"""S3 Select CASE expressions and date functions, evaluated in memory against hand-computed values."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from rs3gw import errors
from rs3gw.select.evaluate import Binding, Program
from rs3gw.select.sql import parse


def value(expr: str, doc: Any = None) -> Any:
    prog = Program(parse(f"SELECT {expr} FROM S3Object s"), Binding())
    rows = [r for r in prog.run(iter([doc or {}])) if r is not None]
    return rows[0][1][0]


@pytest.mark.parametrize(
    ("expr", "doc", "want"),
    [
        ("CASE WHEN s.n > 10 THEN 'big' WHEN s.n > 5 THEN 'mid' ELSE 'small' END", {"n": 7}, "mid"),
        ("CASE WHEN s.n > 10 THEN 'big' WHEN s.n > 5 THEN 'mid' ELSE 'small' END", {"n": 70}, "big"),
        ("CASE WHEN s.n > 10 THEN 'big' END", {"n": 1}, None),
        ("CASE WHEN s.n > 10 THEN 'big' END", {}, None),  # NULL condition is not TRUE
        ("CASE s.c WHEN 'a' THEN 1 WHEN 'b' THEN 2 ELSE 0 END", {"c": "b"}, 2),
        ("CASE s.c WHEN 'a' THEN 1 WHEN 'b' THEN 2 ELSE 0 END", {"c": "z"}, 0),
        ("CASE s.n WHEN 3 THEN s.n * 10 END + 1", {"n": "3"}, 31),  # CSV-style string coerces
        ("CASE WHEN (CASE WHEN s.n = 1 THEN TRUE END) THEN 'yes' ELSE 'no' END", {"n": 1}, "yes"),
    ],
)
def test_case(expr: str, doc: dict[str, Any], want: Any) -> None:
    assert value(expr, doc) == want


def test_case_in_where_and_inside_aggregates() -> None:
    sql = "SELECT SUM(CASE WHEN s.k = 'x' THEN s.v ELSE 0 END), COUNT(*) FROM S3Object s WHERE CASE s.k WHEN 'y' THEN FALSE ELSE TRUE END"
    docs = [{"k": "x", "v": 2}, {"k": "y", "v": 100}, {"k": "x", "v": 5}, {"k": "z", "v": 7}]
    rows = [r for r in Program(parse(sql), Binding()).run(iter(docs)) if r is not None]
    assert list(rows[0][1]) == [7, 3]


UTC = dt.UTC


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("EXTRACT(YEAR FROM TO_TIMESTAMP('2017-01-02T03:04:05Z'))", 2017),
        ("EXTRACT(month FROM TO_TIMESTAMP('2017-01-02T03:04:05Z'))", 1),
        ("EXTRACT(DAY FROM CAST('2017-01-02T03:04:05Z' AS TIMESTAMP))", 2),
        ("EXTRACT(HOUR FROM TO_TIMESTAMP('2017-01-02T03:04:05Z'))", 3),
        ("EXTRACT(MINUTE FROM TO_TIMESTAMP('2017-01-02T03:04:05Z'))", 4),
        ("EXTRACT(SECOND FROM TO_TIMESTAMP('2017-01-02T03:04:05Z'))", 5),
        ("EXTRACT(TIMEZONE_HOUR FROM TO_TIMESTAMP('2017-01-02T03:04:05-07:30'))", -7),
        ("EXTRACT(TIMEZONE_MINUTE FROM TO_TIMESTAMP('2017-01-02T03:04:05+07:30'))", 30),
        ("DATE_ADD(year, 5, TO_TIMESTAMP('2010-01-01T00:00:00Z'))", dt.datetime(2015, 1, 1, tzinfo=UTC)),
        ("DATE_ADD(month, 13, TO_TIMESTAMP('2010-01-31T00:00:00Z'))", dt.datetime(2011, 2, 28, tzinfo=UTC)),
        ("DATE_ADD(day, -1, TO_TIMESTAMP('2017-01-10T00:00:00Z'))", dt.datetime(2017, 1, 9, tzinfo=UTC)),
        ("DATE_ADD(hour, 1, TO_TIMESTAMP('2017-01-02T03:04Z'))", dt.datetime(2017, 1, 2, 4, 4, tzinfo=UTC)),
        (
            "DATE_ADD(second, 1, TO_TIMESTAMP('2017-01-02T03:04:05.006Z'))",
            dt.datetime(2017, 1, 2, 3, 4, 6, 6000, tzinfo=UTC),
        ),
        ("DATE_DIFF(year, TO_TIMESTAMP('2010-01-01'), TO_TIMESTAMP('2011-01-01'))", 1),
        ("DATE_DIFF(month, TO_TIMESTAMP('2010-01-01'), TO_TIMESTAMP('2011-01-01'))", 12),
        ("DATE_DIFF(month, TO_TIMESTAMP('2010-01-31'), TO_TIMESTAMP('2010-03-30'))", 1),
        ("DATE_DIFF(month, TO_TIMESTAMP('2010-03-30'), TO_TIMESTAMP('2010-01-31'))", -1),
        ("DATE_DIFF(day, TO_TIMESTAMP('2010-01-01T23:00:00Z'), TO_TIMESTAMP('2010-01-02T01:00:00Z'))", 0),
        ("DATE_DIFF(hour, TO_TIMESTAMP('2010-01-01T00:00:00Z'), TO_TIMESTAMP('2010-01-02T01:00:00Z'))", 25),
        (
            "DATE_DIFF(second, TO_TIMESTAMP('2010-01-01T00:00:10Z'), TO_TIMESTAMP('2010-01-01T00:00:00Z'))",
            -10,
        ),
        ("TO_STRING(TO_TIMESTAMP('1969-07-20T20:18:00Z'), 'MMMM d, y')", "July 20, 1969"),
        ("TO_STRING(TO_TIMESTAMP('1969-07-20T20:18:00Z'), 'MMM d, yyyy')", "Jul 20, 1969"),
        ("TO_STRING(TO_TIMESTAMP('1969-07-20T20:18:00Z'), 'M-d-yy')", "7-20-69"),
        ("TO_STRING(TO_TIMESTAMP('1969-07-20T20:18:00Z'), 'MM-d-y')", "07-20-1969"),
        ("TO_STRING(TO_TIMESTAMP('1969-07-20T20:18:00Z'), 'MMMM d, y h:m a')", "July 20, 1969 8:18 PM"),
        ("TO_STRING(TO_TIMESTAMP('1969-07-20T20:18:00Z'), 'y-MM-dd''T''H:m:ssX')", "1969-07-20T20:18:00Z"),
        (
            "TO_STRING(TO_TIMESTAMP('1969-07-20T20:18:00+08:00'), 'y-MM-dd''T''H:m:ssXXX')",
            "1969-07-20T20:18:00+08:00",
        ),
        ("TO_STRING(TO_TIMESTAMP('1969-07-20T20:18:00.123456Z'), 'ss.SSS')", "00.123"),
    ],
)
def test_date_functions(expr: str, want: Any) -> None:
    assert value(expr) == want


def test_date_functions_on_nulls_columns_and_now() -> None:
    assert value("DATE_ADD(day, 1, s.t)", {}) is None
    assert value("EXTRACT(YEAR FROM s.t)", {"t": None}) is None
    assert value("EXTRACT(YEAR FROM s.t)", {"t": "2020-05-06T07:08:09Z"}) == 2020  # strings are read
    now = value("UTCNOW()")
    assert isinstance(now, dt.datetime) and abs((dt.datetime.now(UTC) - now).total_seconds()) < 5


@pytest.mark.parametrize(
    ("expr", "code"),
    [
        ("EXTRACT(WEEK FROM TO_TIMESTAMP('2017-01-02T03:04:05Z'))", "EvaluatorInvalidArguments"),
        ("DATE_ADD('year', 1, TO_TIMESTAMP('2017-01-02T03:04:05Z'))", "EvaluatorInvalidArguments"),
        ("DATE_ADD(year, 1)", "EvaluatorInvalidArguments"),
        ("UTCNOW(1)", "EvaluatorInvalidArguments"),
        ("DATE_ADD(year, 'x', TO_TIMESTAMP('2017-01-02T03:04:05Z'))", "IncorrectSqlFunctionArgumentType"),
        ("EXTRACT(YEAR FROM 5)", "IncorrectSqlFunctionArgumentType"),
        ("TO_TIMESTAMP('not a time')", "CastFailed"),
        (
            "TO_STRING(TO_TIMESTAMP('2017-01-02T03:04:05Z'), 'yyyy Q')",
            "EvaluatorInvalidTimestampFormatPatternSymbol",
        ),
        ("CASE WHEN TRUE THEN 1", "ParseUnexpectedToken"),
        ("CASE END", "ParseUnexpectedToken"),
    ],
)
def test_date_and_case_errors(expr: str, code: str) -> None:
    with pytest.raises(errors.S3Error) as ei:
        value(expr)
    assert ei.value.code == code
