"""Rollouts rendered at the display resolution (lam_core/rendering.py,
docs/DESIGN.md#display-rendering): the composed flow warps the display anchor, the model's
prediction fills only where the warp leaves the frame, and the operations put display frames in
their results (or say that a head without a flow only upsamples)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lam_core import LatentActionPipeline, get_preset
from lam_core.clip import Clip
from lam_core.models.flow import inside_share
from lam_core.rendering import render_at, upsample_frames

MODEL, SHOWN = 64, 384  # 1 model pixel = 6 display pixels


def textured(side: int, seed: int = 0) -> np.ndarray:
    """``(side, side, 3)`` uint8 with detail at every scale (noise on a gradient)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 180, side, dtype=np.float32)
    base = ramp[:, None, None] * 0.5 + ramp[None, :, None] * 0.3
    return np.clip(base + rng.integers(0, 70, (side, side, 3)), 0, 255).astype(np.uint8)


def constant_shift(dx: float, dy: float, steps: int = 1, side: int = MODEL) -> torch.Tensor:
    """``(steps, 2, side, side)`` displacements of one shift (model pixels)."""
    d = torch.empty(steps, 2, side, side)
    d[:, 0], d[:, 1] = dx, dy
    return d


@pytest.mark.parametrize("mode", ["bicubic", "bilinear"])
@pytest.mark.parametrize(("dx", "dy"), [(1, 0), (1, 2), (-2, 1), (0, -3)])
def test_a_pure_shift_at_384_px_is_the_shifted_384_px_frame(dx, dy, mode):
    anchor = textured(SHOWN)
    fill = np.zeros((1, MODEL, MODEL, 3), np.uint8)
    out = render_at(anchor, constant_shift(dx, dy), fill, mode=mode)[0]
    sx, sy = dx * SHOWN // MODEL, dy * SHOWN // MODEL  # 6 display pixels per model pixel
    # out(x) = anchor(x + D): inside the region where both exist, exactly the shifted frame
    rows = slice(max(0, -sy), SHOWN - max(0, sy))
    cols = slice(max(0, -sx), SHOWN - max(0, sx))
    src_rows = slice(rows.start + sy, rows.stop + sy)
    src_cols = slice(cols.start + sx, cols.stop + sx)
    assert np.array_equal(out[rows, cols], anchor[src_rows, src_cols])
    # and np.roll agrees there
    rolled = np.roll(anchor, (-sy, -sx), axis=(0, 1))
    assert np.array_equal(out[rows, cols], rolled[rows, cols])


def test_a_zero_displacement_returns_the_display_anchor():
    anchor = textured(SHOWN, seed=3)
    preds = np.full((3, MODEL, MODEL, 3), 77, np.uint8)
    out = render_at(anchor, torch.zeros(3, 2, MODEL, MODEL), preds)
    assert out.shape == (3, SHOWN, SHOWN, 3) and out.dtype == np.uint8
    assert all(np.array_equal(frame, anchor) for frame in out)


@pytest.mark.parametrize("dx", [1.0, 0.5, -1.5])
def test_the_fill_appears_only_where_the_warp_leaves_the_frame(dx):
    anchor = np.full((SHOWN, SHOWN, 3), 10, np.uint8)
    preds = np.full((1, MODEL, MODEL, 3), 250, np.uint8)
    out = render_at(anchor, constant_shift(dx, 0), preds)[0]
    shift = dx * SHOWN / MODEL  # display pixels
    x = np.arange(SHOWN)
    inside = (x + shift >= 0) & (x + shift <= SHOWN - 1)  # a source pixel in the anchor
    gone = (x + shift <= -1) | (x + shift >= SHOWN)  # wholly outside
    assert (out[:, inside] == 10).all() and (out[:, gone] == 250).all()
    assert gone.any()


def test_the_fill_depends_on_the_prediction_only_outside_the_anchor():
    """A spatially varying flow (a zoom out): the output with two different fills differs only
    where the composed sample is (partly) outside the anchor."""
    ys, xs = torch.meshgrid(torch.arange(MODEL) + 0.5, torch.arange(MODEL) + 0.5, indexing="ij")
    d = torch.stack([(xs - MODEL / 2) * 0.3, (ys - MODEL / 2) * 0.2])[None]  # 1, 2, h, w
    anchor = textured(SHOWN, seed=5)
    dark, light = (np.full((1, MODEL, MODEL, 3), v, np.uint8) for v in (0, 255))
    a, b = render_at(anchor, d, dark)[0], render_at(anchor, d, light)[0]
    up = torch.nn.functional.interpolate(d, size=(SHOWN, SHOWN), mode="bilinear",
                                         align_corners=False) * (SHOWN / MODEL)
    share = inside_share(up)[0, 0].numpy()
    differs = (a != b).any(-1)
    assert differs.any() and (share[differs] < 1).all()
    assert not differs[share >= 1].any()


def test_at_the_models_resolution_the_first_step_is_the_models_prediction():
    """Rendering at the model's own size reproduces the flow head's first predicted step where
    its warp has a source (the rollout and the rendering compose the same way)."""
    pipe = randomized_pixel_pipeline()
    x = pipe.to_tensor(Clip(moving_frames(6, 32), fps=pipe.fps))
    s = pipe.encode(x)
    steps, moves = pipe.rollout(s[:, :1], pipe.infer_latents(s), return_displacements=True)
    frames = pipe.to_clip(pipe.decode(torch.cat([s[:, :1], steps], 1))).frames
    out = render_at(frames[0], moves[0, :1], frames[1:2], mode="bilinear")[0]  # the model's
    valid = inside_share(moves[0, :1])[0, 0].numpy() >= 1
    assert valid.mean() > 0.5
    assert np.abs(out.astype(int) - frames[1].astype(int)).max(-1)[valid].max() <= 1


def test_rollout_displacements_are_optional_and_change_nothing():
    pipe = randomized_pixel_pipeline()
    s = pipe.encode(pipe.to_tensor(Clip(moving_frames(6, 32), fps=pipe.fps)))
    z = pipe.infer_latents(s)
    plain = pipe.rollout(s[:, :1], z)
    steps, moves = pipe.rollout(s[:, :1], z, return_displacements=True)
    assert torch.equal(plain, steps) and moves.shape == (1, 5, 2, 32, 32)
    assert moves.abs().mean() > 0  # the randomised head moves pixels
    feature_pipe = tiny_feature_pipeline()
    s = feature_pipe.encode(feature_pipe.to_tensor(Clip(moving_frames(8, 32), fps=4.0)))
    steps, moves = feature_pipe.rollout(s[:, :1], feature_pipe.infer_latents(s),
                                        return_displacements=True)
    assert moves is None and torch.equal(steps, feature_pipe.rollout(
        s[:, :1], feature_pipe.infer_latents(s)))


def test_upsample_frames_keeps_a_constant_frame():
    frames = np.full((2, 8, 8, 3), 123, np.uint8)
    assert (upsample_frames(frames, 40, 40) == 123).all()


# ---------------------------------------------------------------------------------- operations
def moving_frames(t: int, side: int, big: int = 96) -> np.ndarray:
    """``(t, big, big * 4 // 3, 3)`` frames of a textured band moving right (a clip at a display
    size larger than ``side``)."""
    width = big * 4 // 3
    wide = textured(width + 4 * t, seed=1)[:big]
    return np.stack([wide[:, 4 * i : 4 * i + width] for i in range(t)])


def randomized_pixel_pipeline(seed: int = 0) -> LatentActionPipeline:
    """The tiny pixel (flow head) pipeline with its zero-initialised layers randomised, so the
    flow is not zero."""
    torch.manual_seed(seed)
    pipe = LatentActionPipeline.from_config(get_preset("tiny-pixel"))
    with torch.no_grad():
        for name, p in pipe.lam.named_parameters():
            if "modulation" in name or name.startswith("world_model.head"):
                p.normal_(0, 0.05)
    return pipe


def tiny_feature_pipeline() -> LatentActionPipeline:
    torch.manual_seed(0)
    return LatentActionPipeline.from_config(get_preset("tiny"))


def test_a_transfer_returns_display_frames_of_the_display_size():
    pipe = randomized_pixel_pipeline()
    source = Clip(moving_frames(8, 32), fps=pipe.fps)
    target = Clip(moving_frames(8, 32)[::-1].copy(), fps=pipe.fps)
    shown_src = pipe.processor.display(source, long_side=80)  # 96 × 128 → 80 × 80
    shown_tgt = pipe.processor.display(target, long_side=80)
    result = pipe.transfer(source, target, display=shown_tgt, source_display=shown_src)
    assert result.display_rendering == "flow" and result.display_note == ""
    for clip in (result.transferred_display, result.target_own_display, result.target_display,
                 result.source_display):
        assert clip.frames.shape == (8, 80, 80, 3) and clip.frames.dtype == np.uint8
    # the context is the target's real display frame; the prediction is the target's display
    # anchor moved, close to the model's prediction when brought down to its size
    assert np.array_equal(result.transferred_display.frames[0], shown_tgt.frames[0])
    shrunk = pipe.processor.process(result.transferred_display).clip.frames.astype(int)
    model = result.transferred.frames.astype(int)
    error = np.abs(shrunk - model).mean()
    still = np.abs(model[1:] - model[:1]).mean()  # how far the prediction moved from the anchor
    assert error < 6 and error < still / 2, (error, still)
    # without display frames, nothing changes
    plain = pipe.transfer(source, target)
    assert plain.transferred_display is None and plain.display_rendering is None
    assert np.array_equal(plain.transferred.frames, result.transferred.frames)


def test_a_processed_upload_gives_its_own_display_frames(tmp_path):
    from lam_core.video import write_video

    pipe = randomized_pixel_pipeline()
    paths = [write_video(tmp_path / f"{i}.mp4", moving_frames(8, 32, big=120)[:: 1 - 2 * i],
                         pipe.fps) for i in range(2)]
    a, b = (pipe.processor.read(p, display=100) for p in paths)
    cycle = pipe.cycle(a, b, display=b, source_display=a)
    for clip in (cycle.direct_display, cycle.transferred_display, cycle.cycled_display):
        assert clip.frames.shape == (8, 100, 100, 3)
    assert cycle.display_rendering == "flow"
    with pytest.raises(ValueError, match="without display frames"):
        pipe.transfer(a, b, display=pipe.processor.read(paths[1]))


def test_the_feature_head_falls_back_to_upsampled_frames_and_says_so():
    pipe = tiny_feature_pipeline()
    assert pipe.lam.cfg.head == "features"
    source = Clip(moving_frames(8, 32), fps=pipe.fps)
    target = Clip(moving_frames(8, 32)[::-1].copy(), fps=pipe.fps)
    result = pipe.transfer(source, target, display=pipe.processor.display(target, long_side=64))
    assert result.display_rendering == "upsampled"
    assert "features" in result.display_note and "upsampled" in result.display_note
    assert result.transferred_display.frames.shape == (8, 64, 64, 3)
    # the predicted frames are the decoded ones, upsampled (×2, bilinear)
    context = result.context * pipe.tubelet
    expected = upsample_frames(result.transferred.frames[context:], 64, 64)
    assert np.array_equal(result.transferred_display.frames[context:], expected)
