"""Planning solvers compared at equal wall time per plan (docs/DESIGN.md#planners): the protocols of
:mod:`lam_core.eval.planning_protocols` once per solver and time budget on the same episodes
(:func:`compare_solvers`), a Markdown table of the results (:func:`solver_table`), and the command
line ``python -m lam_core.eval.planning`` (or ``python -m lam_core.eval.solvers``; ``--help``).
Every name is also importable from :mod:`lam_core.eval.planning`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from collections.abc import Sequence

import numpy as np
import torch

from lam_core.eval.common import Progress, sub_progress, to_jsonable
from lam_core.eval.planning_protocols import (
    DRIVE_CEM,
    REACH_CEM,
    PlanningResult,
    drive_protocol,
    reach_protocol,
)
from lam_core.pipeline import LatentActionPipeline
from lam_core.planning import SOLVERS, CEMConfig, solver_from_config, solver_settings

PROTOCOLS = {"reach": (reach_protocol, REACH_CEM), "drive": (drive_protocol, DRIVE_CEM)}


def compare_solvers(
    pipeline: LatentActionPipeline,
    world: str,
    solvers: Sequence[str] = tuple(SOLVERS),
    budgets: Sequence[float | None] = (1.0, 3.0),
    episodes: int = 8,
    seed: int = 0,
    cfg: CEMConfig | None = None,
    settings: dict[str, dict] | None = None,
    progress: Progress | None = None,
) -> list[PlanningResult]:
    """The protocol of ``world`` (``reach`` or ``drive``) once per solver and budget, on the same
    episodes: each solver gets the same wall time per plan (``budget_s``; None: its iterations).
    The zero-action baseline is in every result's ``zero_*`` metrics.

    Args:
        cfg: the protocol's settings (default: the paper's, :data:`REACH_CEM` / :data:`DRIVE_CEM`);
            its N, K, I go to the solvers that have them.
        settings: ``{solver: {setting: value}}`` on top (e.g. ``{"gradient": {"starts": 4}}``).
    """
    protocol, default = PROTOCOLS[world]
    cfg = cfg or default
    settings = settings or {}
    for name, given in settings.items():
        unknown = set(given) - set(solver_settings(name))
        if unknown:
            raise ValueError(f"{name} has no setting(s) {sorted(unknown)}")
    runs = [(s, b) for b in budgets for s in solvers]
    out = []
    for i, (name, budget) in enumerate(runs):
        solver = solver_from_config(name, cfg, device=pipeline.device, **settings.get(name, {}))
        out.append(protocol(
            pipeline, episodes=episodes, cfg=cfg, seed=seed, solver=solver, budget_s=budget,
            progress=sub_progress(progress, i / len(runs), (i + 1) / len(runs)),
        ))
    return out


def _settings_note(r: PlanningResult) -> str:
    """The settings that size a solver's iteration: N, K (CEM, iCEM, MPPI) or starts."""
    st = r.solver_settings
    if "starts" in st:
        return f"{st['starts']} starts, lr {st['lr']:g}"
    return f"N={st['samples']}" + (f" K={st['elites']}" if r.solver != "mppi" else "")


def solver_table(results: Sequence[PlanningResult]) -> str:
    """A Markdown table of :func:`compare_solvers`' results: per solver and budget, the wall time
    of a plan, iterations and evaluations per plan, the model's cost of the plan (and of the zero
    action), the world's metrics of the plan (and of the zero action)."""
    head = (
        "| world | solver | settings | budget | s / plan | iterations | evaluations | "
        "model cost (zero action) | metric | zero action |\n"
        "|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in results:
        m = r.metrics
        if r.world == "drive":
            metric = f"ATE {m['ate']:.2f} · RPE {m['rpe']:.2f} px"
            zero = f"ATE {m['zero_ate']:.2f} · RPE {m['zero_rpe']:.2f} px"
        else:
            final = "final_px" in m
            metric = f"Δ {m['delta']:.3f}" + (f" · {m['final_px']:.1f} px" if final else "")
            zero = f"Δ {m['zero_delta']:.3f}" + (f" · {m['zero_final_px']:.1f} px" if final else "")
        budget = "—" if r.budget_s is None else f"{r.budget_s:g} s"
        lines.append(
            f"| {r.world} | {SOLVERS[r.solver].label} | {_settings_note(r)} | {budget} | "
            f"{r.seconds_per_plan:.2f} | {r.iterations.mean():.1f} | {r.evaluations.mean():.0f} | "
            f"{np.mean(r.plan_costs):.3f} ({np.mean(r.zero_plan_costs):.3f}) | {metric} | {zero} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m lam_core.eval.planning`` (or ``-m lam_core.eval.solvers``): solvers at equal wall
    time on reach and drive."""
    ap = argparse.ArgumentParser(description="Planning solvers at equal wall time per plan.")
    ap.add_argument(
        "--reach",
        default="assets/checkpoints/controller-reach",
        help="pipeline of the reach world ('' to skip)",
    )
    ap.add_argument(
        "--drive",
        default="assets/checkpoints/controller-drive",
        help="pipeline of the drive world ('' to skip)",
    )
    ap.add_argument("--solvers", nargs="+", default=list(SOLVERS), choices=list(SOLVERS))
    ap.add_argument(
        "--budgets",
        nargs="+",
        type=float,
        default=[1.0, 3.0],
        help="seconds per plan (0 or less: the solver's own iterations)",
    )
    ap.add_argument("--samples", type=int, help="N of the sampling solvers (default: paper's)")
    ap.add_argument("--elites", type=int, help="K of CEM and iCEM (default: the paper's)")
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="SOLVER.KEY=VALUE",
        help="a solver's setting, e.g. gradient.starts=4",
    )
    ap.add_argument("--episodes", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    budgets = [b if b > 0 else None for b in args.budgets]
    settings: dict[str, dict] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        name, _, setting = key.partition(".")
        settings.setdefault(name, {})[setting] = json.loads(value)
    sizes = {k: v for k, v in (("samples", args.samples), ("elites", args.elites)) if v}
    results, t0 = [], time.perf_counter()
    print(f"load at start {os.getloadavg()}", flush=True)
    for world, path in (("reach", args.reach), ("drive", args.drive)):
        if not path:
            continue
        pipe = LatentActionPipeline.from_pretrained(path)
        cfg = dataclasses.replace(PROTOCOLS[world][1], **sizes)
        got = compare_solvers(pipe, world, args.solvers, budgets, args.episodes, args.seed, cfg,
                              settings)
        for r in got:
            print(f"{world} {r.solver} budget {r.budget_s}: {r.metrics} "
                  f"({r.seconds_per_plan:.2f} s/plan)", flush=True)
        results += got
    print(f"load at end {os.getloadavg()}; {time.perf_counter() - t0:.0f} s")
    print(solver_table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(to_jsonable(results), f, indent=1)


if __name__ == "__main__":
    main()
