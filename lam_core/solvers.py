"""The planning solvers (paper §7 and App. A, "Planning protocol"; docs/DESIGN.md#planners), each a
:class:`~lam_core.solver.Solver` (the interface of :mod:`lam_core.solver`), registered by name in
:data:`lam_core.planning.SOLVERS`:

- ``cem`` (:class:`CEM`): the Cross-Entropy Method (Rubinstein, 1997) as in App. A: a Gaussian over
  action sequences, zero mean and unit standard deviation at the start; each iteration samples
  ``N`` sequences, scores them in one batched call, and refits the Gaussian to the ``K``
  lowest-cost ones (the elites). The paper's planner; :func:`lam_core.planning.cem` is its
  historical entry point.
- ``icem`` (:class:`ICEM`): improved CEM (Pinneri et al., 2020): coloured noise along time (power
  spectrum ``1/f^β``, :func:`colored_noise`), fewer samples each iteration (``N·γ^-i``, at least
  ``2K``), a fraction of the elites carried to the next iteration (and, through
  :class:`~lam_core.solver.WarmStart`, to the next replanning step), the mean among the
  candidates, momentum on the refit.
- ``mppi`` (:class:`MPPI`): model-predictive path integral control (Williams et al., 2017):
  perturbations of the mean averaged with softmax weights ``exp(−c/λ)``; here ``λ`` is relative to
  the spread of the costs and the standard deviation is refitted from the weights (as in TD-MPC),
  so one setting serves costs of any scale.
- ``gradient`` (:class:`GradientSolver`): Adam on the action sequences themselves, through a
  differentiable cost (a differentiable rollout of the world model), projected on the bounds after
  each step; several starts in parallel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from lam_core.solver import (
    CostFn,
    PlanningModel,
    Solver,
    WarmStart,
    _Problem,
    differentiable_cost_function,
)


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
