"""``worker_parent.die_with_parent``: a worker ends when its parent does, killed or already gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rs3gw.worker_parent import PARENT_PID_ENV

WORKER = """
import sys, time
from rs3gw.worker_parent import die_with_parent
die_with_parent()
print("serving", flush=True)
time.sleep(60)
"""

# A stand-in for `rs3gw serve`: starts a worker from its main thread, reports its pid, waits.
PARENT = f"""
import os, subprocess, sys, time
os.environ[{PARENT_PID_ENV!r}] = str(os.getpid())
child = subprocess.Popen([sys.executable, "-c", {WORKER!r}], stdout=subprocess.PIPE, text=True)
assert child.stdout is not None and child.stdout.readline() == "serving\\n"
print(child.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_worker_dies_with_its_killed_parent() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    worker = 0
    try:
        assert parent.stdout is not None
        worker = int(parent.stdout.readline())
        assert _alive(worker)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 5
        while _alive(worker):
            assert time.monotonic() < deadline, "the worker outlived its killed parent"
            time.sleep(0.02)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if worker and _alive(worker):
            os.kill(worker, signal.SIGKILL)


def test_a_worker_whose_parent_is_already_gone_exits_at_once() -> None:
    # Our pid is the worker's parent here, so any other pid stands for a parent that has been replaced.
    gone = subprocess.run(
        [sys.executable, "-c", WORKER],
        env={**os.environ, PARENT_PID_ENV: str(os.getpid() + 1_000_000)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert gone.returncode == 0 and "serving" not in gone.stdout
    assert "is gone" in gone.stderr


def test_a_worker_of_a_live_parent_keeps_running() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER],
        env={**os.environ, PARENT_PID_ENV: str(os.getpid())},
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"serving\n"
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
