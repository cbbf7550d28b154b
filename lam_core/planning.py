"""Planners over action sequences behind one interface (paper §7 and App. A, "Planning protocol";
docs/DESIGN.md#planners).

A planner knows nothing of world models: it minimises ``cost(actions (N, H, A)) -> (N,)``, a
batch of candidate sequences scored in one call (lower is better). It is tested on a toy
quadratic cost (``tests/test_planning.py``, ``tests/test_solvers.py``) and driven by the
world-model adapters of :mod:`lam_core.eval.planning`.

Solvers (:data:`SOLVERS`, :func:`build_solver`), each a :class:`Solver` with one method,
:meth:`Solver.plan`:

- ``cem``: the Cross-Entropy Method (Rubinstein, 1997) as in App. A: a Gaussian over action
  sequences, zero mean and unit standard deviation at the start; each iteration samples ``N``
  sequences, scores them in one batched call, and refits the Gaussian to the ``K`` lowest-cost ones
  (the elites). The paper's planner; :func:`cem` is its historical entry point.
- ``icem``: improved CEM (Pinneri et al., 2020): coloured noise along time (power spectrum
  ``1/f^β``), fewer samples each iteration (``N·γ^-i``, at least ``2K``), a fraction of the
  elites carried to the next iteration (and, through :class:`WarmStart`, to the next replanning
  step), the mean among the candidates, momentum on the refit.
- ``mppi``: model-predictive path integral control (Williams et al., 2017): perturbations of the
  mean averaged with softmax weights ``exp(−c/λ)``; here ``λ`` is relative to the spread of the
  costs and the standard deviation is refitted from the weights (as in TD-MPC), so one setting
  serves costs of any scale.
- ``gradient``: Adam on the action sequences themselves, through a differentiable cost (a
  differentiable rollout of the world model), projected on the bounds after each step; several
  starts in parallel.

Every solver takes a time budget (``budget_s``: iterate until the time is spent, so solvers can be
compared at equal wall time), a ``cancel()`` callable checked before each iteration, a
``progress(fraction, message)`` callback, and a warm start (:class:`WarmStart`): in model-predictive
control the next plan starts from the previous one shifted by the steps executed
(:meth:`PlanResult.next_warm_start`, :class:`Replanner`).
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
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


# ------------------------------------------------------------------------------- settings, results
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


# ---------------------------------------------------------------------------------------- solvers
class Solver(ABC):
    """A planner: :meth:`plan` minimises a batched cost over ``(H, A)`` action sequences.

    Subclasses are dataclasses of their settings (``iterations``, ``seed``, ``device`` and their
    own), registered in :data:`SOLVERS`; they implement ``_start`` (state of one plan), ``_step``
    (one iteration: the candidates scored, their costs, the indices of its elites, best first)
    and ``_warm`` (the final state as a :class:`WarmStart`).
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


@dataclass
class _Gaussian:
    mean: torch.Tensor
    std: torch.Tensor
    elites: torch.Tensor | None = None


@dataclass
class CEM(Solver):
    """The Cross-Entropy Method of App. A (module docstring).

    Each iteration: ``a ~ N(μ, σ²)`` of shape ``(N, H, A)`` (seeded), clipped to the bounds; the
    ``K`` lowest-cost sequences give ``μ ← mean(elites)``, ``σ ← max(std(elites), min_std)``.
    A warm start sets the first ``μ``; ``σ`` always starts at ``init_std``.
    """

    name: ClassVar[str] = "cem"
    label: ClassVar[str] = "CEM"
    samples: int = 300
    elites: int = 10
    iterations: int = 15
    init_std: float = 1.0
    min_std: float = 0.0
    seed: int = 0
    device: Any = None

    def __post_init__(self) -> None:
        if not 1 <= self.elites <= self.samples:
            raise ValueError(f"need 1 <= elites <= samples, got K={self.elites}, N={self.samples}")

    def _start(self, p: _Problem) -> _Gaussian:
        return _Gaussian(p.start_mean(), torch.full(p.shape, float(self.init_std)))

    def _step(self, p: _Problem, g: _Gaussian, it: int):
        noise = torch.randn((self.samples, *p.shape), generator=p.gen)
        actions = p.clip(g.mean + g.std * noise)
        costs = p.evaluate(actions)
        order = costs.argsort()[: self.elites]
        elites = actions[order]
        g.mean = elites.mean(0)
        g.std = elites.std(0, unbiased=False).clamp_min(self.min_std)
        return actions, costs, order

    def _warm(self, p: _Problem, g: _Gaussian) -> WarmStart:
        return WarmStart(g.mean)


def colored_noise(
    shape: tuple[int, int, int], beta: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Gaussian noise ``(N, H, A)``, unit variance, with power spectrum ``∝ 1/f^β`` along H.

    β = 0 is white noise; larger β gives smoother sequences (iCEM: β ≈ 2–4). The construction of
    the ``colorednoise`` package (Timmer & König, 1995): scaled Gaussian Fourier coefficients,
    the lowest frequency ``1/H``; normalised by the exact standard deviation of each output
    (so it is 1 at every step, DC term included).
    """
    n, h, a = shape
    if beta == 0 or h < 2:
        return torch.randn(shape, generator=generator)
    f = torch.fft.rfftfreq(h, dtype=torch.float64)
    f[0] = 1.0 / h
    scale = f ** (-beta / 2)
    # the variance of each output: 2s² for the real DC (and Nyquist) terms, 4s² for the others
    var = 4 * scale**2
    var[0] /= 2
    if h % 2 == 0:
        var[-1] /= 2
    sigma = math.sqrt(float(var.sum())) / h
    real = torch.randn((n, a, len(f)), generator=generator, dtype=torch.float64) * scale
    imag = torch.randn((n, a, len(f)), generator=generator, dtype=torch.float64) * scale
    if h % 2 == 0:
        imag[..., -1] = 0
        real[..., -1] *= math.sqrt(2)
    imag[..., 0] = 0
    real[..., 0] *= math.sqrt(2)
    y = torch.fft.irfft(torch.complex(real, imag), n=h) / sigma
    return y.transpose(1, 2).float().contiguous()


@dataclass
class ICEM(Solver):
    """Improved CEM (Pinneri et al., 2020, Alg. 1).

    Iteration ``i``: ``max(N·γ^-i, 2K)`` sequences ``clip(μ + σ·ε)`` with coloured noise ``ε``
    (exponent ``beta``) along time, plus the best ``keep_elites·K`` elites of the last iteration
    (at ``i = 0``: of the warm start, i.e. of the previous replanning step, shifted), plus ``μ``
    itself (the paper adds it at the last iteration; under a time budget any iteration may be the
    last). ``μ ← (1−α)·mean(elites) + α·μ``, likewise ``σ`` (floored at ``min_std``).
    """

    name: ClassVar[str] = "icem"
    label: ClassVar[str] = "iCEM"
    samples: int = 300
    elites: int = 10
    iterations: int = 15
    decay: float = 1.25
    keep_elites: float = 0.3
    beta: float = 2.0
    momentum: float = 0.1
    init_std: float = 0.5
    min_std: float = 0.0
    seed: int = 0
    device: Any = None

    def __post_init__(self) -> None:
        if not 1 <= self.elites <= self.samples:
            raise ValueError(f"need 1 <= elites <= samples, got K={self.elites}, N={self.samples}")
        if self.decay < 1 or not 0 <= self.keep_elites <= 1 or not 0 <= self.momentum < 1:
            raise ValueError(
                f"need decay >= 1, 0 <= keep_elites <= 1, 0 <= momentum < 1; got {self.decay}, "
                f"{self.keep_elites}, {self.momentum}"
            )

    def samples_at(self, it: int) -> int:
        """Sequences sampled at iteration ``it``: ``max(N·γ^-it, 2K)`` (never more than N)."""
        return min(self.samples, max(int(self.samples * self.decay**-it), 2 * self.elites))

    def _start(self, p: _Problem) -> _Gaussian:
        elites = None
        if p.warm is not None and p.warm.elites is not None and len(p.warm.elites):
            elites = p.clip(p.warm.elites.detach().float().cpu().reshape(-1, *p.shape))
        return _Gaussian(p.start_mean(), torch.full(p.shape, float(self.init_std)), elites)

    def _step(self, p: _Problem, g: _Gaussian, it: int):
        noise = colored_noise((self.samples_at(it), *p.shape), self.beta, p.gen)
        parts = [p.clip(g.mean + g.std * noise)]
        if g.elites is not None and self.keep_elites > 0:
            parts.append(g.elites[: max(1, round(self.keep_elites * len(g.elites)))])
        parts.append(p.clip(g.mean)[None])
        actions = torch.cat(parts)
        costs = p.evaluate(actions)
        order = costs.argsort()[: self.elites]
        elites = actions[order]
        a = self.momentum
        g.mean = (1 - a) * elites.mean(0) + a * g.mean
        g.std = ((1 - a) * elites.std(0, unbiased=False) + a * g.std).clamp_min(self.min_std)
        g.elites = elites
        return actions, costs, order

    def _warm(self, p: _Problem, g: _Gaussian) -> WarmStart:
        return WarmStart(g.mean, g.elites)


@dataclass
class MPPI(Solver):
    """Model-predictive path integral (Williams et al., 2017), the sampling update of MPC.

    Iteration: ``μ`` and ``N − 1`` sequences ``clip(μ + σ·ε)``, white ``ε``; weights
    ``w = softmax(−(c − min c) / λ)`` with ``λ = temperature · std(c)`` (relative, so the setting
    does not depend on the cost's scale); ``μ ← Σ w·a``; with ``adapt_std`` also
    ``σ ← max(√(Σ w·(a − μ)²), min_std)`` (TD-MPC's variant; off: σ stays at ``init_std``).
    ``elites`` only says how many of the lowest-cost samples the trace reports.
    """

    name: ClassVar[str] = "mppi"
    label: ClassVar[str] = "MPPI"
    samples: int = 300
    iterations: int = 15
    temperature: float = 0.3
    init_std: float = 0.5
    min_std: float = 0.05
    adapt_std: bool = True
    elites: int = 10
    seed: int = 0
    device: Any = None

    def __post_init__(self) -> None:
        if self.samples < 2 or self.temperature <= 0 or not 1 <= self.elites <= self.samples:
            raise ValueError(
                f"need samples >= 2, temperature > 0, 1 <= elites <= samples; got "
                f"{self.samples}, {self.temperature}, {self.elites}"
            )

    def _start(self, p: _Problem) -> _Gaussian:
        return _Gaussian(p.start_mean(), torch.full(p.shape, float(self.init_std)))

    def _step(self, p: _Problem, g: _Gaussian, it: int):
        noise = torch.randn((self.samples - 1, *p.shape), generator=p.gen)
        actions = torch.cat([p.clip(g.mean)[None], p.clip(g.mean + g.std * noise)])
        costs = p.evaluate(actions)
        excess = costs.double() - costs.min()
        lam = self.temperature * float(excess.std()) + 1e-12
        w = torch.softmax(-excess / lam, 0).float()[:, None, None]
        g.mean = (w * actions).sum(0)
        if self.adapt_std:
            g.std = (w * (actions - g.mean) ** 2).sum(0).sqrt().clamp_min(self.min_std)
        return actions, costs, costs.argsort()[: self.elites]

    def _warm(self, p: _Problem, g: _Gaussian) -> WarmStart:
        return WarmStart(g.mean)


@dataclass
class _Descent:
    x: torch.Tensor
    m: torch.Tensor
    v: torch.Tensor
    best: torch.Tensor | None = None
    best_cost: float = float("inf")


@dataclass
class GradientSolver(Solver):
    """Gradient descent on the action sequences through a differentiable cost.

    ``starts`` sequences are optimised in parallel: the first at the warm start's mean (zeros
    cold), the others at ``clip(mean + init_std·ε)``. Each iteration scores them with
    ``differentiable_cost`` (gradients taken with ``torch.autograd.grad`` towards the actions
    only: nothing accumulates in the model's parameters), takes one Adam step (``lr``) and clips
    them to the bounds (projected gradient). The cost must be differentiable
    (:func:`differentiable_cost_function`): a world-model adapter's ``differentiable_cost``.
    """

    name: ClassVar[str] = "gradient"
    label: ClassVar[str] = "gradient"
    starts: int = 16
    iterations: int = 30
    lr: float = 0.1
    init_std: float = 0.5
    seed: int = 0
    device: Any = None

    def __post_init__(self) -> None:
        if self.starts < 1 or self.lr <= 0:
            raise ValueError(f"need starts >= 1 and lr > 0, got {self.starts}, {self.lr}")

    def _cost_function(self, model: PlanningModel | CostFn) -> CostFn:
        return differentiable_cost_function(model)

    def _start(self, p: _Problem) -> _Descent:
        mean = p.start_mean()
        noise = torch.randn((self.starts - 1, *p.shape), generator=p.gen)
        x = torch.cat([mean[None], p.clip(mean + self.init_std * noise)]).to(p.device)
        return _Descent(x.requires_grad_(True), torch.zeros_like(x), torch.zeros_like(x))

    def _step(self, p: _Problem, d: _Descent, it: int):
        with torch.enable_grad():
            costs = p.cost(d.x).float().reshape(-1)
            if costs.shape[0] != len(d.x):
                raise ValueError(f"cost returned {tuple(costs.shape)} for {len(d.x)} candidates")
            if not costs.requires_grad:
                raise ValueError(
                    "the gradient solver needs a differentiable cost: give an object with "
                    "differentiable_cost(actions), or a cost function that works under autograd"
                )
            (grad,) = torch.autograd.grad(costs.sum(), d.x)
        candidates = d.x.detach().cpu().clone()
        costs = costs.detach().cpu()
        with torch.no_grad():  # Adam (β = 0.9, 0.999), by hand: torch.optim's first step is slow
            b1, b2, t = 0.9, 0.999, it + 1
            d.m.mul_(b1).add_(grad, alpha=1 - b1)
            d.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            step = (d.m / (1 - b1**t)) / ((d.v / (1 - b2**t)).sqrt() + 1e-8)
            d.x.copy_(p.clip(d.x - self.lr * step))
        order = costs.argsort()
        if costs[order[0]] < d.best_cost:
            d.best, d.best_cost = candidates[order[0]], float(costs[order[0]])
        return candidates, costs, order

    def _warm(self, p: _Problem, d: _Descent) -> WarmStart:
        x = d.x.detach().cpu()
        mean = d.best if d.best is not None else x[0]
        return WarmStart(mean.clone(), x.clone())


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
