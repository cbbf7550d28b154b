"""The pixel design: exact patch encoder/decoder, the world model's flow head (warp, fill only
where the warp has no source, composed rollouts that sample the anchor once), the difference IDM,
the change-weighted loss and the noisy regularizer's offset and free bits."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lam_core import LatentActionPipeline, get_preset
from lam_core.config import RegularizerConfig
from lam_core.models import LatentActionModel
from lam_core.models.flow import FlowComposer, sample_at, validity, warp_step
from lam_core.models.lam import prediction_l1
from lam_core.models.regularizers import NoisyRegularizer


def pixel_lam(seed: int = 0, randomize: bool = True, **lam) -> LatentActionModel:
    torch.manual_seed(seed)
    cfg = get_preset("tiny-pixel").lam
    for k, v in lam.items():
        setattr(cfg, k, v)
    model = LatentActionModel(cfg).eval()
    if randomize:  # every zero-initialised path carries signal
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "modulation" in n or n.startswith("world_model.head"):
                    p.normal_(0, 0.05)
    return model


def constant_flow(b: int, size: int, dx: float, dy: float) -> torch.Tensor:
    flow = torch.zeros(b, 2, size, size)
    flow[:, 0], flow[:, 1] = dx, dy
    return flow


def test_patch_encoder_and_decoder_are_exact_for_any_footage():
    pipe = LatentActionPipeline.from_config(get_preset("pixel"))
    video = torch.rand(2, 4, 3, 64, 64)
    feats = pipe.encoder(video)
    assert feats.shape == (2, 4, 64, 192)
    assert torch.equal(pipe.decoder(feats), video)
    assert not list(pipe.encoder.parameters()) and not list(pipe.decoder.parameters())


def test_integer_flow_shifts_exactly_and_marks_the_entering_border():
    image = torch.rand(1, 3, 16, 16)
    out = sample_at(image, constant_flow(1, 16, 2.0, -1.0))  # out(x, y) = in(x + 2, y - 1)
    assert torch.allclose(out[..., 1:, :14], image[..., :15, 2:], atol=1e-6)
    v = validity(constant_flow(1, 16, 2.0, -1.0))[0, 0]
    assert torch.all(v[1:, :14] == 1) and torch.all(v[:, 14:] == 0) and torch.all(v[0] == 0)


def test_fill_only_where_the_warp_has_no_source():
    prev = torch.rand(1, 3, 16, 16)
    fill = torch.zeros(1, 3, 16, 16, requires_grad=True)
    warp_step(prev, constant_flow(1, 16, 3.0, 0.0), fill).sum().backward()
    assert torch.all(fill.grad[..., :13] == 0)  # valid pixels: the fill cannot act there
    assert torch.all(fill.grad[..., 13:] == 1)  # entering pixels: it is all there is
    still = warp_step(prev, torch.zeros(1, 2, 16, 16), torch.rand(1, 3, 16, 16))
    assert torch.allclose(still, prev, atol=1e-6)  # no flow: no drift, no fill


def test_composed_rollout_samples_the_anchor_once():
    """Half-pixel steps: composing samples the anchor at the summed displacement (one bilinear
    interpolation), while warping the previous prediction step after step blurs it."""
    torch.manual_seed(0)
    anchor = torch.rand(1, 3, 32, 32)
    flow, fill = constant_flow(1, 32, 0.5, 0.0), torch.zeros(1, 3, 32, 32)
    composer, prev, chained = FlowComposer(anchor), anchor, anchor
    for _ in range(4):
        prev = composer.step(prev, flow, fill)
        chained = warp_step(chained, flow, fill)
    once = sample_at(anchor, constant_flow(1, 32, 2.0, 0.0))
    inner = (..., slice(None), slice(0, 28))
    assert torch.allclose(prev[inner], once[inner], atol=1e-5)
    assert chained[inner].std() < 0.9 * once[inner].std()  # the chained warp lost detail


def test_untrained_flow_world_model_copies_the_last_frame():
    lam = pixel_lam(randomize=False)
    feats = torch.rand(2, 5, 16, 192)
    assert torch.equal(lam(feats).predictions, feats[:, :-1])
    z = lam.infer_latents(feats)
    rolled = lam.rollout(feats[:, :1], z)
    assert torch.allclose(rolled, feats[:, :1].expand_as(rolled), atol=1e-6)


@pytest.mark.parametrize("context", [1, 2])
def test_flow_rollout_kv_cache_equals_recompute(context):
    lam = pixel_lam()
    feats = torch.rand(2, 6, 16, 192)
    z = lam.infer_latents(feats)
    with torch.no_grad():
        cached = lam.rollout(feats[:, :context], z, use_cache=True)
        recomputed = lam.rollout(feats[:, :context], z, use_cache=False)
        first = lam.world_model(feats[:, :context], z[:, :context])[:, -1:]
    assert cached.shape == (2, 6 - context, 16, 192)
    assert torch.allclose(cached, recomputed, atol=1e-5)
    assert torch.allclose(cached[:, :1], first, atol=1e-5)  # step 1 = teacher forcing


def test_flow_world_model_and_difference_idm_are_frame_causal():
    lam = pixel_lam(condition_add=True)
    feats = torch.rand(2, 6, 16, 192)
    z = lam.infer_latents(feats)
    pred = lam.world_model(feats[:, :-1], z)
    for t in range(1, 5):
        later = feats.clone()
        later[:, t + 1 :] = torch.rand_like(later[:, t + 1 :])
        z2 = lam.infer_latents(later)
        assert torch.equal(z2[:, :t], z[:, :t])  # latent t-1 sees steps t-1 and t only
        assert not torch.equal(z2[:, t:], z[:, t:])
        pred2 = lam.world_model(later[:, :-1], z)
        assert torch.equal(pred2[:, : t + 1], pred[:, : t + 1])


def test_change_weighted_l1_is_plain_l1_without_change_and_favours_movers():
    feats = torch.rand(2, 4, 16, 192)
    pred = torch.rand(2, 3, 16, 192)
    plain = prediction_l1(pred, feats)
    assert torch.allclose(plain, (pred - feats[:, 1:]).abs().mean())
    still = feats[:, :1].expand(2, 4, 16, 192)
    assert torch.allclose(prediction_l1(pred, still, 3.0), prediction_l1(pred, still))
    moving = still.clone()
    moving[:, 1:, 0] += 0.5  # token 0 changes
    err_on_mover = moving[:, 1:].clone()
    err_on_mover[:, :, 0] += 0.1
    err_elsewhere = moving[:, 1:].clone()
    err_elsewhere[:, :, 5] += 0.1
    assert prediction_l1(err_on_mover, moving, 3.0) > prediction_l1(err_elsewhere, moving, 3.0)


def test_change_from_both_weighs_what_the_prediction_moves_as_a_missed_move():
    still = torch.rand(1, 1, 16, 8).expand(2, 4, 16, 8)
    moving = still.clone()
    moving[:, 1:, 0] += 0.5  # the agent: token 0 changes, the scene stays
    right = moving[:, 1:].clone()
    assert prediction_l1(right, moving, 2.0, change_from="both") == 0  # exact: no error
    slid = right.clone()
    slid[:, :, 1:] += 0.05  # the agent in place, the whole scene a little off
    target_only = prediction_l1(slid, moving, 2.0)
    both = prediction_l1(slid, moving, 2.0, change_from="both")
    assert both > target_only  # the scene it moved now weighs as the agent does
    copy = moving[:, :-1].clone()  # copying: its error is on the agent, the prediction moves none
    assert torch.allclose(prediction_l1(copy, moving, 2.0, change_from="both"),
                          prediction_l1(copy, moving, 2.0))
    with pytest.raises(ValueError, match=r"lam\.change_from"):
        LatentActionModel.check(dataclasses.replace(get_preset("tiny").lam, change_from="pred"))


def test_noisy_logvar_offset_and_free_bits():
    cfg = RegularizerConfig(kind="noisy", latent_dim=4, beta=1.0, logvar_offset=-5.0)
    reg = NoisyRegularizer(cfg).train()
    out = reg(torch.zeros(64, 8))
    assert torch.allclose(out.stats["sigma"], torch.tensor(2.5).neg().exp())  # σ = e^(-5/2)
    cfg.free_bits = 10.0  # every dimension under its floor: the KL costs nothing
    assert reg(torch.zeros(64, 8)).loss == 0
    cfg.free_bits, cfg.logvar_offset = 0.1, 0.0
    raw = torch.zeros(64, 8)
    raw[:, 0] = 3.0  # dimension 0 carries 4.5 nats, the others none
    assert torch.allclose(reg(raw).loss, torch.tensor(4.5 - 0.1))


def test_flow_lam_trains_a_step_and_reports_the_flow():
    lam = pixel_lam(randomize=False, flow_l1=0.01).train()
    feats = torch.rand(2, 4, 16, 192)
    out = lam(feats)
    out.loss.backward()
    assert "flow_px" in out.stats and out.auxiliary_loss is not None
    head = lam.world_model.head.weight.grad
    assert head is not None and head.abs().sum() > 0


def test_merged_adapter_controller_sees_every_token():
    from lam_core.models import Controller

    torch.manual_seed(0)
    cfg = get_preset("tiny-pixel").controller
    cfg.token_merge = 2
    ctrl = Controller(cfg).eval()
    actions, feats = torch.rand(2, 3, 2), torch.rand(2, 3, 16, 192)
    z = ctrl(actions, feats)
    assert z.shape == (2, 3, cfg.latent_dim)
    for token in (0, 15):
        other = feats.clone()
        other[:, :, token] += 1
        assert not torch.allclose(ctrl(actions, other), z)
