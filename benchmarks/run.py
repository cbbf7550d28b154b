"""Benchmarks: ``python benchmarks/run.py [--only NAME ...] [--quick] [--threads N]``.

Prints one table and writes ``benchmarks/results.json``. Each row holds an absolute figure, a
ratio measured in the same run (this machine is shared and noisy: absolute times move, ratios
less so) and the FLOP floor of its work: its FLOPs over the matmul peak of its dtype, a 2048³
matmul measured at the start of the same run at the same thread count. The machine's load
(``os.getloadavg()``) is printed and saved with the results. Each benchmark is a module of this
folder with ``run(ctx: harness.Context) -> list[harness.Row]`` (docs/PERFORMANCE.md).

``OMP_WAIT_POLICY=PASSIVE`` is set unless given: with the default (spinning) policy, two torch
threads on a machine whose cores are busy with other work made a batch-1 transfer ~10× slower
(docs/PERFORMANCE.md).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts OpenMP

import argparse
import importlib
import json
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import torch  # noqa: E402
from harness import Context, Row, cpu_facts, load, matmul_peak  # noqa: E402

MODULES = ["bench_studio", "bench_display", "bench_planning", "bench_rollout", "bench_training",
           "cache_vs_onthefly", "bench_data"]


def fmt(x: float | None, digits: int = 3) -> str:
    if x is None or x != x:
        return "—"
    return f"{x:.{digits}g}"


def table(rows: list[Row]) -> str:
    """The rows as one Markdown table."""
    head = ("| row | value | ratio (what) | GFLOP | floor | × floor | target | note |\n"
            "|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        ratio = "—" if r.ratio is None else f"{fmt(r.ratio)} ({r.ratio_of})"
        floor = "—" if r.floor_s is None else f"{fmt(r.floor_s)} s"
        met = "" if r.met is None else (" ✔" if r.met else " ✘")
        lines.append(
            f"| {r.name} | {fmt(r.value)} {r.unit} | {ratio} | "
            f"{fmt(r.flops / 1e9) if r.flops else '—'} | {floor} | {fmt(r.times_floor())} | "
            f"{r.target}{met} | {r.note} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help=f"subset of {MODULES}")
    ap.add_argument("--quick", action="store_true", help="less work, fewer repeats (a smoke run)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="torch threads (default: every core)")
    ap.add_argument("--out", default=str(HERE / "results.json"))
    args = ap.parse_args()
    names = args.only or MODULES
    unknown = set(names) - set(MODULES)
    if unknown:
        ap.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {MODULES}")
    torch.set_num_threads(args.threads)
    start_load, started = load(), time.time()
    print(f"load at start {start_load}; {args.threads} threads; measuring the matmul peak ...",
          flush=True)
    peak = {"float32": matmul_peak(torch.float32),
            "bfloat16": matmul_peak(torch.bfloat16, size=1024 if args.quick else 2048)}
    torch.set_num_threads(1)
    peak["float32@1"] = matmul_peak(torch.float32)
    torch.set_num_threads(args.threads)
    ctx = Context(quick=args.quick, threads=args.threads, peak=peak)
    rows: list[Row] = []
    per_module: dict[str, list[dict]] = {}
    for name in names:
        t = time.perf_counter()
        try:
            got = importlib.import_module(name).run(ctx)
        except Exception as e:  # one broken benchmark must not hide the others
            traceback.print_exc()
            got = [Row(name=f"{name}: failed", value=float("nan"), unit="",
                       note=f"{type(e).__name__}: {e}"[:200])]
        rows += got
        per_module[name] = [r.as_dict() for r in got]
        print(f"{name}: {time.perf_counter() - t:.0f} s, load {load()}", flush=True)
    end_load = load()
    print()
    print(f"peak (2048³ matmul, {args.threads} threads): fp32 {peak['float32']:.1f} GFLOP/s, "
          f"bf16 {peak['bfloat16']:.2f} GFLOP/s; 1 thread: fp32 {peak['float32@1']:.1f} GFLOP/s; "
          f"load {start_load} at start, {end_load} at end")
    print(table(rows))
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() and args.only else {}
    results.setdefault("modules", {}).update(per_module)
    results["runs"] = [*results.get("runs", []), {
        "command": " ".join(["python", "benchmarks/run.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)),
        "modules": names, "threads": args.threads, "quick": args.quick,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_start": start_load, "load_end": end_load, "peak_gflops": peak,
        "seconds": round(time.time() - started),
    }]
    results["machine"] = {"platform": platform.platform(), "torch": torch.__version__,
                          **cpu_facts()}
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
