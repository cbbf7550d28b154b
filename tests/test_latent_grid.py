"""A grid of latent actions (``lam.latent_grid``): one latent per cell, applied where it was
inferred. Shapes, causality, the KV cache, the equivalence with one latent per step when every
cell holds the same latent, saving and loading, and the warm start that reinterprets the weights
(tiny-pixel preset, seconds)."""

from __future__ import annotations

import pytest
import torch

from lam_core import ConfigError, LatentActionPipeline, get_preset
from lam_core.models import LatentActionModel
from train import lam as train_lam
from train.config import load_job_config

from .test_warm_start import CONFIG


def grid_lam(latent_grid: int = 4, seed: int = 0) -> LatentActionModel:
    torch.manual_seed(seed)
    cfg = get_preset("tiny-pixel").lam
    cfg.latent_grid, cfg.condition_add = latent_grid, True
    model = LatentActionModel(cfg).eval()
    with torch.no_grad():  # every zero-initialised path carries signal
        for n, p in model.named_parameters():
            if "modulation" in n or n.startswith("world_model.head"):
                p.normal_(0, 0.05)
    return model


def test_a_grid_gives_one_latent_per_cell_side_by_side():
    lam = grid_lam()
    cfg = lam.cfg
    assert (cfg.latent_cells, cfg.latent_dim) == (16, 16 * cfg.regularizer.latent_dim)
    feats = torch.rand(2, 5, 16, 192)
    z = lam.infer_latents(feats)
    assert z.shape == (2, 4, cfg.latent_dim)
    out = lam.train()(feats)
    assert out.latents.shape == (2, 4, cfg.latent_dim) and torch.isfinite(out.loss)


def test_a_cell_latent_reads_every_step_pair_and_the_world_model_stays_frame_causal():
    lam = grid_lam()
    feats = torch.rand(2, 6, 16, 192)
    z = lam.infer_latents(feats)
    pred = lam.world_model(feats[:, :-1], z)
    for t in range(1, 5):
        later = feats.clone()
        later[:, t + 1 :] = torch.rand_like(later[:, t + 1 :])
        assert torch.equal(lam.infer_latents(later)[:, :t], z[:, :t])
        assert torch.equal(lam.world_model(later[:, :-1], z)[:, : t + 1], pred[:, : t + 1])
        z2 = z.clone()
        z2[:, t:] = torch.randn_like(z2[:, t:])
        assert torch.equal(lam.world_model(feats[:, :-1], z2)[:, :t], pred[:, :t])


def test_each_cell_latent_acts_on_the_prediction():
    lam = grid_lam()
    feats = torch.rand(1, 3, 16, 192)
    z = lam.infer_latents(feats)
    base = lam.world_model(feats[:, :-1], z)
    d = lam.cfg.regularizer.latent_dim
    for cell in (0, 5, 15):
        z2 = z.clone()
        z2[..., cell * d : (cell + 1) * d] += 3.0
        assert not torch.allclose(lam.world_model(feats[:, :-1], z2), base)


@pytest.mark.parametrize("context", [1, 2])
def test_grid_rollout_kv_cache_equals_recompute(context):
    lam = grid_lam()
    feats = torch.rand(2, 6, 16, 192)
    z = lam.infer_latents(feats)
    with torch.no_grad():
        cached = lam.rollout(feats[:, :context], z, use_cache=True)
        recomputed = lam.rollout(feats[:, :context], z, use_cache=False)
        first = lam.world_model(feats[:, :context], z[:, :context])[:, -1:]
    assert torch.allclose(cached, recomputed, atol=1e-5)
    assert torch.allclose(cached[:, :1], first, atol=1e-5)


def test_every_cell_with_the_same_latent_is_the_one_latent_model():
    """Same weights, the same latent in every cell: the grid model predicts what the model with one
    latent per step (and ``condition_add``) predicts — the warm start's starting point."""
    grid = grid_lam(4)
    one = LatentActionModel(get_preset("tiny-pixel").lam).eval()
    one.cfg.condition_add = True
    one.load_state_dict(grid.state_dict())
    feats = torch.rand(2, 4, 16, 192)
    z = torch.randn(2, 4, grid.cfg.regularizer.latent_dim)
    with torch.no_grad():
        expected = one.world_model(feats, z)
        got = grid.world_model(feats, z.repeat(1, 1, 16))
    assert torch.allclose(got, expected, atol=1e-5)


def test_grid_pipeline_saves_loads_and_samples(tmp_path):
    cfg = get_preset("tiny-pixel")
    cfg.lam.latent_grid = 4
    cfg.controller.latent_dim = cfg.lam.latent_dim
    torch.manual_seed(0)
    pipe = LatentActionPipeline.from_config(cfg)
    pipe.save_pretrained(tmp_path / "p")
    again = LatentActionPipeline.from_pretrained(tmp_path / "p")
    assert again.lam.cfg.latent_grid == 4
    for a, b in zip(pipe.lam.state_dict().values(), again.lam.state_dict().values()):
        assert torch.equal(a, b)
    z = again.sample_latents(3, seed=1)
    assert z.shape == (3, cfg.lam.latent_dim)
    video = torch.rand(1, 4, 3, 32, 32)
    assert again.infer_latents(video).shape == (1, 3, cfg.lam.latent_dim)


def test_a_latent_grid_must_match_the_world_models_tokens():
    with pytest.raises(ConfigError, match=r"lam\.latent_grid"):
        load_job_config(CONFIG, ["lam.latent_grid=2"])
    with pytest.raises(ValueError, match="latent_grid 3"):
        cfg = get_preset("tiny-pixel").lam
        cfg.latent_grid = 3
        LatentActionModel(cfg)
    job = load_job_config(CONFIG, ["lam.latent_grid=4"])
    assert job.controller.latent_dim == job.lam.latent_dim == 16 * 8


@pytest.mark.usefixtures("fresh_accelerate_state")
def test_warm_start_into_a_grid_reads_the_same_weights(tmp_path, capsys):
    common = ["train.eval_every=0", "train.steps=1"]
    first = train_lam.train(load_job_config(CONFIG, [f"train.output_dir={tmp_path / 'a'}",
                                                     *common]))
    job = load_job_config(CONFIG, [f"train.output_dir={tmp_path / 'b'}", "lam.latent_grid=4",
                                   *common])
    model = LatentActionModel(job.lam)
    train_lam.warm_start(model, str(first))
    shipped = LatentActionPipeline.from_pretrained(first).lam
    for (name, a), b in zip(model.state_dict().items(), shipped.state_dict().values()):
        assert torch.equal(a, b), name
    assert "lam.latent_grid 1 → 4 (the same weights, read anew)" in capsys.readouterr().out
    with pytest.raises(ConfigError, match=r"regularizer\.latent_dim"):
        bad = load_job_config(CONFIG, [f"train.output_dir={tmp_path / 'c'}",
                                       "lam.regularizer.latent_dim=4", *common])
        train_lam.warm_start(LatentActionModel(bad.lam), str(first))


def test_cell_modulation_is_frame_wise_when_every_cell_holds_the_same_latent():
    grid = grid_lam(4)
    per_cell = grid_lam(4)
    per_cell.cfg.cell_modulation = True
    feats = torch.rand(2, 4, 16, 192)
    z = torch.randn(2, 4, grid.cfg.regularizer.latent_dim).repeat(1, 1, 16)
    with torch.no_grad():
        assert torch.allclose(per_cell.world_model(feats, z), grid.world_model(feats, z),
                              atol=1e-5)
        lam_z = grid.infer_latents(feats)
        cached = per_cell.rollout(feats[:, :1], lam_z, use_cache=True)
        recomputed = per_cell.rollout(feats[:, :1], lam_z, use_cache=False)
    assert torch.allclose(cached, recomputed, atol=1e-5)
    assert not torch.allclose(per_cell.world_model(feats[:, :-1], lam_z[:, :3]),
                              grid.world_model(feats[:, :-1], lam_z[:, :3]))


def test_a_local_idm_keeps_a_far_change_out_of_a_cells_latent():
    """``idm_radius``: a change in one corner of the frame reaches the latents of the cells near
    it, and no further than the radius times the depth allows."""
    torch.manual_seed(0)
    cfg = get_preset("tiny-pixel").lam
    cfg.latent_grid, cfg.idm_radius = 4, 1  # 4 × 4 IDM tokens, one per cell; 1 block
    lam = LatentActionModel(cfg).eval()
    feats = torch.rand(1, 2, 16, 192)
    z = lam.infer_latents(feats).unflatten(-1, (16, -1))
    moved = feats.clone()
    moved[:, 1, 0] += 0.5  # the top-left token changes
    z2 = lam.infer_latents(moved).unflatten(-1, (16, -1))
    changed = (z2 - z).abs().amax(-1)[0, 0].reshape(4, 4) > 0
    assert changed[:2, :2].all() and not changed[2:].any() and not changed[:, 2:].any()
    cfg.idm_radius = 0
    lam = LatentActionModel(cfg).eval()
    z, z2 = (lam.infer_latents(f).unflatten(-1, (16, -1)) for f in (feats, moved))
    assert ((z2 - z).abs().amax(-1) > 0).all()  # attention across the frame: every cell


def test_a_grid_controller_answers_per_cell_and_a_shared_start_broadcasts():
    from lam_core.models import Controller

    cfg = get_preset("tiny-pixel").controller
    cfg.latent_grid, cfg.latent_dim = 4, 16 * 8
    torch.manual_seed(0)
    ctrl = Controller(cfg).eval()
    feats, actions = torch.rand(3, 2, 16, 192), torch.rand(3, 2, 2)
    z = ctrl(actions, feats)
    assert z.shape == (3, 2, 128)
    shared = ctrl(actions, feats[:1])  # one start for three action sequences
    assert torch.allclose(shared[0], z[0], atol=1e-6)
    moved = feats.clone()
    moved[:, :, 0] += 1.0  # the frame changes: the cells' answers change
    assert not torch.allclose(ctrl(actions, moved), z)
    cfg.latent_grid = 2
    with pytest.raises(ValueError, match=r"controller\.latent_grid"):
        Controller(cfg)


def test_a_grid_lams_controller_config_follows_its_grid():
    job = load_job_config(CONFIG, ["lam.latent_grid=4"])
    assert (job.controller.latent_grid, job.controller.latent_dim) == (4, 128)
