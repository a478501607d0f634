#!/usr/bin/env python3
"""Worker scaling (and other same-run A/B comparisons) of rs3gw: ops/s and server CPU per request.

Starts one rs3gw per variant, all at once, each in its own temp dir: by default ``--workers N`` for
each N in ``--workers`` (1,2 here; pass 1,2,4,8 on a bigger machine). The cells (default GET and
HEAD of 4 KiB and PUT of 1 MiB, all at c=16) are measured with the shared s3bench load generator,
the variants taking turns inside each cell and the order rotating from run to run, so a burst of
load from something else on the box hits all of them about equally.

``--variant NAME=FLAGS`` adds an rs3gw started with other flags (``--variant nofsync=--no-fsync``),
``--baseline-src DIR`` one that runs another source tree (``DIR`` holds the ``rs3gw`` package,
e.g. a copy of ``src`` from before a change) with ``--workers 1``: before/after in the same run.

The client is one s3bench process on the same cores: on a 2-core box it takes most of a core at
thousands of requests per second, so ``--workers 2`` cannot show 2x there. ``server CPU µs/op``
(server tree CPU / ops/s) is the per-request cost, meaningful even on a busy box.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchkit


def parse_cell(text: str) -> tuple[str, int, int]:
    op, size, conc = text.split(":")
    if op not in ("get", "head", "put", "list"):
        raise ValueError(f"unknown op {op}")
    return op, benchkit.parse_size(size), int(conc)


def med(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def col(k: str) -> list[float]:
        return [float(r[k]) for r in runs if r.get(k) is not None]

    ops = col("ops_s")
    cpu_per_op = [
        r["server_cpu_pct"] / 100 / r["ops_s"] * 1e6
        for r in runs
        if r.get("ops_s") and r.get("server_cpu_pct")
    ]
    others = [
        r["host_cpu_pct"] - r["client_cpu_pct"] - r["server_cpu_pct"]
        for r in runs
        if all(r.get(k) is not None for k in ("host_cpu_pct", "client_cpu_pct", "server_cpu_pct"))
    ]
    return {
        "ops_s": med(ops),
        "ops_s_all": ops,
        "mib_s": med(col("mib_s")),
        "p50_ms": med(col("p50_ms")),
        "p99_ms": med(col("p99_ms")),
        "server_cpu_pct": med(col("server_cpu_pct")),
        "client_cpu_pct": med(col("client_cpu_pct")),
        "cpu_us_per_op": med(cpu_per_op),
        "other_cpu_pct": med(others),
        "rss_peak_mib": max(col("rss_peak_mib"), default=None),
        "errors": sum(int(r.get("errors", 0)) for r in runs),
        "error_samples": [e for r in runs for e in r.get("error_samples", [])][:3],
    }


def _f(v: Any, d: int = 1) -> str:
    return "-" if v is None else f"{float(v):,.{d}f}"


def markdown(results: list[dict[str, Any]], variants: list[benchkit.Variant]) -> str:
    ix = {(r["cell"], r["server"]): r["median"] for r in results}
    cells = list(dict.fromkeys(r["cell"] for r in results))
    base = variants[0]
    lines = [
        "| cell | server | ops/s (runs) | median ops/s | vs "
        + base.label
        + " | server CPU % | server CPU µs/op | others CPU % | errors |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for cell in cells:
        b = ix.get((cell, base.name), {})
        for v in variants:
            m = ix.get((cell, v.name))
            if m is None:
                continue
            ratio = f"{m['ops_s'] / b['ops_s']:.2f}x" if m.get("ops_s") and b.get("ops_s") else "-"
            runs = " / ".join(f"{x:,.0f}" for x in m["ops_s_all"])
            lines.append(
                f"| {cell} | {v.label} | {runs} | {_f(m['ops_s'])} | {ratio} | {_f(m['server_cpu_pct'], 0)} "
                f"| {_f(m['cpu_us_per_op'], 0)} | {_f(m['other_cpu_pct'], 0)} | {m['errors']} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", default="1,2", help="worker counts, one rs3gw each (default: %(default)s)")
    ap.add_argument(
        "--cells", default="get:4KiB:16,head:4KiB:16,put:1MiB:16", help="op:size:concurrency list"
    )
    ap.add_argument("--runs", type=int, default=None, help="runs per variant and cell (3; quick 1)")
    ap.add_argument("--duration", type=float, default=None, help="seconds per run (3; quick 1)")
    ap.add_argument("--warmup", type=float, default=None, help="unmeasured seconds first (0.5; quick 0.2)")
    ap.add_argument("--quick", action="store_true", help="1 run of 1 s per cell")
    ap.add_argument("--variant", action="append", default=[], help="NAME=FLAGS: an extra rs3gw (1 worker)")
    ap.add_argument(
        "--baseline-src", type=Path, help="a source dir holding another rs3gw package: 'baseline'"
    )
    ap.add_argument("--rs3gw-arg", action="append", default=[], help="extra flag for every rs3gw (= form)")
    ap.add_argument("--s3bench", type=Path, default=benchkit.DEFAULT_S3BENCH)
    ap.add_argument("--json", type=Path, help="write the result document here")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    runs = args.runs or (1 if args.quick else 3)
    duration = args.duration or (1.0 if args.quick else 3.0)
    warmup = args.warmup if args.warmup is not None else (0.2 if args.quick else 0.5)
    try:
        cells = [parse_cell(c) for c in benchkit.csv(args.cells)]
        counts = [int(n) for n in benchkit.csv(args.workers)]
    except ValueError as e:
        ap.error(str(e))
    extra = list(args.rs3gw_arg)
    variants: list[benchkit.Variant] = []
    if args.baseline_src is not None:
        src = args.baseline_src.resolve()
        if not (src / "rs3gw" / "__init__.py").is_file():
            ap.error(f"{src} holds no rs3gw package")
        variants.append(
            benchkit.Variant("baseline", "rs3gw", "rs3gw baseline", extra, {"PYTHONPATH": str(src)})
        )
    for n in counts:
        label = "rs3gw" if n == 1 and (args.baseline_src or args.variant) else f"rs3gw --workers {n}"
        variants.append(benchkit.Variant(f"w{n}", "rs3gw", label, ["--workers", str(n), *extra]))
    for spec in args.variant:
        name, _, flags = spec.partition("=")
        variants.append(benchkit.Variant(name, "rs3gw", f"rs3gw {flags}", [*flags.split(), *extra]))
    if max(counts, default=1) > benchkit.cpu_count():
        n_max = max(counts)
        benchkit.log(f"note: {n_max} workers on {benchkit.cpu_count()} CPUs")
    started = time.time()
    info = benchkit.machine_info()
    results: list[dict[str, Any]] = []
    with benchkit.running(variants, args.s3bench, args.keep):
        time.sleep(1.0)  # spawned workers finish importing
        t0 = time.monotonic()
        for ci, (op, size, conc) in enumerate(cells):
            name = f"{op.upper()} {benchkit.fmt_size(size)} c={conc}"
            objects = 1000 if size <= 256 * 1024 else max(16, 256 * (1 << 20) // size)
            for v in variants:
                if op != "put":
                    err = benchkit.prepare(args.s3bench, v, size, objects)
                    if err:
                        benchkit.log(f"{v.label}: prepare failed: {err}")
            raw: dict[str, list[dict[str, Any]]] = {v.name: [] for v in variants}
            for r in range(runs):
                k = (r + ci) % len(variants)
                for v in variants[k:] + variants[:k]:
                    res = benchkit.s3bench_run(
                        args.s3bench,
                        v,
                        op,
                        size,
                        conc,
                        objects=objects,
                        duration=duration,
                        warmup=warmup,
                        verify=op == "get",
                        prepared=True,
                        timeout=300,
                    )
                    raw[v.name].append(res)
                    benchkit.log(
                        f"[{time.monotonic() - t0:5.0f}s] {name:16s} run {r + 1} {v.label:24s} "
                        f"{res.get('ops_s', 0):9.1f} ops/s  server cpu {res.get('server_cpu_pct')}% "
                        f"host {res.get('host_cpu_pct')}%  errors {res.get('errors', 0)}"
                        + (f"  e.g. {res['error_samples'][0]}" if res.get("error_samples") else "")
                    )
            for v in variants:
                results.append(
                    {"cell": name, "server": v.name, "label": v.label, "median": summarize(raw[v.name])}
                )
    doc = {
        "machine": info,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "elapsed_s": round(time.time() - started, 1),
        "loadavg_at_end": benchkit.loadavg(),
        "git": benchkit.git_rev(),
        "command": [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)],
        "settings": {"runs": runs, "duration_s": duration, "warmup_s": warmup},
        "variants": [{"name": v.name, "label": v.label, "flags": v.flags, "env": v.env} for v in variants],
        "results": results,
    }
    print(markdown(results, variants))
    print(
        f"{runs} run(s) of {duration:g} s per variant and cell; {doc['elapsed_s']:.0f} s; "
        f"{info['cpus']} CPUs, load {info['loadavg_at_start']} -> {doc['loadavg_at_end']}; git {doc['git']}"
    )
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1))
    return 1 if any(r["median"]["errors"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
