"""A global latent beside the grid (``lam.global_latent``): one more latent per step, pooled over
the whole frame and applied to every token. Its place in the vector, neutrality at init (the
warm start's starting point), its reach over the frame, causality, the KV cache, the warm start
that adds it, config checks and the controller that answers it (tiny-pixel preset, seconds)."""

from __future__ import annotations

import pytest
import torch

from lam_core import ConfigError, LatentActionPipeline, get_preset
from lam_core.models import Controller, LatentActionModel
from train import lam as train_lam
from train.config import load_job_config

from .test_warm_start import CONFIG

D = get_preset("tiny-pixel").lam.regularizer.latent_dim


def lam_with(global_latent: bool, seed: int = 0, live: bool = True) -> LatentActionModel:
    """A 4 × 4 grid model (local IDM, per-cell modulation); ``live``: every zero-initialised
    path carries signal (the global embedding's included)."""
    torch.manual_seed(seed)
    cfg = get_preset("tiny-pixel").lam
    cfg.latent_grid, cfg.condition_add, cfg.cell_modulation, cfg.idm_radius = 4, True, True, 1
    cfg.global_latent = global_latent
    model = LatentActionModel(cfg).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if live and ("modulation" in n or n.startswith(("world_model.head",
                                                              "world_model.global_embed"))):
                p.normal_(0, 0.05)
    return model


def test_the_global_latent_comes_after_the_cells():
    lam = lam_with(True)
    assert (lam.cfg.latent_slots, lam.cfg.latent_dim) == (17, 17 * D)
    feats = torch.rand(2, 5, 16, 192)
    z = lam.infer_latents(feats)
    assert z.shape == (2, 4, 17 * D)
    out = lam.train()(feats)
    assert out.latents.shape == (2, 4, 17 * D) and torch.isfinite(out.loss)


def test_a_seeded_global_head_gives_the_mean_of_the_cells():
    lam = lam_with(True)
    lam.idm.seed_global_head()
    z = lam.infer_latents(torch.rand(2, 3, 16, 192)).unflatten(-1, (17, D))
    assert torch.allclose(z[:, :, -1], z[:, :, :16].mean(dim=2), atol=1e-5)


def test_at_init_the_global_latent_changes_nothing():
    """A fresh global embedding is zero: with the grid model's weights, the model predicts what
    the grid model predicts, whatever the global latent."""
    grid, both = lam_with(False, live=True), lam_with(True, live=False)
    state = both.state_dict()
    state.update(grid.state_dict())
    both.load_state_dict(state)
    feats = torch.rand(2, 4, 16, 192)
    z = torch.randn(2, 4, 16 * D)
    with torch.no_grad():
        expected = grid.world_model(feats, z)
        for g in (torch.zeros(2, 4, D), 5 * torch.randn(2, 4, D)):
            assert torch.allclose(both.world_model(feats, torch.cat([z, g], -1)), expected,
                                  atol=1e-6)


def test_the_global_latent_acts_on_every_token():
    lam = lam_with(True)
    feats = torch.rand(1, 2, 16, 192)
    z = lam.infer_latents(feats)
    with torch.no_grad():
        base = lam.world_model(feats[:, :1], z)
        z2 = z.clone()
        z2[..., -D:] += 3.0
        changed = (lam.world_model(feats[:, :1], z2) - base).abs().amax(-1)  # 1, 1, 16 tokens
    assert (changed > 1e-4).all()


def test_causal_and_the_cache_equals_recompute_with_a_global_latent():
    lam = lam_with(True)
    feats = torch.rand(2, 6, 16, 192)
    z = lam.infer_latents(feats)
    with torch.no_grad():
        pred = lam.world_model(feats[:, :-1], z)
        for t in range(1, 5):
            later = feats.clone()
            later[:, t + 1:] = torch.rand_like(later[:, t + 1:])
            assert torch.equal(lam.infer_latents(later)[:, :t], z[:, :t])
            z2 = z.clone()
            z2[:, t:] = torch.randn_like(z2[:, t:])
            assert torch.equal(lam.world_model(feats[:, :-1], z2)[:, :t], pred[:, :t])
        cached = lam.rollout(feats[:, :2], z, use_cache=True)
        recomputed = lam.rollout(feats[:, :2], z, use_cache=False)
    assert torch.allclose(cached, recomputed, atol=1e-5)


def test_a_global_latent_needs_a_grid():
    with pytest.raises(ConfigError, match=r"lam\.global_latent"):
        load_job_config(CONFIG, ["lam.global_latent=true"])
    job = load_job_config(CONFIG, ["lam.latent_grid=4", "lam.global_latent=true"])
    assert job.controller.global_latent
    assert job.controller.latent_dim == job.lam.latent_dim == 17 * D


@pytest.mark.usefixtures("fresh_accelerate_state")
def test_a_warm_start_adds_a_global_latent_that_starts_neutral(tmp_path, capsys):
    common = ["train.eval_every=0", "train.steps=1", "lam.latent_grid=4", "lam.idm_radius=1"]
    first = train_lam.train(load_job_config(CONFIG, [f"train.output_dir={tmp_path / 'a'}",
                                                     *common]))
    job = load_job_config(CONFIG, [f"train.output_dir={tmp_path / 'b'}",
                                   "lam.global_latent=true", *common])
    model = LatentActionModel(job.lam).eval()
    train_lam.warm_start(model, str(first))
    assert "lam.global_latent False → True (new modules, starting neutral)" in \
        capsys.readouterr().out
    shipped = LatentActionPipeline.from_pretrained(first).lam.eval()
    feats = torch.rand(2, 4, 16, 192)
    with torch.no_grad():
        z = model.infer_latents(feats)
        assert torch.equal(z[..., : 16 * D], shipped.infer_latents(feats))
        assert torch.allclose(model.world_model(feats[:, :-1], z),
                              shipped.world_model(feats[:, :-1], z[..., : 16 * D]), atol=1e-6)
    back = load_job_config(CONFIG, [f"train.output_dir={tmp_path / 'c'}", *common])
    with_global = train_lam.train(job)
    with pytest.raises(ConfigError, match=r"lam\.global_latent"):  # it is not taken away
        train_lam.warm_start(LatentActionModel(back.lam), str(with_global))


def test_the_controller_answers_the_global_latent_too():
    cfg = get_preset("tiny-pixel").controller
    cfg.latent_grid, cfg.global_latent, cfg.latent_dim = 4, True, 17 * 8
    torch.manual_seed(0)
    ctrl = Controller(cfg).eval()
    feats, actions = torch.rand(3, 2, 16, 192), torch.rand(3, 2, 2)
    z = ctrl(actions, feats)
    assert z.shape == (3, 2, 17 * 8)
    assert torch.allclose(ctrl(actions, feats[:1])[0], z[0], atol=1e-6)
    cfg.latent_grid = 1
    with pytest.raises(ValueError, match=r"controller\.global_latent"):
        Controller(cfg)
