"""Timestamp formatting/parsing for XML bodies and HTTP headers."""

from __future__ import annotations

import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rs3gw.timefmt import http_date, iso8601, parse_http_date, whole_seconds

TS = 1255369830.0  # 2009-10-12T17:50:30Z, a Monday


def test_iso8601() -> None:
    assert iso8601(TS) == "2009-10-12T17:50:30.000Z"
    assert iso8601(TS + 0.123) == "2009-10-12T17:50:30.123Z"
    assert iso8601(TS + 0.9999) == "2009-10-12T17:50:30.999Z"
    assert iso8601(0) == "1970-01-01T00:00:00.000Z"


def test_http_date() -> None:
    assert http_date(TS) == "Mon, 12 Oct 2009 17:50:30 GMT"
    assert http_date(TS + 0.999) == "Mon, 12 Oct 2009 17:50:30 GMT"
    assert http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT"


@given(st.integers(min_value=0, max_value=2**34))
def test_http_date_matches_email_utils(ts: int) -> None:
    assert http_date(ts) == email.utils.formatdate(ts, usegmt=True)
    assert parse_http_date(http_date(ts)) == ts


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_formats_agree_on_the_second(ts: float) -> None:
    secs = whole_seconds(ts)
    assert parse_http_date(http_date(ts)) == secs
    assert iso8601(ts).startswith(iso8601(secs)[:19])


@pytest.mark.parametrize(
    "text",
    ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"],
)
def test_parse_three_http_date_forms(text: str) -> None:
    assert parse_http_date(text) == 784111777.0


@pytest.mark.parametrize(
    "text",
    ["", "garbage", "Sun, 31 Nov 1994 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT", "2009-10-12T17:50:30Z"],
)
def test_parse_invalid(text: str) -> None:
    assert parse_http_date(text) is None
