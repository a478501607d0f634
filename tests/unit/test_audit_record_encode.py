"""Request records are encoded from their events by a template (audit/record.py), never as a dict;
every line must still be byte-identical to the reference definition (json.dumps with sorted keys,
MAC over the record without "mac"), whatever the event's values."""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import math
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rs3gw.audit.chain import GENESIS, load_or_create_key
from rs3gw.audit.record import request_members, request_record, seal_members
from rs3gw.audit.verify import verify_log
from rs3gw.audit.writer import ChainWriter
from rs3gw.protocol.observe import RequestEvent
from rs3gw.timefmt import iso8601


def _reference(key: bytes, record: dict[str, Any], seq: int, prev: str) -> bytes:
    record = dict(record, seq=seq, prev=prev)
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    record["mac"] = hmac.new(key, prev.encode() + b"\n" + canonical, hashlib.sha256).hexdigest()
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


class _Status(enum.IntEnum):
    OK = 200


class _Text(str):
    pass


BASE = RequestEvent(
    request_id="17E2B1C0A1B2C3D4",
    started=1796220000.1234567,
    duration=0.000321,
    method="HEAD",
    operation="HeadObject",
    bucket="bench",
    key="s3bench/4KiB/obj-00000001",
    principal="admin",
    access_key="AKBENCH0001",
    client_ip="127.0.0.1",
    secure=False,
    status=200,
    error_code="",
    bytes_in=0,
    bytes_out=4096,
)

EVENTS = [
    BASE,
    replace(
        BASE,
        operation="",
        bucket=None,
        key=None,
        principal="",
        access_key="",
        status=403,
        error_code="SignatureDoesNotMatch",
    ),
    replace(BASE, key='clé/ünïcode "quoted" \\ back\nline\t\x00 😀', bucket="b-1.x", secure=True),
    replace(BASE, client_ip="::1", method="PUT", bytes_in=5 << 30, started=0.5, duration=12.0),
    replace(BASE, duration=float("nan")),  # the template bails out: json writes NaN, repr nan
    replace(BASE, duration=float("inf")),
    replace(BASE, status=_Status.OK),  # an int subclass: json writes int.__repr__
    replace(BASE, principal=_Text("sub"), secure=True),
    replace(BASE, started=1796220000),  # an int: round(int, 6) stays one, the template bails out
]


@pytest.mark.parametrize("index", range(len(EVENTS)))
@pytest.mark.parametrize("prev", [GENESIS, "f" * 64, "prév"])
def test_template_matches_reference(index: int, prev: str) -> None:
    key = os.urandom(32)
    event = EVENTS[index]
    iso = iso8601(event.started)
    line, mac = seal_members(key, request_members(event, 4242, iso), 9, prev)
    ref = _reference(key, request_record(event, 4242, iso), 9, prev)
    assert line.encode() == ref
    assert json.loads(line)["mac"] == mac


def test_reference_record_fields() -> None:
    """The template's record is the documented one (README "Audit log")."""
    rec = request_record(BASE, 7, iso8601(BASE.started))
    assert rec["action"] == "HeadObject" and rec["ts"] == round(BASE.started, 6)
    assert rec["duration_ms"] == 0.321 and rec["pid"] == 7 and rec["type"] == "request"
    assert math.isclose(rec["ts"], BASE.started, abs_tol=1e-6)
    assert request_record(replace(BASE, operation=""), 7, "")["action"] == "Unknown"


def test_writer_chains_events_and_dicts(tmp_path: Path) -> None:
    """Request events and dict records interleave in one verifiable chain; flush waits for both."""
    key = load_or_create_key(tmp_path)
    written: list[str] = []
    w = ChainWriter(
        tmp_path,
        key,
        rotate_bytes=1 << 30,
        rotate_seconds=0,
        compression="zstd",
        fsync=False,
        queue_size=1000,
        on_written=written.extend,
    )
    assert w.flush(0.1)  # not started, nothing queued: answers at once
    w.start()
    now = time.time()
    w.submit({"type": "system", "action": "Startup", "ts": now})
    for i, event in enumerate(EVENTS * 3):
        w.submit(replace(event, request_id=f"R{i}", started=now))
    w.submit({"type": "alert", "action": "X", "details": {"b": [1, 2], "a": None}})
    started = time.monotonic()
    assert w.flush(10)
    assert time.monotonic() - started < 5
    w.close()
    assert not w.is_alive() and w.flush(0.1)
    n = 2 + 3 * len(EVENTS)
    rep = verify_log(tmp_path, key)
    assert rep.ok and rep.last_seq == n, rep.problems
    recs = [json.loads(line) for line in written]
    assert [r["seq"] for r in recs] == list(range(1, n + 1))
    assert recs[1]["request_id"] == "R0" and recs[1]["pid"] == os.getpid()
    assert recs[-1]["details"] == {"a": None, "b": [1, 2]}
    on_disk = (tmp_path / "audit-current.log").read_text().splitlines()
    assert on_disk == written


def test_full_queue_drops_and_counts(tmp_path: Path) -> None:
    w = ChainWriter(
        tmp_path,
        load_or_create_key(tmp_path),
        rotate_bytes=1 << 30,
        rotate_seconds=0,
        compression="zstd",
        fsync=False,
        queue_size=3,
        on_written=lambda lines: None,
    )
    assert [w.submit(BASE) for _ in range(5)] == [True, True, True, False, False]
    assert (w.dropped, w.queued()) == (2, 3)


def test_two_writers_interleave_across_rotations(tmp_path: Path) -> None:
    """Each writer keeps its segment and head open; the other's appends and rotations (renames)
    must still be seen, so the chain stays one sequence (as with --workers N)."""
    key = load_or_create_key(tmp_path)
    writers = [
        ChainWriter(
            tmp_path,
            key,
            rotate_bytes=4096,
            rotate_seconds=0,
            compression="zstd",
            fsync=False,
            queue_size=1000,
            on_written=lambda lines: None,
        )
        for _ in range(2)
    ]
    for w in writers:
        w.start()
    for i in range(60):
        w = writers[i % 2]
        w.submit(replace(BASE, request_id=f"R{i}"))
        assert w.flush(10)
    for w in writers:
        w.close()
    rep = verify_log(tmp_path, key)
    assert rep.ok and rep.last_seq == 60, rep.problems
    assert len(rep.segments) > 3  # rotated several times, by both writers
