"""The audit writer's cheap paths: the head rewritten in place, and batches held open for LINGER."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from rs3gw.audit import writer as writer_mod
from rs3gw.audit.chain import HEAD, HEAD_SIZE, head_mac, load_or_create_key, read_head, write_head
from rs3gw.audit.verify import verify_log
from rs3gw.audit.writer import ChainWriter


def _writer(tmp_path: Path, batches: list[int] | None = None) -> tuple[ChainWriter, bytes]:
    """A started writer over ``tmp_path`` (queue of 100); ``batches`` collects each batch's size."""
    key = load_or_create_key(tmp_path)
    w = ChainWriter(
        tmp_path,
        key,
        rotate_bytes=1 << 30,
        rotate_seconds=0,
        compression="none",
        fsync=False,
        queue_size=100,
        on_written=lambda batch: batches.append(len(batch)) if batches is not None else None,
    )
    w.start()
    return w, key


def test_head_rewritten_in_place_over_a_longer_file(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path)
    (tmp_path / HEAD).write_text(
        '{"seq": 1, "mac": "x", "check": "y"}' + " " * 3000 + "\n"
    )  # older/hand-made
    write_head(tmp_path, key, 7, "a" * 64)
    assert (tmp_path / HEAD).stat().st_size == HEAD_SIZE
    write_head(tmp_path, key, 8, "b" * 64)
    head = read_head(tmp_path)
    assert head is not None and (head.seq, head.mac) == (8, "b" * 64)
    assert head.check == head_mac(key, 8, "b" * 64)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp files


def test_records_of_a_burst_share_one_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_mod, "LINGER", 0.5)  # wide margin: a busy box may stall the test thread
    batches: list[int] = []
    w, key = _writer(tmp_path, batches)
    rec: dict[str, Any] = {"type": "request", "action": "HeadObject", "ts": time.time()}
    w.submit(dict(rec))
    time.sleep(0.05)  # the writer has taken the first record and is holding its batch open
    for _ in range(9):
        w.submit(dict(rec))
    assert w.flush(10)
    w.close()
    assert batches == [10]
    rep = verify_log(tmp_path, key)
    assert rep.ok and rep.last_seq == 10, rep.problems


def test_flush_cuts_a_lingering_batch_short(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A query's flush must not wait out the linger: it ends the open batch at once."""
    monkeypatch.setattr(writer_mod, "LINGER", 30.0)
    batches: list[int] = []
    w, _ = _writer(tmp_path, batches)
    rec: dict[str, Any] = {"type": "request", "action": "HeadObject", "ts": time.time()}
    w.submit(dict(rec))
    time.sleep(0.05)  # the writer holds the batch open now
    w.submit(dict(rec))
    started = time.monotonic()
    assert w.flush(20)
    assert time.monotonic() - started < 10  # not the 30 s linger
    assert batches == [2]
    started = time.monotonic()
    w.submit(dict(rec))
    w.close(20)  # close ends a lingering batch too, and writes it
    assert time.monotonic() - started < 10
    assert not w.is_alive() and batches == [2, 1]


def test_a_filling_queue_cuts_the_linger_short(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Records arriving faster than a linger's worth of queue: written, not dropped."""
    monkeypatch.setattr(writer_mod, "LINGER", 30.0)
    w, _ = _writer(tmp_path)
    rec: dict[str, Any] = {"type": "request", "action": "HeadObject", "ts": time.time()}
    deadline = time.monotonic() + 10
    sent = 0
    while sent < 500 and time.monotonic() < deadline:
        if w.queued() < 90:
            w.submit(dict(rec))
            sent += 1
        else:
            time.sleep(0.001)
    assert sent == 500  # the writer kept draining: never 30 s of linger with a full queue
    assert w.flush(10)
    w.close()
    assert w.dropped == 0 and w.written == 500
