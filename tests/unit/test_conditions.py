"""Conditional GET/HEAD and copy-source evaluation, including S3's documented combinations."""

from __future__ import annotations

import pytest

from rs3gw.engine.conditions import Conditions, check_copy_source, check_read
from rs3gw.errors import NotModified, PreconditionFailed
from rs3gw.timefmt import http_date

ETAG = "d41d8cd98f00b204e9800998ecf8427e"
LM = 1255369830.75  # last modified, with a fractional second
BEFORE = http_date(LM - 60)
SAME = http_date(LM)  # same second as LM (fraction dropped)
AFTER = http_date(LM + 60)
Q = f'"{ETAG}"'


def _outcome(cond: Conditions, copy: bool = False) -> int:
    try:
        (check_copy_source if copy else check_read)(cond, ETAG, LM)
    except PreconditionFailed:
        return 412
    except NotModified:
        return 304
    return 200


def test_no_conditions() -> None:
    assert _outcome(Conditions()) == 200
    assert Conditions().empty
    assert not Conditions(if_match="*").empty


@pytest.mark.parametrize(
    ("value", "matches"),
    [
        (Q, True),
        (ETAG, True),
        ("*", True),
        (f'"other", {Q}', True),
        (f"W/{Q}", True),
        ('"other"', False),
        ('"other", "x"', False),
        ("", False),
    ],
)
def test_if_match(value: str, matches: bool) -> None:
    assert _outcome(Conditions(if_match=value)) == (200 if matches else 412)
    assert _outcome(Conditions(if_none_match=value)) == (304 if matches else 200)


def test_modified_since() -> None:
    assert _outcome(Conditions(if_modified_since=BEFORE)) == 200
    assert _outcome(Conditions(if_modified_since=SAME)) == 304
    assert _outcome(Conditions(if_modified_since=AFTER)) == 304


def test_unmodified_since() -> None:
    assert _outcome(Conditions(if_unmodified_since=BEFORE)) == 412
    assert _outcome(Conditions(if_unmodified_since=SAME)) == 200
    assert _outcome(Conditions(if_unmodified_since=AFTER)) == 200


def test_unparseable_dates_ignored() -> None:
    assert _outcome(Conditions(if_modified_since="yesterday")) == 200
    assert _outcome(Conditions(if_unmodified_since="not a date")) == 200
    assert _outcome(Conditions(if_unmodified_since="garbage", if_match='"nope"')) == 412


def test_s3_combination_if_match_true_unmodified_false() -> None:
    assert _outcome(Conditions(if_match=Q, if_unmodified_since=BEFORE)) == 200


def test_s3_combination_if_none_match_false_modified_true() -> None:
    assert _outcome(Conditions(if_none_match=Q, if_modified_since=BEFORE)) == 304


def test_other_combinations() -> None:
    # If-None-Match passing overrides a failing If-Modified-Since.
    assert _outcome(Conditions(if_none_match='"x"', if_modified_since=AFTER)) == 200
    # 412 takes precedence over 304.
    assert _outcome(Conditions(if_match='"x"', if_none_match=Q)) == 412
    assert _outcome(Conditions(if_unmodified_since=BEFORE, if_modified_since=AFTER)) == 412
    assert _outcome(Conditions(if_match=Q, if_none_match=Q)) == 304
    assert _outcome(Conditions(if_match=Q, if_modified_since=AFTER)) == 304


def test_412_names_condition() -> None:
    with pytest.raises(PreconditionFailed) as info:
        check_read(Conditions(if_match='"x"'), ETAG, LM)
    assert info.value.extra["Condition"] == "If-Match"
    assert info.value.status == 412
    with pytest.raises(PreconditionFailed) as info:
        check_copy_source(Conditions(if_unmodified_since=BEFORE), ETAG, LM)
    assert info.value.extra["Condition"] == "x-amz-copy-source-If-Unmodified-Since"


def test_not_modified_status() -> None:
    with pytest.raises(NotModified) as info:
        check_read(Conditions(if_none_match="*"), ETAG, LM)
    assert info.value.status == 304


def test_copy_source_never_304() -> None:
    assert _outcome(Conditions(if_none_match=Q), copy=True) == 412
    assert _outcome(Conditions(if_modified_since=AFTER), copy=True) == 412
    assert _outcome(Conditions(if_match=Q, if_unmodified_since=BEFORE), copy=True) == 200
    assert _outcome(Conditions(if_none_match=Q, if_modified_since=BEFORE), copy=True) == 412
    assert _outcome(Conditions(if_match='"x"'), copy=True) == 412
    assert _outcome(Conditions(if_modified_since=BEFORE), copy=True) == 200


def test_from_headers() -> None:
    headers = {
        "If-Match": Q,
        "if-none-match": '"a"',
        "IF-MODIFIED-SINCE": BEFORE,
        "if-unmodified-since": AFTER,
        "x-amz-copy-source-if-match": '"src"',
        "X-Amz-Copy-Source-If-Modified-Since": SAME,
    }
    assert Conditions.from_headers(headers) == Conditions(Q, '"a"', BEFORE, AFTER)
    assert Conditions.from_headers(headers, "x-amz-copy-source-") == Conditions(
        if_match='"src"', if_modified_since=SAME
    )
    assert Conditions.from_headers({}) == Conditions()
