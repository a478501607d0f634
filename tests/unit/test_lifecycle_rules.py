"""Pure lifecycle rule logic: due times, filters, the minimum-size default, XML and storage round trips,
and the TOML/env/flag settings that shorten a lifecycle day."""

from __future__ import annotations

from pathlib import Path

import pytest

from rs3gw import errors
from rs3gw.config import load_settings
from rs3gw.engine import lifecycle_rules as lr
from rs3gw.protocol.lifecycle_xml import lifecycle_xml, parse_lifecycle

KEYS = {"RS3GW_ACCESS_KEY": "unitkey", "RS3GW_SECRET_KEY": "unit-secret-key"}


def test_due_time_rounds_up_to_the_next_day() -> None:
    day = 86400.0
    noon = 10 * day + day / 2
    assert lr.due_time(noon, 1, day) == 12 * day  # next midnight UTC after noon + 1 day
    assert lr.due_time(10 * day, 1, day) == 11 * day  # exactly midnight stays
    assert lr.due_time(1.01, 30, 0.05) == pytest.approx(2.55)


def test_filter_matches() -> None:
    f = lr.LifecycleFilter("p/", (("a", "1"),), size_gt=10, size_lt=100, form="and")
    assert f.matches("p/x", 50, {"a": "1", "b": "2"})
    assert not f.matches("q/x", 50, {"a": "1"})
    assert not f.matches("p/x", 50, {"a": "2"})
    assert not f.matches("p/x", 10, {"a": "1"})  # strictly greater
    assert not f.matches("p/x", 100, {"a": "1"})  # strictly less


def test_waterfall_and_minimum_size() -> None:
    assert lr.colder("GLACIER", "STANDARD_IA") and not lr.colder("STANDARD_IA", "GLACIER")
    rule = lr.LifecycleRule("Enabled", lr.LifecycleFilter())
    default = lr.LifecycleConfig((rule,))
    varies = lr.LifecycleConfig((rule,), "varies_by_storage_class")
    assert not lr.size_allows(default, rule, 10, "GLACIER")
    assert lr.size_allows(varies, rule, 10, "GLACIER") and not lr.size_allows(varies, rule, 10, "STANDARD_IA")
    sized = lr.LifecycleRule("Enabled", lr.LifecycleFilter(size_gt=0, form="gt"))
    assert lr.size_allows(default, sized, 10, "STANDARD_IA")
    assert lr.size_allows(default, rule, 128 * 1024, "STANDARD_IA")


XML = b"""<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
<Rule><Filter><And><Prefix>a/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></And></Filter>
<Status>Enabled</Status><Transition><Days>30</Days><StorageClass>STANDARD_IA</StorageClass></Transition>
<Expiration><Days>90</Days></Expiration>
<NoncurrentVersionExpiration><NoncurrentDays>5</NoncurrentDays><NewerNoncurrentVersions>2</NewerNoncurrentVersions>
</NoncurrentVersionExpiration></Rule>
<Rule><ID>legacy</ID><Prefix>x/</Prefix><Status>Disabled</Status>
<Expiration><Date>2030-01-01T00:00:00.000Z</Date></Expiration>
<AbortIncompleteMultipartUpload><DaysAfterInitiation>3</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>
</LifecycleConfiguration>"""


def test_parse_validate_store_render() -> None:
    config = lr.validate(parse_lifecycle(XML, lr.MIN_SIZE_DEFAULT))
    first, second = config.rules
    assert first.id and first.filter.form == "and" and first.filter.tags == (("k", "v"),)
    assert first.noncurrent_expiration == lr.NoncurrentExpiration(5, 2)
    assert second.filter.form == "legacy" and second.abort_days == 3 and not second.enabled
    assert lr.loads(lr.dumps(config)) == config
    again = parse_lifecycle(lifecycle_xml(config).to_bytes(), config.min_size_mode)
    assert again == config


@pytest.mark.parametrize(
    ("xml", "exc"),
    [
        (XML.replace(b"<Days>90</Days>", b"<Days>0</Days>"), errors.InvalidArgument),
        (XML.replace(b"<Days>90</Days>", b"<Days>20</Days>"), errors.InvalidArgument),
        (XML.replace(b"T00:00:00.000Z", b"T01:00:00.000Z"), errors.InvalidArgument),
        (XML.replace(b"<ID>legacy</ID><Prefix>x/</Prefix>", b"<Prefix>x/</Prefix>"), None),
        (XML.replace(b"<Prefix>x/</Prefix>", b""), errors.MalformedXML),
        (XML.replace(b"<Status>Disabled</Status>", b"<Status>disabled</Status>"), errors.MalformedXML),
    ],
)
def test_errors(xml: bytes, exc: type[Exception] | None) -> None:
    if exc is None:
        lr.validate(parse_lifecycle(xml, lr.MIN_SIZE_DEFAULT))
        return
    with pytest.raises(exc):
        lr.validate(parse_lifecycle(xml, lr.MIN_SIZE_DEFAULT))


def test_settings(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text("[lifecycle]\nday_seconds = 0.5\ninterval = 2\n")
    s = load_settings({}, KEYS, toml)
    assert (s.lifecycle_day_seconds, s.lifecycle_interval) == (0.5, 2.0)
    s = load_settings({"lifecycle_interval": "0.2"}, {**KEYS, "RS3GW_LIFECYCLE_DAY_SECONDS": "0.05"}, toml)
    assert (s.lifecycle_day_seconds, s.lifecycle_interval) == (0.05, 0.2)
    assert load_settings({}, KEYS, None).lifecycle_day_seconds == 86400.0
    for bad in ("0", "-1", "soon", "inf"):
        with pytest.raises(Exception, match="LIFECYCLE_DAY_SECONDS"):
            load_settings({}, {**KEYS, "RS3GW_LIFECYCLE_DAY_SECONDS": bad}, None)
    toml.write_text("[lifecycle]\nday = 1\n")
    with pytest.raises(Exception, match=r"lifecycle\.day"):
        load_settings({}, KEYS, toml)
