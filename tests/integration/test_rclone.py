"""rclone, the sync client most HPC sites use, against a real server: copy, ls, sync, check, delete.

rclone comes from Debian (`apt-get install rclone`); without it these tests skip with that reason.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import ACCESS_KEY, SECRET_KEY, Server

RCLONE = shutil.which("rclone")
pytestmark = pytest.mark.skipif(RCLONE is None, reason="rclone not installed (apt-get install rclone)")


def rclone(server: Server, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Remote `gw:` configured only through environment variables, so no config file is touched."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RCLONE_", "AWS_"))}
    env.update(
        RCLONE_CONFIG="/dev/null",
        RCLONE_CONFIG_GW_TYPE="s3",
        RCLONE_CONFIG_GW_PROVIDER="Other",
        RCLONE_CONFIG_GW_ENDPOINT=server.endpoint,
        RCLONE_CONFIG_GW_ACCESS_KEY_ID=ACCESS_KEY,
        RCLONE_CONFIG_GW_SECRET_ACCESS_KEY=SECRET_KEY,
        RCLONE_CONFIG_GW_REGION="us-east-1",
        RCLONE_CONFIG_GW_FORCE_PATH_STYLE="true",
    )
    cmd = [str(RCLONE), "--retries", "1", "--low-level-retries", "1", *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    if check:
        assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
    return proc


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "a.txt": b"alpha\n",
        "dir/b.bin": os.urandom(70_000),
        "dir/sub/c with space.txt": b"gamma" * 1000,
        "unicodé/ß.txt": b"unicode",
        "big.bin": os.urandom(12 * 1024 * 1024),  # above rclone's 5 MiB cutoff: multipart upload
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return files


def test_rclone_copy_ls_check_sync_delete(server: Server, s3: Any, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = make_tree(src)
    rclone(server, "copy", str(src), f"gw:{bucket}/data")

    listed = rclone(server, "ls", f"gw:{bucket}/data").stdout
    for rel, data in files.items():
        assert f"{len(data)} {rel}" in listed
    for rel, data in files.items():
        body = s3.get_object(Bucket=bucket, Key=f"data/{rel}")["Body"].read()
        assert hashlib.md5(body).digest() == hashlib.md5(data).digest(), rel
    rclone(server, "check", str(src), f"gw:{bucket}/data")

    (src / "a.txt").unlink()
    (src / "new.txt").write_bytes(b"new")
    rclone(server, "sync", str(src), f"gw:{bucket}/data")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="data/")["Contents"]}
    assert "data/a.txt" not in keys and "data/new.txt" in keys

    dst = tmp_path / "dst"
    rclone(server, "copy", f"gw:{bucket}/data", str(dst))
    assert (dst / "big.bin").read_bytes() == files["big.bin"]
    assert (dst / "new.txt").read_bytes() == b"new"

    rclone(server, "delete", f"gw:{bucket}/data")
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_rclone_wrong_secret_fails(server: Server, bucket: str) -> None:
    proc = rclone(server, "ls", f"gw:{bucket}", f"--s3-secret-access-key={SECRET_KEY}x", check=False)
    assert proc.returncode != 0
    assert "SignatureDoesNotMatch" in proc.stderr or "403" in proc.stderr, proc.stderr
