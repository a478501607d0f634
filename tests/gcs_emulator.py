"""Start and stop a throwaway GCS emulator (`gcp-storage-emulator`, from PyPI) on loopback.

It speaks the JSON API the google-cloud-storage client uses (uploads, resumable sessions, ranged
media downloads, listing with pages); the dev extra pins it.
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from conftest import free_port
from emulator_process import installed_binary, stop_child


def emulator_binary() -> str:
    missing = "gcp-storage-emulator not found: pip install gcp-storage-emulator (dev extra)"
    return installed_binary("gcp-storage-emulator", missing)


@dataclass
class GCSEmulator:
    port: int
    workdir: Path
    proc: subprocess.Popen[bytes]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self):  # type: ignore[no-untyped-def]
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        opts = {"api_endpoint": self.endpoint}
        return storage.Client(project="test", credentials=AnonymousCredentials(), client_options=opts)

    def log_tail(self) -> str:
        return (self.workdir / "gcs.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        stop_child(self.proc, 5)


def start_gcs_emulator(workdir: Path, buckets: tuple[str, ...] = (), timeout: float = 30.0) -> GCSEmulator:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [emulator_binary(), "-d", str(workdir / "data"), "start", "--port", str(port)]
    cmd += ["--host", "127.0.0.1", "--in-memory", "-q"]
    log = open(workdir / "gcs.log", "wb")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    emu = GCSEmulator(port, workdir, proc)
    deadline, last = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gcp-storage-emulator exited with {proc.returncode}:\n{emu.log_tail()}")
        try:
            with urllib.request.urlopen(emu.endpoint + "/", timeout=2):
                break
        except OSError as e:
            last = str(e)
            time.sleep(0.2)
    else:
        emu.stop()
        raise RuntimeError(f"gcp-storage-emulator not ready after {timeout:.0f}s ({last}):\n{emu.log_tail()}")
    client = emu.client()
    for b in buckets:
        client.create_bucket(b)
    return emu
