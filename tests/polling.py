"""Waiting for what a server's background task brings about (lifecycle transitions, tiering moves,
restores finishing): poll, and fail the test with a clear message when it does not happen in time."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(pred: Callable[[], bool], timeout: float, interval: float = 0.05) -> None:
    """Return as soon as PRED() is true; AssertionError once TIMEOUT seconds pass without it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(interval)
    raise AssertionError("condition not reached in time")
