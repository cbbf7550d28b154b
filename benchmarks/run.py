"""Benchmarks: ``python benchmarks/run.py [--only NAME ...] [--quick]``.

Prints a table and merges the numbers into ``benchmarks/results.json``. Every comparison is measured
as a ratio inside one run (this machine is shared and noisy: absolute times move, ratios less so).
Each benchmark lives in a module of this folder exposing ``run(quick: bool) -> dict``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

MODULES = ["bench_rollout", "bench_precision", "bench_idm_merge", "bench_data", "cache_vs_onthefly",
           "bench_planning"]


def timeit(fn, repeat: int = 3, warmup: int = 1) -> float:
    """Best wall time of ``fn()`` over ``repeat`` runs, in seconds."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help=f"subset of {MODULES}")
    ap.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    ap.add_argument("--out", default=str(HERE / "results.json"))
    args = ap.parse_args()
    names = args.only or MODULES
    unknown = set(names) - set(MODULES)
    if unknown:
        ap.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {MODULES}")
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {}
    results["_machine"] = {"platform": platform.platform(), "torch": torch.__version__,
                           "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d")}
    rows = []
    for name in names:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            print(f"skip {name}: {e}")
            continue
        t = time.perf_counter()
        res = mod.run(quick=args.quick)
        results[name] = res
        rows.append((name, res, time.perf_counter() - t))
        print(f"{name} ({time.perf_counter() - t:.0f} s)")
        for k, v in res.items():
            print(f"  {k:<40} {v:.4g}" if isinstance(v, float) else f"  {k:<40} {v}")
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
