"""Motion estimators and the motion-transfer protocols (lam_core.eval.motion)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lam_core import LatentActionPipeline, get_preset
from lam_core.data.miniwild import load_photos
from lam_core.data.scenes import pan_over
from lam_core.eval.motion import (
    camera_motion_transfer,
    direction_agreement,
    mover_motion_transfer,
    phase_shift,
    single_mover_clips,
    step_shifts,
    track,
)


@pytest.fixture(scope="module")
def photos():
    return [p[:120, :120] for p in load_photos()[:3]]


def test_phase_shift_reads_sub_pixel_pans(photos):
    velocity = np.array([[1.5, 0.0], [-0.5, 2.0], [3.0, -1.0], [0.0, 0.0]])
    clip = pan_over(photos[0], velocity, size=64)
    assert np.allclose(clip.meta["camera"]["velocity"], velocity, atol=1e-5)
    measured = step_shifts(clip.frames)
    assert np.abs(measured + velocity).max() < 0.35  # content moves against the camera
    assert np.allclose(phase_shift(clip.frames[0], clip.frames[0]), 0)


def test_tracking_reads_a_disc_mover_exactly():
    for clip in single_mover_clips(4, 0):
        agent = clip.meta["agents"][0]
        pos = track(clip.frames, agent["position"][0], float(agent["scale"][0]))
        assert np.abs(pos - agent["position"]).max() < 0.6


def test_direction_agreement():
    true = np.array([[1.0, 0.0], [0.0, 2.0], [0.1, 0.0]])  # the last step is below min_move
    same = direction_agreement(true, true)
    assert same == {"cosine": 1.0, "magnitude_ratio": 1.0, "steps": 2}
    opposite = direction_agreement(-0.5 * true, true)
    assert opposite["cosine"] == -1.0 and opposite["magnitude_ratio"] == 0.5
    assert np.isnan(direction_agreement(true, np.zeros((3, 2)))["cosine"])


def test_untrained_flow_model_copies_so_nothing_moves(photos):
    """The protocols on an untrained pixel model (copy the last frame): no drift, no motion,
    rollouts exactly as sharp as copying; the estimator itself reads the real pans."""
    torch.manual_seed(0)
    pipe = LatentActionPipeline.from_config(get_preset("tiny-pixel"))
    cam = camera_motion_transfer(pipe, photos, n_pairs=2, steps=3)
    m = cam.metrics
    assert m["real_cosine"] > 0.95 and 0.8 < m["real_magnitude_ratio"] < 1.2
    assert m["still_drift_px"] < 1e-9 and m["transfer_magnitude_ratio"] < 1e-9
    assert m["self_psnr"] == pytest.approx(m["self_psnr_copy"])
    mov = mover_motion_transfer(pipe, n_pairs=2, steps=3)
    assert mov.metrics["real_cosine"] > 0.95 and mov.metrics["transfer_magnitude_ratio"] < 1e-6
    assert mov.per_pair["transfer"].shape == (2, 3, 2)
