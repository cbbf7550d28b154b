"""Training steps/s of ``train/lam.py`` reading a feature cache vs rendering and encoding every clip
on the fly with the frozen encoder (DESIGN.md §4 "feature cache"), measured in one run.

    python benchmarks/cache_vs_onthefly.py [--preset small|tiny] [--steps N] [--batch B]

Both runs use the real training loop (data loader, frozen encoder, LAM step, optimisers); steps/s
is the median over the logged steps after two warm-up steps (checkpoint and evaluation time
excluded). The one-off cost of building the cache is reported too. Merges its numbers into
``benchmarks/results.json`` under ``cache_vs_onthefly``; ``benchmarks/run.py`` calls :func:`run`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

KEY = "cache_vs_onthefly"


def _steps_per_s(run_dir: Path, batch: int) -> float:
    lines = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rates = [d["clips_per_s"] / batch for d in lines if "clips_per_s" in d][2:]
    return statistics.median(rates)


def measure(preset: str = "small", steps: int = 24, batch: int = 8, threads: int = 0) -> dict:
    """Train ``steps`` LAM steps twice (cache, on the fly) and compare.

    Args:
        preset: ``tiny`` or ``small``.
        steps: optimiser steps per run (the first two are warm-up).
        batch: clips per step.
        threads: torch threads (0: default).
    """
    from accelerate.state import AcceleratorState, GradientState

    from train.config import load_job_config
    from train.lam import train

    clips = max(4 * batch, 32)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = [f"preset={preset}", f"train.steps={steps}", f"train.batch_size={batch}",
                "train.log_every=1", "train.eval_every=0", "train.save_every=0",
                f"train.threads={threads}", f"data.train_clips={clips}", "data.num_frames=16"]
        result: dict = {"preset": preset, "steps": steps, "batch": batch, "clips": clips}
        for mode in ("cache", "onthefly"):
            AcceleratorState._reset_state(True)
            GradientState._reset_state()
            extra = [f"data.cache_dir={tmp / 'cache'}"] if mode == "cache" else []
            if mode == "cache":  # build first, so its one-off cost is timed on its own
                from train.data import ensure_cache, load_frozen_encoder

                job = load_job_config(None, [*base, *extra, f"train.output_dir={tmp / 'x'}"])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    encoder = load_frozen_encoder(job)
                t = time.perf_counter()
                ensure_cache(job, encoder, log=lambda *a: None)
                result["cache_build_s"] = time.perf_counter() - t
            job = load_job_config(None, [*base, *extra, f"train.output_dir={tmp / mode}"])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                train(job)
            result[f"{mode}_steps_per_s"] = _steps_per_s(tmp / mode, batch)
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
    result["speedup"] = result["cache_steps_per_s"] / result["onthefly_steps_per_s"]
    epoch_steps = clips / batch  # seconds saved per epoch vs the one-off build
    saved = epoch_steps / result["onthefly_steps_per_s"] - epoch_steps / result["cache_steps_per_s"]
    result["break_even_epochs"] = result["cache_build_s"] / saved if saved > 0 else float("inf")
    return result


def run(quick: bool = False) -> dict:
    """Entry point of ``benchmarks/run.py``."""
    return measure("tiny", steps=12, batch=8) if quick else measure("small", steps=24, batch=8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small", choices=["tiny", "small"])
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default=str(HERE / "results.json"))
    args = ap.parse_args()
    res = measure(args.preset, args.steps, args.batch, args.threads)
    for k, v in res.items():
        print(f"  {k:<24} {v:.4g}" if isinstance(v, float) else f"  {k:<24} {v}")
    print(f"cache vs on the fly: ×{res['speedup']:.2f} steps/s")
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {}
    results[KEY] = res
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out} [{KEY}]")


if __name__ == "__main__":
    main()
