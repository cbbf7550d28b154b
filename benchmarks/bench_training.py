"""One training step of the embedded LAM recipe (``train/configs/pixel_lam.yaml``: pixel preset,
batch 16 × 8 frames, fp32 as the recipe runs on CPUs without native bf16): forward, backward and
the optimisers (Muon + AdamW, ``train.optim.build_optimizers``) on clips the recipe's data
renders. Also bf16 autocast vs fp32 (one clip: bf16 is emulated on CPUs without AVX-512 BF16 /
AMX, and slow) and the IDM over 64 tokens (shipped) vs 2×2-merged ones.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import torch
from harness import Context, Row, count_flops, cpu_facts, timeit

REPO = Path(__file__).resolve().parent.parent
RECIPE = REPO / "train" / "configs" / "pixel_lam.yaml"


def recipe_batch(job) -> tuple[torch.Tensor, float]:
    """A batch of the recipe's features ``(B, T', N, D)`` and its data's clips/s (rendering)."""
    from train.data import build_dataset, encode, load_frozen_encoder

    dataset = build_dataset(job, "train")
    dataset[0]  # loads the photos
    t = time.perf_counter()
    video = torch.stack([dataset[i]["video"] for i in range(1, job.train.batch_size + 1)])
    render = job.train.batch_size / (time.perf_counter() - t)
    return encode(load_frozen_encoder(job), video), render


def train_step(model, features: torch.Tensor, opts=(), bf16: bool = False) -> None:
    """The loss of ``train/lam.py`` (full regularizer weight), backward, optimiser steps."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = model(features)
    loss = out.prediction_loss + out.regularizer_loss
    if out.auxiliary_loss is not None:
        loss = loss + out.auxiliary_loss
    loss.backward()
    for opt in opts:
        opt.step()
    for p in model.parameters():
        p.grad = None


def run(ctx: Context) -> list[Row]:
    from lam_core.models import LatentActionModel
    from train.config import load_job_config
    from train.optim import build_optimizers

    job = load_job_config(RECIPE, [])
    features, render = recipe_batch(job)
    batch = len(features)
    torch.manual_seed(0)
    model = LatentActionModel(job.lam).train()
    opts = build_optimizers(model, job.train)
    repeat = 2 if ctx.quick else 3
    seconds = timeit(lambda: train_step(model, features, opts), repeat=repeat)
    flops = count_flops(lambda: train_step(model, features, opts))
    floor = ctx.floor(flops)
    share = floor / seconds
    rows = [Row(
        name=f"LAM training step, pixel_lam.yaml (batch {batch} × {job.data.num_frames} frames, "
             "fp32)", value=batch / seconds, unit="clips/s", ratio=share,
        ratio_of="share of the fp32 matmul peak", flops=flops, floor_s=floor,
        target="≥ 30 % of the peak", met=share >= 0.30,
        note=f"{seconds:.2f} s/step, {flops / 1e9:.0f} GFLOP/step; the recipe's data renders "
             f"{render:.0f} clips/s on one core",
        extra={"seconds": seconds, "render_clips_per_s": render},
    )]

    one = features[:1]
    fp32 = timeit(lambda: train_step(model, one), repeat=repeat)
    bf16 = timeit(lambda: train_step(model, one, bf16=True), repeat=1 if ctx.quick else 2)
    native = cpu_facts()["native_bf16"]
    rows.append(Row(
        name="bf16 autocast vs fp32, LAM forward + backward, 1 clip", value=bf16, unit="s",
        ratio=bf16 / fp32, ratio_of="bf16 time / fp32 time", dtype="bfloat16",
        flops=count_flops(lambda: train_step(model, one)),
        note=("native bf16 (AVX-512 BF16 / AMX)" if native else "no avx512_bf16/amx: bf16 is "
              f"emulated; fp32 takes {fp32:.2f} s"),
        extra={"fp32_s": fp32, "native_bf16": native},
    ))
    rows[-1].floor_s = ctx.floor(rows[-1].flops, "bfloat16")

    times = {}
    for merge in (1, 2):
        cfg = copy.deepcopy(job.lam)
        cfg.idm_token_merge = merge
        torch.manual_seed(0)
        lam = LatentActionModel(cfg).train()
        times[merge] = timeit(lambda lam=lam: train_step(lam, features), repeat=repeat)
    rows.append(Row(
        name=f"LAM forward + backward, IDM over 64 tokens (shipped), batch {batch}",
        value=times[1], unit="s", ratio=times[1] / times[2],
        ratio_of="IDM over 64 tokens / over 2×2-merged 16",
        note=f"merged IDM {times[2]:.2f} s (a design choice, not a speed-up to take for free)",
        extra={"merge2_s": times[2]},
    ))
    return rows
