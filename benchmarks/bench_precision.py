"""bf16 autocast vs fp32 for one LAM training step of the ``small`` preset (CPU here)."""

from __future__ import annotations

import torch

from lam_core import get_preset
from lam_core.checkpoint import build_component


def run(quick: bool = False) -> dict:
    from run import timeit

    torch.manual_seed(0)
    cfg = get_preset("small")
    lam = build_component("lam", cfg.lam)
    feats = torch.randn(32, 8, cfg.encoder.tokens_per_step, cfg.encoder.dim)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    lam, feats = lam.to(dev), feats.to(dev)

    def step(bf16: bool):
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=bf16):
            out = lam(feats)
        out.loss.backward()
        lam.zero_grad(set_to_none=True)

    repeat = 2 if quick else 4
    fp32 = timeit(lambda: step(False), repeat=repeat)
    bf16 = timeit(lambda: step(True), repeat=repeat)
    return {"device": dev, "lam_step_batch32_fp32_s": fp32, "lam_step_batch32_bf16_s": bf16,
            "bf16_speedup": fp32 / bf16, "clips_per_s_bf16": 32 / bf16}
