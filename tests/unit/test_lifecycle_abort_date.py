"""``upload_abort`` (what x-amz-abort-date / x-amz-abort-rule-id report) against the lifecycle
worker's own upload pass, and ``stored_abort_rules`` (the per-document-text parse cache)."""

from __future__ import annotations

import asyncio
from typing import cast

from rs3gw import errors
from rs3gw.engine import lifecycle_rules as lr
from rs3gw.engine.lifecycle import LifecycleWorker, PassStats
from rs3gw.engine.multipart import Engine
from rs3gw.model import ObjectMeta, Upload, UploadListing

DAY = 86400.0
INIT = 1_700_000_123.25  # Tue, 14 Nov 2023 22:15:23 GMT


def _rule(
    rid: str,
    days: int | None,
    *,
    prefix: str = "",
    status: str = "Enabled",
    flt: lr.LifecycleFilter | None = None,
    expire_days: int | None = None,
) -> lr.LifecycleRule:
    exp = lr.Expiration(expire_days) if expire_days is not None else None
    return lr.LifecycleRule(status, flt or lr.LifecycleFilter(prefix=prefix), rid, exp, abort_days=days)


def _abort(config: lr.LifecycleConfig, key: str = "k", initiated: float = INIT) -> tuple[float, str] | None:
    return lr.upload_abort(lr.abort_rules(config), key, initiated, DAY)


def test_days_round_up_to_midnight_utc_like_the_worker() -> None:
    got = _abort(lr.LifecycleConfig((_rule("r", 1),)))
    # 14 Nov 22:15 + 1 day = 15 Nov 22:15, due at the next midnight: 16 Nov 00:00 UTC.
    assert got == (lr.due_time(INIT, 1, DAY), "r") == (1_700_092_800.0, "r")
    # An accelerated day (tests): the worker's boundary, not a calendar midnight.
    accel = lr.upload_abort(lr.abort_rules(lr.LifecycleConfig((_rule("r", 3),))), "k", 101.5, 4.0)
    assert accel == (116.0, "r")


def test_earliest_matching_rule_wins_and_ties_keep_document_order() -> None:
    rules = (
        _rule("late", 30, prefix="a/"),
        _rule("soon", 7, prefix="a/b"),
        _rule("tie", 7, prefix="a/"),
    )
    config = lr.LifecycleConfig(rules)
    assert _abort(config, "a/b/c") == (lr.due_time(INIT, 7, DAY), "soon")
    assert _abort(config, "a/z") == (lr.due_time(INIT, 7, DAY), "tie")
    assert _abort(config, "b/z") is None
    # Same due day from different Days (rounding): the first in document order is reported.
    same = lr.LifecycleConfig((_rule("first", 2), _rule("second", 2)))
    assert _abort(same) == (lr.due_time(INIT, 2, DAY), "first")


def test_rules_that_never_abort_uploads_are_ignored() -> None:
    config = lr.LifecycleConfig(
        (
            _rule("off", 1, status="Disabled"),
            _rule("expire-only", None, expire_days=1),
            _rule("both", 5, expire_days=1),
        )
    )
    assert [r.id for r in lr.abort_rules(config)] == ["both"]
    assert _abort(config) == (lr.due_time(INIT, 5, DAY), "both")
    assert _abort(lr.LifecycleConfig((_rule("off", 1, status="Disabled"),))) is None


def test_prefix_only_as_the_worker_matches() -> None:
    """An And filter's prefix selects; its size bounds do not (an upload has no size yet, and the
    worker's upload pass matches by prefix only)."""
    flt = lr.LifecycleFilter(prefix="logs/", size_gt=10, size_lt=20, form="and")
    config = lr.LifecycleConfig((_rule("and", 2, flt=flt),))
    assert _abort(config, "logs/x") == (lr.due_time(INIT, 2, DAY), "and")
    assert _abort(config, "data/x") is None


def test_stored_rules_are_parsed_once_per_document_text() -> None:
    text = lr.dumps(lr.LifecycleConfig((_rule("r", 1), _rule("e", None, expire_days=3))))
    first = lr.stored_abort_rules(text)
    assert [r.id for r in first] == ["r"]
    assert lr.stored_abort_rules("".join(text)) is first  # an equal text read again: cached
    changed = lr.stored_abort_rules(lr.dumps(lr.LifecycleConfig((_rule("r2", 2),))))
    assert [r.id for r in changed] == ["r2"]
    assert lr.stored_abort_rules("{not json") == ()
    assert lr.stored_abort_rules('{"rules": 1}') == ()


class _Uploads:
    """The two engine calls the worker's upload pass makes, over an in-memory list."""

    def __init__(self, uploads: list[Upload]) -> None:
        self.uploads = uploads
        self.aborted: list[str] = []

    async def list_multipart_uploads(
        self, bucket: str, prefix: str, delimiter: str, key_marker: str, upload_marker: str, max_uploads: int
    ) -> UploadListing:
        return UploadListing(list(self.uploads), [], False, None, None)

    async def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        if upload_id in self.aborted:
            raise errors.NoSuchUpload(UploadId=upload_id)
        self.aborted.append(upload_id)


def test_the_worker_aborts_exactly_at_the_reported_time() -> None:
    """The worker's own pass, run an instant before and at ``upload_abort``'s time, for day lengths
    of 1 day and an accelerated 2 s: never earlier, and at that time."""
    rules = (_rule("late", 9, prefix="a/"), _rule("soon", 2, prefix="a/b"), _rule("other", 1, prefix="z/"))
    for day, initiated in ((DAY, INIT), (2.0, 1_000.4)):
        ups = [
            Upload("u1", "b", "a/b/c", initiated, "o", ObjectMeta()),
            Upload("u2", "b", "q", initiated, "o", ObjectMeta()),
        ]
        found = lr.upload_abort(rules, "a/b/c", initiated, day)
        assert found is not None and found[1] == "soon"
        assert lr.upload_abort(rules, "q", initiated, day) is None
        fake = _Uploads(ups)
        worker = LifecycleWorker(cast(Engine, fake), [], day)
        asyncio.run(worker._uploads("b", list(rules), found[0] - 0.001, PassStats()))
        assert fake.aborted == []
        stats = PassStats()
        asyncio.run(worker._uploads("b", list(rules), found[0], stats))
        assert fake.aborted == ["u1"] and stats.uploads_aborted == 1
