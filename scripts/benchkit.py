"""Pieces shared by the cost-curve, time-to-first-byte and worker-scaling benchmarks.

They reuse ``scripts/bench.py`` (how to start rs3gw and SeaweedFS on loopback, the readiness probe)
rather than copy it, and add what those three need on top: several rs3gw variants side by side
(each its own name and flags), the server process tree's peak RSS per measured cell, and one
s3bench run with an explicit op count, object count and timeout (large objects need few ops).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent
DEFAULT_S3BENCH = REPO.parent / "shared" / "bench" / "s3bench.py"


def load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up while the class is built
    spec.loader.exec_module(mod)
    return mod


bench = load_module("rs3gw_bench", SCRIPTS / "bench.py")
log = bench.log
fmt_size = bench.fmt_size
parse_size = bench.parse_size
csv = bench.csv
machine_info = bench.machine_info
ACCESS_KEY, SECRET_KEY, REGION, BUCKET = bench.ACCESS_KEY, bench.SECRET_KEY, bench.REGION, bench.BUCKET


@dataclass
class Variant:
    """One server under test: ``kind`` is rs3gw or seaweedfs; rs3gw variants differ by ``flags``."""

    name: str
    kind: str
    label: str
    flags: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # e.g. PYTHONPATH of a baseline source tree
    peer: Any = None

    @property
    def pid(self) -> int:
        return int(self.peer.proc.pid)

    @property
    def endpoint(self) -> str:
        return str(self.peer.endpoint)


def make_peer(v: Variant) -> Any:
    """A bench.Peer under the variant's own name (its temp dir); bench.py only needs a label for it."""
    if v.kind == "rs3gw":
        if importlib.util.find_spec("rs3gw") is None:
            raise SystemExit("rs3gw is not importable: run with the project venv (.venv/bin/python)")
        name = v.name if v.name.startswith("rs3gw") else f"rs3gw-{v.name}"  # bench.py keys on the prefix
        bench.LABEL[name] = v.label
        return bench.Peer(name, sys.executable)
    bench.LABEL[v.name] = v.label
    if v.kind == "seaweedfs":
        tool = bench.find_tool("weed")
        if tool is None:
            raise SystemExit(f"`weed` not found; install with: {bench.INSTALL_HINT}")
        peer = bench.Peer(v.name, tool)
        peer.version = bench.tool_version([tool, "version"])
        return peer
    raise ValueError(v.kind)


@contextlib.contextmanager
def running(variants: list[Variant], s3bench_path: Path, keep: bool = False) -> Iterator[Path]:
    """Start every variant (each in a fresh temp dir), yield, stop them all and remove the dirs."""
    s3bench = bench.load_s3bench(s3bench_path)
    root = Path(tempfile.mkdtemp(prefix="rs3gw-costcurve-"))
    try:
        for v in variants:
            v.peer = make_peer(v)
            t = time.monotonic()
            saved = {k: os.environ.get(k) for k in v.env}
            os.environ.update(v.env)  # bench.Peer.start passes the environment on to the server
            try:
                v.peer.start(root, s3bench, v.flags)
            finally:
                for k, old in saved.items():
                    if old is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = old
            log(f"{v.label}: {v.endpoint} pid {v.pid} ready in {time.monotonic() - t:.1f}s")
        yield root
    finally:
        for v in variants:
            if v.peer is not None:
                v.peer.stop()
        if keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- memory


def tree_pids(pid: int) -> list[int]:
    """``pid`` and all its descendants (uvicorn workers, SQLite helper threads live in-process)."""
    import psutil  # type: ignore[import-untyped,unused-ignore]

    try:
        p = psutil.Process(pid)
        return [pid, *(c.pid for c in p.children(recursive=True))]
    except psutil.Error:
        return []


def reset_peak(pid: int) -> bool:
    """Linux: writing 5 to clear_refs resets VmHWM (the peak RSS) of each process in the tree."""
    ok = True
    for p in tree_pids(pid):
        try:
            Path(f"/proc/{p}/clear_refs").write_text("5")
        except OSError:
            ok = False
    return ok


def _status_kib(pid: int, field_name: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


class RssWatch:
    """Peak RSS of a process tree during a measured run.

    Two readings: ``sampled`` is the highest sum over the tree seen by a 20 Hz sampler (what the
    processes held at the same moment), ``hwm`` the sum of each process's VmHWM after a reset at
    the start (catches spikes between samples; an upper bound, since peaks need not coincide).
    """

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.sampled = 0
        self.hwm_reset = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        total = sum(_status_kib(p, "VmRSS") for p in tree_pids(self.pid))
        self.sampled = max(self.sampled, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> RssWatch:
        self.hwm_reset = reset_peak(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def result(self) -> dict[str, float | None]:
        hwm = sum(_status_kib(p, "VmHWM") for p in tree_pids(self.pid)) if self.hwm_reset else 0
        return {
            "rss_peak_mib": round(self.sampled / 1024, 1),
            "rss_hwm_mib": round(hwm / 1024, 1) if hwm else None,
        }


# --------------------------------------------------------------------------- one s3bench run


def s3bench_run(
    s3bench_path: Path,
    v: Variant,
    op: str,
    size: int,
    conc: int,
    *,
    objects: int,
    duration: float,
    warmup: float,
    count: int = 0,
    verify: bool = False,
    prepared: bool = False,
    timeout: float = 900.0,
) -> dict[str, Any]:
    """One measured s3bench run of ``op`` against ``v``, with the server tree's peak RSS added."""
    cmd = [sys.executable, str(s3bench_path), "--endpoint", v.endpoint, "--bucket", BUCKET]
    cmd += ["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY, "--region", REGION]
    cmd += ["--op", op, "--size", str(size), "--objects", str(objects), "-c", str(conc)]
    cmd += ["--duration", str(duration), "--warmup", str(warmup), "--runs", "1", "--json"]
    cmd += ["--server-pid", ",".join(str(p) for p in tree_pids(v.pid)), "--timeout", "300"]
    if count:
        cmd += ["--count", str(count)]
    if verify and op in ("get", "list"):
        cmd.append("--verify")
    if prepared and op != "put":
        cmd.append("--skip-prepare")
    with RssWatch(v.pid) as watch:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return {"errors": 1, "error_samples": ["s3bench timed out"], **watch.result()}
    try:
        res: dict[str, Any] = json.loads(out.stdout)["runs"][0][op]
    except (ValueError, KeyError, IndexError):
        tail = (out.stderr or out.stdout).strip()[-500:]
        return {"errors": 1, "error_samples": [f"s3bench exit {out.returncode}: {tail}"]}
    res.update(watch.result())
    return res


S3BENCH_MAX = 128 * (
    1 << 20
)  # s3bench builds its payload with randbytes(size + 64 KiB): ints overflow at 256 MiB


class BigClient:
    """Blocking client for objects s3bench cannot make (>= 256 MiB): one connection per request,
    the body streamed from one random 1 MiB chunk rotated by the key's index (so keys differ),
    GET bodies read in 1 MiB pieces and counted (length checked, content not kept)."""

    CHUNK = 1 << 20

    def __init__(self, s3bench_path: Path, v: Variant) -> None:
        self.s3b = bench.load_s3bench(s3bench_path)
        self.signer = self.s3b.SigV4Signer(ACCESS_KEY, SECRET_KEY, REGION)
        host, port = v.endpoint.removeprefix("http://").split(":")
        self.addr, self.host = (host, int(port)), f"{host}:{port}"
        self.base = os.urandom(self.CHUNK)
        self.lock = threading.Lock()
        self.create_bucket()

    def path(self, size: int, i: int) -> str:
        return f"/{BUCKET}/big/{size}/obj-{i:08d}"

    def _send_head(self, sock: Any, method: str, path: str, length: int | None) -> None:
        with self.lock:  # the signer caches its date and key: not thread-safe
            h = self.signer.sign(method, self.host, path)
        if length is not None:
            h["Content-Length"] = str(length)
        h["Connection"] = "close"
        sock.sendall(
            (
                "\r\n".join([f"{method} {path} HTTP/1.1", *(f"{k}: {x}" for k, x in h.items()), "", ""])
            ).encode()
        )

    @staticmethod
    def _response(sock: Any) -> tuple[int, int, bytes]:
        buf = b""
        while b"\r\n\r\n" not in buf:
            got = sock.recv(65536)
            if not got:
                raise ConnectionError("closed before the response headers")
            buf += got
        head, _, rest = buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, val = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(val)
        return int(head.split(b" ", 2)[1]), length, rest

    def create_bucket(self) -> None:
        """PUT /bucket (200, or 409 when it exists): s3bench makes it only for the cells it runs."""
        import socket

        with socket.create_connection(self.addr, timeout=60) as sock:
            self._send_head(sock, "PUT", f"/{BUCKET}", 0)
            status, _, rest = self._response(sock)
            if status not in (200, 409):
                raise RuntimeError(f"create bucket: {status} {rest[:200]!r}")

    def put(self, size: int, i: int) -> None:
        import socket

        rot = (i * 4099) % self.CHUNK
        chunk = self.base[rot:] + self.base[:rot]
        with socket.create_connection(self.addr, timeout=600) as sock:
            self._send_head(sock, "PUT", self.path(size, i), size)
            n, rem = divmod(size, self.CHUNK)
            for _ in range(n):
                sock.sendall(chunk)
            sock.sendall(chunk[:rem])
            status, _, rest = self._response(sock)
            if status != 200:
                raise RuntimeError(f"PUT {status} {rest[:200]!r}")

    def get(self, size: int, i: int) -> None:
        import socket

        with socket.create_connection(self.addr, timeout=600) as sock:
            self._send_head(sock, "GET", self.path(size, i), None)
            status, length, rest = self._response(sock)
            if status != 200:
                raise RuntimeError(f"GET {status} {rest[:200]!r}")
            got = len(rest)
            while got < length:
                data = sock.recv(self.CHUNK)
                if not data:
                    break
                got += len(data)
            if got != size:
                raise RuntimeError(f"GET short body {got} of {size}")

    def run(self, pid: int, op: str, size: int, conc: int, count: int, objects: int) -> dict[str, Any]:
        """``count`` requests with ``conc`` threads; s3bench's result fields plus the RSS peak."""
        from concurrent.futures import ThreadPoolExecutor

        fn = self.put if op == "put" else self.get
        lat: list[float] = []
        errs: list[str] = []

        def one(n: int) -> None:
            t = time.perf_counter()
            try:
                fn(size, n % objects)
            except Exception as e:  # a failed request is counted, the run goes on
                errs.append(str(e)[:200])
                return
            lat.append(time.perf_counter() - t)

        meter = self.s3b.CpuMeter(tree_pids(pid))
        with RssWatch(pid) as watch:
            meter.start()
            t0 = time.perf_counter()
            with ThreadPoolExecutor(conc) as pool:
                list(pool.map(one, range(count)))
            dt = time.perf_counter() - t0
            cpu = meter.stop()
        lat.sort()
        res: dict[str, Any] = {
            "ops_s": round(len(lat) / dt, 3),
            "mib_s": round(len(lat) * size / dt / (1 << 20), 1),
            "p50_ms": round(lat[len(lat) // 2] * 1000, 2) if lat else None,
            "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 2) if lat else None,
            "errors": len(errs),
            "error_samples": errs[:3],
            "client": "benchkit.BigClient",
            **cpu,
        }
        res.update(watch.result())
        return res


def prepare(s3bench_path: Path, v: Variant, size: int, objects: int, timeout: float = 1800.0) -> str | None:
    """PUT the objects a GET/HEAD cell reads, outside any measurement (s3bench prepares, then 1 HEAD)."""
    cmd = [sys.executable, str(s3bench_path), "--endpoint", v.endpoint, "--bucket", BUCKET]
    cmd += ["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY, "--region", REGION]
    cmd += ["--op", "head", "--size", str(size), "--objects", str(objects), "-c", "4"]
    cmd += ["--count", "1", "--duration", "5", "--warmup", "0", "--json", "--timeout", "600"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return "prepare timed out"
    return None if out.returncode == 0 else (out.stderr or out.stdout).strip()[-300:]


def disk_free(path: str = "/tmp") -> int:
    return shutil.disk_usage(path).free


def git_rev() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        return out.stdout.strip() + ("+uncommitted" if dirty.stdout.strip() else "")
    return "?"


def loadavg() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


def cpu_count() -> int:
    return os.cpu_count() or 1
