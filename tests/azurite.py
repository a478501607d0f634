"""Start and stop a throwaway Azurite (Azure Blob Storage's emulator, from npm) on loopback.

Azurite is installed on first use into .cache/azurite under the repository (gitignored) with the
pinned version, so CI needs only node and npm; tests skip with the reason when neither can run.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from conftest import free_port
from emulator_process import stop_child

VERSION = "3.37.0"
CACHE = Path(__file__).resolve().parent.parent / ".cache" / "azurite"
# Azurite's documented development account (public, the same in every installation)
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_binary() -> str:
    """The cached azurite-blob, installing it with npm the first time."""
    exe = CACHE / "node_modules" / ".bin" / "azurite-blob"
    if exe.exists():
        return str(exe)
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise RuntimeError("Azurite needs node and npm on PATH")
    CACHE.mkdir(parents=True, exist_ok=True)
    cmd = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(CACHE), f"azurite@{VERSION}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    if done.returncode != 0 or not exe.exists():
        raise RuntimeError(f"npm install azurite failed:\n{done.stderr[-2000:]}")
    return str(exe)


@dataclass
class Azurite:
    port: int
    workdir: Path
    proc: subprocess.Popen[bytes]

    @property
    def account_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint={self.account_url};"
        )

    def service(self, retries: int = 3):  # type: ignore[no-untyped-def]
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string, retry_total=retries)

    def log_tail(self) -> str:
        return (self.workdir / "azurite.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        stop_child(self.proc, 5)


def start_azurite(workdir: Path, timeout: float = 60.0) -> Azurite:
    exe = azurite_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [exe, "--blobHost", "127.0.0.1", "--blobPort", str(port)]
    cmd += ["--silent", "--skipApiVersionCheck", "--disableTelemetry", "--inMemoryPersistence"]
    log = open(workdir / "azurite.log", "wb")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    az = Azurite(port, workdir, proc)
    svc = az.service(retries=0)
    deadline, last = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"azurite exited with {proc.returncode}:\n{az.log_tail()}")
        try:
            list(svc.list_containers())
            return az
        except Exception as e:  # connection refused while node starts
            last = str(e)
            time.sleep(0.2)
    az.stop()
    raise RuntimeError(f"azurite not ready after {timeout:.0f}s ({last}):\n{az.log_tail()}")


if __name__ == "__main__":  # scripts/check.sh installs it before the tests, outside their timeouts
    print(azurite_binary())
