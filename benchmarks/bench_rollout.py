"""KV-cache rollout vs recomputing the prefix at every step: 8 predicted steps of the studio's
default world model (pixel preset, flow head) from one context step, at batch 1 (a transfer) and
64 (a slice of CEM candidates). Recomputing processes 1 + 2 + … + 8 = 36 steps where the cache
processes 8, so 4.5× is the most the cache can save here (attention aside).
"""

from __future__ import annotations

import torch
from harness import Context, Row, count_flops, timeit

STEPS = 8


def run(ctx: Context) -> list[Row]:
    from bench_planning import pixel_pipeline

    lam = pixel_pipeline().lam
    cfg = lam.cfg
    rows = []
    for batch in (1, 64):
        torch.manual_seed(0)
        context = torch.rand(batch, 1, cfg.grid**2, cfg.feature_dim)
        z = torch.randn(batch, STEPS, cfg.regularizer.latent_dim)

        def roll(cache: bool, context=context, z=z):
            with torch.inference_mode():
                return lam.rollout(context, z, use_cache=cache)

        diff = (roll(True) - roll(False)).abs().max().item()
        repeat = 2 if ctx.quick else 5
        fast = timeit(lambda: roll(True), repeat=repeat)
        slow = timeit(lambda: roll(False), repeat=repeat)
        flops = count_flops(lambda: roll(True))
        ratio = slow / fast
        rows.append(Row(
            name=f"rollout {STEPS} steps, batch {batch}: KV cache", value=fast, unit="s",
            ratio=ratio, ratio_of="recompute / cache", flops=flops, floor_s=ctx.floor(flops),
            target="≥ 4× recompute", met=ratio >= 4,
            note=f"recompute {slow:.3f} s, {count_flops(lambda: roll(False)) / flops:.2f}× the "
                 f"FLOPs; largest difference cache vs recompute {diff:.1e}",
            extra={"recompute_s": slow, "max_abs_diff": diff},
        ))
    return rows
