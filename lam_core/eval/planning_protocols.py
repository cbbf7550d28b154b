"""The paper's planning protocols (paper §7; App. A "Planning protocol for DROID" / "for RECON";
Table S1 and S2 right; docs/DESIGN.md#planners), with the world-model adapters of
:mod:`lam_core.eval.planning_models` and any solver of :mod:`lam_core.planning` (CEM by default;
any of :data:`~lam_core.planning.SOLVERS`, with a time budget, through ``solver=`` and
``budget_s=``).

:func:`reach_protocol` (DROID's role: N=300, K=10, I=15, H=3, Δxy of eq. 3 on 64 episodes) with a
zero-action baseline, and :func:`drive_protocol` (RECON's role: one action repeated over H=8,
N=120, one iteration; ATE and RPE, defined in :func:`trajectory_errors`). Push-T episodes use the
reach protocol when the caller asks for ``world="pusht"``. :func:`time_plan` times one plan.
Every name is also importable from :mod:`lam_core.eval.planning`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from lam_core.data.miniwild import split_seeds
from lam_core.eval.common import Progress, sub_progress
from lam_core.eval.planning_models import RepeatedAction, can_plan, planning_model
from lam_core.pipeline import LatentActionPipeline
from lam_core.planning import (
    SOLVERS,
    CEMConfig,
    CEMResult,
    PlanningModel,
    Solver,
    cem,
    solver_from_config,
)

PAPER_EPISODES = 64
REACH_CEM = CEMConfig(samples=300, elites=10, iterations=15, horizon=3)
DRIVE_CEM = CEMConfig(samples=120, elites=10, iterations=1, horizon=1)
DRIVE_HORIZON = 8


# ---------------------------------------------------------------------------------------- episodes
@dataclass
class Episode:
    """One planning problem: ``start`` and ``goal`` frames (uint8 ``(tubelet, H, W, 3)`` each:
    one model step), ground-truth ``actions`` ``(H, A)`` and ``states`` ``(H + 1, S)``."""

    seed: int
    world: str
    start: np.ndarray
    goal: np.ndarray
    actions: np.ndarray
    states: np.ndarray


def make_episode(world: str, seed: int, horizon: int, tubelet: int) -> Episode:
    """A planning episode of the ``reach``, ``drive`` or ``pusht`` world."""
    from lam_core.data import worlds

    if world == "reach":
        start, goal, actions = worlds.reach_episode(seed, horizon=horizon, tubelet=tubelet)
        states = start.meta["effector"]
    elif world == "drive":
        start, goal, actions, states = worlds.drive_episode(seed, horizon=horizon, tubelet=tubelet)
    elif world == "pusht":
        from lam_core.data.pusht import record_pusht_clip

        clip = record_pusht_clip(seed, num_steps=horizon + 1, tubelet=tubelet)
        start, goal, actions = clip, clip.frames[-1], clip.actions
        states = clip.meta["agent_pos"]
    else:
        raise ValueError(f"unknown world {world!r}; expected reach, drive or pusht")
    goal = np.repeat(goal[None], tubelet, axis=0)
    return Episode(
        seed, world, start.frames[:tubelet].copy(), goal, np.asarray(actions), np.asarray(states)
    )


def episode_features(pipeline: LatentActionPipeline, ep: Episode) -> tuple[torch.Tensor, ...]:
    """Start and goal features ``(1, 1, N, D)`` each, each frame encoded on its own (``s_g =
    f(V_g)``, App. A; a frame-causal encoder would otherwise let the goal see the start).

    A clip must have two steps, so each step is encoded twice over and the first step kept (it
    sees only itself). The frames go in as arrays: the worlds already repeat each frame
    ``tubelet`` times, so nothing is resampled.
    """
    video = np.stack([np.concatenate([ep.start, ep.start]), np.concatenate([ep.goal, ep.goal])])
    feats = pipeline.encode(torch.cat([pipeline.to_tensor(v) for v in video]))
    return feats[:1, :1], feats[1:, :1]


# ---------------------------------------------------------------------------------------- results
@dataclass
class PlanningResult:
    """A planning protocol over episodes.

    Attributes:
        world: ``reach``, ``drive`` or ``pusht``.
        method: what planned (``controller+CEM``, ``action-conditioned+iCEM``, …).
        episodes: episodes run; ``paper_episodes`` the paper's count; ``note`` says when fewer.
        metrics: mean of each metric (reach: ``delta`` (eq. 3) and ``final_px``; drive: ``ate``,
            ``rpe``), with the zero-action baseline as ``zero_<metric>``.
        per_episode: ``{metric: (E,)}`` values, baseline included.
        plans: ``(E, H, A)`` executed plans; ``ground_truth``: ``(E, H, A)`` actions.
        best_costs: ``(E, I)`` the solver's best cost per iteration (under a time budget the
            episodes' iteration counts differ: shorter rows are padded with NaN).
        seconds_per_plan: wall time of one plan (mean).
        cem: the protocol's settings (horizon, bounds; N, K, I where the solver has them).
        solver: the solver's name (:data:`lam_core.planning.SOLVERS`); ``solver_settings`` its
            settings.
        budget_s: the time budget of each plan (None: ``cem.iterations`` iterations).
        iterations, evaluations, plan_costs: ``(E,)`` per plan; ``zero_plan_costs``: the
            model's cost of the zero action (:func:`still_plan`), which a plan should beat.
    """

    world: str
    method: str
    episodes: int
    paper_episodes: int
    note: str
    metrics: dict[str, float]
    per_episode: dict[str, np.ndarray]
    plans: np.ndarray
    ground_truth: np.ndarray
    best_costs: np.ndarray
    seconds_per_plan: float
    cem: CEMConfig = field(default_factory=CEMConfig)
    solver: str = "cem"
    budget_s: float | None = None
    solver_settings: dict = field(default_factory=dict)
    iterations: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    evaluations: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    plan_costs: np.ndarray = field(default_factory=lambda: np.zeros(0))
    zero_plan_costs: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _method(pipeline: LatentActionPipeline | None, solver: str = "cem") -> str:
    if pipeline is None:
        return "custom"
    label = SOLVERS[solver].label
    kind = "action-conditioned" if pipeline.lam.cfg.kind == "action" else "controller"
    return f"{kind}+{label}"


def _note(episodes: int) -> str:
    if episodes >= PAPER_EPISODES:
        return ""
    return f"{episodes} of the paper's {PAPER_EPISODES} episodes (fewer: noisier mean)"


ModelFactory = Callable[[Episode], PlanningModel]


def _run_episodes(
    world, pipeline, episodes, cfg, horizon, seed, factory, batch_size, progress,
    solver=None, budget_s=None,
):
    """Plan every episode with ``solver`` (None: CEM with ``cfg``; a name: its settings from
    ``cfg`` where it has them, :func:`solver_from_config`) and ``budget_s`` per plan; returns
    episodes, results, seconds per plan and the :class:`PlanningResult` fields of the solver
    (:func:`_traces`)."""
    report = progress or (lambda f, m: None)
    if episodes < 1:
        raise ValueError(f"need at least one episode, got {episodes}")
    if cfg.horizon not in (1, horizon):
        raise ValueError(
            f"CEM horizon must be {horizon} or 1 (a repeated action), got {cfg.horizon}"
        )
    if factory is None:
        if pipeline is None or not can_plan(pipeline):
            raise ValueError("planning needs an action world model or a controller (or factory)")

        def factory(ep: Episode) -> PlanningModel:
            start, goal = episode_features(pipeline, ep)
            return planning_model(pipeline, start, goal, batch_size)

    tubelet = pipeline.tubelet if pipeline is not None else 2
    device = pipeline.device if pipeline is not None else None
    solver = solver_from_config(solver or "cem", cfg, device=device)
    eps, results, zero_costs, seconds = [], [], [], 0.0
    for i, s in enumerate(split_seeds(episodes, "val", seed)):
        ep = make_episode(world, s, horizon, tubelet)
        model = factory(ep)
        if cfg.horizon != horizon:
            model = RepeatedAction(model, horizon)
        still = torch.as_tensor(still_plan(ep)[None, : cfg.horizon], dtype=torch.float32)
        zero_costs.append(float(model.cost(still.to(device or "cpu"))[0]))
        t0 = time.perf_counter()
        res = cem(
            model,
            ep.actions.shape[1],
            cfg,
            seed=s,
            device=device,
            progress=sub_progress(report, i / episodes, (i + 1) / episodes),
            solver=solver,
            budget_s=budget_s,
        )
        seconds += time.perf_counter() - t0
        eps.append(ep)
        results.append(res)
        report((i + 1) / episodes, f"{world}: episode {i + 1}/{episodes}")
    return eps, results, seconds / max(episodes, 1), _traces(results, solver, budget_s, zero_costs)


def _plan_of(res: CEMResult, horizon: int) -> np.ndarray:
    return (
        res.plan[:1].expand(horizon, -1).numpy()
        if res.plan.shape[0] == 1 and horizon > 1
        else res.plan.numpy()
    )


def _traces(results: list[CEMResult], solver: Solver, budget_s, zero_costs: list) -> dict:
    """The solver's fields of :class:`PlanningResult`: best cost per iteration (rows padded with
    NaN to the longest), iterations, evaluations, plan costs, the zero action's cost, settings."""
    width = max(len(r.best_costs) for r in results)
    best = np.full((len(results), width), np.nan, dtype=np.float32)
    for i, r in enumerate(results):
        best[i, : len(r.best_costs)] = r.best_costs.numpy()
    settings = {k: v for k, v in dataclasses.asdict(solver).items() if k not in ("device", "seed")}
    return {
        "best_costs": best,
        "solver": solver.name,
        "solver_settings": settings,
        "budget_s": budget_s,
        "iterations": np.array([len(r.best_costs) for r in results]),
        "evaluations": np.array([r.evaluations for r in results]),
        "plan_costs": np.array([r.plan_cost for r in results]),
        "zero_plan_costs": np.array(zero_costs),
    }


def still_plan(ep: Episode) -> np.ndarray:
    """The do-nothing baseline ``(H, A)``: zero displacements (reach, drive); in Push-T, whose
    actions are absolute targets, the agent's start position held."""
    if ep.world == "pusht":
        from lam_core.data.pusht import normalize_action

        return np.repeat(normalize_action(ep.states[:1]), len(ep.actions), axis=0)
    return np.zeros_like(ep.actions)


def reach_delta(plan: np.ndarray, truth: np.ndarray, world: str = "reach") -> float:
    """Eq. 3: ``‖Σ a_plan − Σ a_gt‖₁`` (``(H, A)`` each). Push-T actions are absolute target
    positions, not displacements, so there the final targets are compared instead."""
    if world == "pusht":
        return float(np.abs(plan[-1] - truth[-1]).sum())
    return float(np.abs(plan.sum(0) - truth.sum(0)).sum())


def reach_protocol(
    pipeline: LatentActionPipeline | None = None,
    *,
    episodes: int = PAPER_EPISODES,
    cfg: CEMConfig = REACH_CEM,
    seed: int = 0,
    world: str = "reach",
    factory: ModelFactory | None = None,
    batch_size: int | None = None,
    progress: Progress | None = None,
    solver: str | Solver | None = None,
    budget_s: float | None = None,
) -> PlanningResult:
    """DROID's protocol on the reach world (App. A): plan H=3 actions from the start to the goal
    with CEM (N=300, K=10, I=15) and score Δxy, eq. 3, in action units (one unit = 6 px of effector
    motion at 64 px). Also replays the plan in the world and reports the effector's final distance
    to the goal in pixels (``final_px``, clipped at the borders, unlike eq. 3), and the zero-action
    baseline (``zero_delta`` = ``‖Σ a_gt‖₁``; Push-T: the agent holds its start position, see
    :func:`still_plan`). ``solver`` and ``budget_s`` plan with another solver or for a fixed time.

    Args:
        pipeline: the world model (latent + controller, or kind ``"action"``).
        episodes: how many (paper: 64); fewer is said in the result's ``note``.
        cfg: CEM settings.
        seed: first validation seed of the episodes (episode seeds ``10⁹ + seed + i``).
        world: ``"reach"`` or ``"pusht"``.
        factory: ``episode → PlanningModel`` instead of the pipeline's adapter (tests, toys).
        batch_size: candidates per rollout (None: all).
        progress: ``progress(fraction, message)``.
        solver: a name of :data:`~lam_core.planning.SOLVERS` (N, K, I from ``cfg`` where it has
            them) or a :class:`~lam_core.planning.Solver`; None: CEM.
        budget_s: wall-time budget of each plan (None: ``cfg.iterations`` iterations).
    """
    from lam_core.data.worlds import ReachWorld

    eps, results, secs, run = _run_episodes(
        world, pipeline, episodes, cfg, cfg.horizon, seed, factory, batch_size, progress,
        solver, budget_s,
    )
    plans = np.stack([_plan_of(r, cfg.horizon) for r in results])
    truth = np.stack([ep.actions for ep in eps])
    delta = np.array([reach_delta(p, t, world) for p, t in zip(plans, truth)])
    zero = np.array([reach_delta(still_plan(ep), ep.actions, world) for ep in eps])
    per = {"delta": delta, "zero_delta": zero}
    if world == "reach":
        final = []
        for ep, plan in zip(eps, plans):
            w = ReachWorld(ep.seed)
            for a in plan:
                w.step(a)
            final.append(float(np.linalg.norm(w.state - ep.states[-1])))
        per["final_px"] = np.array(final)
        per["zero_final_px"] = np.array(
            [float(np.linalg.norm(ep.states[0] - ep.states[-1])) for ep in eps]
        )
    return _result(world, pipeline, episodes, per, plans, truth, secs, cfg, run)


def _result(world: str, pipeline, episodes: int, per: dict[str, np.ndarray], plans: np.ndarray,
            truth: np.ndarray, secs: float, cfg: CEMConfig, run: dict) -> PlanningResult:
    """A protocol's :class:`PlanningResult`: per-episode metrics ``per`` and their means."""
    return PlanningResult(
        world=world,
        method=_method(pipeline, run["solver"]),
        episodes=episodes,
        paper_episodes=PAPER_EPISODES,
        note=_note(episodes),
        metrics={k: float(v.mean()) for k, v in per.items()},
        per_episode=per,
        plans=plans,
        ground_truth=truth,
        seconds_per_plan=secs,
        cem=cfg,
        **run,
    )


def trajectory_errors(poses: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """ATE and RPE of a planned trajectory against the ground truth (both ``(H + 1, 3)``: x, y,
    heading), in the positions' units.

    - ATE: both trajectories are translated so that they start at the origin (the start poses
      coincide in our worlds, so no rotation is fitted), then the RMSE of positions over steps
      1 … H: ``sqrt(mean_k ‖p_k − g_k‖²)``.
    - RPE (translational, step 1; Sturm et al., 2012): the displacement of each step expressed in
      the frame of the pose it starts from, ``d_k = R(−θ_k)(p_k+1 − p_k)``, compared between the
      two trajectories: ``mean_k ‖d_k^plan − d_k^gt‖``. (NWM's evaluation differs in details,
      e.g. its alignment; our numbers are comparable between our models, not to the paper's.)
    """
    p = poses[:, :2] - poses[:1, :2]
    g = truth[:, :2] - truth[:1, :2]
    ate = float(np.sqrt(((p[1:] - g[1:]) ** 2).sum(1).mean()))

    def local_steps(x: np.ndarray) -> np.ndarray:
        d, th = np.diff(x[:, :2], axis=0), x[:-1, 2]
        c, s = np.cos(th), np.sin(th)
        return np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]], axis=1)

    rpe = float(np.linalg.norm(local_steps(poses) - local_steps(truth), axis=1).mean())
    return ate, rpe


def drive_protocol(
    pipeline: LatentActionPipeline | None = None,
    *,
    episodes: int = PAPER_EPISODES,
    cfg: CEMConfig = DRIVE_CEM,
    horizon: int = DRIVE_HORIZON,
    seed: int = 0,
    factory: ModelFactory | None = None,
    batch_size: int | None = None,
    progress: Progress | None = None,
    solver: str | Solver | None = None,
    budget_s: float | None = None,
) -> PlanningResult:
    """RECON's protocol on the drive world (App. A, after NWM): a straight-line plan, one action
    ``(forward, turn)`` repeated over H=8 steps, CEM with N=120 and one iteration; the plan is
    replayed in the world and scored with ATE and RPE (:func:`trajectory_errors`, map pixels; a
    full forward step is 5 px). The zero-action baseline stays at the start. ``solver`` and
    ``budget_s`` as in :func:`reach_protocol`.
    """
    from lam_core.data.worlds import DriveWorld

    eps, results, secs, run = _run_episodes(
        "drive", pipeline, episodes, cfg, horizon, seed, factory, batch_size, progress,
        solver, budget_s,
    )
    plans = np.stack([_plan_of(r, horizon) for r in results])
    per: dict[str, list[float]] = {"ate": [], "rpe": [], "zero_ate": [], "zero_rpe": []}
    for ep, plan in zip(eps, plans):
        for prefix, acts in (("", plan), ("zero_", np.zeros_like(plan))):
            w = DriveWorld(ep.seed)
            poses = [w.state]
            for a in acts:
                w.step(a)
                poses.append(w.state)
            ate, rpe = trajectory_errors(np.stack(poses), ep.states)
            per[prefix + "ate"].append(ate)
            per[prefix + "rpe"].append(rpe)
    arrays = {k: np.array(v) for k, v in per.items()}
    truth = np.stack([ep.actions for ep in eps])
    return _result("drive", pipeline, episodes, arrays, plans, truth, secs, cfg, run)


def time_plan(
    pipeline: LatentActionPipeline,
    cfg: CEMConfig = REACH_CEM,
    repeats: int = 1,
    batch_size: int | None = None,
    solver: str | Solver | None = None,
    budget_s: float | None = None,
) -> float:
    """Seconds of one plan on a reach episode (the studio's Plan button; CEM: N × I × H
    world-model steps, 13,500 at the paper's settings); ``solver``, ``budget_s`` as in
    :func:`reach_protocol`."""
    ep = make_episode("reach", split_seeds(1, "val")[0], cfg.horizon, pipeline.tubelet)
    start, goal = episode_features(pipeline, ep)
    model = planning_model(pipeline, start, goal, batch_size)
    t0 = time.perf_counter()
    for r in range(repeats):
        cem(model, ep.actions.shape[1], cfg, seed=r, device=pipeline.device, solver=solver,
            budget_s=budget_s)
    return (time.perf_counter() - t0) / repeats
