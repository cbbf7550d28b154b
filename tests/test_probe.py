"""The latent diagnostics: a linear probe of what the latents hold, and latents optimised against
the true frames with the world model frozen (lam_core.eval.probe)."""

from __future__ import annotations

import numpy as np
import torch

from lam_core import LatentActionPipeline, get_preset
from lam_core.eval.probe import latent_probe, optimised_latents, ridge_r2


def test_ridge_r2_reads_a_linear_relation_and_not_noise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 8))
    groups = np.arange(400) // 4
    y = x @ rng.normal(size=(8, 2)) + 0.01 * rng.normal(size=(400, 2))
    assert ridge_r2(x, y, groups) > 0.99
    assert ridge_r2(x, rng.normal(size=(400, 2)), groups) < 0.1


def tiny_grid_pipeline(grid: int) -> LatentActionPipeline:
    cfg = get_preset("tiny-pixel")
    cfg.lam.latent_grid = grid
    cfg.controller.latent_dim, cfg.controller.latent_grid = cfg.lam.latent_dim, grid
    torch.manual_seed(0)
    return LatentActionPipeline.from_config(cfg).eval()


def test_the_probe_runs_on_one_latent_and_on_a_grid():
    for grid in (1, 4):
        result = latent_probe(tiny_grid_pipeline(grid), n_clips=4)
        assert set(result.r2) == {"camera_velocity", "mover_velocity", "mover_position"}
        assert all(np.isfinite(v) for v in result.r2.values())
        assert result.samples["camera_velocity"] == 4 * 7


def test_latent_optimisation_leaves_the_world_model_as_it_was():
    pipe = tiny_grid_pipeline(1)
    before = {k: v.clone() for k, v in pipe.lam.state_dict().items()}
    out = optimised_latents(pipe, n_clips=2, iters=3)
    assert {"idm_path_ratio", "optimised_path_ratio", "idm_norm", "optimised_norm"} <= set(out)
    assert all(torch.equal(before[k], v) for k, v in pipe.lam.state_dict().items())
    assert all(p.requires_grad for p in pipe.lam.parameters())
