"""The planner interface (docs/DESIGN.md#planners): :class:`Solver`, what it minimises and what it
returns; the solvers themselves are in :mod:`lam_core.solvers`, their registry and the historical
entry point :func:`~lam_core.planning.cem` in :mod:`lam_core.planning`.

A planner knows nothing of world models: it minimises ``cost(actions (N, H, A)) -> (N,)``, a
batch of candidate sequences scored in one call (lower is better), or the ``cost`` of a
:class:`PlanningModel`.

Every solver takes a time budget (``budget_s``: iterate until the time is spent, so solvers can be
compared at equal wall time), a ``cancel()`` callable checked before each iteration, a
``progress(fraction, message)`` callback, and a warm start (:class:`WarmStart`): in model-predictive
control the next plan starts from the previous one shifted by the steps executed
(:meth:`PlanResult.next_warm_start`, :class:`~lam_core.planning.Replanner`).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch

Progress = Callable[[float, str], None]
CostFn = Callable[[torch.Tensor], torch.Tensor]
Cancel = Callable[[], bool]
Bounds = tuple[float | None, float | None]
MAX_ITERATIONS = 100_000  # a budget without an end in sight still stops


@runtime_checkable
class PlanningModel(Protocol):
    """What the planner needs: the cost of a batch of action sequences.

    ``cost(actions)``: ``(N, H, A)`` float32 on any device → ``(N,)`` costs (lower is better).
    An adapter may add ``differentiable_cost(actions)``, the same cost under autograd, for the
    ``gradient`` solver.
    """

    def cost(self, actions: torch.Tensor) -> torch.Tensor: ...


def cost_function(model: PlanningModel | CostFn) -> CostFn:
    """``model.cost`` for a :class:`PlanningModel`, else the callable itself."""
    fn = getattr(model, "cost", model)
    if not callable(fn):
        raise TypeError(f"need a cost function or an object with .cost, got {type(model)}")
    return fn


def differentiable_cost_function(model: PlanningModel | CostFn) -> CostFn:
    """``model.differentiable_cost`` where the model has one, else its cost (which then must work
    under autograd)."""
    return getattr(model, "differentiable_cost", None) or cost_function(model)


# ----------------------------------------------------------------------------- warm starts, results
@dataclass
class WarmStart:
    """Where a plan starts: the mean ``(H, A)`` of its first distribution (the first start of the
    gradient solver) and, for iCEM, elites ``(K, H, A)`` (best first) added to its first samples.

    In model-predictive control, the plan of the next step is the last one shifted by the steps
    executed (:meth:`shift`); a different horizon is met by :meth:`fit`.
    """

    mean: torch.Tensor
    elites: torch.Tensor | None = None

    @classmethod
    def of(cls, value: WarmStart | PlanResult | torch.Tensor | None) -> WarmStart | None:
        """A warm start from a :class:`WarmStart`, a :class:`PlanResult` (its ``warm_state``, not
        shifted) or a mean ``(H, A)``."""
        if value is None or isinstance(value, WarmStart):
            return value
        if isinstance(value, PlanResult):
            return value.warm_state
        return cls(torch.as_tensor(value, dtype=torch.float32))

    def shift(self, steps: int = 1) -> WarmStart:
        """Drop the first ``steps`` actions (executed) and repeat the last one at the end, so the
        horizon stays (a repeated-action plan, H = 1, stays the same)."""

        def shifted(x: torch.Tensor | None) -> torch.Tensor | None:
            if x is None or steps <= 0:
                return x
            h = x.shape[-2]
            kept = x[..., min(steps, h - 1) :, :]
            pad = kept[..., -1:, :].expand(*kept.shape[:-2], h - kept.shape[-2], kept.shape[-1])
            return torch.cat([kept, pad], dim=-2)

        return WarmStart(shifted(self.mean), shifted(self.elites))

    def fit(self, horizon: int) -> WarmStart:
        """The same start over ``horizon`` steps: cut at the end, or the last action repeated."""

        def fitted(x: torch.Tensor | None) -> torch.Tensor | None:
            if x is None or x.shape[-2] == horizon:
                return x
            if x.shape[-2] > horizon:
                return x[..., :horizon, :]
            pad = x[..., -1:, :].expand(*x.shape[:-2], horizon - x.shape[-2], x.shape[-1])
            return torch.cat([x, pad], dim=-2)

        return WarmStart(fitted(self.mean), fitted(self.elites))


@dataclass
class PlanResult:
    """Output of :meth:`Solver.plan`.

    Attributes:
        actions: ``(H, A)`` lowest-cost sequence scored over all iterations.
        cost: its cost (``inf`` when cancelled before the first iteration).
        iterations: iterations run.
        evaluations: candidate sequences scored in total.
        seconds: wall time of the plan.
        warm_state: the solver's final state (distribution mean, elites) as a :class:`WarmStart`;
            :meth:`next_warm_start` shifts it for the next replanning step.
        best_costs: ``(I,)`` lowest cost scored at each iteration.
        elite_costs: ``(I,)`` mean cost of each iteration's elites (gradient: of its starts; MPPI:
            of its ``elites`` lowest-cost samples).
        elites: ``(I, K, H, A)`` those sequences.
        stopped: ``"iterations"``, ``"budget"`` or ``"cancelled"``.
        solver: the solver's name.
    """

    actions: torch.Tensor
    cost: float
    iterations: int
    evaluations: int
    seconds: float
    warm_state: WarmStart
    best_costs: torch.Tensor
    elite_costs: torch.Tensor
    elites: torch.Tensor
    stopped: str = "iterations"
    solver: str = ""

    def next_warm_start(self, steps: int = 1) -> WarmStart:
        """The warm start of the next replanning step after ``steps`` actions were executed."""
        return self.warm_state.shift(steps)


@dataclass
class _Problem:
    """One call of :meth:`Solver.plan`: the cost, the shape, the bounds, the seeded generator."""

    cost: CostFn
    horizon: int
    action_dim: int
    low: float | None
    high: float | None
    gen: torch.Generator
    device: torch.device
    warm: WarmStart | None

    @property
    def shape(self) -> tuple[int, int]:
        return (self.horizon, self.action_dim)

    def clip(self, actions: torch.Tensor) -> torch.Tensor:
        if self.low is None and self.high is None:
            return actions
        return actions.clamp(self.low, self.high)

    def start_mean(self) -> torch.Tensor:
        """The warm start's mean (clipped), else zeros; ``(H, A)`` on the CPU."""
        if self.warm is None:
            return torch.zeros(self.shape)
        return self.clip(self.warm.mean.detach().float().cpu().reshape(self.shape).clone())

    @torch.no_grad()
    def evaluate(self, actions: torch.Tensor) -> torch.Tensor:
        """Costs ``(M,)`` (CPU, float32) of candidates ``(M, H, A)``, in one call."""
        costs = self.cost(actions.to(self.device)).float().cpu().reshape(-1)
        if costs.shape[0] != actions.shape[0]:
            raise ValueError(f"cost returned {tuple(costs.shape)} for {len(actions)} candidates")
        return costs


# ------------------------------------------------------------------------------------ the interface
class Solver(ABC):
    """A planner: :meth:`plan` minimises a batched cost over ``(H, A)`` action sequences.

    Subclasses (:mod:`lam_core.solvers`) are dataclasses of their settings (``iterations``,
    ``seed``, ``device`` and their own), registered in :data:`~lam_core.planning.SOLVERS`; they
    implement ``_start`` (state of one plan), ``_step`` (one iteration: the candidates scored,
    their costs, the indices of its elites, best first) and ``_warm`` (the final state as a
    :class:`WarmStart`).
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    iterations: int
    seed: int
    device: Any

    def plan(
        self,
        cost_fn: PlanningModel | CostFn,
        horizon: int,
        action_dim: int,
        bounds: Bounds = (-1.0, 1.0),
        budget_s: float | None = None,
        warm_start: WarmStart | PlanResult | torch.Tensor | None = None,
        progress: Progress | None = None,
        cancel: Cancel | None = None,
        seed: int | None = None,
    ) -> PlanResult:
        """Minimise ``cost_fn`` over ``(horizon, action_dim)`` sequences within ``bounds``.

        Args:
            cost_fn: ``(N, H, A) -> (N,)``, or a :class:`PlanningModel` (its ``cost``; the
                gradient solver uses its ``differentiable_cost`` where it has one).
            horizon, action_dim: H and A.
            bounds: ``(low, high)``, each a float or None (unbounded); candidates are clipped.
            budget_s: wall-time budget in seconds: iterate until it is spent (the ``iterations``
                setting is then ignored). An iteration is not started when the last one would not
                fit in what is left; the first always runs. None: ``iterations`` iterations.
            warm_start: a :class:`WarmStart`, a mean ``(H, A)`` or a previous :class:`PlanResult`
                (its final state as it is; :meth:`PlanResult.next_warm_start` shifts it first).
            progress: ``progress(fraction, message)`` after each iteration.
            cancel: checked before each iteration; True stops the plan (the best so far is kept).
            seed: seeds the sampling (default: the solver's ``seed``); a CPU generator, so plans
                are the same on any device.

        Returns:
            A :class:`PlanResult`.
        """
        low, high = bounds
        if low is not None and high is not None and not low < high:
            raise ValueError(f"need low < high, got bounds {bounds}")
        if horizon < 1 or action_dim < 1:
            raise ValueError(f"need horizon >= 1 and action_dim >= 1, got {horizon}, {action_dim}")
        if budget_s is not None and budget_s < 0:
            raise ValueError(f"budget_s must be >= 0, got {budget_s}")
        warm = WarmStart.of(warm_start)
        if warm is not None:
            if warm.mean.shape[-1] != action_dim:
                raise ValueError(
                    f"warm start has {warm.mean.shape[-1]} action dims, need {action_dim}"
                )
            warm = warm.fit(horizon)
        t0 = time.perf_counter()
        p = _Problem(
            cost=self._cost_function(cost_fn),
            horizon=horizon,
            action_dim=action_dim,
            low=low,
            high=high,
            gen=torch.Generator().manual_seed(self.seed if seed is None else seed),
            device=torch.device(self.device or "cpu"),
            warm=warm,
        )
        state = self._start(p)
        best, best_cost = None, float("inf")
        best_costs, elite_costs, elites_seen = [], [], []
        evaluations, it, last, stopped = 0, 0, 0.0, "iterations"
        while True:
            elapsed = time.perf_counter() - t0
            if budget_s is None:
                if it >= self.iterations:
                    break
            elif it >= MAX_ITERATIONS:
                break
            elif it >= 1 and elapsed + last > budget_s:
                stopped = "budget"
                break
            if cancel is not None and cancel():
                stopped = "cancelled"
                break
            t_it = time.perf_counter()
            candidates, costs, top = self._step(p, state, it)
            last = time.perf_counter() - t_it
            if costs[top[0]] < best_cost:
                best, best_cost = candidates[top[0]].clone(), float(costs[top[0]])
            best_costs.append(float(costs[top[0]]))
            elite_costs.append(float(costs[top].mean()))
            elites_seen.append(candidates[top])
            evaluations += len(candidates)
            it += 1
            if progress is not None:
                if budget_s is None:
                    frac = it / self.iterations
                    msg = f"{self.label} iteration {it}/{self.iterations}"
                else:
                    spent = time.perf_counter() - t0
                    frac = min(1.0, spent / budget_s) if budget_s > 0 else 1.0
                    msg = f"{self.label} iteration {it}, {spent:.1f} of {budget_s:g} s"
                progress(frac, msg)
        warm_state = self._warm(p, state)
        if best is None:  # cancelled at once: the start, unscored
            best = warm_state.mean.clone()
        return PlanResult(
            actions=best,
            cost=best_cost,
            iterations=it,
            evaluations=evaluations,
            seconds=time.perf_counter() - t0,
            warm_state=warm_state,
            best_costs=torch.tensor(best_costs),
            elite_costs=torch.tensor(elite_costs),
            elites=torch.stack(elites_seen) if elites_seen else torch.empty(0, 0, *p.shape),
            stopped=stopped,
            solver=self.name,
        )

    def _cost_function(self, model: PlanningModel | CostFn) -> CostFn:
        return cost_function(model)

    @abstractmethod
    def _start(self, p: _Problem) -> Any: ...

    @abstractmethod
    def _step(
        self, p: _Problem, state: Any, it: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...

    @abstractmethod
    def _warm(self, p: _Problem, state: Any) -> WarmStart: ...

