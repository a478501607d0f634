"""What the throwaway emulators the tests start (SeaweedFS, Azurite, the GCS emulator) share: finding
their executable and stopping their process."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def installed_binary(name: str, missing: str) -> str:
    """NAME beside this interpreter (a venv's bin, where the dev extra installs it), else on PATH;
    RuntimeError(MISSING), which says how to install it, when neither has it."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        raise RuntimeError(missing)
    return found


def stop_child(proc: subprocess.Popen[bytes], grace: float) -> None:
    """Terminate PROC, and kill it if it is still running GRACE seconds later: a throwaway instance
    need not finish a slow graceful shutdown."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
