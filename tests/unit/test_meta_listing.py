"""SqliteStore listings (objects, versions, uploads) against brute-force models, with hypothesis.

Random key sets (unicode, control characters, delimiter-heavy), random prefix/delimiter/max-keys;
every page is compared with the model and paging through must visit exactly the model's entries.
This is the test of meta/listing.py's skip-scan (the jump past a whole common prefix).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rs3gw import errors
from rs3gw.meta.listing import key_successor
from rs3gw.meta.sqlite import SqliteStore
from rs3gw.meta.store import ListQuery, VersionQuery, WriteCondition
from rs3gw.model import NULL_VERSION, Bucket, ObjectMeta, ObjectVersion, Segment, Upload

OWNER = "owner"
# Few distinct characters so keys collide on prefixes and delimiters; several UTF-8 widths and
# bytes near the delimiter's value ("." < "/" < "0") to catch byte-order mistakes.
ALPHABET = ["a", "b", "/", ".", "0", "-", " ", "\x01", "é", "\u00ff", "\u4e2d", "\U0001f600", "\x7f"]
keys_st = st.text(alphabet=ALPHABET, min_size=1, max_size=7)
key_sets = st.lists(keys_st, min_size=0, max_size=40, unique=True)
delims = st.sampled_from(["", "/", "/", "-", "a", "é", "//", "ab", "\U0001f600"])
prefixes = st.one_of(st.just(""), st.text(alphabet=ALPHABET, max_size=3))
counter = itertools.count()

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def b(s: str) -> bytes:
    return s.encode()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[asyncio.AbstractEventLoop, SqliteStore]]:
    loop = asyncio.new_event_loop()
    store = SqliteStore(Path(tmp_path_factory.mktemp("meta")) / "meta.db", fsync=False)
    loop.run_until_complete(store.open())
    yield loop, store
    loop.run_until_complete(store.close())
    loop.close()


def new_bucket(loop: asyncio.AbstractEventLoop, store: SqliteStore) -> str:
    name = f"b{next(counter)}"
    loop.run_until_complete(store.create_bucket(Bucket(name, OWNER, 0.0, "us-east-1")))
    return name


def version(bucket: str, key: str, vid: str = NULL_VERSION, marker: bool = False) -> ObjectVersion:
    segs = () if marker else (Segment(f"blob-{bucket}-{key}-{vid}", 1),)
    return ObjectVersion(bucket, key, vid, 1, "e", 1.0, ObjectMeta(), segs, OWNER, delete_marker=marker)


def model_entries(keys: list[str], prefix: str, delim: str, after: str) -> list[tuple[str, bool]]:
    """(name, is_common_prefix) in S3 order: the rolled-up view of every key past ``after``."""
    out: list[tuple[str, bool]] = []
    for k in sorted(keys, key=b):
        if not k.startswith(prefix):
            continue
        i = k.find(delim, len(prefix)) if delim else -1
        name, is_cp = (k[: i + len(delim)], True) if i >= 0 else (k, False)
        if out and out[-1] == (name, True):
            continue
        if b(name) > b(after):
            out.append((name, is_cp))
    return out


def listed(
    loop: asyncio.AbstractEventLoop, store: SqliteStore, bucket: str, q: ListQuery
) -> tuple[list[tuple[str, bool]], bool, str | None]:
    res = loop.run_until_complete(store.list_objects(bucket, q))
    names = sorted(
        [(o.key, False) for o in res.objects] + [(p, True) for p in res.common_prefixes],
        key=lambda e: b(e[0]),
    )
    return names, res.is_truncated, res.next_marker


@SETTINGS
@given(
    keys=key_sets,
    deleted=st.sets(st.integers(0, 39)),
    prefix=prefixes,
    delim=delims,
    max_keys=st.integers(1, 12),
    after=st.one_of(st.just(""), keys_st),
)
def test_list_objects_matches_model(
    env: tuple[asyncio.AbstractEventLoop, SqliteStore],
    keys: list[str],
    deleted: set[int],
    prefix: str,
    delim: str,
    max_keys: int,
    after: str,
) -> None:
    loop, store = env
    bucket = new_bucket(loop, store)
    live = []
    for i, k in enumerate(keys):
        loop.run_until_complete(store.put_object(version(bucket, k, f"v{i}"), WriteCondition(), True))
        if i in deleted:  # a delete marker hides the key from ListObjects
            loop.run_until_complete(
                store.put_object(version(bucket, k, f"d{i}", True), WriteCondition(), True)
            )
        else:
            live.append(k)
    # one page from an arbitrary start-after
    want = model_entries(live, prefix, delim, after)
    got, truncated, nxt = listed(loop, store, bucket, ListQuery(prefix, delim, after, max_keys))
    assert got == want[:max_keys]
    assert truncated == (len(want) > max_keys)
    assert nxt == (got[-1][0] if truncated else None)
    # paging from the start visits every entry exactly once, in order
    pages: list[tuple[str, bool]] = []
    marker = ""
    for _ in range(len(live) + 2):
        page, truncated, nxt = listed(loop, store, bucket, ListQuery(prefix, delim, marker, max_keys))
        assert len(page) <= max_keys
        pages += page
        if not truncated:
            break
        assert nxt is not None
        marker = nxt
    assert pages == model_entries(live, prefix, delim, "")


def model_versions(
    rows: list[tuple[str, str, bool]], prefix: str, delim: str
) -> list[tuple[str, str | None]]:
    """(key, version id) newest first per key, or (common prefix, None); rows are in write order."""
    out: list[tuple[str, str | None]] = []
    order = {r: i for i, r in enumerate(rows)}
    for k, vid, _m in sorted(rows, key=lambda r: (b(r[0]), -order[r])):
        if not k.startswith(prefix):
            continue
        i = k.find(delim, len(prefix)) if delim else -1
        if i >= 0:
            cp = k[: i + len(delim)]
            if not out or out[-1] != (cp, None):
                out.append((cp, None))
            continue
        out.append((k, vid))
    return out


@SETTINGS
@given(
    keys=st.lists(keys_st, min_size=0, max_size=15, unique=True),
    plan=st.lists(st.tuples(st.integers(0, 14), st.booleans()), max_size=30),
    prefix=prefixes,
    delim=delims,
    max_keys=st.integers(1, 7),
)
def test_list_versions_matches_model(
    env: tuple[asyncio.AbstractEventLoop, SqliteStore],
    keys: list[str],
    plan: list[tuple[int, bool]],
    prefix: str,
    delim: str,
    max_keys: int,
) -> None:
    loop, store = env
    bucket = new_bucket(loop, store)
    rows: list[tuple[str, str, bool]] = []
    for n, (i, marker) in enumerate(plan):
        if not keys:
            break
        k = keys[i % len(keys)]
        vid = f"v{n:04d}"
        loop.run_until_complete(store.put_object(version(bucket, k, vid, marker), WriteCondition(), True))
        rows.append((k, vid, marker))
    want = model_versions(rows, prefix, delim)
    got: list[tuple[str, str | None]] = []
    key_marker = vid_marker = ""
    for _ in range(len(rows) + 2):
        res = loop.run_until_complete(
            store.list_versions(bucket, VersionQuery(prefix, delim, key_marker, vid_marker, max_keys))
        )
        page = [(v.key, v.version_id) for v in res.versions] + [(p, None) for p in res.common_prefixes]
        page.sort(key=lambda e: want.index(e))
        assert 0 < len(page) <= max_keys or not res.is_truncated
        got += page
        if not res.is_truncated:
            break
        assert res.next_key_marker == page[-1][0]
        key_marker, vid_marker = res.next_key_marker, res.next_version_id_marker or ""
    assert got == want
    latest = {k: vid for k, vid, _m in rows}  # write order: the last write wins
    full = loop.run_until_complete(store.list_versions(bucket, VersionQuery(max_keys=1000)))
    for v in full.versions:
        assert v.is_latest == (latest[v.key] == v.version_id)
        assert v.delete_marker == any(r[1] == v.version_id and r[2] for r in rows)


@SETTINGS
@given(
    keys=st.lists(keys_st, min_size=1, max_size=10, unique=True),
    picks=st.lists(st.integers(0, 9), max_size=20),
    prefix=prefixes,
    delim=delims,
    max_uploads=st.integers(1, 6),
)
def test_list_uploads_matches_model(
    env: tuple[asyncio.AbstractEventLoop, SqliteStore],
    keys: list[str],
    picks: list[int],
    prefix: str,
    delim: str,
    max_uploads: int,
) -> None:
    loop, store = env
    bucket = new_bucket(loop, store)
    rows: list[tuple[str, str, bool]] = []
    for n, i in enumerate(picks):
        k = keys[i % len(keys)]
        uid = f"u{bucket}-{n:03d}"
        loop.run_until_complete(store.create_upload(Upload(uid, bucket, k, float(n), OWNER, ObjectMeta())))
        rows.append((k, uid, False))
    # uploads of one key list oldest first, unlike versions: reverse the write order per key
    want = model_versions(list(reversed(rows)), prefix, delim)
    got: list[tuple[str, str | None]] = []
    key_marker = uid_marker = ""
    for _ in range(len(rows) + 2):
        res = loop.run_until_complete(
            store.list_uploads(bucket, prefix, delim, key_marker, uid_marker, max_uploads)
        )
        page = [(u.key, u.upload_id) for u in res.uploads] + [(p, None) for p in res.common_prefixes]
        page.sort(key=lambda e: want.index(e))
        got += page
        if not res.is_truncated:
            break
        assert res.next_key_marker == page[-1][0]
        assert res.next_upload_id_marker == page[-1][1]
        key_marker, uid_marker = res.next_key_marker, res.next_upload_id_marker or ""
    assert got == want


def test_unknown_version_id_marker(env: tuple[asyncio.AbstractEventLoop, SqliteStore]) -> None:
    loop, store = env
    bucket = new_bucket(loop, store)
    loop.run_until_complete(store.put_object(version(bucket, "k"), WriteCondition(), False))
    with pytest.raises(errors.InvalidArgument):
        loop.run_until_complete(store.list_versions(bucket, VersionQuery("", "", "k", "nope", 10)))


@pytest.mark.parametrize(
    ("prefix", "succ"),
    [(b"a", b"b"), (b"a/", b"a0"), (b"a\xff", b"b"), (b"\xff\xff", None), (b"\x00", b"\x01")],
)
def test_key_successor(prefix: bytes, succ: bytes | None) -> None:
    assert key_successor(prefix) == succ
