"""``object_expiration`` (what x-amz-expiration reports) against the lifecycle worker's own rules,
``stored_expiry_rules`` (the per-document-text parse cache) and the stores' combined
bucket + documents read (``get_bucket_with_configs``) on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pg_cluster import shared_cluster
from rs3gw.engine import lifecycle_rules as lr
from rs3gw.meta.postgres import PostgresStore
from rs3gw.meta.sqlite import SqliteStore
from rs3gw.meta.store import MetadataStore
from rs3gw.model import Bucket

DAY = 86400.0
LM = 1_700_000_123.25  # Tue, 14 Nov 2023 22:15:23 GMT


def _rule(
    rid: str,
    *,
    days: int | None = None,
    date: float | None = None,
    status: str = "Enabled",
    flt: lr.LifecycleFilter | None = None,
    marker: bool | None = None,
) -> lr.LifecycleRule:
    exp = lr.Expiration(days, date, marker)
    return lr.LifecycleRule(status, flt or lr.LifecycleFilter(), rid, exp)


def _expiry(
    config: lr.LifecycleConfig, key: str = "k", size: int = 10, tags: dict[str, str] | None = None
) -> tuple[float, str] | None:
    return lr.object_expiration(lr.expiry_rules(config), key, size, tags or {}, LM, DAY)


def test_days_round_up_to_midnight_utc_like_the_worker() -> None:
    got = _expiry(lr.LifecycleConfig((_rule("r", days=1),)))
    assert got == (lr.due_time(LM, 1, DAY), "r")
    # 14 Nov 22:15 + 1 day = 15 Nov 22:15, due at the next midnight: 16 Nov 00:00 UTC.
    assert got is not None and got[0] == 1_700_092_800.0 and got[0] % DAY == 0
    # An accelerated day (tests): the worker's boundary, not a calendar midnight.
    accel = lr.object_expiration(
        lr.expiry_rules(lr.LifecycleConfig((_rule("r", days=3),))), "k", 1, {}, 101.5, 4.0
    )
    assert accel == (lr.due_time(101.5, 3, 4.0), "r") == (116.0, "r")


def test_date_rule_reports_its_date() -> None:
    date = 1_800_000_000.0 - 1_800_000_000.0 % DAY
    assert _expiry(lr.LifecycleConfig((_rule("d", date=date),))) == (date, "d")


def test_earliest_matching_rule_wins_and_ties_keep_document_order() -> None:
    rules = (
        _rule("late", days=30),
        _rule("early", days=2),
        _rule("same-as-early", days=2),
        _rule("off", days=1, status="Disabled"),
    )
    assert _expiry(lr.LifecycleConfig(rules)) == (lr.due_time(LM, 2, DAY), "early")


def test_rules_that_never_expire_a_current_version_are_ignored() -> None:
    noncurrent = lr.LifecycleRule(
        "Enabled", lr.LifecycleFilter(), "nc", noncurrent_expiration=lr.NoncurrentExpiration(1)
    )
    transition = lr.LifecycleRule(
        "Enabled", lr.LifecycleFilter(), "t", transitions=(lr.Transition("GLACIER", 1),)
    )
    abort = lr.LifecycleRule("Enabled", lr.LifecycleFilter(), "a", abort_days=1)
    marker = _rule("m", marker=True)
    config = lr.LifecycleConfig((noncurrent, transition, abort, marker))
    assert lr.expiry_rules(config) == ()
    assert _expiry(config) is None


def test_filters_prefix_tags_and_size() -> None:
    rules = (
        _rule("logs", days=5, flt=lr.LifecycleFilter(prefix="logs/")),
        _rule("tag", days=4, flt=lr.LifecycleFilter(tags=(("key1", "tag1"),))),
        _rule("and", days=3, flt=lr.LifecycleFilter(tags=(("key1", "tag1"), ("key5", "tag6")))),
        _rule("big", days=2, flt=lr.LifecycleFilter(prefix="data/", size_gt=1000, size_lt=5000)),
    )
    config = lr.LifecycleConfig(rules)
    assert _expiry(config, "other") is None
    assert _expiry(config, "logs/a") == (lr.due_time(LM, 5, DAY), "logs")
    assert _expiry(config, "x", tags={"key1": "tag1", "key5": "tag5"}) == (lr.due_time(LM, 4, DAY), "tag")
    assert _expiry(config, "x", tags={"key1": "tag1", "key5": "tag6"}) == (lr.due_time(LM, 3, DAY), "and")
    assert _expiry(config, "data/a", size=1000) is None
    assert _expiry(config, "data/a", size=1001) == (lr.due_time(LM, 2, DAY), "big")
    assert _expiry(config, "data/a", size=5000) is None


def test_stored_rules_are_parsed_once_per_document_text() -> None:
    config = lr.LifecycleConfig((_rule("r", days=1), _rule("m", marker=True)))
    text = lr.dumps(config)
    first = lr.stored_expiry_rules(text)
    assert [r.id for r in first] == ["r"]
    assert lr.stored_expiry_rules("".join(text)) is first  # an equal text read again: cached
    changed = lr.stored_expiry_rules(lr.dumps(lr.LifecycleConfig((_rule("r2", days=2),))))
    assert [r.id for r in changed] == ["r2"]
    assert lr.stored_expiry_rules("{not json") == ()
    assert lr.stored_expiry_rules('{"rules": 1}') == ()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> MetadataStore:
    if request.param == "sqlite":
        return SqliteStore(tmp_path / "meta.db", fsync=False)
    return PostgresStore(shared_cluster().create_database("bucketcfgs"), max_size=4, gc_grace=0)


def test_bucket_with_configs_matches_separate_reads(store: MetadataStore) -> None:
    names = ("policy", "lifecycle")

    async def separate(bucket: str) -> tuple[Bucket | None, tuple[str | None, ...]]:
        rec = await store.get_bucket(bucket)
        if rec is None:
            return None, (None, None)
        return rec, tuple([await store.get_bucket_config(bucket, n) for n in names])

    async def main() -> None:
        await store.open()
        try:
            assert await store.get_bucket_with_configs("nope", names) == (None, (None, None))
            await store.create_bucket(Bucket("b1", "owner1", 1_700_000_000.5, "us-east-1", "Enabled"))
            await store.create_bucket(Bucket("b2", "owner2", 1_700_000_001.0, "us-east-1", ""))
            assert await store.get_bucket_with_configs("b1", names) == await separate("b1")
            await store.put_bucket_config("b1", "lifecycle", '{"l": 1}')
            await store.put_bucket_config("b2", "policy", '{"p": 2}')
            await store.put_bucket_config("b1", "cors", "<CORSConfiguration/>")
            got = await store.get_bucket_with_configs("b1", names)
            assert got == await separate("b1")
            assert got[0] is not None and got[0].versioning == "Enabled" and got[1] == (None, '{"l": 1}')
            assert await store.get_bucket_with_configs("b2", names) == await separate("b2")
            assert (await store.get_bucket_with_configs("b2", names))[1] == ('{"p": 2}', None)
            # The order of the answer follows the names asked for; one name works as well.
            assert (await store.get_bucket_with_configs("b1", ("lifecycle", "policy")))[1] == (
                '{"l": 1}',
                None,
            )
            assert (await store.get_bucket_with_configs("b1", ("cors",)))[1] == ("<CORSConfiguration/>",)
            # Changes are seen at once (nothing is cached).
            await store.put_bucket_config("b1", "policy", '{"p": 1}')
            await store.put_bucket_config("b1", "lifecycle", None)
            assert (await store.get_bucket_with_configs("b1", names))[1] == ('{"p": 1}', None)
            await store.put_bucket_config("b2", "policy", None)
            await store.delete_bucket("b2")
            assert await store.get_bucket_with_configs("b2", names) == (None, (None, None))
        finally:
            await store.close()

    asyncio.run(main())
