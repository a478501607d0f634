"""The schedule's decisions on a real local backup repository: weekly/monthly retention, which
kind `--full-every` picks, when `--once-due` finds a bucket due, and cron validation."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from rs3gw.backup.manifest import Catalog, Manifest, iso, save
from rs3gw.backup.repo import LocalRepo
from rs3gw.backup.retention import choose
from rs3gw.backup.schedule import Plan, ScheduleError, due_buckets, kind_for

UTC = datetime.UTC


def snap(repo: LocalRepo, taken: datetime.datetime, kind: str, parent: str | None = None) -> str:
    snap_id = f"{taken:%Y%m%dT%H%M%S%fZ}-{kind}"
    m = Manifest(snap_id, "b", kind, iso(taken), parent, "e", "", {}, [], [])
    save(repo, m)
    return snap_id


def test_keep_weekly_and_monthly_take_each_periods_newest(tmp_path: Path) -> None:
    repo = LocalRepo(tmp_path)
    start = datetime.datetime(2026, 1, 1, 3, tzinfo=UTC)  # a Thursday
    ids = [snap(repo, start + datetime.timedelta(days=d), "full") for d in range(70)]  # to 11 March
    cat = Catalog(repo, "b")
    # ISO weeks: the newest two are W10 (2-8 March, last kept 8 March) and W11 (9-11 March)
    assert choose(cat, None, None, keep_weekly=2) == {ids[66], ids[69]}
    assert choose(cat, None, None, keep_monthly=2) == {ids[58], ids[69]}  # 28 Feb and 11 Mar
    assert choose(cat, 1, 2, keep_monthly=3) == {ids[30], ids[58], ids[68], ids[69]}


def test_full_every_counts_snapshots_since_the_newest_full(tmp_path: Path) -> None:
    repo = LocalRepo(tmp_path)
    plan = Plan("@daily", ("b",), full_every=3)
    assert kind_for(repo, "b", plan) == "full"  # nothing yet
    t = datetime.datetime(2026, 5, 1, tzinfo=UTC)
    f = snap(repo, t, "full")
    assert kind_for(repo, "b", plan) == "incremental"
    snap(repo, t + datetime.timedelta(hours=1), "incremental", f)
    assert kind_for(repo, "b", plan) == "incremental"
    snap(repo, t + datetime.timedelta(hours=2), "incremental", f)
    assert kind_for(repo, "b", plan) == "full"
    assert kind_for(repo, "b", Plan("@daily", ("b",), kind="differential")) == "differential"


def test_due_when_a_slot_passed_since_the_newest_snapshot(tmp_path: Path) -> None:
    repo = LocalRepo(tmp_path)
    plan = Plan("0 * * * *", ("b", "other"))
    now = datetime.datetime(2026, 5, 1, 10, 30, tzinfo=UTC)
    snap(repo, datetime.datetime(2026, 5, 1, 10, 5, tzinfo=UTC), "full")
    assert due_buckets(repo, plan, now) == ["other"]  # b's snapshot is newer than the 10:00 slot
    assert due_buckets(repo, plan, now + datetime.timedelta(hours=1)) == ["b", "other"]


@pytest.mark.parametrize("expr", ["every tuesday", "61 * * * *", "* * *", ""])
def test_bad_cron_expressions_are_refused(expr: str) -> None:
    with pytest.raises(ScheduleError, match="bad cron expression"):
        Plan(expr, ("b",))


def test_seconds_field_schedules_every_second() -> None:
    plan = Plan("* * * * * *", ("b",))
    t = datetime.datetime(2026, 5, 1, 10, 0, 0, tzinfo=UTC)
    assert plan.next_after(t) == t + datetime.timedelta(seconds=1)
