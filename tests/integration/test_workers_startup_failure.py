"""``serve --workers N`` whose workers cannot start exits, non-zero, with the reason, instead of
uvicorn respawning the failing workers forever (it did for any exit status but 3)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import ACCESS_KEY, SECRET_KEY, free_port
from rs3gw.blobs.chunk_index_sqlite import SqliteChunkIndex


def test_a_refused_start_stops_every_worker_and_the_parent(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    idx = SqliteChunkIndex(data / "dedup.db", fsync=False)
    idx.begin_writer("w")  # chunk state that PostgreSQL metadata must refuse (before connecting)
    idx.close()
    cmd = [
        sys.executable, "-m", "rs3gw", "serve", "--workers", "2", "--data-dir", str(data),
        "--address", f"127.0.0.1:{free_port()}", "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY,
        "--metadata", "postgresql://nobody@127.0.0.1:1/none",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert out.returncode == 3, out.stderr[-2000:]
    assert "holds a SQLite chunk index" in out.stderr
    assert "Traceback" not in out.stderr
