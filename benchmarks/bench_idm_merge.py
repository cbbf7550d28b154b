"""One LAM training step (forward + backward) of the ``small`` preset with the IDM over the 8×8
feature tokens (``idm_token_merge: 1``) and over 4×4 merged ones (``2``, the preset's default).
The IDM sees every pair of steps, so at ``1`` it costs more than the world model."""

from __future__ import annotations

import torch

from lam_core import get_preset
from lam_core.checkpoint import build_component


def run(quick: bool = False) -> dict:
    from run import timeit

    cfg = get_preset("small")
    feats = torch.randn(24, 8, cfg.encoder.tokens_per_step, cfg.encoder.dim)
    times = {}
    for merge in (1, 2):
        torch.manual_seed(0)
        cfg.lam.idm_token_merge = merge
        lam = build_component("lam", cfg.lam)

        def step(lam=lam):
            lam(feats).loss.backward()
            lam.zero_grad(set_to_none=True)

        times[merge] = timeit(step, repeat=2 if quick else 4)
    return {"lam_step_batch24_idm_merge1_s": times[1], "lam_step_batch24_idm_merge2_s": times[2],
            "merge1_over_merge2": times[1] / times[2]}
