"""Planners over action sequences behind one interface (paper §7 and App. A, "Planning protocol";
docs/DESIGN.md#planners): the registry of solvers, model-predictive replanning and the protocols'
entry point :func:`cem`.

A planner knows nothing of world models: it minimises ``cost(actions (N, H, A)) -> (N,)``, a
batch of candidate sequences scored in one call (lower is better). It is tested on a toy
quadratic cost (``tests/test_planning.py``, ``tests/test_solvers.py``) and driven by the
world-model adapters of :mod:`lam_core.eval.planning`.

- :mod:`lam_core.solver`: the interface, :class:`Solver` and its :meth:`Solver.plan` (time
  budget, cancel, progress, warm start), :class:`WarmStart`, :class:`PlanResult`.
- :mod:`lam_core.solvers`: the solvers, ``cem`` (:class:`CEM`, the paper's), ``icem``
  (:class:`ICEM`), ``mppi`` (:class:`MPPI`) and ``gradient`` (:class:`GradientSolver`).
- here: :data:`SOLVERS` and :func:`build_solver` (by name), :class:`CEMConfig` (the protocols'
  settings) and :func:`solver_from_config`, :class:`Replanner` (warm starts from plan to plan),
  :func:`cem` (the historical entry point) and :class:`CEMResult`.

Every name of the two modules above is importable from here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch

from lam_core.solver import (
    MAX_ITERATIONS,
    Bounds,
    Cancel,
    CostFn,
    PlanningModel,
    PlanResult,
    Progress,
    Solver,
    WarmStart,
    cost_function,
    differentiable_cost_function,
)
from lam_core.solvers import CEM, ICEM, MPPI, GradientSolver, colored_noise

__all__ = [
    "CEM",
    "ICEM",
    "MAX_ITERATIONS",
    "MPPI",
    "SOLVERS",
    "Bounds",
    "CEMConfig",
    "CEMResult",
    "Cancel",
    "CostFn",
    "GradientSolver",
    "PlanResult",
    "PlanningModel",
    "Progress",
    "Replanner",
    "Solver",
    "WarmStart",
    "build_solver",
    "cem",
    "colored_noise",
    "cost_function",
    "differentiable_cost_function",
    "solver_from_config",
    "solver_settings",
]


# ----------------------------------------------------------------------------------------- settings
@dataclass
class CEMConfig:
    """CEM settings. Defaults: the paper's DROID protocol (App. A: N=300, K=10, I=15, H=3).

    The protocols of :mod:`lam_core.eval.planning` keep their horizon and bounds here; any solver
    runs under them (:func:`solver_from_config` passes N, K and I to the solvers that have them).

    Attributes:
        samples: N candidate sequences per iteration.
        elites: K sequences the Gaussian is refitted to.
        iterations: I refits.
        horizon: H actions per sequence.
        init_std: standard deviation of the first Gaussian (mean 0).
        min_std: floor on the refitted standard deviation (keeps some exploration).
        low, high: action bounds; samples are clipped to them (None: unbounded).
    """

    samples: int = 300
    elites: int = 10
    iterations: int = 15
    horizon: int = 3
    init_std: float = 1.0
    min_std: float = 0.0
    low: float | None = -1.0
    high: float | None = 1.0


# ------------------------------------------------------------------------------------- the registry
SOLVERS: dict[str, type[Solver]] = {
    "cem": CEM,
    "icem": ICEM,
    "mppi": MPPI,
    "gradient": GradientSolver,
}


def solver_settings(name: str) -> dict[str, Any]:
    """The settings of solver ``name`` and their defaults."""
    cls = _solver_class(name)
    return {f.name: f.default for f in fields(cls)}


def _solver_class(name: str) -> type[Solver]:
    if name not in SOLVERS:
        raise ValueError(f"unknown solver {name!r}; choose from {sorted(SOLVERS)}")
    return SOLVERS[name]


def build_solver(name: str, **settings: Any) -> Solver:
    """Solver ``name`` of :data:`SOLVERS` with ``settings`` (unknown ones are an error)."""
    cls = _solver_class(name)
    known = {f.name for f in fields(cls)}
    unknown = set(settings) - known
    if unknown:
        raise ValueError(f"{name} has no setting(s) {sorted(unknown)}; it has {sorted(known)}")
    return cls(**settings)


def solver_from_config(name: str | Solver, cfg: CEMConfig, **settings: Any) -> Solver:
    """Solver ``name`` with the protocol's N, K, I (``cfg.samples``, ``elites``, ``iterations``)
    where it has such settings, then ``settings`` (``seed``, ``device`` …, ignored where it has
    none). The ``cem`` solver also takes ``init_std`` and ``min_std`` from ``cfg``, so it is the
    paper's CEM. A :class:`Solver` is returned as it is."""
    if isinstance(name, Solver):
        return name
    cls = _solver_class(name)
    known = {f.name for f in fields(cls)}
    shared = ("samples", "elites", "iterations") + (("init_std", "min_std") if cls is CEM else ())
    values = {k: getattr(cfg, k) for k in shared if k in known}
    values.update({k: v for k, v in settings.items() if k in known})
    return cls(**values)


class Replanner:
    """Model-predictive control with warm starts: each call plans, and the next one starts from
    that plan shifted by the actions executed in between (iCEM: with its elites).

    Args:
        solver: a :class:`Solver` or a name of :data:`SOLVERS`.
        action_dim: A.
        bounds: ``(low, high)``.
        budget_s: wall-time budget of each plan (None: the solver's iterations).
        executed: actions executed between two plans (the shift).
    """

    def __init__(
        self,
        solver: Solver | str,
        action_dim: int,
        bounds: Bounds = (-1.0, 1.0),
        budget_s: float | None = None,
        executed: int = 1,
    ) -> None:
        self.solver = build_solver(solver) if isinstance(solver, str) else solver
        self.action_dim, self.bounds, self.budget_s, self.executed = (
            action_dim, bounds, budget_s, executed
        )
        self.warm: WarmStart | None = None
        self.plans: list[PlanResult] = []

    def __call__(self, cost_fn: PlanningModel | CostFn, horizon: int, **kw: Any) -> PlanResult:
        """Plan ``horizon`` steps from the warm start (a horizon shorter than the last plan's
        keeps its first actions); ``kw`` goes to :meth:`Solver.plan` (``progress``, ``cancel``,
        ``seed``)."""
        kw.setdefault("seed", self.solver.seed + len(self.plans))
        res = self.solver.plan(
            cost_fn, horizon, self.action_dim, self.bounds, budget_s=self.budget_s,
            warm_start=self.warm, **kw,
        )
        self.plans.append(res)
        self.warm = res.next_warm_start(self.executed)
        return res

    def reset(self) -> None:
        """Forget the warm start (a new episode)."""
        self.warm, self.plans = None, []


# ------------------------------------------------------------------------ the historical entry
@dataclass
class CEMResult:
    """Output of :func:`cem` (any solver, CEM's names).

    Attributes:
        plan: ``(H, A)`` lowest-cost sequence seen over all iterations (App. A: "select ... the
            best sequence").
        plan_cost: its cost.
        mean: ``(H, A)`` mean of the final Gaussian (gradient: the best sequence).
        best_costs: ``(I,)`` lowest cost sampled at each iteration.
        elite_costs: ``(I,)`` mean cost of each iteration's elites.
        elites: ``(I, K, H, A)`` each iteration's elites.
        evaluations: candidate sequences scored in total (``N · I`` for CEM).
        solver: the solver that planned; ``iterations``, ``seconds``, ``stopped``: as in
            :class:`PlanResult`; ``result``: the :class:`PlanResult` itself (its warm state).
    """

    plan: torch.Tensor
    plan_cost: float
    mean: torch.Tensor
    best_costs: torch.Tensor
    elite_costs: torch.Tensor
    elites: torch.Tensor
    evaluations: int
    solver: str = "cem"
    iterations: int = 0
    seconds: float = 0.0
    stopped: str = "iterations"
    result: PlanResult | None = field(default=None, repr=False)

    @classmethod
    def of(cls, res: PlanResult) -> CEMResult:
        return cls(
            plan=res.actions, plan_cost=res.cost, mean=res.warm_state.mean,
            best_costs=res.best_costs, elite_costs=res.elite_costs, elites=res.elites,
            evaluations=res.evaluations, solver=res.solver, iterations=res.iterations,
            seconds=res.seconds, stopped=res.stopped, result=res,
        )


def cem(
    model: PlanningModel | CostFn,
    action_dim: int,
    cfg: CEMConfig | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: Progress | None = None,
    *,
    solver: str | Solver | None = None,
    budget_s: float | None = None,
    cancel: Cancel | None = None,
    warm_start: WarmStart | PlanResult | torch.Tensor | None = None,
) -> CEMResult:
    """Minimise ``model.cost`` over action sequences; CEM by default (the studio's Plan button).

    CEM's steps (unchanged, bit for bit, by the solver interface):

    1. ``μ = 0``, ``σ = init_std``, both ``(H, A)``.
    2. For each of ``I`` iterations: sample ``a ~ N(μ, σ²)`` of shape ``(N, H, A)`` (seeded),
       clip to ``[low, high]``; ``c = model.cost(a)`` ``(N,)`` in one batched call; keep the ``K``
       lowest-cost sequences ``(K, H, A)``; ``μ ← mean(elites)``, ``σ ← max(std(elites),
       min_std)``; remember the best sequence seen so far.
    3. Return the best sequence (and the final ``μ``, costs per iteration, elites).

    Args:
        model: anything with ``cost((N, H, A)) -> (N,)`` (or that function).
        action_dim: A.
        cfg: N, K, I, H, initial std, bounds.
        seed: seeds the sampling (a CPU generator, so plans are the same on any device).
        device: where the candidate tensors live (default: CPU).
        progress: ``progress(fraction, message)`` after each iteration.
        solver: another solver of :data:`SOLVERS` by name (``"icem"``, ``"mppi"``,
            ``"gradient"``; N, K, I from ``cfg`` where it has them, :func:`solver_from_config`)
            or a :class:`Solver`; None: CEM.
        budget_s: wall-time budget of the plan (:meth:`Solver.plan`); None: ``cfg.iterations``.
        cancel: ``cancel() -> bool``, checked before each iteration.
        warm_start: where the plan starts (:class:`WarmStart`).

    Returns:
        A :class:`CEMResult`.
    """
    cfg = cfg or CEMConfig()
    s = solver_from_config(solver or "cem", cfg, seed=seed, device=device)
    if isinstance(solver, Solver) and device is not None:
        s = replace(s, device=device)
    res = s.plan(
        model, cfg.horizon, action_dim, (cfg.low, cfg.high), budget_s=budget_s,
        warm_start=warm_start, progress=progress, cancel=cancel, seed=seed,
    )
    return CEMResult.of(res)
