"""MiniWild's "layers" scene: a panning (or still) camera over a photo with 1-3 foreground layers
that move with parallax and by themselves (starting, stopping, turning, leaving the frame), with
motion blur and codec noise in some clips; the motion in the pixels is the one in the ground
truth."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from lam_core.config import ConfigError
from lam_core.data.layers import LAYER_KINDS, LayerSettings, _jpeg, render_layers
from lam_core.data.miniwild import MiniWildConfig, MixtureDataset, benchmark, generate_clip
from lam_core.data.scenes import _bilinear, mixture_weights
from train.config import load_job_config, miniwild_config

CFG = MiniWildConfig(num_frames=8, scene="layers")
QUIET = dict(blur_probability=0.0, codec_probability=0.0)  # no blur, no codec
CLEAN = replace(CFG, scene_noise_probability=0.0)  # no sensor noise


def disc_mask(position: np.ndarray, radius: float, size: int) -> np.ndarray:
    """``(size, size)`` pixels within ``radius`` of ``position`` (xy)."""
    yy, xx = np.mgrid[:size, :size]
    return np.hypot(xx - position[0], yy - position[1]) <= radius


def test_same_seed_same_clip_shapes_and_meta():
    a, b = generate_clip(5, CFG), generate_clip(5, CFG)
    assert a.frames.shape == (8, 64, 64, 3) and a.frames.dtype == np.uint8 and a.fps == CFG.fps
    np.testing.assert_array_equal(a.frames, b.frames)
    assert all(not np.array_equal(a.frames, generate_clip(s, CFG).frames) for s in range(6, 10))
    for size in (32, 128):
        assert generate_clip(5, replace(CFG, size=size)).frames.shape == (8, size, size, 3)
    assert generate_clip(10**9 + 5, CFG).frames.shape == (8, 64, 64, 3)  # a validation seed
    for seed in range(20):
        meta = generate_clip(seed, CFG).meta
        assert meta["scene"] == "layers" and meta["generator"] == "miniwild"
        assert meta["seed"] == seed and meta["background"].startswith("photo:")
        camera = meta["camera"]
        assert camera["center"].shape == (8, 2) and camera["velocity"].shape == (7, 2)
        np.testing.assert_allclose(np.diff(camera["offset"], axis=0), camera["velocity"],
                                   atol=1e-4)
        assert 1 <= len(meta["agents"]) <= 3
        depths = [agent["depth"] for agent in meta["agents"]]
        assert depths == sorted(depths)  # drawn far to near
        for agent in meta["agents"]:
            assert agent["kind"] in LAYER_KINDS and 1.0 <= agent["depth"] <= 1.6
            assert agent["position"].shape == (8, 2) and agent["velocity"].shape == (7, 2)
            assert agent["visible"].shape == (8,) and agent["visible"].dtype == bool
            np.testing.assert_allclose(np.diff(agent["position"], axis=0), agent["velocity"],
                                       atol=1e-4)
            np.testing.assert_allclose(agent["own_velocity"], agent["velocity"]
                                       + agent["depth"] * camera["velocity"], atol=1e-4)


def test_layers_are_varied():
    kinds, motions, counts, still_cameras, blur, codec = set(), set(), set(), 0, 0, 0
    starts = stops = turns = leaves = enters = fast = 0
    for seed in range(80):
        meta = generate_clip(seed, CFG).meta
        counts.add(len(meta["agents"]))
        still_cameras += meta["camera"]["still"]
        blur += "blur" in meta["distractors"]
        codec += "codec" in meta["distractors"]
        if meta["camera"]["still"]:
            assert not meta["camera"]["velocity"].any()
        for agent in meta["agents"]:
            kinds.add(agent["kind"])
            motions.add(agent["motion"])
            speed = np.linalg.norm(agent["own_velocity"], axis=1)
            moving = speed > 1e-3
            starts += int(np.any(~moving[:-1] & moving[1:]))
            stops += int(np.any(moving[:-1] & ~moving[1:]))
            v = agent["own_velocity"]
            both = moving[:-1] & moving[1:]
            cos = (v[:-1] * v[1:]).sum(1) / np.maximum(speed[:-1] * speed[1:], 1e-9)
            turns += int(np.any(both & (cos < math.cos(math.radians(45)))))
            if agent["exits"]:
                assert speed.max() <= 8.0 + 1e-4
                fast += int(speed.max() > 6.0)
            visible = agent["visible"]
            leaves += int(visible[0] and not visible[-1])
            enters += int(visible[-1] and not visible[0])
    assert kinds == set(LAYER_KINDS) and motions == {"steps", "runs", "still"}
    assert counts == {1, 2, 3}
    assert 10 <= still_cameras <= 40 and 10 <= blur <= 40 and 15 <= codec <= 50
    assert min(starts, stops, turns, leaves, enters, fast) >= 3, (starts, stops, turns, leaves,
                                                                  enters, fast)


def test_the_mixture_and_the_recipes_accept_layers():
    weights = {"pan": 3, "movers": 3, "layers": 3, "wild": 1}
    assert mixture_weights(weights)["layers"] == pytest.approx(0.3)
    cfg = MiniWildConfig(num_frames=4, size=32)
    train = MixtureDataset(cfg, weights, length=30)
    val = MixtureDataset(cfg, weights, length=30, split="val")
    items = [i for i in range(30) if train.scene(i) == "layers"]
    assert len(items) >= 4
    for i in items[:4]:
        video = train[i]["video"]
        assert video.shape == (4, 3, 32, 32) and video.dtype == torch.float32
        assert torch.equal(video, train[i]["video"])  # item i is always the same clip
        assert train.clip(i).meta["scene"] == "layers"
        assert not torch.equal(video, val[i]["video"])  # validation seeds are others
    job = load_job_config(None, ["data.mixture={pan: 3, movers: 3, layers: 3, wild: 1}",
                                 "data.miniwild={layer_speed: [1, 6]}"])
    assert job.data.mixture["layers"] == 3 and miniwild_config(job).layer_speed == (1, 6)
    with pytest.raises(ConfigError, match=r"data\.miniwild: .*layer_speed"):
        load_job_config(None, ["data.miniwild={layer_speed: [5, 1]}"])
    with pytest.raises(ValueError, match="layer_speed"):
        MiniWildConfig(layer_speed=(-1.0, 2.0))


def test_moving_layers_change_their_pixels_and_only_theirs():
    # still camera, one layer, no noise: a frame changes only around the layer, by its speed
    settings = LayerSettings(still_camera_probability=1.0, layers=(1, 1), **QUIET)
    by_speed = {0: [], 1: [], 2: [], 3: []}  # 0, (0, 2], (2, 5], > 5 px per step
    for seed in range(40):
        clip = render_layers(seed, CLEAN, settings)
        (agent,) = clip.meta["agents"]
        frames = clip.frames.astype(np.int32)
        for t, v in enumerate(agent["velocity"]):
            diff = np.abs(frames[t + 1] - frames[t]).sum(-1)
            reach = agent["scale"][0] + 1.5
            near = disc_mask(agent["position"][t], reach, 64) | disc_mask(
                agent["position"][t + 1], reach, 64)
            assert not diff[~near].any()  # nothing else moves
            speed = float(np.hypot(*v))
            if speed == 0:
                assert not diff.any()  # a still camera and a still layer: the same frame
            if agent["visible"][t] or agent["visible"][t + 1]:
                by_speed[int(np.searchsorted([0, 2, 5], speed, side="left"))].append(
                    diff[near].mean() / 3)
    means = [float(np.mean(by_speed[k])) for k in range(4)]
    assert all(len(by_speed[k]) >= 15 for k in range(4)), [len(x) for x in by_speed.values()]
    assert means[0] == 0 and means[1] < means[2] < means[3], means


def test_still_steps_differ_only_by_noise_and_codec():
    # a still camera and layers that do not move (none walks in or out): only noise changes them
    settings = LayerSettings(still_camera_probability=1.0, still_object_probability=1.0,
                             enter_probability=0.0, leave_probability=0.0, blur_probability=1.0,
                             codec_probability=0.0)
    cfg = replace(CFG, scene_noise_probability=1.0)
    for seed in range(6):
        for codec in (0.0, 1.0):  # JPEG quantises the noise: measured std <= 3.4 sigma
            clip = render_layers(seed, cfg, replace(settings, codec_probability=codec))
            sigma = clip.meta["distractors"]["noise"]
            assert 0 < sigma <= cfg.scene_max_noise
            assert all(not a["velocity"].any() for a in clip.meta["agents"])
            diff = np.diff(clip.frames.astype(float), axis=0)
            mean, std = np.abs(diff.mean((1, 2, 3))).max(), diff.std((1, 2, 3)).max()
            if codec:
                assert mean < 0.8 and std < 4 * sigma + 1
            else:
                assert mean < 0.3 and std < 1.6 * sigma + 0.6
    quiet = render_layers(3, CLEAN, replace(settings, codec_probability=1.0))
    assert (quiet.frames == quiet.frames[:1]).all()  # no noise: the very same frames


def match(a: np.ndarray, b: np.ndarray, mask: np.ndarray, search: int = 12) -> np.ndarray:
    """The xy shift ``d`` that best maps frame ``a``'s pixels in ``mask`` onto frame ``b``
    (``b(x + d) ≈ a(x)``): integers first, then quarter pixels (bilinear) around the best."""
    yy, xx = np.nonzero(mask)
    ref, img = a[yy, xx].astype(np.float32), b.astype(np.float32)

    def cost(dx, dy):
        return float(np.abs(_bilinear(img, xx + np.float32(dx), yy + np.float32(dy)) - ref).mean())

    grid = range(-search, search + 1)
    best = min((cost(dx, dy), dx, dy) for dx in grid for dy in grid)
    fine = np.arange(-1, 1.01, 0.125)
    best = min((cost(best[1] + fx, best[2] + fy), best[1] + fx, best[2] + fy)
               for fx in fine for fy in fine)
    return np.array(best[1:])


def test_parallax_the_layer_moves_more_than_the_background():
    # a textured layer with no motion of its own, nearer than the background (depth 1.5-1.6)
    settings = LayerSettings(still_camera_probability=0.0, layers=(1, 1), depth=(1.5, 1.6),
                             kinds=(("cutout", 1.0),), still_object_probability=1.0,
                             exit_probability=1.0, enter_probability=0.0, leave_probability=0.0,
                             **QUIET)
    checked, errors_fg, errors_bg = 0, [], []
    for seed in range(30):
        clip = render_layers(seed, CLEAN, settings)
        (agent,) = clip.meta["agents"]
        camera = clip.meta["camera"]["velocity"]
        np.testing.assert_allclose(agent["velocity"], -agent["depth"] * camera, atol=1e-4)
        position, reach = agent["position"], float(agent["scale"][0])
        for t, v in enumerate(agent["velocity"]):
            inside = all(reach + 1 <= position[k, i] <= 62 - reach for k in (t, t + 1)
                         for i in (0, 1))
            if not inside or np.hypot(*(v + camera[t])) < 1.0:  # parallax under a pixel
                continue
            frames = clip.frames[t], clip.frames[t + 1]
            layer = disc_mask(position[t], 0.3 * reach, 64)
            ring = ~disc_mask(position[t], reach + 2, 64) & ~disc_mask(position[t + 1],
                                                                      reach + 2, 64)
            ring[:14], ring[-14:], ring[:, :14], ring[:, -14:] = False, False, False, False
            fg, bg = match(*frames, layer), match(*frames, ring)
            errors_fg.append(np.abs(fg - v).max())
            errors_bg.append(np.abs(bg + camera[t]).max())
            assert np.abs(fg - bg).max() > 0.5  # the two move differently in the pixels
            checked += 1
        if checked >= 12:
            break
    assert checked >= 12
    assert np.median(errors_fg) < 0.3 and max(errors_fg) < 0.75, errors_fg
    assert np.median(errors_bg) < 0.3 and max(errors_bg) < 0.75, errors_bg


def test_layers_that_leave_the_frame_are_not_visible():
    settings = LayerSettings(still_camera_probability=1.0, layers=(1, 1), exit_probability=1.0,
                             **QUIET)
    left = 0
    for seed in range(40):
        clip = render_layers(seed, CLEAN, settings)
        (agent,) = clip.meta["agents"]
        position, reach, visible = agent["position"], agent["scale"][0], agent["visible"]
        outside = ((position <= -reach) | (position >= 63 + reach)).any(1)
        assert not visible[outside].any()
        inside = ((position >= reach) & (position <= 63 - reach)).all(1)
        assert visible[inside].all()
        hidden = np.flatnonzero(~visible)
        for t in hidden[1:]:  # the layer is gone: the background alone, to the last bit
            np.testing.assert_array_equal(clip.frames[t], clip.frames[hidden[0]])
        left += int(outside.any() and visible.any() and outside[np.argmax(visible):].any())
    assert left >= 5


def test_blur_and_codec_keep_the_geometry():
    sharp_settings = LayerSettings(**QUIET)
    for seed in range(8):
        sharp = render_layers(seed, CLEAN, sharp_settings)
        blurred = render_layers(seed, CLEAN, replace(sharp_settings, blur_probability=1.0))
        coded = render_layers(seed, CLEAN, replace(sharp_settings, codec_probability=1.0))
        for other in (blurred, coded):
            for a, b in zip(sharp.meta["agents"], other.meta["agents"]):
                np.testing.assert_array_equal(a["position"], b["position"])
        assert 3 <= blurred.meta["distractors"]["blur"]["samples"] <= 5
        steps = [sharp.meta["camera"]["velocity"]] + [a["velocity"]
                                                     for a in sharp.meta["agents"]]
        visible = [np.ones(8, bool)] + [a["visible"] for a in sharp.meta["agents"]]
        for t in range(8):  # frame t is blurred along the step that ends at it (frame 0: the first)
            still = not any(v[max(t - 1, 0)].any() and seen[t] for v, seen in zip(steps, visible))
            assert np.array_equal(blurred.frames[t], sharp.frames[t]) == still
        quality = coded.meta["distractors"]["codec"]["quality"]
        diff = np.abs(coded.frames.astype(float) - sharp.frames)
        assert 30 <= quality <= 80 and 0.2 < diff.mean() < 8


def test_the_codec_keeps_every_frame_to_itself():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (4, 40, 40, 3), dtype=np.uint8)
    changed = frames.copy()
    changed[1] = 255 - changed[1]
    a, b = _jpeg(frames, 50), _jpeg(changed, 50)
    assert [np.array_equal(a[t], b[t]) for t in range(4)] == [True, False, True, True]


def test_layer_speed_is_a_setting_scaled_with_the_size():
    settings = LayerSettings(exit_probability=1.0, enter_probability=0.0, **QUIET)
    for size in (64, 128):
        cfg = replace(CLEAN, size=size, layer_speed=(2.0, 3.0))
        speeds = np.concatenate([
            np.linalg.norm(a["own_velocity"], axis=1)
            for seed in range(15) for a in render_layers(seed, cfg, settings).meta["agents"]])
        moving = speeds[speeds > 1e-3] / (size / 64)
        assert len(moving) > 30 and moving.min() >= 2 - 1e-4 and moving.max() <= 3 + 1e-4


def test_generation_is_fast():
    # the target is >= 150 clips/s of 8 frames at 64 px on one core (CPU time); this guards
    # against a large regression on a busy machine
    rate = benchmark(60, CFG)
    print(f"layers: {rate:.0f} clips/s (8 frames, 64 px, one core)")
    assert rate > 60
