"""Prefix/delimiter listing over any ordered key index, with skip-ahead past common prefixes.

Store implementations supply one ``fetch`` callback (rows at or after a cursor, in S3 byte order);
this module owns the S3 semantics so SQLite and PostgreSQL list identically. Skipping a whole
common prefix with one seek is what keeps delimiter listings fast at millions of keys.
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
    versions of ``key`` older than ``seq``, then the keys after it."""

    key: bytes
    inclusive: bool = False
    seq: int | None = None


@dataclass
class ScanResult(Generic[T]):
    items: list[T]
    prefixes: list[str]
    truncated: bool
    last: str | None  # last key or common prefix emitted
    last_seq: int | None  # seq of the last item emitted


Fetch = Callable[[Cursor, int], Iterable[tuple[bytes, int, T]]]


def scan(
    fetch: Fetch[T],
    prefix: str,
    delimiter: str,
    after: str,
    max_keys: int,
    start: Cursor | None = None,
    versions: bool = False,
) -> ScanResult[T]:
    """Walk the index collecting up to ``max_keys`` items and common prefixes past ``after``.

    ``fetch(cursor, limit)`` yields (key bytes, seq, item) in order; with ``start`` (version
    listings) the walk begins there, else just after ``after``. Several items may share a key
    (object versions); each counts, as S3 counts versions.
    """
    pfx = prefix.encode()
    delim = delimiter.encode()
    upper = key_successor(pfx) if pfx else None
    after_b = after.encode()
    if start is None:
        start = Cursor(after_b, inclusive=False) if after_b >= pfx else Cursor(pfx, inclusive=True)
    cursor = start
    result: ScanResult[T] = ScanResult([], [], False, None, None)
    batch = min(max(max_keys + 1, 64), 1001)
    while True:
        rows = list(fetch(cursor, batch))
        if not rows:
            return result
        jumped = False
        for key, seq, item in rows:
            if upper is not None and key >= upper:
                return result
            if not key.startswith(pfx):
                continue
            cp = _common_prefix(key, pfx, delim)
            if cp is not None:
                if cp > after_b:
                    if _full(result, max_keys):
                        return result
                    result.prefixes.append(cp.decode())
                    result.last, result.last_seq = cp.decode(), None
                nxt = key_successor(cp)
                if nxt is None:
                    return result
                cursor = Cursor(nxt, inclusive=True)
                jumped = True
                break
            if _full(result, max_keys):
                return result
            result.items.append(item)
            result.last, result.last_seq = key.decode(), seq
            cursor = Cursor(key, seq=seq) if versions else Cursor(key)
        if not jumped and len(rows) < batch:
            return result


def _full(result: ScanResult[T], max_keys: int) -> bool:
    """True (and marks truncation) when another entry would exceed max_keys."""
    if len(result.items) + len(result.prefixes) >= max_keys:
        result.truncated = True
        return True
    return False


def _common_prefix(key: bytes, pfx: bytes, delim: bytes) -> bytes | None:
    if not delim:
        return None
    idx = key.find(delim, len(pfx))
    return key[: idx + len(delim)] if idx >= 0 else None
