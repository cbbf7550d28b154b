"""Action worlds: actions do what they say, frames are duplicated per tubelet, episodes replay."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import torch

from lam_core.data.worlds import (
    EFFECTOR_COLOR,
    WORLD_FPS,
    ActionWorldDataset,
    DriveWorld,
    ReachWorld,
    drive_episode,
    make_drive_clip,
    make_reach_clip,
    reach_episode,
)

HAS_PUSHT = importlib.util.find_spec("gym_pusht") is not None


def effector_centroid(frame: np.ndarray) -> np.ndarray:
    """xy centroid of the effector's colour, seen in the pixels only."""
    ys, xs = np.nonzero((frame == EFFECTOR_COLOR).all(-1))
    assert len(xs) > 0, "no effector pixel in the frame"
    return np.array([xs.mean(), ys.mean()])


@pytest.mark.parametrize("seed", range(4))
def test_reach_action_moves_the_effector_by_step_px(seed):
    world = ReachWorld(seed)
    for action, expected in (((1, 0), (6, 0)), ((0, 1), (0, 6)), ((-0.5, -0.5), (-3, -3))):
        before, seen_before = world.state.copy(), effector_centroid(world.render())
        frame = world.step(action)
        np.testing.assert_allclose(world.state - before, expected, atol=1e-4)  # ground truth
        # and in the pixels: the cross is drawn at the nearest pixel of its position
        rounded = np.floor(world.state + 0.5) - np.floor(before + 0.5)
        np.testing.assert_array_equal(effector_centroid(frame) - seen_before, rounded)
        assert abs(rounded - expected).max() <= 1


def test_reach_effector_stays_on_the_table():
    world = ReachWorld(0)
    for _ in range(20):
        frame = world.step((1, -1))
    assert world.state[0] == pytest.approx(64 - 1 - world.margin)
    assert world.state[1] == pytest.approx(world.margin)
    assert (frame == EFFECTOR_COLOR).all(-1).sum() > 10  # still fully drawn


def test_reach_clip_duplicates_frames_per_tubelet():
    clip = make_reach_clip(5, num_steps=8, tubelet=2)
    assert clip.frames.shape == (16, 64, 64, 3) and clip.fps == 2 * WORLD_FPS
    np.testing.assert_array_equal(clip.frames[0::2], clip.frames[1::2])
    assert clip.actions.shape == (7, 2) and clip.actions.dtype == np.float32
    assert np.abs(clip.actions).max() <= 1
    path = clip.meta["effector"]
    assert path.shape == (8, 2)
    for k in range(7):  # action k leads from real frame k to real frame k + 1
        np.testing.assert_allclose(effector_centroid(clip.frames[2 * k + 2]),
                                   np.floor(path[k + 1] + 0.5))
    unclamped = (path[1:] > 6.5).all(1) & (path[1:] < 56.5).all(1)
    np.testing.assert_allclose(np.diff(path, axis=0)[unclamped], 6 * clip.actions[unclamped],
                               atol=1e-4)
    assert make_reach_clip(5, num_steps=4, tubelet=3).frames.shape[0] == 12
    np.testing.assert_array_equal(make_reach_clip(5).frames, clip.frames)  # seeded


def test_reach_episode_replays_to_the_goal():
    start, goal, actions = reach_episode(7, horizon=3)
    assert start.frames.shape == (2, 64, 64, 3) and actions.shape == (3, 2)
    np.testing.assert_array_equal(start.frames[0], start.frames[1])
    world = ReachWorld(7)
    np.testing.assert_array_equal(world.render(), start.frames[0])
    for action in actions:
        frame = world.step(action)
    np.testing.assert_array_equal(frame, goal)
    np.testing.assert_allclose(world.state, start.meta["effector"][-1])


def test_drive_zero_action_keeps_the_view_and_forward_changes_it():
    world = DriveWorld(3)
    frame = world.render()
    np.testing.assert_array_equal(world.step((0, 0)), frame)
    moved = world.step((1, 0))
    assert np.abs(moved.astype(int) - frame).mean() > 1
    pose = world.state
    turned = world.step((0, 1))
    assert np.abs(turned.astype(int) - moved).mean() > 1
    np.testing.assert_allclose(world.state[:2], pose[:2], atol=1e-3)  # turning in place
    assert world.state[2] != pytest.approx(pose[2])


def test_drive_forward_slides_the_scene_towards_the_camera():
    world = DriveWorld(1)
    world.pose = np.array([300.0, 300.0, -np.pi / 2])  # heading up the map: view unrotated
    before = world.render().astype(int)
    after = world.step((1, 0)).astype(int)  # 5 px ahead
    np.testing.assert_allclose(world.state, [300, 295, -np.pi / 2], atol=1e-4)
    assert np.abs(after[5:] - before[:-5]).max() <= 1  # what was ahead is now 5 rows lower


def test_drive_clip_and_episode():
    clip = make_drive_clip(2, num_steps=8, tubelet=2)
    assert clip.frames.shape == (16, 64, 64, 3) and clip.actions.shape == (7, 2)
    np.testing.assert_array_equal(clip.frames[0::2], clip.frames[1::2])
    assert clip.meta["poses"].shape == (8, 3)
    start, goal, actions, poses = drive_episode(2, horizon=8)
    assert actions.shape == (8, 2) and poses.shape == (9, 3)
    world = DriveWorld(2)
    np.testing.assert_array_equal(start.frames, np.stack([world.render()] * 2))
    np.testing.assert_allclose(start.meta["poses"], poses)
    for action in actions:
        frame = world.step(action)
    np.testing.assert_array_equal(frame, goal)
    np.testing.assert_allclose(world.state, poses[-1], atol=1e-4)
    steps = np.linalg.norm(np.diff(poses[:, :2], axis=0), axis=1)
    np.testing.assert_allclose(steps, 5 * np.abs(actions[:, 0]), atol=1e-3)


@pytest.mark.parametrize("world", ["reach", "drive"])
def test_action_world_dataset(world):
    train = ActionWorldDataset(world, length=2, split="train")
    val = ActionWorldDataset(world, length=2, split="val")
    item = train[0]
    assert item["video"].shape == (16, 3, 64, 64) and item["video"].dtype == torch.float32
    assert item["actions"].shape == (7, 2) and item["actions"].dtype == torch.float32
    assert item["video"].min() >= 0 and item["video"].max() <= 1
    assert set(train.seeds).isdisjoint(val.seeds)


@pytest.mark.skipif(not HAS_PUSHT, reason="gym-pusht is not installed")
def test_pusht_clip():
    from lam_core.data.pusht import denormalize_action, record_pusht_clip

    clip = record_pusht_clip(0, num_steps=4, tubelet=2, size=64)
    assert clip.frames.shape == (8, 64, 64, 3) and clip.actions.shape == (3, 2)
    np.testing.assert_array_equal(clip.frames[0::2], clip.frames[1::2])
    assert np.abs(clip.actions).max() <= 1
    raw = clip.meta["raw_actions"]
    np.testing.assert_allclose(denormalize_action(clip.actions), raw, atol=1e-3)
    assert clip.meta["agent_pos"].shape == (4, 2)
    np.testing.assert_array_equal(record_pusht_clip(0, num_steps=4).frames, clip.frames)


def test_pusht_missing_dependency_says_how_to_install(monkeypatch):
    from lam_core.data import pusht

    monkeypatch.setitem(sys.modules, "gym_pusht", None)  # import gym_pusht now fails
    pusht._env.cache_clear()
    try:
        with pytest.raises(ImportError, match="pip install gym-pusht"):
            pusht.record_pusht_clip(0)
    finally:
        pusht._env.cache_clear()
