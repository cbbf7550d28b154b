"""Handlers of the Control tab: drive a world model with real actions, or let CEM plan.

Manual driving: each action goes through the checkpoint's controller (``c(a_t, ŝ_t) → z_t``)
and advances the world model one step (``LatentActionPipeline.rollout_with_actions``); the
same action moves the real world (:mod:`lam_core.data.worlds`) so that both can be compared. The
per-session rollout lives in a ``gr.State`` (:class:`ControlState`).

Planning: the CEM planner of :mod:`lam_core.planning` with the adapters of
:mod:`lam_core.eval.planning` (reach: the DROID protocol, H=3; drive: the RECON protocol, one
action repeated over H=8), towards the goal frame of the seed's episode; the plan is replayed in
the real world to score it.
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
from lam_core.checkpoint import CheckpointError, read_training_record
from lam_core.data.worlds import DriveWorld, ReachWorld
from lam_core.eval.planning import (
    DRIVE_CEM,
    DRIVE_HORIZON,
    REACH_CEM,
    RepeatedAction,
    can_plan,
    episode_features,
    make_episode,
    planning_model,
    reach_delta,
    trajectory_errors,
)
from lam_core.pipeline import cpu_bf16, cpu_has_native_bf16
from lam_core.planning import cem
from studio import plots
from studio.handlers import PROGRESS, Progress, as_callback, bad_input, user_errors
from studio.media import Panel, filmstrip, save_video, side_by_side
from studio.models import PIPELINES, has_controller, pipeline_components

WORLDS = {"reach": ReachWorld, "drive": DriveWorld}
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
    """

    key: tuple[str, str, int]
    actions: list[tuple[float, float]] = field(default_factory=list)
    real: list[np.ndarray] = field(default_factory=list)
    model: list[np.ndarray] = field(default_factory=list)


def controller_world(name: str | None) -> str | None:
    """The world a pipeline's controller was trained in: its training record's ``data.world``,
    else a world named in the folder's name (``controller-drive``), else None (unknown)."""
    folder = pipeline_components(name).get("controller")
    if folder is None:
        return None
    try:
        runs = read_training_record(folder).get("runs") or []
    except CheckpointError:
        runs = []
    for run in reversed(runs):
        world = (run.get("data") or {}).get("world") if isinstance(run, dict) else None
        if world in WORLDS:
            return world
    named = [w for w in WORLDS if w in Path(str(name)).name]
    return named[0] if len(named) == 1 else None


def control_checkpoint(choices: list[str], preferred: str | None = None) -> str | None:
    """The checkpoint the Control tab opens on: ``preferred`` (``--checkpoint``) when its config
    names a controller, else the first of ``choices`` that does (one trained in
    :data:`DEFAULT_WORLD` first, then one whose world is unknown, then the others); None when
    none has a controller."""
    if preferred and has_controller(preferred):
        return preferred
    rank = {DEFAULT_WORLD: 0, None: 1}
    driven = [c for c in choices if has_controller(c)]
    return min(driven, key=lambda c: rank.get(controller_world(c), 2), default=None)


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


def controller_note(pipe: LatentActionPipeline, checkpoint: str) -> str:
    """Empty when ``pipe`` can be driven with real actions, else a sentence saying why not."""
    if pipe.decoder is None:
        return f"**{checkpoint}** has no decoder: its rollouts cannot be shown."
    if can_plan(pipe):
        return ""
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
    ])[0]  # fmt: skip
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
        frame = _world(world, seed).reset()
        state = ControlState(key=(str(checkpoint), world, int(seed)), real=[frame])
        note = controller_note(pipe, str(checkpoint))
        if pipe.decoder is None:
            return None, None, None, note
        state.model = [_step_frames(pipe, _start_features(pipe, frame))[-1]]
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
        note = controller_note(pipe, str(checkpoint))
        if note:
            raise bad_input(note.replace("**", ""), title="cannot drive this checkpoint")
        if len(state.actions) >= MAX_STEPS:
            gr.Warning(f"the rollout is capped at {MAX_STEPS} steps: press Reset to start again")
            pair, strip = _render(state, world)
            return state, pair, strip, _status(state, world)
        action = (float(np.clip(first, -1, 1)), float(np.clip(second, -1, 1)))
        actions = [*state.actions, action]
        w = _world(world, seed)
        real = [w.reset(), *(w.step(a) for a in actions)]
        context = _start_features(pipe, real[0])
        preds = pipe.rollout_with_actions(context, torch.tensor([actions], dtype=torch.float32))
        model = _step_frames(pipe, torch.cat([context, preds], dim=1))
        state = dataclasses.replace(state, actions=actions, real=real, model=list(model))
        pair, strip = _render(state, world)
        return state, pair, strip, _status(state, world)


def action_sliders(world: str) -> tuple[gr.Slider, gr.Slider]:
    """The two action sliders relabelled for ``world`` (reach: dx, dy; drive: forward, turn)."""
    first, second = ACTION_LABELS.get(world, ACTION_LABELS["reach"])
    return gr.Slider(label=f"action[0]: {first}"), gr.Slider(label=f"action[1]: {second}")


def arrow(world: str, button: str) -> tuple[float, float]:
    """The action an arrow button stands for in ``world``."""
    return ARROWS.get(world, ARROWS["reach"])[button]


# ---------------------------------------------------------------------------------- planning
def control_plan(
    checkpoint: str | None,
    world: str,
    seed: float,
    samples: float = REACH_CEM.samples,
    iterations: float = REACH_CEM.iterations,
    progress: Progress | None = PROGRESS,
) -> tuple[str, go.Figure, str, dict]:
    """CEM towards the goal frame of the seed's episode, then replay the plan in the real world.

    Reach follows the DROID protocol (H=3 actions, K=10 elites); drive the RECON protocol (one
    action repeated over H=8). ``samples`` (N) and ``iterations`` (I) trade quality for time.

    Returns:
        ``(video, cost figure, summary Markdown, numbers)``; the video shows the goal, the model's
        planned rollout and the real world replaying the plan.
    """
    with user_errors("plan"):
        pipe = PIPELINES.get(checkpoint)
        note = controller_note(pipe, str(checkpoint))
        if note:
            raise bad_input(note.replace("**", ""), title="cannot plan with this checkpoint")
        _world(world, seed)
        report = as_callback(progress)
        horizon = DRIVE_HORIZON if world == "drive" else REACH_CEM.horizon
        base = DRIVE_CEM if world == "drive" else REACH_CEM
        cfg = dataclasses.replace(
            base,
            samples=int(samples),
            iterations=int(iterations),
            elites=min(base.elites, int(samples)),
        )
        report(0.0, "encoding start and goal")
        ep = make_episode(world, int(seed), horizon, pipe.tubelet)
        start, goal = episode_features(pipe, ep)
        model = planning_model(pipe, start, goal)
        if cfg.horizon != horizon:
            model = RepeatedAction(model, horizon)
        bf16 = pipe.device.type == "cuda" or cpu_has_native_bf16()
        with cpu_bf16(bf16):  # where the CPU has native bf16: ~2× faster costs, same elites
            result = cem(
                model,
                ep.actions.shape[1],
                cfg,
                seed=int(seed),
                device=pipe.device,
                progress=lambda f, m: report(0.05 + 0.85 * f, m),
            )
        plan = result.plan.expand(horizon, -1) if result.plan.shape[0] == 1 else result.plan
        report(0.92, "rolling out and replaying the plan")
        preds = pipe.rollout_with_actions(start, plan[None])
        planned = _step_frames(pipe, torch.cat([start, preds], dim=1))
        w = _world(world, seed)
        real, states = [w.reset()], [w.state]
        for a in plan.numpy():
            real.append(w.step(a))
            states.append(w.state)
        numbers = _score(world, plan.numpy(), ep.actions, np.stack(states), ep.states)
        numbers.update(
            checkpoint=checkpoint,
            world=world,
            seed=int(seed),
            horizon=horizon,
            samples=cfg.samples,
            iterations=cfg.iterations,
            plan=plan.numpy().round(4).tolist(),
            best_costs=result.best_costs.numpy().round(5).tolist(),
            bf16=bf16,
        )
        goal_frames = np.repeat(ep.goal[-1:], horizon + 1, axis=0)
        frames = side_by_side([
            Panel("goal", goal_frames),
            Panel("model: planned rollout", planned, 1),
            Panel("real world: plan replayed", np.stack(real)),
        ])  # fmt: skip
        video = save_video(np.repeat(frames, pipe.tubelet, axis=0), pipe.fps, "plan")
        fig = plots.cost_figure(result.best_costs.numpy(), result.elite_costs.numpy())
        return video, fig, _plan_summary(numbers), numbers


def _score(
    world: str, plan: np.ndarray, truth: np.ndarray, states: np.ndarray, truth_states: np.ndarray
) -> dict:
    """Reach: Δ of eq. 3 and the effector's final distance to the goal (px); drive: ATE, RPE."""
    if world == "reach":
        return {
            "delta": reach_delta(plan, truth),
            "final_px": float(np.linalg.norm(states[-1] - truth_states[-1])),
            "start_px": float(np.linalg.norm(truth_states[0] - truth_states[-1])),
        }
    ate, rpe = trajectory_errors(states, truth_states)
    return {"ate": ate, "rpe": rpe}


def _plan_summary(n: dict) -> str:
    head = f"CEM: N={n['samples']}, I={n['iterations']}, H={n['horizon']} (seed {n['seed']})."
    if n["world"] == "reach":
        return (
            f"### Final Δ: {n['final_px']:.1f} px from the goal (started {n['start_px']:.1f} px "
            f"away)\nΔxy of eq. 3 (action units, 1 = 6 px): **{n['delta']:.2f}**. {head}"
        )
    return (
        f"### ATE {n['ate']:.1f} px · RPE {n['rpe']:.2f} px\nStraight-line plan "
        f"(forward, turn) = ({n['plan'][0][0]:+.2f}, {n['plan'][0][1]:+.2f}). {head}"
    )
