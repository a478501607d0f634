"""Prefix/delimiter listing over any ordered key index, with skip-ahead past common prefixes.

Store implementations supply one ``fetch`` callback (raw rows at or after a cursor, in S3 byte
order, produced lazily); this module owns the S3 semantics so every store lists identically.
Skipping a whole common prefix with one seek is what keeps delimiter listings fast at millions of keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


def key_successor(prefix: bytes) -> bytes | None:
    """Smallest byte string greater than every string that starts with ``prefix`` (None: no bound)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


@dataclass(frozen=True)
class Cursor:
    """Where the next fetch starts: keys > key (>= key when inclusive); with ``seq`` set, first the
    entries of ``key`` that sort after ``seq`` (older versions, later uploads), then later keys."""

    key: bytes
    inclusive: bool = False
    seq: int | None = None


@dataclass
class ScanResult(Generic[T]):
    items: list[T]  # raw rows, converted by the store only for what is returned
    prefixes: list[str]
    truncated: bool
    last: str | None  # last key or common prefix emitted
    last_seq: int | None  # seq of the last item emitted; None when the last entry was a prefix


# fetch(cursor, limit) -> (key bytes, seq, raw row), in order. ``limit`` is a hint: the scan stops
# reading early (a jump, a full page), so implementations should produce rows lazily.
Fetch = Callable[[Cursor, int], Iterable[tuple[bytes, int, T]]]
# seek(cursor) -> the first key at or after the cursor, or None. Optional: a key-only query
# is cheaper than a full row, and a delimiter listing over many "directories" is one seek each.
Seek = Callable[[Cursor], bytes | None]


def scan(
    fetch: Fetch[T],
    prefix: str,
    delimiter: str,
    after: str,
    max_keys: int,
    start: Cursor | None = None,
    versions: bool = False,
    seek: Seek | None = None,
) -> ScanResult[T]:
    """Walk the index collecting up to ``max_keys`` items and common prefixes past ``after``.

    With ``start`` (version and upload listings resuming inside a key) the walk begins there,
    else just after ``after``. Several items may share a key (versions, uploads); each counts,
    as S3 counts them. A common prefix is returned only if it sorts after ``after``: a marker
    that is itself a common prefix (our NextMarker) must not return that prefix again.
    """
    pfx, delim, after_b = prefix.encode(), delimiter.encode(), after.encode()
    upper = key_successor(pfx) if pfx else None
    if start is None:
        start = Cursor(after_b) if after_b >= pfx else Cursor(pfx, inclusive=True)
    result: ScanResult[T] = ScanResult([], [], False, None, None)
    cursor: Cursor | None = start
    while cursor is not None:
        cursor = _walk(fetch, cursor, result, pfx, delim, after_b, upper, max_keys, versions)
        if cursor is not None and cursor.inclusive and seek is not None:
            cursor = _skip_prefixes(seek, cursor, result, pfx, delim, after_b, upper, max_keys)
    return result


def _walk(
    fetch: Fetch[T],
    cursor: Cursor,
    result: ScanResult[T],
    pfx: bytes,
    delim: bytes,
    after_b: bytes,
    upper: bytes | None,
    max_keys: int,
    versions: bool,
) -> Cursor | None:
    """One fetch from ``cursor``; returns where to continue, or None when the listing is done.

    The per-row path is kept to a few comparisons (no objects built, no decoding): a page is
    up to 1,000 rows and this loop is most of a listing's own cost.
    """
    batch = max_keys - len(result.items) - len(result.prefixes) + 1
    seen = 0
    key = b""
    seq = 0
    last: tuple[bytes, int] | None = None  # the last item appended by this walk, decoded once at the end
    try:
        for key, seq, item in fetch(cursor, batch):
            seen += 1
            if upper is not None and key >= upper:
                return None
            if not key.startswith(pfx):  # only before the prefix, when resuming at a marker
                continue
            cp = _common_prefix(key, pfx, delim) if delim else None
            if cp is not None:
                if cp > after_b:
                    if _full(result, max_keys):
                        return None
                    text = cp.decode()
                    result.prefixes.append(text)
                    result.last, result.last_seq = text, None
                    last = None
                nxt = key_successor(cp)
                return None if nxt is None else Cursor(nxt, inclusive=True)  # skip the whole prefix
            if _full(result, max_keys):
                return None
            result.items.append(item)
            last = (key, seq)
        if seen < batch:
            return None
        return Cursor(key, seq=seq) if versions else Cursor(key)
    finally:
        if last is not None:
            result.last, result.last_seq = last[0].decode(), last[1]


def _skip_prefixes(
    seek: Seek,
    cursor: Cursor,
    result: ScanResult[T],
    pfx: bytes,
    delim: bytes,
    after_b: bytes,
    upper: bytes | None,
    max_keys: int,
) -> Cursor | None:
    """After a jump: collect consecutive common prefixes with key-only seeks; hand back to the
    row walk (inclusive cursor at that key) at the first key that is not under a prefix."""
    while True:
        key = seek(cursor)
        if key is None or (upper is not None and key >= upper):
            return None
        cp = _common_prefix(key, pfx, delim) if key.startswith(pfx) else None
        if cp is None:
            return Cursor(key, inclusive=True)
        if cp > after_b:
            if _full(result, max_keys):
                return None
            text = cp.decode()
            result.prefixes.append(text)
            result.last, result.last_seq = text, None
        nxt = key_successor(cp)
        if nxt is None:
            return None
        cursor = Cursor(nxt, inclusive=True)


def _full(result: ScanResult[T], max_keys: int) -> bool:
    """True (and marks truncation) when another entry exists but the page is full."""
    if len(result.items) + len(result.prefixes) >= max_keys:
        result.truncated = True
        return True
    return False


def _common_prefix(key: bytes, pfx: bytes, delim: bytes) -> bytes | None:
    if not delim:
        return None
    idx = key.find(delim, len(pfx))
    return key[: idx + len(delim)] if idx >= 0 else None
