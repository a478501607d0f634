"""The JavaScript S3 clients the JS tests drive (AWS SDK v3 with lib-storage and the presigner, and
MinIO's `minio` package), installed from npm on first use.

They go into .cache/js-s3-clients under the repository (gitignored) at pinned versions, so CI needs
only node and npm; tests skip with the reason when neither can run or the install fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

CACHE = Path(__file__).resolve().parent.parent / ".cache" / "js-s3-clients"
# One SDK release: lib-storage and the presigner peer-depend on the same client-s3 version.
PACKAGES = {
    "@aws-sdk/client-s3": "3.1178.0",
    "@aws-sdk/lib-storage": "3.1178.0",
    "@aws-sdk/s3-request-presigner": "3.1178.0",
    "minio": "8.0.7",
}


def _installed(root: Path) -> bool:
    """Every pinned package is present at its pinned version (a cache from older pins is stale)."""
    for name, version in PACKAGES.items():
        manifest = root / "node_modules" / name / "package.json"
        try:
            if json.loads(manifest.read_text())["version"] != version:
                return False
        except (OSError, ValueError, KeyError):
            return False
    return True


def js_clients_dir() -> Path:
    """The npm prefix holding the pinned clients (its node_modules), installing them the first time."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError("the JavaScript client tests need node and npm on PATH")
    if _installed(CACHE):
        return CACHE
    npm = shutil.which("npm")
    assert npm is not None
    CACHE.mkdir(parents=True, exist_ok=True)
    specs = [f"{name}@{version}" for name, version in PACKAGES.items()]
    cmd = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(CACHE), *specs]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"npm install of the JS S3 clients timed out after {e.timeout:.0f}s") from e
    if done.returncode != 0 or not _installed(CACHE):
        raise RuntimeError(f"npm install of the JS S3 clients failed:\n{done.stderr[-2000:]}")
    return CACHE


if __name__ == "__main__":  # install ahead of a test run, outside the tests' timeouts
    print(js_clients_dir())
