"""A 400-day lifecycle policy run in accelerated time (one day = 0.05 s) against a real server.

One module-scoped scenario writes objects into an unversioned, a versioned, a default-minimum-size
and an Object Lock bucket, then polls ListObjectVersions / ListMultipartUploads (and HEAD) with
boto3 every ~0.1 s for 400 lifecycle days. The tests then check, from that record, that every
transition, expiration, noncurrent expiration, delete-marker cleanup and upload abort happened at
its day (never before it, at most SLACK days after) and that nothing outside the filters changed.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import Server, start_server

DAY = 0.05  # seconds per lifecycle day
INTERVAL = 0.1  # seconds between worker passes
SLACK = 20  # days an action may trail its due day (worker interval + poll interval + load)
END_DAY = 405
BIG = b"b" * (130 * 1024)  # above the 128 KiB default minimum size for transitions
SMALL = b"s" * 10

Item = tuple[str, str, str]  # bucket, key, version id ("null" in unversioned buckets)


@dataclass
class Poll:
    sent: float
    received: float
    versions: dict[Item, str]  # storage class, or "MARKER" for a delete marker
    uploads: set[str]  # upload ids
    head_class: str | None = None  # HEAD of logs/a: x-amz-storage-class (None for STANDARD)


@dataclass
class Timeline:
    polls: list[Poll] = field(default_factory=list)
    written: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (before, after)
    ids: dict[str, str] = field(default_factory=dict)  # name -> version or upload id
    buckets: dict[str, str] = field(default_factory=dict)
    heads: dict[str, str] = field(default_factory=dict)  # final HEAD x-amz-storage-class


def _rules_unversioned() -> list[dict[str, Any]]:
    return [
        {
            "ID": "logs",
            "Status": "Enabled",
            "Filter": {"Prefix": "logs/"},
            "Transitions": [
                {"Days": 30, "StorageClass": "STANDARD_IA"},
                {"Days": 120, "StorageClass": "GLACIER"},
            ],
            "Expiration": {"Days": 365},
        },
        {
            "ID": "temp",
            "Status": "Enabled",
            "Filter": {"Tag": {"Key": "class", "Value": "temp"}},
            "Expiration": {"Days": 60},
        },
        {
            "ID": "size",
            "Status": "Enabled",
            "Filter": {"And": {"Prefix": "data/", "ObjectSizeGreaterThan": 1000, "ObjectSizeLessThan": 5000}},
            "Expiration": {"Days": 90},
        },
        {
            "ID": "tags",
            "Status": "Enabled",
            "Filter": {
                "And": {"Prefix": "mixed/", "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]}
            },
            "Transitions": [{"Days": 45, "StorageClass": "GLACIER"}],
        },
        {
            "ID": "mpu",
            "Status": "Enabled",
            "Filter": {"Prefix": "uploads/"},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 60},
        },
        {
            "ID": "dated",
            "Status": "Enabled",
            "Filter": {"Prefix": "dated/"},
            "Expiration": {"Date": datetime.datetime(2020, 1, 1)},
        },
        {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": "off/"}, "Expiration": {"Days": 1}},
        {
            "ID": "tiny",
            "Status": "Enabled",
            "Filter": {"Prefix": "tiny/"},
            "Transitions": [
                {"Days": 30, "StorageClass": "STANDARD_IA"},
                {"Days": 60, "StorageClass": "GLACIER"},
            ],
        },
    ]


def _rules_versioned() -> list[dict[str, Any]]:
    return [
        {
            "ID": "all",
            "Status": "Enabled",
            "Filter": {},
            "Transitions": [
                {"Days": 30, "StorageClass": "STANDARD_IA"},
                {"Days": 120, "StorageClass": "GLACIER"},
            ],
            "Expiration": {"Days": 365},
            "NoncurrentVersionTransitions": [{"NoncurrentDays": 30, "StorageClass": "STANDARD_IA"}],
            "NoncurrentVersionExpiration": {"NoncurrentDays": 200, "NewerNoncurrentVersions": 1},
        },
        {
            "ID": "markers",
            "Status": "Enabled",
            "Filter": {"Prefix": "gone/"},
            "Expiration": {"ExpiredObjectDeleteMarker": True},
        },
    ]


class Scenario:
    def __init__(self, s3: Any, tl: Timeline) -> None:
        self.s3 = s3
        self.tl = tl

    def timed(self, name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        before = time.time()
        out = fn()
        self.tl.written[name] = (before, time.time())
        for k in ("VersionId", "UploadId"):
            if out.get(k):
                self.tl.ids[name] = out[k]
        return out

    def put(self, name: str, bucket: str, key: str, body: bytes, tags: str = "", **kw: Any) -> None:
        args = {"Bucket": self.tl.buckets[bucket], "Key": key, "Body": body, **kw}
        if tags:
            args["Tagging"] = tags
        self.timed(name, lambda: self.s3.put_object(**args))

    def configure(self, bucket: str, rules: list[dict[str, Any]], mode: str | None) -> None:
        extra = {"TransitionDefaultMinimumObjectSize": mode} if mode else {}
        self.s3.put_bucket_lifecycle_configuration(
            Bucket=self.tl.buckets[bucket], LifecycleConfiguration={"Rules": rules}, **extra
        )


def _setup(s3: Any, tl: Timeline) -> None:
    sc = Scenario(s3, tl)
    for b in ("u", "v", "d", "s"):
        tl.buckets[b] = f"lc-{b}-{int(time.time() * 1000) % 10**9}"
        s3.create_bucket(Bucket=tl.buckets[b])
    tl.buckets["l"] = f"lc-l-{int(time.time() * 1000) % 10**9}"
    s3.create_bucket(Bucket=tl.buckets["l"], ObjectLockEnabledForBucket=True)
    s3.put_bucket_versioning(Bucket=tl.buckets["v"], VersioningConfiguration={"Status": "Enabled"})
    sc.configure("u", _rules_unversioned(), "varies_by_storage_class")
    sc.configure("v", _rules_versioned(), "varies_by_storage_class")
    sc.configure(
        "d",
        [
            {
                "ID": "g",
                "Status": "Enabled",
                "Filter": {},
                "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}],
            }
        ],
        None,
    )
    nce = {"NoncurrentVersionExpiration": {"NoncurrentDays": 10}}
    sc.configure("l", [{"ID": "nc", "Status": "Enabled", "Filter": {}, **nce}], None)

    # Object Lock: a locked noncurrent version must be skipped, its unlocked neighbour expired.
    until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    lock = {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": until}
    sc.put("locked1", "l", "locked", SMALL, **lock)
    sc.put("free1", "l", "free", SMALL)
    sc.put("locked2", "l", "locked", SMALL)
    sc.put("free2", "l", "free", SMALL)

    for name, key, body, tags in (
        ("logs_a", "logs/a", BIG, ""),
        ("logs_small", "logs/small", SMALL, ""),
        ("t1", "tmp/t1", SMALL, "class=temp"),
        ("t2", "tmp/t2", SMALL, "class=keep"),
        ("data_mid", "data/mid", b"m" * 2000, ""),
        ("data_small", "data/small", b"m" * 100, ""),
        ("data_huge", "data/huge", b"m" * 6000, ""),
        ("mixed_both", "mixed/both", BIG, "a=1&b=2"),
        ("mixed_one", "mixed/one", BIG, "a=1"),
        ("other_both", "other/both", BIG, "a=1&b=2"),
        ("dated", "dated/x", SMALL, ""),
        ("off", "off/x", SMALL, ""),
        ("tiny", "tiny/x", SMALL, ""),
        ("plain", "other/plain", BIG, ""),
    ):
        sc.put(name, "u", key, body, tags)
    for name, key in (("up1", "uploads/u1"), ("up2", "keep/u2")):
        sc.timed(name, lambda key=key: s3.create_multipart_upload(Bucket=tl.buckets["u"], Key=key))

    for i in (1, 2, 3):
        sc.put(f"doc{i}", "v", "doc", BIG)
    sc.put("lone1", "v", "gone/lone", SMALL)
    sc.timed("lone_marker", lambda: s3.delete_object(Bucket=tl.buckets["v"], Key="gone/lone"))
    lone_v1 = tl.ids["lone1"]
    sc.timed(
        "lone_gone", lambda: s3.delete_object(Bucket=tl.buckets["v"], Key="gone/lone", VersionId=lone_v1)
    )
    sc.put("kept1", "v", "gone/kept", BIG)
    sc.timed("kept_marker", lambda: s3.delete_object(Bucket=tl.buckets["v"], Key="gone/kept"))

    # Suspended versioning: expiring the current null version leaves a null delete marker.
    s3.put_bucket_versioning(Bucket=tl.buckets["s"], VersioningConfiguration={"Status": "Enabled"})
    sc.put("s1", "s", "k", SMALL)
    s3.put_bucket_versioning(Bucket=tl.buckets["s"], VersioningConfiguration={"Status": "Suspended"})
    sc.put("s2", "s", "k", SMALL)
    rule = {"ID": "e", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 50}}
    sc.configure("s", [rule], None)
    sc.put("d_small", "d", "small", SMALL)
    sc.put("d_big", "d", "big", BIG)


def _snapshot(s3: Any, tl: Timeline) -> Poll:
    sent = time.time()
    versions: dict[Item, str] = {}
    for b in ("u", "v", "d", "l", "s"):
        out = s3.list_object_versions(Bucket=tl.buckets[b])
        for v in out.get("Versions", []):
            versions[(b, v["Key"], v["VersionId"])] = v.get("StorageClass", "STANDARD")
        for m in out.get("DeleteMarkers", []):
            versions[(b, m["Key"], m["VersionId"])] = "MARKER"
    uploads = {u["UploadId"] for u in s3.list_multipart_uploads(Bucket=tl.buckets["u"]).get("Uploads", [])}
    head_class = None
    if ("u", "logs/a", "null") in versions:
        try:
            head = s3.head_object(Bucket=tl.buckets["u"], Key="logs/a")
            head_class = head["ResponseMetadata"]["HTTPHeaders"].get("x-amz-storage-class")
        except Exception:  # expired between the listing and the HEAD
            head_class = "GONE"
    return Poll(sent, time.time(), versions, uploads, head_class)


@pytest.fixture(scope="module")
def timeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Timeline]:
    data: Path = tmp_path_factory.mktemp("lifecycle") / "data"
    srv: Server = start_server(
        data, "--lifecycle-day-seconds", str(DAY), "--lifecycle-interval", str(INTERVAL)
    )
    try:
        s3 = srv.client()
        tl = Timeline()
        _setup(s3, tl)
        start = min(b for b, _ in tl.written.values())
        while time.time() < start + END_DAY * DAY:
            tl.polls.append(_snapshot(s3, tl))
            time.sleep(0.05)
        u = tl.buckets["u"]
        for key in ("mixed/both", "tiny/x", "other/plain"):
            tl.heads[key] = s3.head_object(Bucket=u, Key=key)["ResponseMetadata"]["HTTPHeaders"].get(
                "x-amz-storage-class", "STANDARD"
            )
        doc3 = s3.head_object(Bucket=tl.buckets["v"], Key="doc", VersionId=tl.ids["doc3"])
        tl.heads["doc3"] = doc3["ResponseMetadata"]["HTTPHeaders"].get("x-amz-storage-class", "STANDARD")
        yield tl
    finally:
        srv.stop()
        log = srv.log.read_text(errors="replace")
        assert "Traceback" not in log, log[-3000:]


# -- checking the record ----------------------------------------------------------------------------
def _when(tl: Timeline, pred: Callable[[Poll], bool], base: str) -> tuple[float, float]:
    """(lower, upper) bound of when ``pred`` first held, in lifecycle days after ``base`` was written."""
    before, after = tl.written[base]
    for i, p in enumerate(tl.polls):
        if pred(p):
            lo = tl.polls[i - 1].sent if i else after
            return (lo - after) / DAY, (p.received - before) / DAY
    pytest.fail(f"never happened (base {base}); last poll: {tl.polls[-1].versions}")


def _assert_on_day(tl: Timeline, pred: Callable[[Poll], bool], base: str, day: float) -> None:
    lo, hi = _when(tl, pred, base)
    assert hi >= day, f"happened early: by day {hi:.1f}, due on day {day}"
    assert lo <= day + 1 + SLACK, f"happened late: not before day {lo:.1f}, due on day {day}"


def _cls(b: str, key: str, vid: str, cls: str) -> Callable[[Poll], bool]:
    return lambda p: p.versions.get((b, key, vid)) == cls


def _gone(b: str, key: str, vid: str) -> Callable[[Poll], bool]:
    return lambda p: (b, key, vid) not in p.versions


def test_unversioned_transitions_then_expiration(timeline: Timeline) -> None:
    _assert_on_day(timeline, _cls("u", "logs/a", "null", "STANDARD_IA"), "logs_a", 30)
    _assert_on_day(timeline, _cls("u", "logs/a", "null", "GLACIER"), "logs_a", 120)
    _assert_on_day(timeline, _gone("u", "logs/a", "null"), "logs_a", 365)
    heads = [p.head_class for p in timeline.polls if p.head_class not in (None, "GONE")]
    assert "STANDARD_IA" in heads and heads[-1] == "GLACIER", heads  # HEAD shows the class
    assert heads == sorted(heads, key=["STANDARD_IA", "GLACIER"].index)


def test_tag_size_and_date_filters(timeline: Timeline) -> None:
    _assert_on_day(timeline, _gone("u", "tmp/t1", "null"), "t1", 60)
    _assert_on_day(timeline, _gone("u", "data/mid", "null"), "data_mid", 90)
    _assert_on_day(timeline, _cls("u", "mixed/both", "null", "GLACIER"), "mixed_both", 45)
    _assert_on_day(timeline, _gone("u", "dated/x", "null"), "dated", 0)
    assert timeline.heads["mixed/both"] == "GLACIER"


def test_default_minimum_object_size(timeline: Timeline) -> None:
    """varies_by_storage_class: small objects reach GLACIER but never STANDARD_IA; the default
    (all_storage_classes_128K) keeps them where they are."""
    for key, name, day in (("tiny/x", "tiny", 60), ("logs/small", "logs_small", 120)):
        assert all(p.versions.get(("u", key, "null")) != "STANDARD_IA" for p in timeline.polls)
        _assert_on_day(timeline, _cls("u", key, "null", "GLACIER"), name, day)
    _assert_on_day(timeline, _gone("u", "logs/small", "null"), "logs_small", 365)
    assert timeline.heads["tiny/x"] == "GLACIER"
    _assert_on_day(timeline, _cls("d", "big", "null", "GLACIER"), "d_big", 30)
    assert all(p.versions.get(("d", "small", "null")) == "STANDARD" for p in timeline.polls)


def test_abort_incomplete_multipart_upload(timeline: Timeline) -> None:
    up1, up2 = timeline.ids["up1"], timeline.ids["up2"]
    _assert_on_day(timeline, lambda p: up1 not in p.uploads, "up1", 60)
    assert all(up2 in p.uploads for p in timeline.polls)


def test_versioned_current_and_noncurrent(timeline: Timeline) -> None:
    ids = timeline.ids
    v1, v2, v3 = ids["doc1"], ids["doc2"], ids["doc3"]
    # Noncurrent since the successor was written; current since its own write.
    _assert_on_day(timeline, _cls("v", "doc", v1, "STANDARD_IA"), "doc2", 30)
    _assert_on_day(timeline, _cls("v", "doc", v2, "STANDARD_IA"), "doc3", 30)
    _assert_on_day(timeline, _cls("v", "doc", v3, "STANDARD_IA"), "doc3", 30)
    _assert_on_day(timeline, _cls("v", "doc", v3, "GLACIER"), "doc3", 120)
    # NewerNoncurrentVersions=1 keeps v2 while it is the newest noncurrent version.
    _assert_on_day(timeline, _gone("v", "doc", v1), "doc2", 200)
    # Expiration of the current version adds a delete marker; v3 becomes noncurrent, so v2 goes.
    marker = lambda p: any(k[:2] == ("v", "doc") and c == "MARKER" for k, c in p.versions.items())  # noqa: E731
    _assert_on_day(timeline, marker, "doc3", 365)
    _assert_on_day(timeline, _gone("v", "doc", v2), "doc3", 365)
    assert timeline.heads["doc3"] == "GLACIER"


def test_expired_delete_markers(timeline: Timeline) -> None:
    lone = lambda p: not any(k[:2] == ("v", "gone/lone") for k in p.versions)  # noqa: E731
    _assert_on_day(timeline, lone, "lone_gone", 0)
    kept = timeline.ids["kept1"]
    _assert_on_day(timeline, _cls("v", "gone/kept", kept, "STANDARD_IA"), "kept_marker", 30)
    # A marker with a version behind it is not expired.
    assert all(sum(1 for k in p.versions if k[:2] == ("v", "gone/kept")) == 2 for p in timeline.polls)


def test_locked_version_is_skipped(timeline: Timeline) -> None:
    _assert_on_day(timeline, _gone("l", "free", timeline.ids["free1"]), "free2", 10)
    locked = ("l", "locked", timeline.ids["locked1"])
    assert all(locked in p.versions for p in timeline.polls)


def test_suspended_bucket_expiration(timeline: Timeline) -> None:
    null_marker = lambda p: p.versions.get(("s", "k", "null")) == "MARKER"  # noqa: E731
    assert timeline.polls[0].versions.get(("s", "k", "null")) == "STANDARD"
    _assert_on_day(timeline, null_marker, "s2", 50)
    assert all(("s", "k", timeline.ids["s1"]) in p.versions for p in timeline.polls)


def test_nothing_else_changed(timeline: Timeline) -> None:
    ids = timeline.ids
    final = timeline.polls[-1].versions
    v_markers = sorted(k[1] for k, c in final.items() if k[0] == "v" and c == "MARKER")
    assert v_markers == ["doc", "gone/kept"]
    assert [k for k, c in final.items() if k[0] != "v" and c == "MARKER"] == [("s", "k", "null")]
    expected = {
        ("u", "tmp/t2", "null"): "STANDARD",
        ("u", "data/small", "null"): "STANDARD",
        ("u", "data/huge", "null"): "STANDARD",
        ("u", "mixed/both", "null"): "GLACIER",
        ("u", "mixed/one", "null"): "STANDARD",
        ("u", "other/both", "null"): "STANDARD",
        ("u", "off/x", "null"): "STANDARD",
        ("u", "tiny/x", "null"): "GLACIER",
        ("u", "other/plain", "null"): "STANDARD",
        ("v", "doc", ids["doc3"]): "GLACIER",
        ("v", "gone/kept", ids["kept1"]): "STANDARD_IA",
        ("d", "small", "null"): "STANDARD",
        ("d", "big", "null"): "GLACIER",
        ("l", "locked", ids["locked1"]): "STANDARD",
        ("l", "locked", ids["locked2"]): "STANDARD",
        ("l", "free", ids["free2"]): "STANDARD",
        ("s", "k", ids["s1"]): "STANDARD",
    }
    assert {k: c for k, c in final.items() if c != "MARKER"} == expected
    # Objects outside every filter were never touched, at any point of the year.
    untouched = [k for k, c in expected.items() if c == "STANDARD"]
    for p in timeline.polls:
        for k in untouched:
            assert p.versions.get(k) == "STANDARD", (k, p.versions.get(k))
    assert timeline.heads["other/plain"] == "STANDARD"
