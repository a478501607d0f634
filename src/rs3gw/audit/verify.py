"""``rs3gw audit verify``: walk every segment and say exactly where the chain breaks.

After a break the walk re-synchronises on the record it stopped at, so one edited line is reported
once and the records after it still get checked.
"""

from __future__ import annotations

import fcntl
import hmac
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from rs3gw.audit.chain import (
    CURRENT,
    GENESIS,
    LOCK,
    Head,
    compute_mac,
    head_mac,
    open_segment,
    read_head,
    segments,
)

_CLOSED_RE = re.compile(r"audit-(\d{12})-(\d{12})\.log")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int  # 1-based line in the (decompressed) segment; 0 for whole-file problems
    seq: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: seq {self.seq if self.seq is not None else '?'}: {self.reason}"


@dataclass
class VerifyReport:
    ok: bool = True
    records: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    segments: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class _Walk:
    def __init__(self, key: bytes) -> None:
        self.key = key
        self.expected = 1
        self.prev = GENESIS
        self.report = VerifyReport()
        self.head_seq: int | None = None
        self.head_record_mac: str | None = None

    def problem(self, path: Path, line: int, seq: int | None, reason: str) -> None:
        self.report.problems.append(Problem(path.name, line, seq, reason))

    def record(self, path: Path, n: int, raw: bytes) -> int | None:
        try:
            rec = json.loads(raw)
        except ValueError:
            self.problem(path, n, None, "not a JSON record (line damaged or inserted)")
            return None
        seq, prev, mac = (
            (rec.get(k) for k in ("seq", "prev", "mac")) if isinstance(rec, dict) else (None,) * 3
        )
        if not (isinstance(seq, int) and isinstance(prev, str) and isinstance(mac, str)):
            self.problem(path, n, None, "record lacks seq/prev/mac")
            return None
        assert isinstance(rec, dict)
        if not hmac.compare_digest(compute_mac(self.key, prev, rec), mac):
            self.problem(path, n, seq, "MAC mismatch: record was modified (or forged without the key)")
        if seq > self.expected:
            missing = (
                f"seq {self.expected}" if seq == self.expected + 1 else f"seq {self.expected}..{seq - 1}"
            )
            self.problem(path, n, seq, f"{missing} missing before this record (removed or reordered)")
        elif seq < self.expected:
            self.problem(
                path, n, seq, f"expected seq {self.expected}: record out of order (reordered or inserted)"
            )
        elif prev != self.prev:
            self.problem(
                path, n, seq, "prev does not match the previous record's mac (record inserted or replaced)"
            )
        self.prev, self.expected = mac, seq + 1
        if seq == self.head_seq:
            self.head_record_mac = mac
        r = self.report
        r.records += 1
        r.first_seq = seq if r.first_seq is None else r.first_seq
        r.last_seq = seq
        return seq


def verify_log(directory: Path, key: bytes) -> VerifyReport:
    """Check every record's MAC, ``seq`` continuity and ``prev`` links across all segments, then the head."""
    head, opened = _snapshot(directory)
    walk = _Walk(key)
    walk.head_seq = head.seq if head is not None else None
    for seg, lines in opened:
        walk.report.segments.append(seg.name)
        first: int | None = None
        last: int | None = None
        try:
            for n, raw in lines:
                seq = walk.record(seg, n, raw)
                if seq is not None:
                    first = seq if first is None else first
                    last = seq
        except (OSError, EOFError, ValueError) as exc:  # truncated or corrupt compressed segment
            walk.problem(seg, 0, None, f"cannot read segment: {exc}")
        m = _CLOSED_RE.match(seg.name)
        if m and (first, last) != (int(m[1]), int(m[2])):
            walk.problem(
                seg, 0, first, f"segment name says seq {int(m[1])}..{int(m[2])}, it holds {first}..{last}"
            )
    if head is not None:
        _check_head(walk, directory, key, head.seq, head.mac, head.check)
    walk.report.ok = not walk.report.problems
    return walk.report


Lines = Iterator[tuple[int, bytes]]


def _snapshot(directory: Path) -> tuple[Head | None, list[tuple[Path, Lines]]]:
    """Head, segment list and the current segment's length, taken under the writers' lock (shared) so a
    live server's append or rotation cannot land between them; the reading itself happens unlocked
    (open files survive a rename or unlink)."""
    if not directory.is_dir():
        return None, []
    lock = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_SH)
        head = read_head(directory)
        opened: list[tuple[Path, Lines]] = []
        for seg in segments(directory):
            if seg.name == CURRENT:
                with seg.open("rb") as fh:
                    data = fh.read()  # bounded by rotate_bytes (plus one batch)
                opened.append((seg, _numbered(data.splitlines())))
            else:
                opened.append((seg, _lines_of(open_segment(seg))))
        return head, opened
    finally:
        os.close(lock)  # releases the lock


def _lines_of(fh: IO[bytes]) -> Lines:
    with fh:
        for n, line in enumerate(fh, 1):
            yield n, line.rstrip(b"\n")


def _numbered(lines: list[bytes]) -> Lines:
    yield from enumerate(lines, 1)


def _check_head(walk: _Walk, directory: Path, key: bytes, seq: int, mac: str, check: str) -> None:
    path = directory / "audit.head"
    last = walk.report.last_seq or 0
    if not hmac.compare_digest(head_mac(key, seq, mac), check):
        walk.problem(path, 0, seq, "head file was modified")
    elif seq > last:
        walk.problem(path, 0, seq, f"records seq {last + 1}..{seq} are missing at the end (log truncated)")
    elif walk.head_record_mac != mac:
        walk.problem(path, 0, seq, "the record at the head's seq is not the one that was written")
