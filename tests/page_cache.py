"""How much of a file the page cache holds, for tests proving that O_DIRECT writes bypassed it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

needs_fincore = pytest.mark.skipif(shutil.which("fincore") is None, reason="needs fincore (util-linux)")


def resident_bytes(path: Path) -> int:
    out = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(out.strip())
