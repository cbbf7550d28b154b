"""One CEM plan on ``reach`` (paper App. A, DROID: N=300, K=10, I=15, H=3) and on ``drive``
(RECON: one action repeated over H=8, N=120, one iteration) with the studio's default world model
(``assets/checkpoints/pixel-noisy``) and the shipped adapter controller of the world
(``controller-reach`` / ``controller-drive``; an untrained one of the pixel preset where none is
shipped: timing does not depend on the weights).

Batched: all N candidates in one rollout with the KV cache, the start shared (its keys, values
and latents computed once, :meth:`WorldModel.rollout`). Against a per-candidate loop (the same
cost, one candidate per rollout), timed on a subset of candidates and scaled to N · I (every
candidate costs the same in a loop), at one thread or the run's, whichever is faster. The two
give the same costs (``tests/test_fast_paths.py``).

Then one row per solver of :data:`lam_core.planning.SOLVERS` on the same reach episode
(:func:`solver_rows`): the seconds of one plan at its default settings (the protocol's N, K, I
where the solver has them), and the model cost it reaches within a fixed budget against CEM's at
the same budget. Each row's note holds the load (``os.getloadavg()``) when it was measured.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import torch
from harness import Context, Row, count_flops

REPO = Path(__file__).resolve().parent.parent
CHECKPOINT = REPO / "assets" / "checkpoints" / "pixel-noisy"


def pixel_pipeline(world: str = "reach"):
    """The shipped controller pipeline of ``world`` (``assets/checkpoints/controller-<world>``);
    else the shipped pixel world model (random weights of the preset if it is missing) with an
    untrained adapter controller of the pixel preset."""
    from lam_core import LatentActionPipeline, get_preset
    from lam_core.checkpoint import build_component

    torch.manual_seed(0)
    shipped = CHECKPOINT.parent / f"controller-{world}"
    if shipped.is_dir():
        return LatentActionPipeline.from_pretrained(shipped)
    cfg = get_preset("pixel")
    if CHECKPOINT.is_dir():
        pipe = LatentActionPipeline.from_pretrained(CHECKPOINT)
    else:
        pipe = LatentActionPipeline.from_config(cfg)
    pipe.controller = build_component("controller", cfg.controller).eval()
    return pipe


def plan_rows(ctx: Context, pipe, world: str, cfg, horizon: int, subset: int) -> list[Row]:
    """Time one plan batched and a per-candidate loop on ``subset`` candidates; where the CPU
    has native bf16, the batched plan again under bf16 autocast (:func:`cpu_bf16`)."""
    from lam_core.data.miniwild import split_seeds
    from lam_core.eval.planning import (
        RepeatedAction,
        episode_features,
        make_episode,
        planning_model,
    )
    from lam_core.pipeline import cpu_bf16, cpu_has_native_bf16
    from lam_core.planning import cem

    ep = make_episode(world, split_seeds(1, "val")[0], horizon, pipe.tubelet)
    start, goal = episode_features(pipe, ep)
    action_dim = ep.actions.shape[1]

    def model(batch_size=None):
        m = planning_model(pipe, start, goal, batch_size)
        return m if cfg.horizon == horizon else RepeatedAction(m, horizon)

    batched = model()
    probe = torch.rand(cfg.samples, cfg.horizon, action_dim) * 2 - 1
    batched.cost(probe)  # warm-up
    t = time.perf_counter()
    cem(batched, action_dim, cfg, seed=0)
    seconds = time.perf_counter() - t
    loop = model(batch_size=1)
    per_thread = {}
    for threads in sorted({1, ctx.threads}):  # the loop at its best thread count
        torch.set_num_threads(threads)
        loop.cost(probe[:2])  # warm-up
        t = time.perf_counter()
        loop.cost(probe[:subset])
        per_thread[threads] = (time.perf_counter() - t) / subset
    torch.set_num_threads(ctx.threads)
    per_candidate = min(per_thread.values())
    loop_s = per_candidate * cfg.samples * cfg.iterations
    flops = count_flops(lambda: batched.cost(probe)) * cfg.iterations
    floor = ctx.floor(flops)
    steps = cfg.samples * cfg.iterations * horizon
    if world == "reach":
        target, met = "≤ 5 s; batched ≥ 20× loop", seconds <= 5 and loop_s / seconds >= 20
    else:
        target, met = "batched ≥ 20× loop", loop_s / seconds >= 20
    name = f"CEM plan, {world} (N={cfg.samples} K={cfg.elites} I={cfg.iterations} H={horizon})"
    rows = [Row(
        name=name,
        value=seconds, unit="s", ratio=loop_s / seconds,
        ratio_of=f"per-candidate loop ({subset} timed, ×{cfg.samples * cfg.iterations}) / batched",
        flops=flops, floor_s=floor, target=target, met=met,
        note=f"{steps} candidate-steps, {flops / steps / 1e6:.0f} MFLOP each; loop {loop_s:.0f} s",
        extra={"loop_s": loop_s, "loop_per_candidate_s_by_threads": per_thread,
               "candidate_steps": steps},
    )]
    if cpu_has_native_bf16():
        with cpu_bf16(True):
            batched.cost(probe)  # warm-up
            t = time.perf_counter()
            cem(batched, action_dim, cfg, seed=0)
            bf16_s = time.perf_counter() - t
            low = batched.cost(probe)
        full = batched.cost(probe)
        err = float(((low - full).abs() / full.abs()).max())
        k = cfg.elites
        same = len(set(low.argsort()[:k].tolist()) & set(full.argsort()[:k].tolist()))
        met = bf16_s <= 5 if world == "reach" else None
        rows.append(Row(
            name=f"{name}, bf16 autocast", value=bf16_s, unit="s", ratio=seconds / bf16_s,
            ratio_of="fp32 / bf16", dtype="bfloat16", flops=flops,
            floor_s=ctx.floor(flops, "bfloat16"), target="≤ 5 s" if world == "reach" else "",
            met=met, note=f"largest relative cost error {err:.1e}; {same} of the {k} elites of "
            f"{cfg.samples} probe candidates the same as fp32's",
            extra={"max_relative_cost_error": err, "same_elites": same},
        ))
    return rows


def solver_rows(ctx: Context, pipe, cfg, budget_s: float) -> list[Row]:
    """Per solver on one reach episode: one plan at its default settings (``cfg``'s N, K, I
    where it has them, :func:`lam_core.planning.solver_from_config`), then one within
    ``budget_s``; the ratio is the cost reached within the budget over CEM's."""
    from lam_core.data.miniwild import split_seeds
    from lam_core.eval.planning import episode_features, make_episode, planning_model
    from lam_core.planning import SOLVERS, solver_from_config

    ep = make_episode("reach", split_seeds(1, "val")[0], cfg.horizon, pipe.tubelet)
    start, goal = episode_features(pipe, ep)
    model = planning_model(pipe, start, goal)
    action_dim, bounds = ep.actions.shape[1], (cfg.low, cfg.high)
    zero = float(model.cost(torch.zeros(1, cfg.horizon, action_dim)))  # also the warm-up
    runs = {}
    for name in SOLVERS:
        solver = solver_from_config(name, cfg, device=pipe.device)
        load_before = os.getloadavg()[0]
        default = solver.plan(model, cfg.horizon, action_dim, bounds, seed=0)
        timed = solver.plan(model, cfg.horizon, action_dim, bounds, budget_s=budget_s, seed=0)
        runs[name] = (solver, default, timed, load_before)
    cem_cost = runs["cem"][2].cost
    rows = []
    for name, (solver, default, timed, load_before) in runs.items():
        st = dataclasses.asdict(solver)
        size = (f"{st['starts']} starts, I={st['iterations']}" if "starts" in st
                else f"N={st['samples']}" + (f" K={st['elites']}" if name != "mppi" else "")
                + f" I={st['iterations']}")
        rows.append(Row(
            name=f"{SOLVERS[name].label} plan, reach ({size}; then {budget_s:g} s budget)",
            value=default.seconds, unit="s", ratio=timed.cost / cem_cost,
            ratio_of=f"cost within {budget_s:g} s / CEM's",
            note=f"cost {default.cost:.3f} at defaults ({default.evaluations} evaluations); within "
            f"{budget_s:g} s: {timed.cost:.3f} ({timed.iterations} it, {timed.evaluations} "
            f"evaluations, {timed.seconds:.2f} s); zero action {zero:.3f}; load {load_before:.2f}",
            extra={"solver": name, "settings": {k: v for k, v in st.items() if k != "device"},
                   "default_cost": default.cost, "default_iterations": default.iterations,
                   "default_evaluations": default.evaluations, "budget_s": budget_s,
                   "budget_cost": timed.cost, "budget_seconds": timed.seconds,
                   "budget_iterations": timed.iterations,
                   "budget_evaluations": timed.evaluations, "zero_action_cost": zero,
                   "load_before": load_before, "load_after": os.getloadavg()[0]},
        ))
    return rows


def run(ctx: Context) -> list[Row]:
    from lam_core.eval.planning import DRIVE_CEM, DRIVE_HORIZON, REACH_CEM
    from lam_core.planning import CEMConfig

    reach = CEMConfig(samples=60, elites=6, iterations=2, horizon=3) if ctx.quick else REACH_CEM
    subset = 8 if ctx.quick else 24
    reach_pipe = pixel_pipeline("reach")
    return [
        *plan_rows(ctx, reach_pipe, "reach", reach, reach.horizon, subset),
        *plan_rows(ctx, pixel_pipeline("drive"), "drive", DRIVE_CEM, DRIVE_HORIZON, subset),
        *solver_rows(ctx, reach_pipe, reach, budget_s=1.0 if ctx.quick else 2.0),
    ]
