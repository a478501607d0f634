#!/usr/bin/env python3
"""The cost curve: how throughput and server memory change with object size and with concurrency,
rs3gw and SeaweedFS side by side in the same run.

Two sweeps, each cell a PUT and a GET measured with the shared s3bench load generator:

* size sweep: 4 KiB ... 1 GiB objects at one concurrency (``--size-concurrency``, default 4; a
  large-object run has fewer clients when it has fewer requests than that: 1 GiB is one request);
* concurrency sweep: 1 ... 256 clients at fixed sizes (``--conc-sizes``, default 64 KiB and 1 MiB).

Within each cell the servers take turns, the order rotating from cell to cell, so load from other
processes on the box hits both about equally; compare the ratios, not the absolute figures, on a
shared machine. Small objects run for ``--duration`` seconds; large ones for a fixed number of
requests (``--bytes`` worth per run, default 1 GiB), so a 1 GiB cell is one request, not minutes. GET objects are written before the measurement starts (not timed, not in
the memory figure); GET bodies up to 16 MiB are checked byte for byte.

Memory is the server's process tree: ``peak RSS`` is the highest sum of VmRSS sampled at 20 Hz
during the measured run; the JSON also has the sum of each process's VmHWM after a reset at the
start of the run (an upper bound that catches spikes between samples).

Output: JSON, a Markdown table and a PNG plot (``--out PREFIX``: PREFIX.json, PREFIX.md,
PREFIX.png; default docs/cost-curve, or /tmp/rs3gw-cost-curve-quick with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchkit

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
VERIFY_MAX = 16 * MiB  # GET bodies up to this size are compared byte for byte (the client buffers them)


@dataclass(frozen=True)
class Cell:
    sweep: str  # "size" | "concurrency"
    op: str
    size: int
    conc: int

    @property
    def name(self) -> str:
        return f"{self.op.upper()} {benchkit.fmt_size(self.size)} c={self.conc}"


def objects_for(size: int, budget: int) -> int:
    """Distinct keys: up to 1000 small ones, ``budget`` bytes worth of large ones, at least 1."""
    return max(1, min(1000, budget // size))


def count_for(size: int, min_bytes: int) -> int:
    """Large objects: a fixed number of requests, ``min_bytes`` worth (0 = run for --duration)."""
    if size < 16 * MiB:
        return 0
    return max(1, -(-min_bytes // size))


def clients_for(size: int, conc: int, min_bytes: int) -> int:
    """No more clients than requests: a 1 GiB cell of one request runs at c=1."""
    count = count_for(size, min_bytes)
    return min(conc, count) if count else conc


def build_cells(args: argparse.Namespace) -> list[Cell]:
    cells: list[Cell] = []
    for size in args.sizes:
        for op in args.ops:
            cells.append(Cell("size", op, size, clients_for(size, args.size_concurrency, args.bytes)))
    for size in args.conc_sizes:
        for c in args.concurrency:
            for op in args.ops:
                cells.append(Cell("concurrency", op, size, c))
    return cells


def data_estimate(args: argparse.Namespace) -> int:
    """Bytes one server may hold at the end (SeaweedFS keeps overwritten needles until a vacuum)."""
    sizes = set(args.sizes) | set(args.conc_sizes)
    per = 0
    for s in sizes:
        per += objects_for(s, args.budget) * s
        per += max(count_for(s, args.bytes), objects_for(s, args.budget)) * s
    return per


def run(args: argparse.Namespace, variants: list[benchkit.Variant]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    cells = build_cells(args)
    prepared: set[tuple[str, int, int]] = set()
    t0 = time.monotonic()
    for n, cell in enumerate(cells):
        objects = objects_for(cell.size, args.budget)
        count = count_for(cell.size, args.bytes)
        k = n % len(variants)
        for v in variants[k:] + variants[:k]:
            big = benchkit.BigClient(args.s3bench, v) if cell.size > benchkit.S3BENCH_MAX else None
            if cell.op != "put" and (v.name, cell.size, objects) not in prepared:
                err = None
                if big is not None:
                    try:
                        for i in range(objects):
                            big.put(cell.size, i)
                    except (OSError, RuntimeError) as e:
                        err = str(e)
                else:
                    err = benchkit.prepare(args.s3bench, v, cell.size, objects)
                if err:
                    benchkit.log(f"{v.label}: prepare {benchkit.fmt_size(cell.size)} failed: {err}")
                prepared.add((v.name, cell.size, objects))
            runs = []
            for _ in range(args.runs):
                if big is not None:
                    runs.append(big.run(v.pid, cell.op, cell.size, cell.conc, count, objects))
                    continue
                runs.append(
                    benchkit.s3bench_run(
                        args.s3bench,
                        v,
                        cell.op,
                        cell.size,
                        cell.conc,
                        objects=objects,
                        duration=args.duration if not count else 600.0,
                        warmup=args.warmup if not count else 0.0,
                        count=count,
                        verify=cell.size <= VERIFY_MAX,
                        prepared=True,
                    )
                )
            res = best_of(runs)
            if cell.op == "put" and count >= objects and not res.get("errors"):
                prepared.add((v.name, cell.size, objects))  # every key written, with s3bench's content
            benchkit.log(
                f"[{n + 1}/{len(cells)} {time.monotonic() - t0:5.0f}s] {cell.name:18s} {v.label:10s} "
                f"{res.get('ops_s', 0):9.1f} ops/s {res.get('mib_s', 0):8.1f} MiB/s "
                f"peak RSS {res.get('rss_peak_mib')} MiB  server cpu {res.get('server_cpu_pct')}% "
                f"host {res.get('host_cpu_pct')}%  errors {res.get('errors', 0)}"
                + (f"  e.g. {res['error_samples'][0]}" if res.get("error_samples") else "")
            )
            results.append(
                {
                    "sweep": cell.sweep,
                    "op": cell.op,
                    "size": cell.size,
                    "size_h": benchkit.fmt_size(cell.size),
                    "concurrency": cell.conc,
                    "objects": objects,
                    "count": count,
                    "server": v.name,
                    "label": v.label,
                    "result": res,
                    "runs": runs if len(runs) > 1 else [],
                }
            )
    return results


def best_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median run by ops/s (by position), with the highest memory peak seen in any run."""
    ok = sorted(runs, key=lambda r: float(r.get("ops_s") or 0))
    mid = dict(ok[len(ok) // 2])
    peaks = [r["rss_peak_mib"] for r in runs if r.get("rss_peak_mib") is not None]
    if peaks:
        mid["rss_peak_mib"] = max(peaks)
    mid["errors"] = sum(int(r.get("errors", 0)) for r in runs)
    return mid


# --------------------------------------------------------------------------- report


def _f(v: Any, digits: int = 1) -> str:
    return "-" if v is None else f"{float(v):,.{digits}f}"


def _ratio(a: Any, b: Any) -> str:
    return f"{float(a) / float(b):.2f}x" if a and b else "-"


def cpu_ms_per_op(r: dict[str, Any]) -> float | None:
    """Server CPU per request: what the request cost, whatever share of the box the server got."""
    if not r.get("ops_s") or r.get("server_cpu_pct") is None:
        return None
    return float(r["server_cpu_pct"]) / 100 / float(r["ops_s"]) * 1000


def markdown(results: list[dict[str, Any]], variants: list[benchkit.Variant]) -> str:
    ix = {(r["sweep"], r["op"], r["size"], r["concurrency"], r["server"]): r["result"] for r in results}
    keys = list(dict.fromkeys((r["sweep"], r["op"], r["size"], r["concurrency"]) for r in results))
    a, b = variants[0], variants[1] if len(variants) > 1 else None
    out: list[str] = []
    for sweep, title in (("size", "Size sweep"), ("concurrency", "Concurrency sweep")):
        rows = [k for k in keys if k[0] == sweep]
        if not rows:
            continue
        head = "| op | size | c | " + " | ".join(
            f"{v.label} {m}" for m in ("MiB/s", "ops/s", "peak RSS MiB", "CPU ms/op") for v in variants
        )
        sep = "|---|---|--:|" + "--:|" * (4 * len(variants))
        if b is not None:
            head += f" | {a.label} / {b.label} MiB/s"
            sep += "--:|"
        out += [f"**{title}**", "", head + " |", sep]
        for _, op, size, c in rows:
            rs = [ix.get((sweep, op, size, c, v.name), {}) for v in variants]
            cols = [op.upper(), benchkit.fmt_size(size), str(c)]
            cols += [_f(r.get("mib_s")) for r in rs]
            cols += [_f(r.get("ops_s")) for r in rs]
            cols += [_f(r.get("rss_peak_mib"), 0) for r in rs]
            cols += [_f(cpu_ms_per_op(r), 2) for r in rs]
            if b is not None:
                cols.append(_ratio(rs[0].get("mib_s"), rs[1].get("mib_s")))
            out.append("| " + " | ".join(cols) + " |")
        out.append("")
    return "\n".join(out)


def plot(results: list[dict[str, Any]], variants: list[benchkit.Variant], path: Path, note: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    styles = {"put": "--", "get": "-"}
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]

    def series(sweep: str, op: str, server: str, size: int | None, x: str, y: str) -> tuple[list[Any], ...]:
        pts = sorted(
            (r[x], r["result"].get(y))
            for r in results
            if r["sweep"] == sweep
            and r["op"] == op
            and r["server"] == server
            and (size is None or r["size"] == size)
            and r["result"].get(y) is not None
        )
        return [p[0] for p in pts], [p[1] for p in pts]

    ops = sorted({r["op"] for r in results}, reverse=True)
    for i, v in enumerate(variants):
        for op in ops:
            xs, ys = series("size", op, v.name, None, "size", "mib_s")
            axes[0][0].plot(xs, ys, styles[op], marker="o", color=colors[i], label=f"{v.label} {op.upper()}")
            xs, ys = series("size", op, v.name, None, "size", "rss_peak_mib")
            axes[0][1].plot(xs, ys, styles[op], marker="o", color=colors[i], label=f"{v.label} {op.upper()}")
        csizes = sorted({r["size"] for r in results if r["sweep"] == "concurrency"})
        for j, size in enumerate(csizes):
            for op in ops:
                lab = f"{v.label} {op.upper()} {benchkit.fmt_size(size)}"
                mk = "os^v"[j % 4]
                xs, ys = series("concurrency", op, v.name, size, "concurrency", "ops_s")
                axes[1][0].plot(xs, ys, styles[op], marker=mk, color=colors[i], label=lab)
                xs, ys = series("concurrency", op, v.name, size, "concurrency", "rss_peak_mib")
                axes[1][1].plot(xs, ys, styles[op], marker=mk, color=colors[i], label=lab)
    sc = max((r["concurrency"] for r in results if r["sweep"] == "size"), default="?")
    titles = [
        [f"throughput vs object size (c={sc})", f"server peak RSS vs object size (c={sc})"],
        ["ops/s vs concurrent clients", "server peak RSS vs concurrent clients"],
    ]
    ylabels = [["MiB/s", "peak RSS (MiB)"], ["ops/s", "peak RSS (MiB)"]]
    for r in range(2):
        for c in range(2):
            ax = axes[r][c]
            ax.set_xscale("log", base=2)
            ax.set_title(titles[r][c])
            ax.set_ylabel(ylabels[r][c])
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
            if r == 0:
                sizes = sorted({x["size"] for x in results if x["sweep"] == "size"})
                ax.set_xticks(sizes, [benchkit.fmt_size(s) for s in sizes], fontsize=8)
                ax.set_xlabel("object size")
            else:
                cs = sorted({x["concurrency"] for x in results if x["sweep"] == "concurrency"})
                ax.set_xticks(cs, [str(x) for x in cs])
                ax.set_xlabel("concurrent clients")
    axes[0][0].set_yscale("log")
    axes[1][0].set_yscale("log")
    fig.suptitle(f"rs3gw vs SeaweedFS cost curve — {note}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3 sizes, 3 concurrencies, 0.5 s cells (~2 min)")
    ap.add_argument("--only", default="rs3gw,seaweedfs", help="rs3gw, rs3gw-nofsync, seaweedfs (comma list)")
    ap.add_argument(
        "--sizes", default=None, help="size sweep (default 4KiB,64KiB,1MiB,16MiB,64MiB,256MiB,1GiB)"
    )
    ap.add_argument("--size-concurrency", type=int, default=4, help="clients in the size sweep (4)")
    ap.add_argument("--concurrency", default=None, help="concurrency sweep (default 1,4,16,64,256)")
    ap.add_argument("--conc-sizes", default="64KiB,1MiB", help="object sizes of the concurrency sweep")
    ap.add_argument("--ops", default="put,get", help="put,get (default both)")
    ap.add_argument(
        "--duration", type=float, default=None, help="seconds per small-object cell (3; quick 0.5)"
    )
    ap.add_argument("--warmup", type=float, default=None, help="unmeasured seconds first (0.5; quick 0.1)")
    ap.add_argument("--runs", type=int, default=1, help="runs per server and cell; median reported (1)")
    ap.add_argument(
        "--bytes", default=None, help="large cells move at least this much per run (1GiB; quick 128MiB)"
    )
    ap.add_argument(
        "--budget", default=None, help="bytes of distinct objects per size (512MiB; quick 128MiB)"
    )
    ap.add_argument("--s3bench", type=Path, default=benchkit.DEFAULT_S3BENCH)
    ap.add_argument("--rs3gw-arg", action="append", default=[], help="extra `rs3gw serve` flag (= form)")
    ap.add_argument("--out", type=Path, default=None, help="output prefix (PREFIX.json/.md/.png)")
    ap.add_argument("--keep", action="store_true", help="keep the servers' temp dirs")
    ap.add_argument(
        "--merge",
        type=Path,
        help="fold this run's cells into an earlier run's JSON (same cell and server: replaced) and "
        "write the result to --out",
    )
    ap.add_argument("--render", type=Path, help="only rebuild the .md and .png from this JSON (no run)")
    args = ap.parse_args(argv)
    q = args.quick
    args.sizes = [
        benchkit.parse_size(s)
        for s in benchkit.csv(
            args.sizes or ("4KiB,1MiB,64MiB" if q else "4KiB,64KiB,1MiB,16MiB,64MiB,256MiB,1GiB")
        )
    ]
    args.concurrency = [
        int(c) for c in benchkit.csv(args.concurrency or ("1,16,64" if q else "1,4,16,64,256"))
    ]
    args.conc_sizes = [benchkit.parse_size(s) for s in benchkit.csv(args.conc_sizes)]
    if q and args.conc_sizes == [64 * KiB, MiB]:
        args.conc_sizes = [64 * KiB]
    args.ops = benchkit.csv(args.ops)
    if bad := [o for o in args.ops if o not in ("put", "get")]:
        ap.error(f"unknown op(s) {bad}")
    args.duration = args.duration or (0.5 if q else 3.0)
    args.warmup = args.warmup if args.warmup is not None else (0.1 if q else 0.5)
    args.bytes = benchkit.parse_size(args.bytes or ("128MiB" if q else "1GiB"))
    args.budget = benchkit.parse_size(args.budget or ("128MiB" if q else "512MiB"))
    args.out = args.out or (
        Path("/tmp/rs3gw-cost-curve-quick") if q else benchkit.REPO / "docs" / "cost-curve"
    )
    return args


VARIANTS = {
    "rs3gw": ("rs3gw", "rs3gw", []),
    "rs3gw-nofsync": ("rs3gw", "rs3gw --no-fsync", ["--no-fsync"]),
    "seaweedfs": ("seaweedfs", "SeaweedFS", []),
}


def merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``old`` with ``new``'s cells in place of the same (sweep, op, size, c, server), others added;
    each part keeps its own run's record under ``parts``."""

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r["sweep"], r["op"], r["size"], r["concurrency"], r["server"])

    fresh = {key(r): r for r in new["results"]}
    results = [fresh.pop(key(r), r) for r in old["results"]] + list(fresh.values())
    order = {"size": 0, "concurrency": 1}
    results.sort(
        key=lambda r: (order[r["sweep"]], r["size"] if r["sweep"] == "concurrency" else 0, r["size"])
    )
    parts = old.get("parts") or [
        {k: old[k] for k in ("started", "elapsed_s", "loadavg_at_end", "git", "command")}
    ]
    parts.append({k: new[k] for k in ("started", "elapsed_s", "loadavg_at_end", "git", "command")})
    out = dict(old)
    out.update(results=results, parts=parts, errors=sum(int(r["result"].get("errors", 0)) for r in results))
    out["elapsed_s"] = sum(p["elapsed_s"] for p in parts)
    return out


def footer(doc: dict[str, Any], variants: list[benchkit.Variant]) -> str:
    info = doc["machine"]
    idle = ", ".join(f"{v.label} {doc['idle_rss_mib'].get(v.name)} MiB" for v in variants)
    text = (
        f"Idle RSS at start: {idle}. {doc['elapsed_s']:.0f} s from {doc['started']}; {info['cpus']} shared "
        f"cores, load {info['loadavg_at_start']} at start, {doc['loadavg_at_end']} at the end; git {doc['git']}."
    )
    for p in doc.get("parts", [])[1:]:
        text += (
            f" Merged in: {' '.join(p['command'][1:])} ({p['started']}, {p['elapsed_s']:.0f} s, "
            f"load {p['loadavg_at_end']} at the end)."
        )
    if any(r["size"] > benchkit.S3BENCH_MAX for r in doc["results"]):
        text += (
            " Objects over 128 MiB are driven by benchkit.BigClient (threads, one connection per request,"
            " body length checked), as s3bench cannot build payloads of 256 MiB or more."
        )
    return text


def render(doc: dict[str, Any], out: Path) -> str:
    variants = [benchkit.Variant(name, "", label) for name, label in doc["servers"].items()]
    text = markdown(doc["results"], variants) + "\n" + footer(doc, variants) + "\n"
    out.with_suffix(".md").write_text(text)
    started = doc["started"].replace("T", " ").removesuffix("Z")[:16]
    note = (
        f"{started} UTC, {doc['machine']['cpus']} shared cores "
        f"(busy box: load {doc['machine']['loadavg_at_start']}), git {doc['git']}"
    )
    plot(doc["results"], variants, out.with_suffix(".png"), note)
    return text


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render is not None:
        print(render(json.loads(args.render.read_text()), args.out))
        return 0
    variants = []
    for name in benchkit.csv(args.only):
        if name not in VARIANTS:
            raise SystemExit(f"unknown server {name}; choose from {', '.join(VARIANTS)}")
        kind, label, flags = VARIANTS[name]
        variants.append(
            benchkit.Variant(name, kind, label, [*flags, *(args.rs3gw_arg if kind == "rs3gw" else [])])
        )
    need = data_estimate(args) * len(variants) + 2 * GiB
    free = benchkit.disk_free()
    benchkit.log(f"disk: ~{need / GiB:.1f} GiB needed under /tmp, {free / GiB:.1f} GiB free")
    if free < need:
        raise SystemExit("not enough disk under /tmp; lower --sizes / --budget")
    started = time.time()
    info = benchkit.machine_info()
    with benchkit.running(variants, args.s3bench, args.keep):
        idle = {v.name: benchkit.RssWatch(v.pid).__enter__() for v in variants}
        time.sleep(0.2)
        idle_rss = {}
        for name, w in idle.items():
            w.__exit__()
            idle_rss[name] = w.result()["rss_peak_mib"]
        results = run(args, variants)
    doc: dict[str, Any] = {
        "machine": info,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "elapsed_s": round(time.time() - started, 1),
        "loadavg_at_end": benchkit.loadavg(),
        "git": benchkit.git_rev(),
        "command": [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)],
        "settings": {
            k: getattr(args, k)
            for k in ("sizes", "size_concurrency", "concurrency", "conc_sizes", "duration", "warmup", "runs")
        }
        | {"bytes": args.bytes, "budget": args.budget, "rs3gw_args": args.rs3gw_arg},
        "servers": {v.name: v.label for v in variants},
        "idle_rss_mib": idle_rss,
        "results": results,
        "errors": sum(int(r["result"].get("errors", 0)) for r in results),
    }
    if args.merge is not None:
        doc = merge(json.loads(args.merge.read_text()), doc)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    print(render(doc, args.out))
    benchkit.log(f"wrote {args.out}.json/.md/.png")
    return 1 if doc["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
