"""The design sweep of the pixel preset at equal wall time: which choices make transfers visible.

Every variant of ``train/configs/pixel_lam.yaml`` gets the training time of ``--steps`` steps of
the flagship's design ("flow"): its own step count is ``steps × cost(flow) / cost(variant)``,
with the cost of one training step (batch 16, forward + backward + optimiser, random features)
relative to flow's measured in ONE process, step after step, so that the load of this shared
machine weighs on both alike (timing each variant on its own gave costs that moved with the
load).
Then each is scored: validation L1 beside copying the last frame, and the motion-transfer
evaluations (camera pans over held-out real frames from ``--clips``, MiniWild discs). Runs one job
at a time on ``--threads`` threads (the flagship trains beside it); a variant whose ``final/``
exists is only scored again.

    python train/recipes/sweep.py --out runs/sweep --steps 274 --clips DIR_OF_VIDEOS
    python train/recipes/sweep.py --only flow features   # a subset

Writes ``<out>/sweep.json`` and prints a Markdown table (docs/RESULTS.md has the last one).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

VARIANTS: dict[str, list[str]] = {
    "flow": [],  # the flagship's design: flow head, 2×2 merged tokens, D_z 16, noisy
    "features": ["lam.head=features"],  # the paper's head (next features), on the same pixels
    "unmerged": ["lam.token_merge=1"],  # every 8×8 patch a token (4× the tokens)
    "dz8": ["lam.regularizer.latent_dim=8"],
    "dz32": ["lam.regularizer.latent_dim=32"],
    "dz128": ["lam.regularizer.latent_dim=128"],
    "sparse": ["lam.regularizer.kind=sparse"],
    "discrete": ["lam.regularizer.kind=discrete", "lam.regularizer.codebook_size=256"],
}


def step_costs(names: list[str], rounds: int = 4) -> dict[str, float]:
    """Cost of one training step of each variant relative to ``flow`` (batch 16, 8 frames):
    one step of flow, then one of the variant, ``rounds`` times, in this process; the median of
    the ratios. Adjacent steps see the same load, so the ratio holds while the load moves (an
    absolute timing of each variant in turn did not: the same architecture measured 2 s and
    6.8 s a minute apart)."""
    import statistics

    import torch

    from lam_core.models import LatentActionModel
    from train.config import load_job_config
    from train.optim import build_optimizers

    config = ROOT / "train" / "configs" / "pixel_lam.yaml"

    def build(name: str):
        job = load_job_config(config, VARIANTS[name])
        torch.manual_seed(0)
        model = LatentActionModel(job.lam).train()
        feats = torch.rand(job.train.batch_size, job.data.num_frames, 64, 192)
        opts = build_optimizers(model, job.train)

        def step() -> float:
            t = time.perf_counter()
            model(feats).loss.backward()
            for o in opts:
                o.step()
                o.zero_grad(set_to_none=True)
            return time.perf_counter() - t

        step()  # warm-up
        return step

    flow = build("flow")
    costs = {"flow": 1.0}
    for name in names:
        if name == "flow":
            continue
        step = build(name)
        costs[name] = statistics.median(step() / flow() for _ in range(rounds))
    return costs


def launch(run_dir: Path, overrides: list[str], threads: int, log: Path) -> None:
    cmd = [sys.executable, str(ROOT / "train" / "lam.py"), "--config",
           str(ROOT / "train" / "configs" / "pixel_lam.yaml"), f"train.output_dir={run_dir}",
           f"train.threads={threads}", *overrides]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)}
    with log.open("w") as f:
        subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def score(final: Path, clips: Path | None, pairs: int) -> dict:
    import numpy as np
    import torch

    from lam_core import LatentActionPipeline
    from lam_core.eval.motion import camera_motion_transfer, mover_motion_transfer, real_images

    torch.manual_seed(0)
    pipe = LatentActionPipeline.from_pretrained(final)
    out = {}
    if clips is not None:
        cam = camera_motion_transfer(pipe, real_images(clips), n_pairs=pairs)
        out.update({f"camera_{k}": v for k, v in cam.metrics.items()})
    mov = mover_motion_transfer(pipe, n_pairs=pairs)
    out.update({f"mover_{k}": v for k, v in mov.metrics.items()})
    return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in out.items()}


def table(results: dict) -> str:
    cols = [("steps", "steps"), ("val L1", "val_l1"), ("copy L1", "val_copy_last_l1"),
            ("KL/latent", "latent_stat"), ("pan cos", "camera_transfer_cosine"),
            ("pan mag", "camera_transfer_magnitude_ratio"), ("drift px", "camera_still_drift_px"),
            ("mover self cos", "mover_self_cosine"), ("mover cos", "mover_transfer_cosine"),
            ("mover mag", "mover_transfer_magnitude_ratio")]
    lines = ["| variant | " + " | ".join(c for c, _ in cols) + " |",
             "|---" * (len(cols) + 1) + "|"]
    for name, r in results.items():
        cells = []
        for _, key in cols:
            v = r.get(key)
            cells.append("—" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v)))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/sweep")
    parser.add_argument("--steps", type=int, default=274,
                        help="steps of the flow variant; the others get its training time")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clips", help="held-out real videos for the camera evaluation")
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--only", nargs="*", help="variants to run (default: all)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "sweep.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    names = args.only or list(VARIANTS)
    todo = [n for n in names if not (out / n / "final" / "config.json").is_file()]
    costs = {}
    if todo:
        import torch

        torch.set_num_threads(args.threads)
        costs = step_costs(sorted({"flow", *todo}))
        print(f"[{time.strftime('%H:%M:%S')}] step cost relative to flow: "
              + ", ".join(f"{k} {v:.2f}" for k, v in costs.items()), flush=True)
    for name in names:
        overrides = VARIANTS[name]
        run = out / name
        if not (run / "final" / "config.json").is_file():
            steps = max(50, round(args.steps * costs["flow"] / costs[name]))
            print(f"[{time.strftime('%H:%M:%S')}] {name}: {steps} steps", flush=True)
            launch(run, [*overrides, f"train.steps={steps}", f"train.eval_every={steps}",
                         "train.save_every=100"], args.threads, out / f"{name}.log")
        lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        last = {k: v for d in lines for k, v in d.items()}  # the last value of every key
        r = {"overrides": overrides, "steps": last["step"], "relative_step_cost": costs.get(name),
             "val_l1": last.get("val_l1"), "val_copy_last_l1": last.get("val_copy_last_l1"),
             "latent_stat": last.get("kl", last.get("latent_norm", last.get("perplexity"))),
             "train_seconds": last.get("time")}
        r.update(score(run / "final", Path(args.clips) if args.clips else None, args.pairs))
        results[name] = r
        path.write_text(json.dumps(results, indent=2) + "\n")
        print(f"[{time.strftime('%H:%M:%S')}] {name}: " + json.dumps(
            {k: round(v, 3) for k, v in r.items() if isinstance(v, float)}), flush=True)
    print(table(results))


if __name__ == "__main__":
    main()
