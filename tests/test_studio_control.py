"""The Control tab's handlers beyond driving and planning (tests/test_studio_handlers.py):
controllers paired with their world, the tracking error per step, the plan's Stop flag and its
success line over seeds.

Tiny random pipelines saved to ``tmp_path`` stand in for the shipped controllers; their training
records say which world each controller was trained in.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gradio as gr
import numpy as np
import pytest

from lam_core.data.worlds import DriveWorld, ReachWorld
from studio import control
from studio.models import PIPELINES

from .helpers import tiny_pipeline


def with_record(folder: Path, data: dict) -> None:
    """Give ``folder``'s controller a training record of one run on ``data``."""
    config = folder / "controller" / "config.json"
    meta = json.loads(config.read_text())
    meta["training"] = {"steps": 5, "clips": 5, "runs": [{"steps": 5, "clips": 5, "data": data}]}
    config.write_text(json.dumps(meta))


@pytest.fixture(scope="module")
def shelf(tmp_path_factory) -> dict[str, str]:
    """Controllers trained in reach (``data.source: world``), in drive (a ``data.sources`` run),
    and one whose world is unknown (no record), plus a pipeline without a controller."""
    root = tmp_path_factory.mktemp("controllers")
    pipe = tiny_pipeline()
    for name in ("pilot-reach", "pilot-drive", "unknown"):
        pipe.save_pretrained(root / name)
    with_record(root / "pilot-reach", {"source": "world", "world": "reach", "num_frames": 8})
    with_record(
        root / "pilot-drive",
        {"source": "sources", "sources": [{"source": "world", "world": "drive", "weight": 1}]},
    )
    pipe.controller = None
    pipe.save_pretrained(root / "plain")
    return {p.name: str(p) for p in root.iterdir()}


# ---------------------------------------------------------------------------------- world pairing
def test_each_controller_knows_its_world(shelf, tmp_path):
    assert control.controller_world(shelf["pilot-reach"]) == "reach"
    assert control.controller_world(shelf["pilot-drive"]) == "drive"  # from data.sources
    assert control.controller_world(shelf["unknown"]) is None  # no record, no world in the name
    assert control.controller_world(shelf["plain"]) is None  # no controller at all
    named = tmp_path / "controller-drive"  # no record: the folder's name decides
    shutil.copytree(shelf["unknown"], named)
    assert control.controller_world(str(named)) == "drive"


def test_switching_the_world_switches_the_checkpoint(shelf):
    choices = [shelf[k] for k in ("plain", "pilot-reach", "pilot-drive", "unknown")]
    reach, drive = shelf["pilot-reach"], shelf["pilot-drive"]
    assert control.world_checkpoint("drive", reach, choices) == drive
    assert control.world_checkpoint("reach", drive, choices) == reach
    assert control.world_checkpoint("reach", reach, choices) == reach  # already right: kept
    assert control.world_checkpoint("drive", shelf["unknown"], choices) == drive
    assert control.world_checkpoint("drive", reach, [reach]) == reach  # none for drive: kept

    # the handler of the world radio: a new checkpoint, whose change event restarts the rollout
    new, *rest = control.control_world(reach, "drive", 0, choices)
    assert new == drive and all(r == gr.skip() for r in rest)
    # no drive controller among the choices: the checkpoint stays and the status refuses
    kept, state, pair, _, status = control.control_world(reach, "drive", 0, [reach])
    assert kept == gr.skip() and "trained in the reach world" in status
    assert pair is not None and state.key[1] == "drive"  # the start frame is still shown
    # a checkpoint chosen in the box moves the world to its controller's
    assert control.control_switch(drive, "reach", 0)[0] == "drive"


def test_a_controller_from_another_world_is_refused(shelf):
    reach = shelf["pilot-reach"]
    assert control.world_mismatch(reach, "reach") == ""
    assert control.world_mismatch(shelf["unknown"], "drive") == ""  # unknown: allowed
    message = control.world_mismatch(reach, "drive")
    assert "trained in the reach world" in message and "cannot drive the drive world" in message
    with pytest.raises(gr.Error, match="trained in the reach world"):
        control.control_step(None, reach, "drive", 0, 1.0, 0.0)
    with pytest.raises(gr.Error, match="trained in the reach world"):
        control.control_plan(reach, "drive", 0, 20, 1, progress=None)
    state, *_ = control.control_step(None, reach, "reach", 0, 1.0, 0.0)  # its own world: fine
    assert len(state.actions) == 1


# ---------------------------------------------------------------------------------- tracking
def reach_frames(seed: int = 3, actions=((1, 0), (0, 1), (-1, 0))) -> np.ndarray:
    world = ReachWorld(seed)
    return np.stack([world.reset(), *(world.step(a) for a in actions)])


def test_tracking_error_is_the_distance_between_the_two_crosses():
    real = reach_frames()
    same = control.tracking_errors("reach", real, real)
    assert same["unit"] == "px" and np.allclose(same["errors"], 0.0)
    assert same["real_xy"].shape == same["model_xy"].shape == (4, 2)

    shifted = np.roll(real, 3, axis=2)  # the model's cross 3 px to the right at every step
    assert np.allclose(control.tracking_errors("reach", real, shifted)["errors"], 3.0)

    # a model drawing at twice the resolution: positions are compared in the real world's pixels
    double = real.repeat(2, axis=1).repeat(2, axis=2)
    assert np.allclose(control.tracking_errors("reach", real, double)["errors"], 0.0, atol=1e-4)

    lost = real.copy()
    lost[2] = 0  # no cross in the model's frame of step 2
    errors = control.tracking_errors("reach", real, lost)["errors"]
    assert np.isnan(errors[2]) and np.isfinite(errors[[0, 1, 3]]).all()


def test_drive_has_no_effector_so_its_error_is_the_frame_difference():
    world = DriveWorld(1)
    real = np.stack([world.reset(), world.step((1.0, 0.0))])
    t = control.tracking_errors("drive", real, np.clip(real.astype(int) + 10, 0, 255))
    assert t["unit"] == "grey levels" and "real_xy" not in t
    assert np.all((t["errors"] > 9.0) & (t["errors"] <= 10.0))  # +10 but for saturated pixels


def test_tracking_table_follows_the_rollout(shelf):
    reach = shelf["pilot-reach"]
    table, fig, summary = control.control_tracking(None)
    assert table.value["data"] == [] or not table.value["data"]
    state, *_ = control.control_reset(reach, "reach", 2)
    for button in ("→", "↓"):
        state, *_ = control.control_step(state, reach, "reach", 2, *control.arrow("reach", button))
    table, fig, summary = control.control_tracking(state)
    rows = table.value["data"]
    assert [r[0] for r in rows] == [0, 1, 2] and rows[1][1] == "(+1.00, +0.00)"
    assert table.value["headers"] == control.TRACK_HEADERS["reach"]
    assert len(fig.data) == 1 and len(fig.data[0].y) == 3
    assert "after 2 action(s)" in summary and "tracking error" in summary
    real_xy = rows[2][2]  # the real world's cross is always found
    assert real_xy.startswith("(") and real_xy != "not found"

    drive = shelf["pilot-drive"]
    state, *_ = control.control_step(None, drive, "drive", 0, 1.0, 0.0)
    table, _, summary = control.control_tracking(state)
    assert (
        table.value["headers"] == control.TRACK_HEADERS["drive"] and len(table.value["data"]) == 2
    )
    assert len(state.model_poses) == 2 and "map px" in summary  # the camera is read back
    first = state.model_poses[0]
    state, *_ = control.control_step(state, drive, "drive", 0, 0.0, 1.0)
    assert len(state.model_poses) == 3 and state.model_poses[0] is first  # one more tracked
    assert np.allclose(state.real_poses[0], DriveWorld(0).state)


def test_drive_tracking_reads_the_camera_back_from_the_frames():
    world = DriveWorld(1)
    frames, poses = [world.reset()], [world.state]
    for action in ((1.0, 0.0), (0.5, 1.0)):
        frames.append(world.step(action))
        poses.append(world.state)
    real = np.stack(frames)
    t = control.tracking_errors("drive", real, real, poses, poses)
    assert t["unit"] == "map px" and np.allclose(t["errors"], 0) and np.allclose(t["heading"], 0)
    held = control.tracking_errors("drive", real, real[[0, 0, 0]], poses, [poses[0]] * 3)
    assert np.isclose(held["errors"][1], 5.0, atol=1e-3)  # one full forward step: 5 map px


# ---------------------------------------------------------------------------------- planning
def test_plan_defaults_are_quick_settings_per_world():
    assert control.PLAN_DEFAULTS["reach"][0] * control.PLAN_DEFAULTS["reach"][1] <= 600
    samples, iterations = control.plan_defaults("drive")
    assert (samples.value, iterations.value) == control.PLAN_DEFAULTS["drive"]


def test_stop_ends_a_running_plan(shelf):
    reach = shelf["pilot-reach"]
    calls = []

    def progress(fraction, desc=""):  # the first report presses Stop
        calls.append(desc)
        control.plan_stop()

    with pytest.raises(gr.Error, match="stopped"):
        control.control_plan(reach, "reach", 0, 20, 5, progress=progress)
    assert len(calls) == 1  # stopped before the first CEM iteration reported
    *_, numbers = control.control_plan(reach, "reach", 0, 20, 1, progress=None)  # a new plan runs
    assert numbers["iterations"] == 1


def test_success_over_seeds_is_counted_once_and_cached(shelf, monkeypatch):
    reach = shelf["pilot-reach"]
    line = control.plan_success(reach, "reach", 4, 20, 1, progress=None, seeds=2)
    assert line.startswith("**Over 2 seeds (4–5), the plan ends closer to the goal than it")
    k = int(line.split(" in ")[1].split("/")[0])
    assert 0 <= k <= 2 and "N=20, I=1" in line

    def no_planning(*args, **kwargs):
        raise AssertionError("planned again")

    monkeypatch.setattr(control, "_plan", no_planning)
    assert control.plan_success(reach, "reach", 4, 20, 1, progress=None, seeds=2) == line


def test_success_line_counts_plans_that_end_closer():
    cfg, _ = control._plan_config("reach", 100, 5)
    line = control._success_line(
        "reach", 0, cfg, {"final_px": [1.0, 9.0, 2.0, 12.0], "start_px": [5.0, 5.0, 5.0, 5.0]}
    )
    assert "in 2/4" in line and "5.0 → 5.5 px" in line


@pytest.fixture(autouse=True, scope="module")
def _forget_pipelines():
    yield
    PIPELINES.clear()


def test_plan_takes_a_solver_by_name_and_refuses_an_unknown_one():
    from studio import control

    assert control.DEFAULT_SOLVER in control.SOLVER_NAMES
    assert set(control.SOLVER_NAMES) >= {"cem", "icem", "mppi", "gradient"}
    with pytest.raises(Exception, match="unknown solver 'newton'"):
        control._check_solver("newton")
    assert set(control.SOLVER_LABELS) == set(control.SOLVER_NAMES)  # each has a display name
    numbers = {"world": "reach", "final_px": 0.3, "start_px": 11.3, "delta": 0.06, "samples": 40,
               "iterations": 3, "horizon": 3, "seed": 0, "solver": "icem"}
    assert "iCEM: N=40, I=3, H=3 (seed 0)" in control._plan_summary(numbers)  # not "CEM"
