"""Convex upsampling of the flow head's field (``lam.flow_upsample: convex``, as RAFT): it equals
bilinear upsampling at init (so a warm start may switch it on), can be as sharp as a block edge,
learns, and is checked (tiny-pixel preset, seconds)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from lam_core import LatentActionPipeline, get_preset
from lam_core.models import LatentActionModel
from lam_core.models.flow import bilinear_logits, convex_upsample, upsample_flow
from train import lam as train_lam
from train.config import load_job_config

from .test_warm_start import CONFIG


def per_cell(logits: torch.Tensor, b: int, g: int) -> torch.Tensor:
    return logits[None, :, :, :, None, None].expand(b, -1, -1, -1, g, g)


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_bilinear_logits_make_convex_upsampling_bilinear(factor):
    flow = torch.randn(3, 2, 6, 6)
    logits = per_cell(bilinear_logits(factor), 3, 6)
    expected = upsample_flow(flow, 6 * factor, 6 * factor)
    assert torch.allclose(convex_upsample(flow, logits, factor), expected, atol=1e-5)


def test_convex_upsampling_can_keep_a_block_sharp():
    """All the weight on the cell's own vector: each cell's pixels move as one block (nearest
    upsampling), where bilinear smears a lone moving cell over its neighbours."""
    flow = torch.zeros(1, 2, 4, 4)
    flow[0, 0, 1, 2] = 3.0  # one cell moves 3 px right
    centre = torch.full((9, 4, 4), -30.0)
    centre[4] = 0.0
    sharp = convex_upsample(flow, per_cell(centre, 1, 4), 4)
    assert torch.allclose(sharp, F.interpolate(flow, scale_factor=4, mode="nearest"), atol=1e-6)
    smeared = upsample_flow(flow, 16, 16)
    assert (smeared[0, 0] > 1e-3).sum() > (sharp[0, 0] > 1e-3).sum() == 16


def convex_model(upsample: str, seed: int = 0) -> LatentActionModel:
    torch.manual_seed(seed)
    cfg = dataclasses.replace(get_preset("tiny-pixel").lam, flow_upsample=upsample)
    return LatentActionModel(cfg).eval()


def test_at_init_convex_upsampling_predicts_what_bilinear_does():
    bilinear, convex = convex_model("bilinear"), convex_model("convex")
    with torch.no_grad():
        for p in bilinear.world_model.head.parameters():
            p.normal_(0, 0.05)  # a flow and a fill, not the zero-initialised copy
    missing, unexpected = convex.load_state_dict(bilinear.state_dict(), strict=False)
    assert all(k.startswith("world_model.head.mask.") for k in missing) and not unexpected
    feats = torch.rand(2, 4, 16, 192)
    with torch.no_grad():
        z = bilinear.infer_latents(feats)
        expected = bilinear.world_model(feats[:, :-1], z)
        assert torch.allclose(convex.world_model(feats[:, :-1], z), expected, atol=1e-5)
        assert torch.allclose(convex.rollout(feats[:, :1], z), bilinear.rollout(feats[:, :1], z),
                              atol=1e-5)


def test_the_mask_learns():
    model = convex_model("convex").train()
    with torch.no_grad():
        for p in model.world_model.head.parameters():
            if p is not model.world_model.head.mask.bias:
                p.normal_(0, 0.05)
    out = model(torch.rand(2, 4, 16, 192))
    out.loss.backward()
    assert model.world_model.head.mask.weight.grad.abs().sum() > 0


def test_unknown_upsampling_is_refused():
    with pytest.raises(ValueError, match=r"lam\.flow_upsample"):
        convex_model("lanczos")


def test_a_warm_start_switches_convex_upsampling_on_neutrally(tmp_path, capsys):
    common = ["train.eval_every=0", "train.steps=1"]
    first = train_lam.train(load_job_config(CONFIG, [f"train.output_dir={tmp_path / 'a'}",
                                                     *common]))
    job = load_job_config(CONFIG, [f"train.output_dir={tmp_path / 'b'}",
                                   "lam.flow_upsample=convex", *common])
    model = LatentActionModel(job.lam).eval()
    train_lam.warm_start(model, str(first))
    assert "lam.flow_upsample 'bilinear' → 'convex' (new modules, starting neutral)" in \
        capsys.readouterr().out
    shipped = LatentActionPipeline.from_pretrained(first).lam.eval()
    feats = torch.rand(2, 4, 16, 192)
    with torch.no_grad():
        z = shipped.infer_latents(feats)
        assert torch.allclose(model.world_model(feats[:, :-1], z),
                              shipped.world_model(feats[:, :-1], z), atol=1e-5)
