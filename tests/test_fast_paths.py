"""The fast paths give the same outputs as the plain ones (docs/PERFORMANCE.md): the closed-form
in-frame share, the flow composer with two ``grid_sample`` calls per step, the shared-prefix
rollout, batched CEM costs against a per-candidate loop, and the batched transfer and cycle."""

from __future__ import annotations

import pytest
import torch

from lam_core import LatentActionPipeline, get_preset
from lam_core.checkpoint import build_component
from lam_core.eval.planning import planning_model
from lam_core.models.flow import FlowComposer, inside_share, sample_at, validity

ATOL = 1e-5


class ReferenceComposer:
    """The composer as first written: five ``grid_sample`` calls per step."""

    def __init__(self, anchor: torch.Tensor):
        self.anchor = anchor.float()
        b, _, h, w = anchor.shape
        self.displacement = anchor.new_zeros(b, 2, h, w)

    def step(self, prev, flow, fill):
        disp = flow + sample_at(self.displacement, flow)
        self.displacement = disp
        v_anchor = validity(disp)
        local = sample_at(prev.float(), flow)
        composed = v_anchor * sample_at(self.anchor, disp) + (1 - v_anchor) * local
        return composed + (1 - validity(flow)) * fill


def random_flow(b: int, size: int, scale: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 2, size, size, generator=g) * scale


def test_inside_share_equals_grid_sample_of_ones_values_and_gradients():
    flow = random_flow(3, 16, 6.0, 0)  # many samples fall outside, some within a pixel of it
    exact = flow.clone()
    exact[0, :, :4, :4] = torch.tensor([-1.5, 0.25])[:, None, None]  # corner cases
    exact[1, 0] = torch.arange(16.0) % 3 - 1  # whole pixels: the kinks of the share
    torch.testing.assert_close(inside_share(exact), validity(exact), atol=ATOL, rtol=0)
    a, b = flow.clone().requires_grad_(), flow.clone().requires_grad_()
    fast, slow = inside_share(a), validity(b)
    torch.testing.assert_close(fast, slow, atol=ATOL, rtol=0)
    weights = torch.rand_like(fast)
    (fast * weights).sum().backward()
    (slow * weights).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, atol=1e-4, rtol=0)  # away from the kinks


@pytest.mark.parametrize("batch_anchor", [3, 1])
def test_composer_equals_the_five_sample_reference(batch_anchor):
    torch.manual_seed(0)
    anchor = torch.rand(batch_anchor, 3, 32, 32)
    fast, slow = FlowComposer(anchor), ReferenceComposer(anchor.expand(3, -1, -1, -1))
    prev_fast = prev_slow = anchor.expand(3, -1, -1, -1)
    for step in range(5):
        flow, fill = random_flow(3, 32, 2.0, step), torch.rand(3, 3, 32, 32)
        prev_fast = fast.step(prev_fast, flow, fill)
        prev_slow = slow.step(prev_slow, flow, fill)
        torch.testing.assert_close(prev_fast, prev_slow, atol=ATOL, rtol=0)


def randomized(preset: str, seed: int = 0) -> LatentActionPipeline:
    """An untrained pipeline with a controller whose zero-initialised paths carry signal."""
    torch.manual_seed(seed)
    cfg = get_preset(preset)
    cfg.controller.kind = "adapter"
    pipe = LatentActionPipeline.from_config(cfg)
    pipe.controller = build_component("controller", cfg.controller).eval()
    with torch.no_grad():
        for n, p in pipe.lam.named_parameters():
            if "modulation" in n or n.startswith("world_model.head"):
                p.normal_(0, 0.05)
    return pipe.eval()


@pytest.mark.filterwarnings("ignore:var\\(\\):UserWarning")  # sparse stats of one latent
@pytest.mark.parametrize("preset", ["tiny-pixel", "tiny"])
@pytest.mark.parametrize("context", [1, 2])
def test_shared_prefix_rollout_equals_plain_rollout(preset, context):
    pipe = randomized(preset)
    n, d = pipe.lam.cfg.grid ** 2, pipe.lam.cfg.feature_dim
    start = torch.rand(1, context, n, d)
    actions = torch.rand(5, 3, pipe.controller.cfg.action_dim) * 2 - 1
    shared = pipe.rollout_with_actions(start, actions)
    plain = pipe.rollout_with_actions(start.expand(5, -1, -1, -1).contiguous(), actions)
    recomputed = pipe.rollout_with_actions(start, actions, use_cache=False)
    assert shared.shape == (5, 3, n, d)
    torch.testing.assert_close(shared, plain, atol=ATOL, rtol=0)
    torch.testing.assert_close(recomputed, plain, atol=ATOL, rtol=0)


@pytest.mark.parametrize("context", [1, 2])
def test_batched_cem_costs_equal_a_per_candidate_loop(context):
    pipe = randomized("tiny-pixel", seed=1)
    n, d = pipe.lam.cfg.grid ** 2, pipe.lam.cfg.feature_dim
    start, goal = torch.rand(1, context, n, d), torch.rand(1, 1, n, d)
    actions = torch.rand(7, 3, pipe.controller.cfg.action_dim) * 2 - 1
    batched = planning_model(pipe, start, goal).cost(actions)
    loop = planning_model(pipe, start, goal, batch_size=1).cost(actions)
    torch.testing.assert_close(batched, loop, atol=1e-4, rtol=1e-5)


def test_cpu_bf16_reaches_the_pipeline_and_keeps_costs_close():
    """cpu_bf16 around a plan: the pipeline's rollouts run under it (costs change) and stay
    within bf16 rounding of fp32's; cpu_bf16(False) is fp32 exactly."""
    from lam_core.pipeline import cpu_bf16

    pipe = randomized("tiny-pixel", seed=1)
    n, d = pipe.lam.cfg.grid ** 2, pipe.lam.cfg.feature_dim
    start, goal = torch.rand(1, 1, n, d), torch.rand(1, 1, n, d)
    actions = torch.rand(7, 3, pipe.controller.cfg.action_dim) * 2 - 1
    model = planning_model(pipe, start, goal)
    full = model.cost(actions)
    with cpu_bf16(True):
        low = model.cost(actions)
    with cpu_bf16(False):
        assert torch.equal(model.cost(actions), full)
    assert low.dtype == torch.float32 and not torch.equal(low, full)
    torch.testing.assert_close(low, full, rtol=2e-2, atol=0)


def test_batched_transfer_and_cycle_equal_separate_rollouts():
    pipe = randomized("tiny-pixel", seed=2)
    video = torch.rand(2, 6, 3, 32, 32)
    src, tgt = video[:1], video[1:]
    r = pipe.transfer(src, tgt, context=2)
    s_src, s_tgt = pipe.encode(src), pipe.encode(tgt)
    z_src, z_tgt = pipe.infer_latents(s_src), pipe.infer_latents(s_tgt)
    cond = torch.cat([z_tgt[:, :1], z_src[:, 1:]], 1)
    pred = pipe.rollout(s_tgt[:, :2], cond)
    own = pipe.rollout(s_tgt[:, :2], z_tgt)
    frames = pipe.to_clip(pipe.decode(torch.cat([s_tgt[:, :2], pred], 1))).frames
    own_frames = pipe.to_clip(pipe.decode(torch.cat([s_tgt[:, :2], own], 1))).frames
    assert abs(r.transferred.frames.astype(int) - frames).max() <= 1  # uint8 rounding
    assert abs(r.target_own.frames.astype(int) - own_frames).max() <= 1
    src_err = (pipe.rollout(s_src[:, :2], z_src) - s_src[:, 2:]).abs().mean().item()
    assert r.source_error == pytest.approx(src_err, abs=1e-5)

    c = pipe.cycle(src, tgt, context=1)
    z_a, z_b = z_src, z_tgt
    b_pred = pipe.rollout(s_tgt[:, :1], z_a)
    direct = pipe.rollout(s_src[:, :1], z_a)
    z_cycled = pipe.infer_latents(torch.cat([s_tgt[:, :1], b_pred], 1))
    cycled = pipe.rollout(s_src[:, :1], z_cycled)
    assert z_b.shape == z_a.shape
    truth = s_src[:, 1:]
    assert c.direct_error == pytest.approx((direct - truth).abs().mean().item(), abs=1e-5)
    assert c.cycled_error == pytest.approx((cycled - truth).abs().mean().item(), abs=1e-5)
    two = pipe.cycle(src, tgt, context=2)  # B's context transition takes B's own latent
    z_b2 = pipe.infer_latents(s_tgt[:, :2])
    b_pred2 = pipe.rollout(s_tgt[:, :2], torch.cat([z_b2, z_a[:, 1:]], 1))
    np_frames = pipe.to_clip(pipe.decode(torch.cat([s_tgt[:, :2], b_pred2], 1))).frames
    assert abs(two.transferred.frames.astype(int) - np_frames).max() <= 1


def test_rollout_cache_holds_what_concatenation_holds_and_grows_past_its_plan():
    from lam_core.models.world_model import RolloutCache

    cache = RolloutCache(capacity=4)  # room for two appends of 2 tokens, then it must grow
    keys = [torch.randn(2, 3, 2, 5) for _ in range(4)]
    for k in keys:
        held_k, held_v = cache.append(0, k, -k)
    assert torch.equal(held_k, torch.cat(keys, 2)) and torch.equal(held_v, -torch.cat(keys, 2))
    assert torch.equal(cache.get(0)[0], held_k)
