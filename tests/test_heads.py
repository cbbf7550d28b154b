"""World-model heads behind one interface (docs/DESIGN.md#world-model-heads): the registry, the
checks that name their key, and the ``shift`` head that moves tokens."""

from __future__ import annotations

import pytest
import torch

from lam_core import get_preset
from lam_core.config import ConfigError
from lam_core.models import HEADS, FeatureHead, LatentActionModel, WorldModelHead, build_head
from lam_core.models import heads as heads_module
from lam_core.models.shift import STAY_BIAS, ShiftHead
from lam_core.nn import merge_tokens
from train.config import load_job_config

CONFIG = "train/configs/tiny_lam.yaml"


def lam_with(head: str, preset: str = "tiny", **settings) -> LatentActionModel:
    cfg = get_preset(preset).lam
    cfg.head = head
    for k, v in settings.items():
        setattr(cfg, k, v)
    torch.manual_seed(0)
    return LatentActionModel(cfg).eval()


def test_the_registry_builds_every_head_and_names_the_key_of_a_bad_one():
    assert set(HEADS) >= {"features", "flow", "shift"}
    for name in ("features", "shift"):
        head = build_head(lam_with(name).cfg, 48)
        assert isinstance(head, HEADS[name]) and head.out_dim == head.out_features
    with pytest.raises(ValueError, match=r"lam\.head: must be one of features, flow, shift"):
        lam_with("warp")
    with pytest.raises(ValueError, match=r"lam\.head: flow needs RGB patch features"):
        lam_with("flow")  # the tiny preset's features are a learned encoder's
    with pytest.raises(ConfigError, match=r"lam\.head: must be one of"):
        load_job_config(CONFIG, ["lam.head=warp"])
    with pytest.raises(ConfigError, match=r"lam\.flow_grid: must be a multiple"):
        load_job_config("train/configs/pixel_lam.yaml", ["lam.flow_grid=6"])


def test_a_head_registered_once_is_used_by_training_and_rollouts(monkeypatch):
    class Doubling(FeatureHead):  # s_t+1 = 2 s_t + out: a head the world model never heard of
        def next_steps(self, out, features, state=None):
            nxt, _ = super().next_steps(out, features)
            return nxt + features, {"calls": 1}

        def rollout_state(self, context):
            return "state"

        def loss_terms(self, extras, cfg):
            return torch.tensor(0.5), {"doubled": torch.tensor(float(extras["calls"]))}

    monkeypatch.setitem(heads_module.HEADS, "doubling", Doubling)
    lam = lam_with("doubling")
    feats = torch.randn(1, 4, 16, 48)
    out = lam(feats)
    assert torch.equal(out.predictions, 2 * feats[:, :-1])
    assert out.stats["doubled"] == 1 and out.auxiliary_loss == 0.5
    assert torch.allclose(out.loss, out.prediction_loss + out.regularizer_loss + 0.5)
    with torch.no_grad():
        z = lam.infer_latents(feats)
        rolled = lam.rollout(feats[:, :2], z)
    assert torch.allclose(rolled[:, 0], 2 * feats[:, 1]) and torch.allclose(rolled[:, 1],
                                                                               4 * feats[:, 1])


@pytest.mark.parametrize("preset", ["tiny", "tiny-pixel"])
def test_an_untrained_shift_head_keeps_each_token_in_place(preset):
    lam = lam_with("shift", preset)
    feats = torch.rand(2, 4, lam.cfg.grid**2, lam.cfg.feature_dim)
    out = lam(feats)
    stay = torch.exp(torch.tensor(STAY_BIAS))
    assert abs(out.stats["shift_tokens"] - 0) < 1e-2 and out.auxiliary_loss is None
    # the centre holds e⁸ / (e⁸ + 8) of each token, the neighbours the rest
    assert torch.allclose(out.predictions, feats[:, :-1], atol=8 / (stay + 8) + 1e-6)


def test_the_shift_head_moves_content_by_whole_tokens_with_or_without_merging():
    for merge in (1, 2):
        lam = lam_with("shift", "tiny", token_merge=merge)
        head: ShiftHead = lam.world_model.head
        g, d = lam.cfg.grid, lam.cfg.feature_dim
        feats = torch.randn(1, 1, g * g, d)
        logits = torch.full((1, 1, g * g, 9), -1e4)
        logits[..., 5] = 1e4  # every token takes its right-hand neighbour: content moves left
        per_token = torch.cat([logits, torch.zeros(1, 1, g * g, d)], dim=-1)
        out = merge_tokens(per_token, g, g, merge)  # the layout the output layer produces
        nxt, weights = head.next_steps(out, feats)
        grid, moved = feats.reshape(g, g, d), nxt.reshape(g, g, d)
        assert torch.allclose(moved[:, :-1], grid[:, 1:])  # shifted by one token
        assert torch.allclose(moved[:, -1], grid[:, -1])  # the edge repeats
        _, stats = head.loss_terms(weights, lam.cfg)
        assert torch.isclose(stats["shift_tokens"], torch.tensor(1.0))


def test_the_shift_head_trains_and_rolls_out_the_same_with_and_without_the_cache():
    lam = lam_with("shift", "tiny-pixel").train()
    with torch.no_grad():
        for n, p in lam.named_parameters():
            if "modulation" in n or n.startswith("world_model.head"):
                p.normal_(0, 0.05)
    feats = torch.rand(2, 4, 16, 192)
    out = lam(feats)
    out.loss.backward()
    assert lam.world_model.head.weight.grad.abs().sum() > 0
    assert out.stats["shift_tokens"] > 0
    lam.eval()
    with torch.no_grad():
        z = lam.infer_latents(feats)
        cached, plain = lam.rollout(feats[:, :2], z), lam.rollout(feats[:, :2], z, use_cache=False)
    assert torch.allclose(cached, plain, atol=1e-5)


def test_every_registered_head_is_a_world_model_head():
    for cls in HEADS.values():
        assert issubclass(cls, WorldModelHead)
