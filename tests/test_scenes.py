"""MiniWild's "pan" and "movers" scenes and mixtures of scenes: the motion in the pixels is the one
in the ground truth, it changes at random every step, and "wild" is untouched."""

from __future__ import annotations

import hashlib
import math
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from lam_core.config import ConfigError
from lam_core.data.miniwild import (
    SCENES,
    MiniWildConfig,
    MiniWildDataset,
    MixtureDataset,
    benchmark,
    generate_clip,
    load_photos,
)
from lam_core.data.scenes import (
    PHOTO_SOURCES,
    _still_background,
    load_scene_photos,
    mixture_weights,
    step_velocities,
)
from train.config import dump_yaml, load_job_config
from train.data import build_dataset, data_description

QUIET_PAN = {"scene": "pan", "scene_noise_probability": 0.0, "pan_zoom_probability": 0.0,
             "rotation_probability": 0.0}


def frames_hash(clips) -> str:
    h = hashlib.sha256()
    for clip in clips:
        h.update(clip.frames.tobytes())
    return h.hexdigest()


def test_wild_scene_is_unchanged():
    # sha256 recorded from the generator before the scenes were added
    assert frames_hash(generate_clip(s) for s in range(8)) == (
        "30b31a7cd9be7838a410d08d13fbbcd7938d0af143dc28609f9568e95b70b406")
    small = MiniWildConfig(num_frames=8, size=32)
    assert frames_hash(generate_clip(s, small) for s in (3, 100, 10**9 + 5)) == (
        "cf40ad2300da41b3dad89b4338953ef151d0dfeb9f9a55aa8163db460a93b241")


def test_config_checks_the_scene():
    with pytest.raises(ValueError, match="scene must be one of"):
        MiniWildConfig(scene="city")
    with pytest.raises(ValueError, match="min_speed"):
        MiniWildConfig(scene="pan", min_speed=3.0, max_speed=1.0)


@pytest.mark.parametrize("scene", ["pan", "movers"])
def test_same_seed_same_clip_and_different_seeds_differ(scene):
    cfg = MiniWildConfig(num_frames=8, scene=scene)
    a, b = generate_clip(5, cfg), generate_clip(5, cfg)
    assert a.frames.shape == (8, 64, 64, 3) and a.frames.dtype == np.uint8 and a.fps == cfg.fps
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.meta["camera"]["offset"], b.meta["camera"]["offset"])
    assert a.meta["scene"] == scene and a.meta["generator"] == "miniwild"
    assert all(not np.array_equal(a.frames, generate_clip(s, cfg).frames) for s in range(6, 10))
    assert generate_clip(5, MiniWildConfig(num_frames=8, size=32, scene=scene)).frames.shape == (
        8, 32, 32, 3)


def test_step_velocities_stop_or_jump():
    cfg = MiniWildConfig(size=128)
    v = step_velocities(np.random.default_rng(0), 4000, cfg)
    speed = np.linalg.norm(v, axis=1)
    still = speed == 0
    assert abs(still.mean() - cfg.still_probability) < 0.03
    moving = speed[~still]  # scaled with size / 64
    assert moving.min() >= 2 * cfg.min_speed - 1e-9 and moving.max() <= 2 * cfg.max_speed + 1e-9
    angle = np.arctan2(v[~still, 1], v[~still, 0])
    assert np.histogram(angle, bins=4, range=(-np.pi, np.pi))[0].min() > 0.2 * len(angle)


def phase_shift(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """xy displacement of the content from frame ``a`` to frame ``b`` (phase correlation of the
    grey frames, windowed, with a parabolic sub-pixel peak fit)."""
    grey_a, grey_b = (f.astype(np.float64).mean(-1) for f in (a, b))
    window = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))
    fa = np.fft.fft2((grey_a - grey_a.mean()) * window)
    fb = np.fft.fft2((grey_b - grey_b.mean()) * window)
    cross = fb * np.conj(fa)
    r = np.real(np.fft.ifft2(cross / (np.abs(cross) + 1e-9)))
    peak = np.unravel_index(np.argmax(r), r.shape)
    out = []
    for axis in (1, 0):  # x (columns), then y (rows)
        n, i = r.shape[axis], peak[axis]
        idx = [peak[0], peak[1]]
        values = []
        for k in (i - 1, i, i + 1):
            idx[axis] = k % n
            values.append(r[tuple(idx)])
        lo, mid, hi = values
        frac = 0.5 * (lo - hi) / (lo - 2 * mid + hi) if lo - 2 * mid + hi != 0 else 0.0
        shift = i + frac
        out.append(shift - n if shift > n / 2 else shift)
    return np.array(out)


def test_pan_shift_in_the_pixels_is_minus_the_velocity():
    cfg = MiniWildConfig(num_frames=12, **QUIET_PAN)
    errors, still = [], 0
    for seed in range(8):
        clip = generate_clip(seed, cfg)
        camera = clip.meta["camera"]
        velocity = camera["velocity"]
        assert velocity.shape == (11, 2) and camera["offset"].shape == (12, 2)
        np.testing.assert_allclose(np.diff(camera["offset"], axis=0), velocity, atol=1e-4)
        for t, v in enumerate(velocity):
            if not v.any():  # a still step: the same frame (no noise here)
                np.testing.assert_array_equal(clip.frames[t], clip.frames[t + 1])
                still += 1
                continue
            errors.append(np.abs(phase_shift(clip.frames[t], clip.frames[t + 1]) + v).max())
    errors = np.array(errors)
    assert still >= 5 and len(errors) >= 60
    assert np.mean(errors < 0.5) > 0.95 and np.median(errors) < 0.2  # measured: all < 0.3


def test_pan_still_steps_differ_only_by_noise():
    cfg = MiniWildConfig(num_frames=16, **{**QUIET_PAN, "scene_noise_probability": 1.0})
    checked = 0
    for seed in range(6):
        clip = generate_clip(seed, cfg)
        sigma = clip.meta["distractors"]["noise"]
        assert 0 < sigma <= cfg.scene_max_noise
        for t, v in enumerate(clip.meta["camera"]["velocity"]):
            diff = clip.frames[t + 1].astype(float) - clip.frames[t]
            if not v.any():
                assert abs(diff.mean()) < 0.2 and diff.std() < 1.6 * sigma + 0.6
                checked += 1
    assert checked >= 5


def test_pan_motion_changes_at_random_every_step():
    cfg = MiniWildConfig(num_frames=16, scene="pan")
    jumps = []
    for seed in range(40):
        velocity = generate_clip(seed, cfg).meta["camera"]["velocity"]
        jumps.append(np.linalg.norm(np.diff(velocity, axis=0), axis=1) > 0.5)
    assert np.mean(jumps) > 0.75  # ~0.9 expected: only two stops in a row repeat a velocity


def test_pan_zoom_and_rotation_change_a_little_per_step():
    cfg = MiniWildConfig(num_frames=16, scene="pan", pan_zoom_probability=1.0,
                         rotation_probability=1.0)
    for seed in range(10):
        camera = generate_clip(seed, cfg).meta["camera"]
        log_zoom, rotation = np.log(camera["zoom"]), camera["rotation"]
        assert np.all(np.abs(np.diff(log_zoom)) <= cfg.max_zoom_rate + 1e-5)
        assert np.all(np.abs(np.diff(rotation)) <= math.radians(cfg.max_rotation) + 1e-6)
        assert np.ptp(np.diff(rotation)) > 0 and rotation[0] == 0
        assert (1 / camera["zoom"][0] * cfg.size) <= cfg.view[1] + 1e-3  # photo pixels across


def test_movers_still_camera_and_the_centroid_follows_the_ground_truth():
    cfg = MiniWildConfig(num_frames=10, scene="movers", max_movers=1, scene_noise_probability=0)
    errors = []
    for seed in range(24):
        clip = generate_clip(seed, cfg)
        # the background alone: the clip's generator draws it first from the same stream
        background = _still_background(np.random.default_rng(seed), cfg)[0]
        background = np.clip(background + 0.5, 0, 255).astype(np.int32)  # (H, W, 3)
        frames = clip.frames.astype(np.int32)
        (agent,) = clip.meta["agents"]
        position, reach = agent["position"], agent["scale"][0] * math.sqrt(2) + 1.5
        yy, xx = np.mgrid[: frames.shape[1], : frames.shape[2]]
        far = np.hypot(xx[None] - position[:, 0, None, None],
                       yy[None] - position[:, 1, None, None]) > reach  # (T, H, W)
        for t in range(len(frames)):
            # the camera is still: pixels away from the mover show the same background
            np.testing.assert_array_equal(frames[t][far[t]], background[far[t]])
            moved = np.abs(frames[t] - background).sum(-1) > 6
            centroid = np.array([xx[moved].mean(), yy[moved].mean()])
            errors.append(np.abs(centroid - position[t]).max())
    errors = np.array(errors)
    assert errors.max() < 1.0 and np.median(errors) < 0.15  # measured: max 0.36, median 0.05


def test_movers_stay_in_view_and_move_at_random():
    cfg = MiniWildConfig(num_frames=16, scene="movers")
    kinds, counts, jumps = set(), set(), []
    for seed in range(30):
        clip = generate_clip(seed, cfg)
        camera = clip.meta["camera"]
        assert not camera["offset"].any() and not camera["velocity"].any()
        counts.add(len(clip.meta["agents"]))
        for agent in clip.meta["agents"]:
            kinds.add(agent["kind"])
            reach = agent["scale"][0] * (1 if agent["kind"] == "disc" else math.sqrt(2))
            assert agent["position"].shape == (16, 2) and agent["visible"].all()
            assert (agent["position"] - reach >= -0.5).all()
            assert (agent["position"] + reach <= cfg.size - 0.5).all()
            assert 6 <= agent["scale"][0] <= 12
            np.testing.assert_allclose(np.diff(agent["position"], axis=0), agent["velocity"],
                                       atol=1e-4)
            jumps.append(np.linalg.norm(np.diff(agent["velocity"], axis=0), axis=1) > 0.5)
    assert kinds == {"disc", "box", "patch"} and counts == {1, 2}
    assert np.mean(jumps) > 0.75


def test_generation_is_fast():
    # measured ~260 (pan) and ~235 (movers) clips/s of 8 frames at 64 px on one core; this only
    # guards against a large regression on a busy machine
    for scene in ("pan", "movers"):
        assert benchmark(20, MiniWildConfig(num_frames=8, scene=scene)) > 40


def test_mixture_draws_scenes_by_weight():
    weights = {"pan": 2, "movers": 1, "wild": 1}
    dataset = MixtureDataset(MiniWildConfig(num_frames=4), weights, length=2000)
    scenes = [dataset.scene(i) for i in range(len(dataset))]
    n = len(scenes)
    for name, w in weights.items():
        p = w / sum(weights.values())
        assert abs(scenes.count(name) / n - p) < 3 * math.sqrt(p * (1 - p) / n), name
    only = MixtureDataset(None, {"pan": 1, "wild": 0}, length=50)
    assert {only.scene(i) for i in range(50)} == {"pan"}


def test_mixture_items_are_fixed_and_splits_differ():
    cfg = MiniWildConfig(num_frames=4, size=32)
    train = MixtureDataset(cfg, {"pan": 1, "movers": 1, "wild": 1}, length=12)
    val = MixtureDataset(cfg, {"pan": 1, "movers": 1, "wild": 1}, length=12, split="val")
    assert len({train.scene(i) for i in range(12)}) == 3
    for i in range(12):
        item = train[i]["video"]
        assert item.shape == (4, 3, 32, 32) and item.dtype == torch.float32
        assert torch.equal(item, train[i]["video"])
        assert not torch.equal(item, val[i]["video"])
        assert train.clip(i).meta.get("scene", "wild") == train.scene(i)
    wild = next(i for i in range(12) if train.scene(i) == "wild")  # wild items: MiniWild's own
    assert torch.equal(train[wild]["video"], MiniWildDataset(cfg, length=12)[wild]["video"])


@pytest.mark.parametrize("bad", [{"fly": 1}, {"pan": -1}, {"pan": 0, "wild": 0}, {"pan": "a"},
                                 {}, 3, {"pan": float("nan")}])
def test_bad_mixtures_are_refused(bad):
    with pytest.raises(ValueError, match="valid keys: wild, pan, movers"):
        mixture_weights(bad)
    with pytest.raises(ConfigError, match=r"data\.mixture.*wild, pan, movers"):
        load_job_config(None, [f"data.mixture={bad!r}".replace("nan", ".nan")])


def test_mixture_needs_miniwild():
    with pytest.raises(ConfigError, match=r"data\.mixture.*source: miniwild"):
        load_job_config(None, ["data.source=world", "data.mixture={pan: 1}"])


def test_a_recipe_with_a_mixture_loads_and_builds(tmp_path):
    recipe = tmp_path / "mix.yaml"
    recipe.write_text("preset: tiny\ndata:\n  source: miniwild\n  train_clips: 6\n  val_clips: 2\n"
                      "  num_frames: 4\n  mixture: {pan: 2, movers: 1, wild: 1}\n")
    job = load_job_config(recipe)
    assert job.data.mixture == {"pan": 2, "movers": 1, "wild": 1}
    dataset = build_dataset(job, "train")
    assert isinstance(dataset, MixtureDataset) and len(dataset) == 6
    assert dataset[0]["video"].shape == (4, 3, job.encoder.image_size, job.encoder.image_size)
    desc = data_description(job, "train")
    assert desc["mixture"] == {"wild": 0.25, "pan": 0.5, "movers": 0.25}
    plain = load_job_config(recipe, ["data.mixture=null"])
    assert "mixture" not in data_description(plain, "train")  # old caches stay valid
    assert isinstance(build_dataset(plain, "val"), MiniWildDataset)
    dump_yaml(job, tmp_path / "config.yaml")  # a run's saved config loads back
    assert load_job_config(tmp_path / "config.yaml").data.mixture == job.data.mixture
    assert set(SCENES) == {"wild", "pan", "movers", "layers"}


def test_every_photo_loads_offline_and_has_a_source(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    load_photos.cache_clear()
    load_scene_photos.cache_clear()
    photos = load_scene_photos()
    assert list(photos) == list(PHOTO_SOURCES) and len(photos) == 13
    for name, photo in photos.items():
        assert photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3, name
        assert 200 <= min(photo.shape[:2]) <= 512 and photo.std() > 5, name
        assert PHOTO_SOURCES[name].split(",")[0] in ("scikit-image (skimage.data)",
                                                     "scikit-learn (sklearn.datasets"
                                                     ".load_sample_images)")


def test_miniwild_settings_in_the_data_config():
    from train.config import load_job_config, miniwild_config
    from train.data import data_description

    recipe = Path(__file__).resolve().parents[1] / "train" / "configs" / "tiny_pixel_lam.yaml"
    job = load_job_config(recipe, ["data.miniwild={max_rotation: 10.0, view: [80, 90]}"])
    cfg = miniwild_config(job)
    assert cfg.max_rotation == 10 and cfg.view == (80, 90) and cfg.size == job.encoder.image_size
    assert data_description(job, "train")["miniwild"] == {"max_rotation": 10.0, "view": [80, 90]}
    with pytest.raises(ConfigError, match=r"data\.miniwild\.max_rotate: unknown"):
        load_job_config(recipe, ["data.miniwild={max_rotate: 10}"])
    with pytest.raises(ConfigError, match=r"data\.miniwild: .*still_probability"):
        load_job_config(recipe, ["data.miniwild={still_probability: 2.0}"])
