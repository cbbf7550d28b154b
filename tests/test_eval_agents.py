"""The reach effector tracked in rollouts driven by real actions (lam_core.eval.agents)."""

from __future__ import annotations

import numpy as np
import pytest

from lam_core.data.worlds import ReachWorld
from lam_core.eval.agents import format_tracking, reach_tracking, track_effector

from .helpers import tiny_pipeline


def test_the_effector_tracker_reads_the_real_world_to_the_pixel():
    errors = []
    for seed in range(20):
        world = ReachWorld(seed)
        rng = np.random.default_rng(seed)
        frames, truth = [world.render()], [world.state]
        for a in world.sample_actions(rng, 6):
            frames.append(world.step(a))
            truth.append(world.state)
        found = track_effector(np.stack(frames))
        errors.append(np.linalg.norm(found - np.floor(np.array(truth) + 0.5), axis=1))
    assert np.max(errors) <= 0.5
    blank = np.zeros((1, 64, 64, 3), np.uint8)
    assert np.isnan(track_effector(blank)).all()  # no cross: not found, not a guess


def test_reach_tracking_rows_calibrate_and_the_copy_control_stays():
    pipe = tiny_pipeline(kind="action")
    result = reach_tracking(pipe, episodes=3, steps=4)
    assert result.errors["model"].shape == (3, 4)
    assert result.rows["truth"]["final_mean_px"] <= 0.5
    real_moves = result.rows["copy"]["final_mean_px"]
    assert real_moves > 1.0  # the real cross went somewhere the copy does not follow
    assert "| copy |" in format_tracking(result)
    assert result.rows["truth"]["background"] == 0.0  # the real scene is still
    assert result.rows["copy"]["background"] == 0.0  # away from the cross, so is the first frame


def test_background_change_counts_what_moves_away_from_the_cross():
    from lam_core.eval.agents import background_change

    real = np.zeros((2, 64, 64, 3), np.uint8)
    path = np.array([[10.0, 10.0], [12.0, 10.0], [14.0, 10.0]])
    moved = real.copy()
    moved[:, 8:13, 8:16] = 255  # at the cross: not counted
    assert background_change(moved, real, path) == 0.0
    moved[:, 40:, 40:] = 255  # far from it: counted, as a share of the far pixels
    assert 0 < background_change(moved, real, path) < 255
    assert background_change(np.full_like(real, 255), real, path) == 255.0


def test_the_pose_tracker_reads_the_drive_world_back_from_its_frames():
    from lam_core.data.worlds import DriveWorld, make_drive_clip
    from lam_core.eval.poses import pose_errors, track_poses

    for seed in range(3):
        clip = make_drive_clip(seed, num_steps=6, tubelet=1)
        truth = clip.meta["poses"]
        found = track_poses(DriveWorld(seed), clip.frames, truth[0])
        position, heading = pose_errors(found, truth)
        assert position.max() <= 0.15 and heading.max() <= 0.3  # px on the map, degrees
        held = track_poses(DriveWorld(seed), np.repeat(clip.frames[:1], 3, axis=0), truth[0])
        assert np.abs(held - truth[0]).max() < 1e-6  # a still camera stays where it started
    with pytest.raises(ValueError, match="frames of the world"):
        track_poses(DriveWorld(0), np.zeros((2, 32, 32, 3), np.uint8), truth[0])


def test_drive_tracking_rows_calibrate_and_the_copy_control_stays():
    from lam_core.eval.agents import drive_tracking

    pipe = tiny_pipeline(kind="action")
    result = drive_tracking(pipe, episodes=2, steps=3)
    assert result.errors["model"].shape == (2, 3)
    # the tiny model's views are 32 px, where a repeating texture (the brick map) can alias a
    # view one period away: the calibration row is far below the copy's, and sub-pixel at 64 px
    # (the test above)
    copy = result.rows["copy"]["final_mean_px"]
    assert copy > 1.0  # the real camera moved, the copy did not
    assert result.rows["truth"]["final_mean_px"] < 0.25 * copy
    assert "ATE" in format_tracking(result) and "| truth |" in format_tracking(result)
