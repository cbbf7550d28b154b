"""``lam.rollout_weight``: the world model also predicts each step from its own previous
prediction (a two-step unroll) and that L1 joins the loss (tiny-pixel preset, seconds)."""

from __future__ import annotations

import pytest
import torch

from lam_core import ConfigError, get_preset
from lam_core.models import LatentActionModel
from lam_core.models.lam import prediction_l1
from train.config import load_job_config

from .test_warm_start import CONFIG


def model(weight: float) -> LatentActionModel:
    torch.manual_seed(0)
    cfg = get_preset("tiny-pixel").lam
    cfg.rollout_weight, cfg.change_weight = weight, 1.0
    lam = LatentActionModel(cfg)
    with torch.no_grad():  # the flow head starts at zero (a copy): give it something to do
        for n, p in lam.named_parameters():
            if "modulation" in n or n.startswith("world_model.head"):
                p.normal_(0, 0.05)
    return lam.eval()


def test_the_unroll_is_the_world_model_on_its_own_predictions():
    feats = torch.rand(2, 5, 16, 192)
    plain, unrolled = model(0.0), model(0.5)
    unrolled.load_state_dict(plain.state_dict())
    a, b = plain(feats), unrolled(feats)
    assert "rollout_loss" not in a.stats
    z = plain.infer_latents(feats)
    with torch.no_grad():
        first = plain.world_model(feats[:, :-1], z)
        own = torch.cat([feats[:, :1], first[:, :-1]], dim=1)
        expected = prediction_l1(plain.world_model(own, z), feats, 1.0, skip=1)
    assert torch.allclose(b.stats["rollout_loss"], expected, atol=1e-6)
    assert torch.allclose(b.loss, a.loss + 0.5 * expected, atol=1e-6)


def test_a_negative_rollout_weight_is_refused():
    with pytest.raises(ConfigError, match=r"lam\.rollout_weight"):
        load_job_config(CONFIG, ["lam.rollout_weight=-1"])
