"""``serve --workers N``: worker processes end with the supervising parent, however it ends.

uvicorn's supervisor stops its workers when it is asked to (SIGTERM, Ctrl-C), but a parent killed
outright (``kill -9``, the OOM killer) leaves them running, still serving on the port, and a new
``rs3gw serve`` started on the same address would share the port with the orphans. Each worker
therefore asks the kernel for SIGTERM when its parent dies (Linux ``PR_SET_PDEATHSIG``), which
uvicorn turns into its usual graceful shutdown, and exits at once when the parent is already gone.

PR_SET_PDEATHSIG fires when the *thread* that spawned the worker ends; uvicorn (0.54) spawns and
respawns workers on the supervisor's main thread only, so it fires exactly when the parent exits.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

log = logging.getLogger("rs3gw.workers")

#: The supervisor's pid, set by ``rs3gw serve`` before it spawns workers.
PARENT_PID_ENV = "RS3GW_PARENT_PID"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _set_parent_death_signal(sig: int) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent ends; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        ok = bool(libc.prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(sig), 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False
    if not ok:
        log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))
    return ok


def die_with_parent() -> None:
    """Called first thing in a worker: SIGTERM when the parent dies, and exit now if it already has.

    The check comes after the prctl, so a parent dying between the two is caught by one or the
    other. Without PARENT_PID_ENV (a worker started by something other than ``rs3gw serve``) only
    the death signal is set."""
    _set_parent_death_signal(signal.SIGTERM)
    parent = os.environ.get(PARENT_PID_ENV, "")
    if parent.isdigit() and os.getppid() != int(parent):
        log.warning("rs3gw serve (pid %s) is gone; worker %d exits", parent, os.getpid())
        raise SystemExit(0)
