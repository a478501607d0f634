"""`rs3gw backup schedule`: cron-driven snapshots with retention after each run, against a real server.

The scheduler runs as a real subprocess of the CLI on a once-a-second cron ("* * * * * *", croniter's
sixth field is seconds); its --json lines are read as they come, then SIGTERM stops it."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ACCESS_KEY, SECRET_KEY, Server, cleanup_bucket

ENV = {**os.environ, "RS3GW_ACCESS_KEY": ACCESS_KEY, "RS3GW_SECRET_KEY": SECRET_KEY}


def schedule_cmd(server: Server, bucket: str, target: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "rs3gw", "backup", "schedule", "--endpoint", server.endpoint,
        "--bucket", bucket, "--target", str(target), "--json", *extra,
    ]  # fmt: skip


def backup_json(*args: str) -> Any:
    proc = subprocess.run(
        [sys.executable, "-m", "rs3gw", "backup", *args, "--json"],
        capture_output=True, text=True, env=ENV, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(proc.stdout)


class Lines:
    """The scheduler's stdout, one parsed JSON event at a time, with a timeout per event."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.q: queue.Queue[str | None] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        assert proc.stdout is not None
        stdout = proc.stdout

        def pump() -> None:
            for line in stdout:
                self.q.put(line)
            self.q.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def next(self, timeout: float = 30.0) -> dict[str, Any] | None:
        line = self.q.get(timeout=timeout)
        if line is None:
            return None
        event: dict[str, Any] = json.loads(line)
        self.seen.append(event)
        return event

    def until(self, name: str, timeout: float = 30.0) -> dict[str, Any]:
        while True:
            event = self.next(timeout)
            assert event is not None, f"the scheduler exited before a {name!r} event: {self.seen}"
            if event["event"] == name:
                return event


@pytest.fixture
def bucket(server: Server) -> Iterator[str]:
    s3 = server.client()
    name = f"sched-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    for i in range(3):
        s3.put_object(Bucket=name, Key=f"k{i}", Body=os.urandom(2048))
    yield name
    cleanup_bucket(s3, name)


def test_schedule_runs_prunes_and_stops_on_sigterm(server: Server, bucket: str, tmp_path: Path) -> None:
    target = tmp_path / "repo"
    cmd = schedule_cmd(
        server, bucket, target, "--cron", "* * * * * *", "--full-every", "2", "--keep-last", "2"
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        lines = Lines(proc)
        assert lines.until("scheduled")["next_run"]
        runs = [lines.until("run")]
        server.client().put_object(Bucket=bucket, Key="added-later", Body=b"new")
        while len(runs) < 4:
            runs.append(lines.until("run"))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
        stopped = lines.until("stopped")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert stopped["failures"] == 0 and stopped["runs"] >= 4
    assert all(r["ok"] for r in runs), runs
    # --full-every 2: full, incremental, full, incremental; each snapshot a second apart
    assert [r["kind"] for r in runs] == ["full", "incremental", "full", "incremental"]
    assert runs[0]["stats"]["versions"] == 3
    assert any(r["stats"]["new_versions"] >= 1 for r in runs[1:]), "the object added later was not captured"
    # --keep-last 2 after every run: the third run keeps the second's parent, the fourth drops both
    assert runs[2]["prune"]["removed"] == []
    assert runs[3]["prune"]["removed"] == [runs[0]["snapshot"], runs[1]["snapshot"]]
    listed = backup_json("list", "--source", str(target), "--bucket", bucket)["snapshots"]
    last = [e for e in lines.seen if e["event"] == "run"][-1]  # a fifth run may beat the SIGTERM
    ids = [s["id"] for s in listed]
    assert ids == last["prune"]["kept"] and ids[-1] == last["snapshot"]
    assert runs[0]["snapshot"] not in ids and runs[1]["snapshot"] not in ids
    assert backup_json("verify", "--source", str(target))["ok"] is True


def test_once_due_runs_only_when_a_slot_passed(server: Server, bucket: str, tmp_path: Path) -> None:
    target = tmp_path / "repo"
    cmd = schedule_cmd(server, bucket, target, "--cron", "0 0 1 1 *", "--once-due", "--kind", "full")
    first = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=120)
    assert first.returncode == 0, first.stderr
    (event,) = [json.loads(line) for line in first.stdout.splitlines()]
    assert event["event"] == "run" and event["ok"] and event["kind"] == "full"
    # The newest snapshot is newer than the last 1 January: nothing is due until the next one.
    second = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=120)
    assert second.returncode == 0, second.stderr
    assert [json.loads(line)["event"] for line in second.stdout.splitlines()] == ["not-due"]
    listed = backup_json("list", "--source", str(target), "--bucket", bucket)["snapshots"]
    assert [s["id"] for s in listed] == [event["snapshot"]]


def test_bad_cron_is_a_usage_error(server: Server, tmp_path: Path) -> None:
    cmd = schedule_cmd(server, "b", tmp_path / "repo", "--cron", "every tuesday")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=60)
    assert proc.returncode == 2
    assert "bad cron expression" in json.loads(proc.stdout)["error"]


def test_failed_run_is_reported_and_the_schedule_goes_on(server: Server, tmp_path: Path) -> None:
    missing = f"sched-missing-{uuid.uuid4().hex[:8]}"
    cmd = schedule_cmd(server, missing, tmp_path / "repo", "--cron", "* * * * * *", "--max-runs", "2")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=60)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    runs = [e for e in events if e["event"] == "run"]
    assert len(runs) == 2 and not any(r["ok"] for r in runs)
    assert "NoSuchBucket" in runs[0]["error"]
    assert events[-1] == {"event": "stopped", "runs": 2, "failures": 2}
