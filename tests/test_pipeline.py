"""The pipeline end to end on random tiny weights: transfer, cycle, leakage, sampling."""

import numpy as np
import pytest
import torch

from lam_core import Clip, CycleResult, LeakageResult, TransferResult

from .helpers import tiny_pipeline


def test_transfer_returns_frames_of_the_right_shape(pipe, video):
    r = pipe.transfer(video[:1], video[1:], context=2)
    assert isinstance(r, TransferResult)
    assert r.transferred.frames.shape == (16, 32, 32, 3)
    assert r.source.frames.shape == r.target.frames.shape == (16, 32, 32, 3)
    assert r.latents.shape == (6, 16)
    assert np.isfinite([r.source_error, r.target_error, r.transfer_shift]).all()
    # the context steps of the transferred video are the target's own (decoded) steps
    own = pipe.to_clip(pipe.decode(pipe.encode(video[1:])))
    assert (r.transferred.frames[:4] == own.frames[:4]).all()


def test_transfer_uses_the_source_actions(video):
    pipe = tiny_pipeline()
    r1 = pipe.transfer(video[:1], video[1:])
    r_self = pipe.transfer(video[1:], video[1:])
    assert not np.array_equal(r1.transferred.frames, r_self.transferred.frames)
    # the target's own latents reproduce its own rollout; the two are rows of one batched
    # rollout (lam_core/operations.py), which a multi-threaded matmul may round differently
    assert r_self.transfer_shift < 1e-6
    # target_own is that rollout: B's own, whatever the source (rows of two different batches:
    # float rounding may move a pixel across a uint8 step, so ±1; a source leaking in moves more)
    assert np.abs(r1.target_own.frames.astype(int) - r_self.transferred.frames).max() <= 1
    assert np.abs(r_self.target_own.frames.astype(int) - r_self.transferred.frames).max() <= 1


def test_transfer_accepts_clips_of_any_size_and_fps(pipe):
    rng = np.random.default_rng(0)
    a = Clip(rng.integers(0, 255, (40, 48, 60, 3), dtype=np.uint8), fps=10.0)
    b = Clip(rng.integers(0, 255, (20, 36, 36, 3), dtype=np.uint8), fps=4.0)
    r = pipe.transfer(a, b, steps=3)
    assert r.transferred.frames.shape == (8, 32, 32, 3) and r.transferred.fps == 4.0


def test_transfer_progress_and_validation(pipe, video):
    seen = []
    pipe.transfer(video[:1], video[1:], progress=lambda f, m: seen.append((f, m)))
    assert seen[0][0] == 0.0 and seen[-1] == (1.0, "done")
    with pytest.raises(ValueError, match="context"):
        pipe.transfer(video[:1], video[1:], context=8)
    with pytest.raises(ValueError, match="at least 4 frames"):
        pipe.transfer(video[:1, :2], video[1:])


def test_cycle_end_to_end(pipe, video):
    r = pipe.cycle(video[:1], video[1:])
    assert isinstance(r, CycleResult)
    assert r.cycled.frames.shape == r.direct.frames.shape == (16, 32, 32, 3)
    assert r.ratio == pytest.approx(r.cycled_error / r.direct_error)
    same = pipe.cycle(video[:1], video[:1])
    assert same.ratio == pytest.approx(1.0, abs=1e-5) or same.cycled_error >= 0


def test_leakage_end_to_end(pipe, video):
    r = pipe.leakage(video[:1], video[1:], cut=4)
    assert isinstance(r, LeakageResult)
    assert r.errors.shape == r.errors_cut.shape == (7,)
    np.testing.assert_array_equal(r.errors[:3], r.errors_cut[:3])  # frame-causal: before the cut
    assert r.ratio == pytest.approx(r.errors_cut[3] / r.errors[3])
    with pytest.raises(ValueError, match="cut"):
        pipe.leakage(video[:1], video[1:], cut=0)


@pytest.mark.parametrize("regularizer", ["sparse", "noisy", "discrete", "none"])
def test_sample_latents(regularizer):
    pipe = tiny_pipeline(regularizer)
    z = pipe.sample_latents(32, seed=3)
    assert z.shape == (32, 16) and torch.isfinite(z).all()
    assert torch.equal(z, pipe.sample_latents(32, seed=3))


def test_deterministic_model_has_no_latents():
    pipe = tiny_pipeline(kind="deterministic")
    with pytest.raises(ValueError, match="no latent actions"):
        pipe.sample_latents(4)


def test_controller_drives_the_world_model(pipe, video):
    feats = pipe.encode(video[:1])
    z = pipe.latents_from_actions(torch.zeros(1, 3, 2), feats[:, :3])
    assert z.shape == (1, 3, 16)
    pred = pipe.rollout(feats[:, :1], z)
    assert pred.shape == (1, 3, 16, 48)


@pytest.mark.parametrize("context", [1, 2])
def test_rollout_with_actions_uses_the_controller_stepwise(context):
    pipe = tiny_pipeline()
    feats = torch.randn(2, context, 16, 48)
    actions = torch.randn(2, 4, 2)
    fast = pipe.rollout_with_actions(feats, actions)
    slow = pipe.rollout_with_actions(feats, actions, use_cache=False)
    assert fast.shape == (2, 4, 16, 48)
    assert (fast - slow).abs().max() <= 1e-5
    # by hand: each latent comes from the controller on the step the action starts from
    seq = feats
    z_ctx = pipe.infer_latents(feats) if context > 1 else torch.zeros(2, 0, 16)
    zs = [z_ctx]
    for i in range(4):
        zs.append(pipe.latents_from_actions(actions[:, i : i + 1], seq[:, -1:]))
        nxt = pipe.lam.world_model(seq, torch.cat(zs, 1))[:, -1:]
        seq = torch.cat([seq, nxt], 1)
    torch.testing.assert_close(fast, seq[:, context:], atol=1e-5, rtol=0)


def test_rollout_with_actions_for_action_models_and_errors():
    pipe = tiny_pipeline(kind="action")
    out = pipe.rollout_with_actions(torch.randn(1, 1, 16, 48), torch.randn(1, 3, 2))
    assert out.shape == (1, 3, 16, 48)
    no_ctrl = tiny_pipeline(kind="deterministic")
    with pytest.raises(ValueError, match="controller"):
        no_ctrl.rollout_with_actions(torch.randn(1, 1, 16, 48), torch.randn(1, 3, 2))
