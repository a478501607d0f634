"""Object Lock rules as pure functions: retention changes, removal checks, headers, default periods."""

from __future__ import annotations

import datetime

import pytest

from rs3gw import errors
from rs3gw.engine import object_lock as rules
from rs3gw.model import ObjectMeta, ObjectVersion

NOW = 1_800_000_000.0
GOV = rules.Retention("GOVERNANCE", NOW + 100)
COMP = rules.Retention("COMPLIANCE", NOW + 100)


def _version(system: dict[str, str], marker: bool = False) -> ObjectVersion:
    return ObjectVersion("b", "k", "v", 1, "e", NOW, ObjectMeta(system=system), (), "o", delete_marker=marker)


@pytest.mark.parametrize(
    ("current", "new", "bypass", "allowed"),
    [
        (None, None, False, True),
        (None, GOV, False, True),
        (GOV, rules.Retention("GOVERNANCE", NOW + 200), False, True),  # extend
        (GOV, rules.Retention("COMPLIANCE", NOW + 100), False, False),  # a mode change overrides GOVERNANCE
        (GOV, rules.Retention("COMPLIANCE", NOW + 200), False, False),
        (GOV, rules.Retention("COMPLIANCE", NOW + 100), True, True),
        (GOV, rules.Retention("GOVERNANCE", NOW + 50), False, False),  # shorten
        (GOV, rules.Retention("GOVERNANCE", NOW + 50), True, True),
        (GOV, None, False, False),  # remove
        (GOV, None, True, True),
        (COMP, rules.Retention("COMPLIANCE", NOW + 200), False, True),
        (COMP, rules.Retention("COMPLIANCE", NOW + 50), True, False),
        (COMP, rules.Retention("GOVERNANCE", NOW + 500), True, False),
        (COMP, None, True, False),
        (rules.Retention("COMPLIANCE", NOW - 1), None, False, True),  # expired: anything goes
    ],
)
def test_retention_change(
    current: rules.Retention | None, new: rules.Retention | None, bypass: bool, allowed: bool
) -> None:
    if allowed:
        rules.check_retention_change(current, new, bypass, NOW)
    else:
        with pytest.raises(errors.AccessDenied):
            rules.check_retention_change(current, new, bypass, NOW)


def test_check_removal() -> None:
    gov = rules.with_retention({}, GOV)
    with pytest.raises(errors.AccessDenied):
        rules.check_removal(_version(gov), False, NOW)
    rules.check_removal(_version(gov), True, NOW)
    rules.check_removal(_version(gov), False, NOW + 101)
    with pytest.raises(errors.AccessDenied):
        rules.check_removal(_version(rules.with_retention({}, COMP)), True, NOW)
    with pytest.raises(errors.AccessDenied):
        rules.check_removal(_version({rules.HOLD_KEY: "ON"}), True, NOW)
    rules.check_removal(_version({rules.HOLD_KEY: "OFF"}), False, NOW)
    rules.check_removal(_version({rules.HOLD_KEY: "ON"}, marker=True), False, NOW)
    # An unreadable stored date protects rather than frees.
    with pytest.raises(errors.AccessDenied):
        rules.check_removal(_version({rules.MODE_KEY: "GOVERNANCE", rules.UNTIL_KEY: "garbage"}), False, NOW)


def test_default_retention_periods() -> None:
    assert rules.DefaultRetention("GOVERNANCE", days=2).until(NOW) == NOW + 2 * 86400
    leap = datetime.datetime(2028, 2, 29, 12, tzinfo=datetime.UTC).timestamp()
    until = rules.DefaultRetention("COMPLIANCE", years=1).until(leap)
    assert datetime.datetime.fromtimestamp(until, datetime.UTC) == datetime.datetime(
        2029, 2, 28, 12, tzinfo=datetime.UTC
    )
    with pytest.raises(errors.MalformedXML):
        rules.default_retention("GOVERNANCE", "1", "1")
    with pytest.raises(errors.InvalidArgument):
        rules.default_retention("GOVERNANCE", None, "101")
    cfg = rules.LockConfig(rules.DefaultRetention("GOVERNANCE", None, 3))
    assert rules.LockConfig.loads(cfg.dumps()) == cfg
    assert rules.LockConfig.loads(rules.LockConfig().dumps()) == rules.LockConfig()


def test_headers_round_trip() -> None:
    h = {
        rules.MODE_HEADER: "GOVERNANCE",
        rules.UNTIL_HEADER: "2027-01-15T10:00:00.250Z",
        rules.HOLD_HEADER: "ON",
    }
    system = rules.from_headers(h, NOW)
    assert system == {
        rules.MODE_KEY: "GOVERNANCE",
        rules.UNTIL_KEY: "2027-01-15T10:00:00.250Z",
        rules.HOLD_KEY: "ON",
    }
    assert rules.response_headers({**system, "sse": "x"}) == h
    assert rules.from_headers({}, NOW) == {}
    assert rules.parse_date("2027-01-15") == datetime.datetime(2027, 1, 15, tzinfo=datetime.UTC).timestamp()
    assert (
        rules.parse_date("2027-01-15T10:00:00+02:00")
        == datetime.datetime(2027, 1, 15, 8, tzinfo=datetime.UTC).timestamp()
    )
    assert rules.parse_date("tomorrow") is None
