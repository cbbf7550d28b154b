"""Manual driving in the Control tab: a world model driven with real actions, beside the real world.

Each action goes through the checkpoint's controller (``c(a_t, ŝ_t) → z_t``) and advances the
world model one step (``LatentActionPipeline.rollout_with_actions``); the same action moves the
real world (:mod:`lam_core.data.worlds`) so that both can be compared. The per-session rollout
lives in a ``gr.State`` (:class:`ControlState`).

A controller is trained in one world (its training record says which: :func:`controller_world`):
the tab switches the checkpoint with the world (:func:`world_checkpoint`) and refuses to drive a
world with a controller trained in another (:func:`world_mismatch`). After each action the
effector is tracked in both rollouts (:func:`tracking_errors`).

The Control tab reaches these handlers through :mod:`studio.control`, which re-exports them
beside its planning.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import torch

from lam_core import LatentActionPipeline
from lam_core.checkpoint import CheckpointError, read_training_record, record_sources
from lam_core.data.worlds import DriveWorld, ReachWorld
from lam_core.eval.agents import track_effector
from lam_core.eval.planning import can_plan
from lam_core.eval.poses import pose_errors, track_poses
from lam_core.video import resize_center_crop
from studio import plots
from studio.glossary import term
from studio.handlers import bad_input, user_errors
from studio.media import Panel, filmstrip, side_by_side
from studio.models import PIPELINES, has_controller, pipeline_components

WORLDS = {"reach": ReachWorld, "drive": DriveWorld}
# the shipped controller the tab opens on: the reach controller of the grid flagship, trained
# through its world model, which places the cross 1.7 px from the real one after 8 random actions
# (median of 64 episodes; holding it still is 11.3 px off, as the one-latent flagship's does;
# docs/RESULTS.md)
CONTROL_NAME = "controller-reach-grid"
MAX_STEPS = 24
ARROWS = {  # world → button → action
    "reach": {"↑": (0.0, -1.0), "↓": (0.0, 1.0), "←": (-1.0, 0.0), "→": (1.0, 0.0)},
    "drive": {"↑": (1.0, 0.0), "↓": (-1.0, 0.0), "←": (0.6, -1.0), "→": (0.6, 1.0)},
}
ACTION_LABELS = {"reach": ("dx", "dy"), "drive": ("forward", "turn")}
DEFAULT_WORLD = "reach"
NO_CONTROLLER = (
    "⚠ no shipped checkpoint has a controller, so nothing can be driven with real actions here: "
    "train one with `train/controller.py` (e.g. `--config "
    "train/configs/pixel_controller_reach.yaml`), or type a pipeline folder whose config names a "
    "controller into this tab's checkpoint box."
)
HELP = {
    "reach": "reach: a fixed camera; the magenta cross moves by (dx, dy) ∈ [-1, 1]² (1 = 6 px).",
    "drive": "drive: an egocentric camera over a photo; (forward, turn) ∈ [-1, 1]² "
    "(1 = 5 px ahead, 0.3 rad to the right).",
}


@dataclass
class ControlState:
    """One session's manual rollout.

    Attributes:
        key: ``(checkpoint, world, seed)`` the rollout belongs to.
        actions: applied actions, ``(dx, dy)`` or ``(forward, turn)`` each.
        real: real-world frames after each action (the start frame first).
        model: decoded world-model frames, one per step (the decoded start first).
        real_poses: the real world's state after each step (drive: the camera's ``(x, y,
            heading)``; reach: the effector's xy).
        model_poses: drive only, the camera read back from each model frame
            (:func:`lam_core.eval.poses.track_poses`, tracked once per new frame).
    """

    key: tuple[str, str, int]
    actions: list[tuple[float, float]] = field(default_factory=list)
    real: list[np.ndarray] = field(default_factory=list)
    model: list[np.ndarray] = field(default_factory=list)
    real_poses: list[np.ndarray] = field(default_factory=list)
    model_poses: list[np.ndarray] = field(default_factory=list)


def controller_world(name: str | None) -> str | None:
    """The world a pipeline's controller was trained in: the world its training record's runs
    name (``data.world``, or the ``world`` lines of a ``data.sources`` run, read with
    :func:`lam_core.checkpoint.record_sources`; the latest run that names one), else a world named
    in the folder's name (``controller-drive``), else None (unknown)."""
    folder = pipeline_components(name).get("controller")
    if folder is None:
        return None
    try:
        runs = read_training_record(folder).get("runs") or []
    except CheckpointError:
        runs = []
    for run in reversed(runs):
        data = run.get("data") if isinstance(run, dict) else None
        lines = [line for line, _ in record_sources(data) or []] or [data or {}]  # no "source"
        worlds = {line.get("world") for line in lines if isinstance(line, dict)} & set(WORLDS)
        if len(worlds) == 1:
            return worlds.pop()
    named = [w for w in WORLDS if w in Path(str(name)).name]
    return named[0] if len(named) == 1 else None


def world_mismatch(checkpoint: str | None, world: str) -> str:
    """Empty when ``checkpoint``'s controller may drive ``world`` (trained there, or its world is
    unknown), else a sentence saying which world it was trained in."""
    trained = controller_world(checkpoint)
    if trained is None or trained == world:
        return ""
    return (
        f"**{checkpoint}**'s controller was trained in the {trained} world, so it cannot drive "
        f"the {world} world: pick a {world} controller in this tab's checkpoint box, or switch "
        f"the world back to {trained}."
    )


def world_checkpoint(world: str, checkpoint: str | None, choices: list[str]) -> str | None:
    """The checkpoint for ``world``: ``checkpoint`` when its controller was trained there, else
    the first of ``choices`` whose controller was, else ``checkpoint`` (then
    :func:`world_mismatch` says why it cannot drive this world, or its world is unknown)."""
    if checkpoint and controller_world(checkpoint) == world:
        return checkpoint
    return next(
        (c for c in choices if has_controller(c) and controller_world(c) == world), checkpoint
    )


def control_checkpoint(choices: list[str], preferred: str | None = None) -> str | None:
    """The checkpoint the Control tab opens on: ``preferred`` (``--checkpoint``) when its config
    names a controller, else the shipped :data:`CONTROL_NAME` when it is among ``choices``, else
    the first of ``choices`` with a controller (one trained in :data:`DEFAULT_WORLD` first, then
    one whose world is unknown, then the others); None when none has a controller."""
    if preferred and has_controller(preferred):
        return preferred
    rank = {DEFAULT_WORLD: 0, None: 1}
    driven = [c for c in choices if has_controller(c)]

    def order(c: str) -> tuple[int, bool]:
        return rank.get(controller_world(c), 2), Path(c).name != CONTROL_NAME

    return min(driven, key=order, default=None)


def start_world(checkpoint: str | None) -> str:
    """The world the Control tab opens in: the one the checkpoint's controller knows."""
    return controller_world(checkpoint) or DEFAULT_WORLD


def _world(name: str, seed: int):
    if name not in WORLDS:
        raise bad_input(f"unknown world {name!r}; choose one of {', '.join(WORLDS)}")
    return WORLDS[name](int(seed))


def _start_features(pipe: LatentActionPipeline, frame: np.ndarray) -> torch.Tensor:
    """``(1, 1, N, D)`` features of one real frame, repeated over a tubelet as the worlds do (the
    pipeline encodes at least two steps; the encoder is frame-causal, so step 0 is unaffected by
    the second)."""
    return pipe.encode(np.repeat(frame[None], 2 * pipe.tubelet, axis=0))[:, :1]


def _step_frames(pipe: LatentActionPipeline, features: torch.Tensor) -> np.ndarray:
    """Decode ``(1, S, N, D)`` and keep the last frame of each step: ``(S, H, W, 3)`` uint8."""
    frames = pipe.to_clip(pipe.decode(features)).frames
    return frames[pipe.tubelet - 1 :: pipe.tubelet]


def controller_note(pipe: LatentActionPipeline, checkpoint: str, world: str | None = None) -> str:
    """Empty when ``pipe`` can be driven with real actions (in ``world``, when given), else a
    sentence saying why not."""
    if pipe.decoder is None:
        return f"**{checkpoint}** has no decoder: its rollouts cannot be shown."
    if can_plan(pipe):
        return world_mismatch(checkpoint, world) if world and pipe.controller is not None else ""
    if pipe.controller is None:
        return (
            f"**{checkpoint}** has no controller, so it cannot be driven with real actions "
            "(train one with `train/controller.py`, or pick a checkpoint that has one)."
        )
    return f"**{checkpoint}** is a {pipe.lam.cfg.kind!r} model: it cannot be driven with actions."


def _render(state: ControlState, world: str) -> tuple[np.ndarray, np.ndarray]:
    """The latest real | model pair and the filmstrip of the rollout so far."""
    k = len(state.actions)
    pair = side_by_side([
        Panel(f"real world · step {k}", state.real[-1][None]),
        Panel(f"world model · step {k}", state.model[-1][None], 1 if k == 0 else 0),
    ])[0]
    strip = filmstrip(
        [("real world", np.stack(state.real)), ("world model (controller)", np.stack(state.model))]
    )
    return pair, strip


def _status(state: ControlState, world: str, note: str = "") -> str:
    if note:
        return note
    k = len(state.actions)
    last = ""
    if k:
        names = ACTION_LABELS[world]
        last = (
            f" Last action: {names[0]} = {state.actions[-1][0]:+.2f}, "
            f"{names[1]} = {state.actions[-1][1]:+.2f}."
        )
    return f"Step {k}/{MAX_STEPS}.{last} {HELP[world]}"


def control_reset(
    checkpoint: str | None, world: str, seed: float
) -> tuple[ControlState | None, np.ndarray | None, np.ndarray | None, str]:
    """Start a manual rollout at the seed's start frame.

    Returns:
        ``(state, pair image, filmstrip image, status Markdown)``.
    """
    with user_errors("control"):
        pipe = PIPELINES.get(checkpoint)
        w = _world(world, seed)
        frame = w.reset()
        state = ControlState(key=(str(checkpoint), world, int(seed)), real=[frame],
                             real_poses=[w.state])
        note = controller_note(pipe, str(checkpoint), world)
        if pipe.decoder is None:
            return None, None, None, note
        state.model = [_step_frames(pipe, _start_features(pipe, frame))[-1]]
        _track_camera(state, w)
        pair, strip = _render(state, world)
        return state, pair, strip, _status(state, world, note)


def control_start(
    checkpoint: str | None, world: str, seed: float
) -> tuple[ControlState | None, np.ndarray | None, np.ndarray | None, str]:
    """:func:`control_reset` for page load and a changed checkpoint: problems go to the status
    line, not to an error."""
    if not (checkpoint or "").strip():
        return None, None, None, NO_CONTROLLER
    try:
        return control_reset(checkpoint, world, seed)
    except gr.Error as e:
        return None, None, None, f"⚠ {e.message}"


def control_switch(
    checkpoint: str | None, world: str, seed: float
) -> tuple[str, ControlState | None, np.ndarray | None, np.ndarray | None, str]:
    """Another checkpoint in the Control tab: move to the world its controller knows (else stay
    in ``world``) and start over; returns the world, then as :func:`control_start`."""
    world = controller_world(checkpoint) or world
    return (world, *control_start(checkpoint, world, seed))


def control_world(checkpoint: str | None, world: str, seed: float, choices: list[str]) -> tuple:
    """The user picked another world: the checkpoint follows it (:func:`world_checkpoint`).

    Returns:
        ``(checkpoint, state, pair, filmstrip, status)``. When the checkpoint changes, the rest
        is ``gr.skip()``: the checkpoint box's change event starts the rollout over
        (:func:`control_switch`); otherwise the rollout starts over here, and the status says
        when the checkpoint's controller was trained in another world.
    """
    chosen = world_checkpoint(world, checkpoint, choices)
    if chosen != checkpoint:
        return (chosen, *(gr.skip(),) * 4)
    return (gr.skip(), *control_start(checkpoint, world, seed))


def follow_checkpoint(checkpoint: str | None):
    """The studio's checkpoint, chosen above the tabs, for the Control tab's box when it has a
    controller; otherwise the Control tab keeps its own (``gr.skip()``)."""
    return checkpoint if has_controller(checkpoint) else gr.skip()


def control_step(
    state: ControlState | None,
    checkpoint: str | None,
    world: str,
    seed: float,
    first: float,
    second: float,
) -> tuple[ControlState | None, np.ndarray | None, np.ndarray | None, str]:
    """Apply one action ``(first, second)`` to the real world and, through the controller, to
    the world model (one more step); a changed checkpoint, world or seed starts over.

    Returns:
        ``(state, pair image, filmstrip image, status Markdown)``.
    """
    with user_errors("control"):
        key = (str(checkpoint), world, int(seed))
        if state is None or state.key != key:
            state, *_ = control_reset(checkpoint, world, seed)
        pipe = PIPELINES.get(checkpoint)
        note = controller_note(pipe, str(checkpoint), world)
        if note:
            raise bad_input(note.replace("**", ""), title="cannot drive this checkpoint")
        if len(state.actions) >= MAX_STEPS:
            gr.Warning(f"the rollout is capped at {MAX_STEPS} steps: press Reset to start again")
            pair, strip = _render(state, world)
            return state, pair, strip, _status(state, world)
        action = (float(np.clip(first, -1, 1)), float(np.clip(second, -1, 1)))
        actions = [*state.actions, action]
        w = _world(world, seed)
        real, states = [w.reset()], [w.state]
        for a in actions:
            real.append(w.step(a))
            states.append(w.state)
        context = _start_features(pipe, real[0])
        preds = pipe.rollout_with_actions(context, torch.tensor([actions], dtype=torch.float32))
        model = _step_frames(pipe, torch.cat([context, preds], dim=1))
        state = dataclasses.replace(state, actions=actions, real=real, model=list(model),
                                    real_poses=states, model_poses=list(state.model_poses))
        _track_camera(state, w)
        pair, strip = _render(state, world)
        return state, pair, strip, _status(state, world)


def _track_camera(state: ControlState, w) -> None:
    """Drive: the camera read back from ``state``'s model frames not tracked yet (each from the
    previous one's pose; the first from the real start; frames of a model at another size than
    the world ``w``'s are resized to it first). Nothing for reach."""
    if w.name != "drive":
        return
    done = len(state.model_poses)
    if done >= len(state.model):
        return
    start = state.model_poses[-1] if done else state.real_poses[0]
    new = np.stack(state.model[done:])
    if new.shape[1:3] != (w.size, w.size):
        new = resize_center_crop(new, w.size, display=True)
    state.model_poses += list(track_poses(w, new, start))


def action_sliders(world: str) -> tuple[gr.Slider, gr.Slider]:
    """The two action sliders relabelled for ``world`` (reach: dx, dy; drive: forward, turn)."""
    first, second = ACTION_LABELS.get(world, ACTION_LABELS["reach"])
    return gr.Slider(label=f"action[0]: {first}"), gr.Slider(label=f"action[1]: {second}")


def arrow(world: str, button: str) -> tuple[float, float]:
    """The action an arrow button stands for in ``world``."""
    return ARROWS.get(world, ARROWS["reach"])[button]


# ---------------------------------------------------------------------------------- tracking
TRACK_HEADERS = {
    "reach": ["step", "action (dx, dy)", "real cross (x, y)", "model cross (x, y)", "error px"],
    "drive": ["step", "action (forward, turn)", "real camera (x, y, heading)",
              "model camera (x, y, heading)", "position error (map px)", "heading error (°)",
              "frame error (0–255)"],
}


def tracking_errors(world: str, real: list | np.ndarray, model: list | np.ndarray,
                    real_poses=None, model_poses=None) -> dict:
    """Per step, how far the world model's rollout is from the real world's.

    Reach: the effector (the magenta cross) tracked with
    :func:`lam_core.eval.agents.track_effector` in both rollouts; the error is the distance
    between the two positions in pixels of the real world's frames (the model's are rescaled);
    NaN where the cross was not found. Drive: the mean absolute difference of the frames
    (``frame_errors``, grey levels) and, given the camera's poses (the real ones and those read
    back from the model's frames, :class:`ControlState`), the position error in map pixels
    (``errors``) and the heading error in degrees (``heading``); without poses ``errors`` is the
    frame difference.

    Args:
        world: ``"reach"`` or ``"drive"``.
        real, model: ``(S, H, W, 3)`` uint8 frames, one per step (the start frame first).
        real_poses, model_poses: drive, ``(S, 3)`` each, or None.

    Returns:
        ``{"world", "unit", "errors": (S,)}``, plus ``"real_xy"`` and ``"model_xy"`` ``(S, 2)`` for
        reach; ``"frame_errors"`` and, with poses, ``"heading"``, ``"real_pose"`` and
        ``"model_pose"`` for drive.
    """
    real, model = np.asarray(real), np.asarray(model)
    steps = min(len(real), len(model))
    real, model = real[:steps], model[:steps]
    if world == "reach":
        real_xy = track_effector(real)
        scale = np.array([real.shape[2] / model.shape[2], real.shape[1] / model.shape[1]])
        model_xy = (track_effector(model) + 0.5) * scale - 0.5  # pixel centres
        errors = np.linalg.norm(model_xy - real_xy, axis=1)
        return {"world": world, "unit": "px", "errors": errors, "real_xy": real_xy,
                "model_xy": model_xy}
    if model.shape[1:3] != real.shape[1:3]:
        rows = np.arange(real.shape[1]) * model.shape[1] // real.shape[1]
        cols = np.arange(real.shape[2]) * model.shape[2] // real.shape[2]
        model = model[:, rows][:, :, cols]
    frame = np.abs(model.astype(np.float32) - real.astype(np.float32)).mean(axis=(1, 2, 3))
    if real_poses is None or model_poses is None or min(len(real_poses), len(model_poses)) < steps:
        return {"world": world, "unit": "grey levels", "errors": frame, "frame_errors": frame}
    real_pose, model_pose = np.asarray(real_poses)[:steps], np.asarray(model_poses)[:steps]
    position, heading = pose_errors(model_pose, real_pose)
    return {"world": world, "unit": "map px", "errors": position, "heading": heading,
            "frame_errors": frame, "real_pose": real_pose, "model_pose": model_pose}


def _xy(xy: np.ndarray) -> str:
    return "not found" if np.isnan(xy).any() else f"({xy[0]:.1f}, {xy[1]:.1f})"


def _pose(pose: np.ndarray) -> str:
    return f"({pose[0]:.1f}, {pose[1]:.1f}, {np.degrees(pose[2]):.0f}°)"


def _number(x: float, unit: str = "") -> str:
    return "—" if not np.isfinite(x) else f"{x:.1f}{unit}"


def control_tracking(state: ControlState | None) -> tuple[gr.Dataframe, go.Figure, str]:
    """The tracking error of the manual rollout so far (:func:`tracking_errors`): a table (one
    row per step), its plot and a sentence.

    Returns:
        ``(table, figure, summary Markdown)``.
    """
    if state is None or not state.model:
        return (
            gr.Dataframe(value=[], headers=TRACK_HEADERS["reach"]),
            plots.empty_figure("press an arrow or Apply: the error per step shows here", 220),
            "",
        )
    world = state.key[1]
    t = tracking_errors(world, state.real, state.model, state.real_poses or None,
                        state.model_poses or None)
    errors = t["errors"]
    actions = ["start", *(f"({a:+.2f}, {b:+.2f})" for a, b in state.actions)]
    if world == "reach":
        rows = [
            [k, actions[k], _xy(t["real_xy"][k]), _xy(t["model_xy"][k]), _number(errors[k])]
            for k in range(len(errors))
        ]
        found = errors[np.isfinite(errors)]
        what = term("tracking error")
        summary = (
            f"{what} after {len(errors) - 1} action(s): the world model's cross is "
            f"**{_number(errors[-1], ' px')}** from the real one now, "
            f"{_number(found.mean() if found.size else np.nan, ' px')} on average over the steps"
        )
        lost = int(np.isnan(errors).sum())
        summary += f" (the cross was not found in {lost} frame(s))." if lost else "."
        y_title = "px"
    elif "heading" in t:
        rows = [
            [k, actions[k], _pose(t["real_pose"][k]), _pose(t["model_pose"][k]),
             _number(errors[k]), _number(t["heading"][k]), _number(t["frame_errors"][k])]
            for k in range(len(errors))
        ]
        summary = (
            f"{term('pose error')} after {len(errors) - 1} action(s): the world model's camera "
            f"is **{_number(errors[-1], ' map px')}** and **{_number(t['heading'][-1], '°')}** "
            f"from the real one now (a full forward step is 5 map px), "
            f"{_number(errors.mean(), ' px')} on average over the steps."
        )
        y_title = "map px"
    else:
        rows = [[k, actions[k], "—", "—", "—", "—", _number(errors[k])]
                for k in range(len(errors))]
        summary = (
            f"{term('frame error')} after {len(errors) - 1} action(s): "
            f"**{_number(errors[-1])}** grey levels now, {_number(errors.mean())} on average."
        )
        y_title = "grey levels"
    fig = (
        plots.step_errors_figure(
            {"world model vs real world": errors},
            "",
            first_step=0,
            y_title=y_title,
            height=220,
            x_title="step (0 = start)",
        )
        if len(errors) > 1
        else plots.empty_figure("press an arrow or Apply: the error per step shows here", 220)
    )
    return gr.Dataframe(value=rows, headers=TRACK_HEADERS[world]), fig, summary
