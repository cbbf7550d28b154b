"""KV-cache rollout vs recomputing the prefix at every step (the ``small`` preset world model)."""

from __future__ import annotations

import torch

from lam_core import get_preset
from lam_core.checkpoint import build_component


def run(quick: bool = False) -> dict:
    from run import timeit

    torch.manual_seed(0)
    cfg = get_preset("small")
    lam = build_component("lam", cfg.lam).eval()
    n, d = cfg.encoder.tokens_per_step, cfg.encoder.dim
    res = {}
    for batch in (1, 64):
        ctx = torch.randn(batch, 1, n, d)
        z = torch.randn(batch, 7, cfg.lam.latent_dim)
        def roll(cache: bool, ctx=ctx, z=z):
            with torch.no_grad():
                lam.rollout(ctx, z, use_cache=cache)

        fast = timeit(lambda: roll(True), repeat=2 if quick else 5)
        slow = timeit(lambda: roll(False), repeat=2 if quick else 5)
        res[f"rollout_7_steps_batch{batch}_cache_s"] = fast
        res[f"rollout_7_steps_batch{batch}_recompute_s"] = slow
        res[f"rollout_batch{batch}_speedup"] = slow / fast
    return res
