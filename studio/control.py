"""Handlers of the Control tab: drive a world model with real actions, or let CEM plan.

Manual driving (the world/controller pairing, reset and step, the tracking error per step) lives
in :mod:`studio.driving` and is re-exported here, so that the tab reaches every handler through
this module.

Planning: the CEM planner of :mod:`lam_core.planning` with the adapters of
:mod:`lam_core.eval.planning` (reach: the DROID protocol, H=3; drive: the RECON protocol, one
action repeated over H=8), towards the goal frame of the seed's episode; the plan is replayed in
the real world to score it. The defaults (:data:`PLAN_DEFAULTS`) finish in a few seconds on a CPU;
a plan can be stopped (:func:`plan_stop`), and :func:`plan_success` says how often the plan ends
closer to the goal than it started over a few seeds (computed on demand, then cached).
"""

from __future__ import annotations

import dataclasses
import threading

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import torch

from lam_core import LatentActionPipeline
from lam_core.eval.planning import (
    DRIVE_CEM,
    DRIVE_HORIZON,
    REACH_CEM,
    RepeatedAction,
    episode_features,
    make_episode,
    planning_model,
    reach_delta,
    trajectory_errors,
)
from lam_core.pipeline import cpu_bf16, cpu_has_native_bf16
from lam_core.planning import SOLVERS, cem
from studio import plots
from studio.driving import (
    ACTION_LABELS,
    ARROWS,
    CONTROL_NAME,
    DEFAULT_WORLD,
    HELP,
    MAX_STEPS,
    NO_CONTROLLER,
    TRACK_HEADERS,
    WORLDS,
    ControlState,
    _step_frames,
    _world,
    action_sliders,
    arrow,
    control_checkpoint,
    control_reset,
    control_start,
    control_step,
    control_switch,
    control_tracking,
    control_world,
    controller_note,
    controller_world,
    follow_checkpoint,
    start_world,
    tracking_errors,
    world_checkpoint,
    world_mismatch,
)
from studio.glossary import term
from studio.handlers import PROGRESS, Progress, as_callback, bad_input, user_errors
from studio.media import Panel, save_video, side_by_side
from studio.models import PIPELINES, PipelineCache

__all__ = [
    "ACTION_LABELS",
    "ARROWS",
    "CONTROL_NAME",
    "DEFAULT_SOLVER",
    "DEFAULT_WORLD",
    "HELP",
    "MAX_STEPS",
    "NO_CONTROLLER",
    "PLAN_DEFAULTS",
    "SOLVER_NAMES",
    "SUCCESS_SEEDS",
    "TRACK_HEADERS",
    "WORLDS",
    "ControlState",
    "PlanStopped",
    "action_sliders",
    "arrow",
    "control_checkpoint",
    "control_plan",
    "control_reset",
    "control_start",
    "control_step",
    "control_switch",
    "control_tracking",
    "control_world",
    "controller_note",
    "controller_world",
    "follow_checkpoint",
    "plan_defaults",
    "plan_stop",
    "plan_success",
    "start_world",
    "tracking_errors",
    "world_checkpoint",
    "world_mismatch",
]

DEFAULT_SOLVER = "icem"  # as good as CEM with fewer samples (lam_core.eval.planning's table)
SOLVER_NAMES = tuple(SOLVERS)
SOLVER_LABELS = {"cem": "CEM", "icem": "iCEM", "mppi": "MPPI", "gradient": "gradient descent"}
PLAN_DEFAULTS = {  # world → (N samples, I iterations): a plan in ~2 s on one busy CPU core
    "reach": (100, 5),  # the DROID protocol's N=300, I=15 takes ~20 s and plans no better here
    "drive": (120, 1),  # the RECON protocol's own: one round of 120 straight-line candidates
}
SUCCESS_SEEDS = 4  # seeds of the success line (plan_success)


class PlanStopped(gr.Error):
    """The Stop button was pressed while this session's plan was running."""


_STOPS: dict[str, threading.Event] = {}
_STOPS_LOCK = threading.Lock()
_SUCCESS: dict[tuple, dict] = {}  # plan_success's answers, by checkpoint, world, seeds, N, I


def _session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "local"


def _new_stop(request: gr.Request | None) -> threading.Event:
    """A fresh stop flag for this session's plan (the Stop button sets it: :func:`plan_stop`)."""
    with _STOPS_LOCK:
        event = _STOPS[_session(request)] = threading.Event()
    return event


def plan_stop(request: gr.Request | None = None) -> None:
    """Stop the plan this session is running, at the end of its current CEM iteration (the
    button's ``cancels=`` frees the page at once; this ends the computation too)."""
    with _STOPS_LOCK:
        event = _STOPS.get(_session(request))
    if event is not None:
        event.set()


def plan_defaults(world: str) -> tuple[gr.Slider, gr.Slider]:
    """The N and I sliders set to ``world``'s quick defaults (:data:`PLAN_DEFAULTS`)."""
    samples, iterations = PLAN_DEFAULTS.get(world, PLAN_DEFAULTS[DEFAULT_WORLD])
    return gr.Slider(value=samples), gr.Slider(value=iterations)


def _plan_config(world: str, samples: float, iterations: float):
    horizon = DRIVE_HORIZON if world == "drive" else REACH_CEM.horizon
    base = DRIVE_CEM if world == "drive" else REACH_CEM
    cfg = dataclasses.replace(
        base,
        samples=int(samples),
        iterations=int(iterations),
        elites=min(base.elites, int(samples)),
    )
    return cfg, horizon


def _plan(pipe: LatentActionPipeline, world: str, seed: int, cfg, horizon: int, report,
          solver: str = DEFAULT_SOLVER):
    """Plan one episode and replay the plan in the real world.

    Returns:
        ``(episode, start features, CEM result, plan (H, A), real frames, numbers)``.
    """
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
            progress=report,
            solver=None if solver == "cem" else solver,
        )
    plan = result.plan.expand(horizon, -1) if result.plan.shape[0] == 1 else result.plan
    w = _world(world, seed)
    real, states = [w.reset()], [w.state]
    for a in plan.numpy():
        real.append(w.step(a))
        states.append(w.state)
    numbers = _score(world, plan.numpy(), ep.actions, np.stack(states), ep.states)
    numbers.update(
        world=world,
        seed=int(seed),
        horizon=horizon,
        samples=cfg.samples,
        iterations=cfg.iterations,
        solver=solver,
        plan=plan.numpy().round(4).tolist(),
        best_costs=result.best_costs.numpy().round(5).tolist(),
        bf16=bf16,
    )
    return ep, start, result, plan, real, numbers


def _checked(checkpoint: str | None, world: str, seed: float) -> LatentActionPipeline:
    pipe = PIPELINES.get(checkpoint)
    note = controller_note(pipe, str(checkpoint), world)
    if note:
        raise bad_input(note.replace("**", ""), title="cannot plan with this checkpoint")
    _world(world, seed)
    return pipe


def _stoppable(progress: Progress | None, stop: threading.Event, start: float, span: float):
    report = as_callback(progress)

    def callback(fraction: float, message: str) -> None:
        if stop.is_set():
            raise PlanStopped("the plan was stopped", title="plan stopped", print_exception=False)
        report(start + span * float(fraction), message)

    return callback


def control_plan(
    checkpoint: str | None,
    world: str,
    seed: float,
    samples: float = PLAN_DEFAULTS[DEFAULT_WORLD][0],
    iterations: float = PLAN_DEFAULTS[DEFAULT_WORLD][1],
    solver: str = DEFAULT_SOLVER,
    progress: Progress | None = PROGRESS,
    request: gr.Request | None = None,
) -> tuple[str, go.Figure, str, dict]:
    """CEM towards the goal frame of the seed's episode, then replay the plan in the real world.

    Reach follows the DROID protocol (H=3 actions, K=10 elites); drive the RECON protocol (one
    action repeated over H=8). ``samples`` (N) and ``iterations`` (I) trade quality for time
    (:data:`PLAN_DEFAULTS`: a few seconds on a CPU); ``solver`` is one of
    :data:`lam_core.planning.SOLVERS` (iCEM by default). The Stop button (:func:`plan_stop`) ends
    the plan after the current iteration.

    Returns:
        ``(video, cost figure, summary Markdown, numbers)``; the video shows the goal, the model's
        planned rollout and the real world replaying the plan.
    """
    with user_errors("plan"):
        stop = _new_stop(request)
        pipe = _checked(checkpoint, world, seed)
        cfg, horizon = _plan_config(world, samples, iterations)
        report = _stoppable(progress, stop, 0.05, 0.85)
        report(0.0, "encoding start and goal")
        _check_solver(solver)
        ep, start, result, plan, real, numbers = _plan(pipe, world, seed, cfg, horizon, report,
                                                       solver)
        if stop.is_set():
            report(1.0, "stopped")  # raises PlanStopped
        as_callback(progress)(0.92, "rolling out the plan")
        numbers = {"checkpoint": checkpoint, **numbers}
        preds = pipe.rollout_with_actions(start, plan[None])
        planned = _step_frames(pipe, torch.cat([start, preds], dim=1))
        goal_frames = np.repeat(ep.goal[-1:], horizon + 1, axis=0)
        frames = side_by_side([
            Panel("goal", goal_frames),
            Panel("model: planned rollout", planned, 1),
            Panel("real world: plan replayed", np.stack(real)),
        ])
        video = save_video(np.repeat(frames, pipe.tubelet, axis=0), pipe.fps, "plan")
        fig = plots.cost_figure(result.best_costs.numpy(), result.elite_costs.numpy(),
                                title=f"{_solver_label(solver)} cost per iteration")
        return video, fig, _plan_summary(numbers), numbers


def plan_success(
    checkpoint: str | None,
    world: str,
    seed: float,
    samples: float = PLAN_DEFAULTS[DEFAULT_WORLD][0],
    iterations: float = PLAN_DEFAULTS[DEFAULT_WORLD][1],
    solver: str = DEFAULT_SOLVER,
    progress: Progress | None = PROGRESS,
    request: gr.Request | None = None,
    seeds: int = SUCCESS_SEEDS,
) -> str:
    """How often the plan ends closer to the goal than it started, over ``seeds`` episodes
    (``seed``, ``seed + 1``, …) with these settings: one Markdown line.

    Computed on demand (the Success button) and cached per checkpoint, world, seeds, N and I, so
    asking again is free. "Closer" compares the distance to the goal state before and after the
    plan is replayed in the real world (reach: the effector, px; drive: the position, map px).
    """
    with user_errors("plan"):
        stop = _new_stop(request)
        pipe = _checked(checkpoint, world, seed)
        cfg, horizon = _plan_config(world, samples, iterations)
        _check_solver(solver)
        key = (PipelineCache.key(str(checkpoint)), world, int(seed), seeds, cfg.samples,
               cfg.iterations, solver)
        if key not in _SUCCESS:
            finals, starts = [], []
            for i in range(seeds):
                report = _stoppable(progress, stop, i / seeds, 1 / seeds)
                report(0.0, f"seed {int(seed) + i}: planning ({i + 1}/{seeds})")
                numbers = _plan(pipe, world, int(seed) + i, cfg, horizon, report, solver)[-1]
                finals.append(numbers["final_px"])
                starts.append(numbers["start_px"])
            _SUCCESS[key] = {"final_px": finals, "start_px": starts}
        return _success_line(world, int(seed), cfg, _SUCCESS[key], solver)


def _check_solver(solver: str) -> None:
    if solver not in SOLVER_NAMES:
        raise bad_input(f"unknown solver {solver!r}; choose one of {', '.join(SOLVER_NAMES)}",
                        title="cannot plan with this solver")


def _success_line(world: str, seed: int, cfg, r: dict, solver: str = DEFAULT_SOLVER) -> str:
    finals, starts = np.asarray(r["final_px"]), np.asarray(r["start_px"])
    n, k = len(finals), int((finals < starts).sum())
    unit = "px" if world == "reach" else "map px"
    return (
        f"**Over {n} seeds ({seed}–{seed + n - 1}), the plan ends closer to the goal than it "
        f"started in {k}/{n}** ({solver}, N={cfg.samples}, I={cfg.iterations}; median distance "
        f"to the goal {np.median(starts):.1f} → {np.median(finals):.1f} {unit})."
    )


def _score(
    world: str, plan: np.ndarray, truth: np.ndarray, states: np.ndarray, truth_states: np.ndarray
) -> dict:
    """Reach: Δ of eq. 3 and the effector's distance to the goal (px) before and after; drive:
    ATE, RPE and the position's distance to the goal (map px) before and after."""
    start = float(np.linalg.norm(truth_states[0, :2] - truth_states[-1, :2]))
    final = float(np.linalg.norm(states[-1, :2] - truth_states[-1, :2]))
    if world == "reach":
        return {"delta": reach_delta(plan, truth), "final_px": final, "start_px": start}
    ate, rpe = trajectory_errors(states, truth_states)
    return {"ate": ate, "rpe": rpe, "final_px": final, "start_px": start}


def _solver_label(name: str) -> str:
    return SOLVER_LABELS.get(name, name)


def _plan_summary(n: dict) -> str:
    head = (f"{_solver_label(n.get('solver', 'cem'))}: N={n['samples']}, I={n['iterations']}, "
            f"H={n['horizon']} (seed {n['seed']}).")
    if n["world"] == "reach":
        return (
            f"### Final Δ: {n['final_px']:.1f} px from the goal (started {n['start_px']:.1f} px "
            f"away)\n{term('Δxy of eq. 3')} (action units, 1 = 6 px): **{n['delta']:.2f}**. {head}"
        )
    return (
        f"### {term('ATE')} {n['ate']:.1f} px · {term('RPE')} {n['rpe']:.2f} px\n"
        f"Ends {n['final_px']:.1f} map px from the goal (started {n['start_px']:.1f}). "
        f"Straight-line plan (forward, turn) = ({n['plan'][0][0]:+.2f}, {n['plan'][0][1]:+.2f}). "
        f"{head}"
    )
