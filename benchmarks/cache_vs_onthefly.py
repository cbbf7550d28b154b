"""Training steps/s of ``train/lam.py`` reading a feature cache vs rendering and encoding every clip
on the fly with the frozen encoder (the feature cache: docs/DESIGN.md#at-scale), in one run.

    python benchmarks/cache_vs_onthefly.py [--preset small|tiny] [--steps N] [--batch B]

Both runs use the real training loop (data loader, frozen encoder, LAM step, optimisers); steps/s
is the median over the logged steps after two warm-up steps (checkpoint and evaluation time
excluded). The one-off cost of building the cache is reported too. Merges its numbers into
``benchmarks/results.json`` under ``cache_vs_onthefly``; ``benchmarks/run.py`` calls :func:`run`,
which also times the pixel preset's encoder (exact patches: a reshape, so the studio's default
needs no cache). The ``small`` preset compared here has a learned encoder, which the cache skips.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

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


def pixel_encode_seconds(batch: int = 16, frames: int = 8) -> float:
    """Seconds to encode a batch of the pixel preset (its encoder is exact 8×8 patches: a
    reshape), best of five."""
    import torch
    from harness import timeit

    from lam_core import get_preset
    from lam_core.checkpoint import build_component

    encoder = build_component("encoder", get_preset("pixel").encoder)
    video = torch.rand(batch, frames, 3, 64, 64)
    with torch.no_grad():
        return timeit(lambda: encoder(video), repeat=5)


def run(ctx) -> list:
    """Entry point of ``benchmarks/run.py``: the pixel preset's encoding cost, and the small
    preset's cache vs on-the-fly training loops (where they still run)."""
    from harness import Row

    encode = pixel_encode_seconds()
    rows = [Row(
        name="feature cache vs on the fly, pixel preset: encoding a batch (16 × 8 frames)",
        value=encode, unit="s",
        note="the pixel encoder is a reshape (exact patches): a cache saves nothing measurable; "
             "compare the training step in bench_training",
    )]
    preset, steps = ("tiny", 8) if ctx.quick else ("small", 12)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            res = measure(preset, steps=steps, batch=8, threads=ctx.threads)  # quiet: one table
    except Exception as e:  # the small preset is on its way out: say why, keep the table
        rows.append(Row(name=f"feature cache vs on the fly, {preset} preset", value=float("nan"),
                        unit="steps/s", note=f"dropped: {type(e).__name__}: {e}"[:200]))
        return rows
    rows.append(Row(
        name=f"feature cache vs on the fly, {preset} preset (learned encoder), train/lam.py",
        value=res["cache_steps_per_s"], unit="steps/s", ratio=res["speedup"],
        ratio_of="cache / on the fly (steps/s)",
        note=f"{steps} steps × batch 8; cache built in {res['cache_build_s']:.1f} s, pays off "
             f"after {res['break_even_epochs']:.1f} epochs",
        extra=res,
    ))
    return rows


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
