"""Cross-Entropy Method planner behind a small protocol (paper §7 and App. A, "Planning protocol").

The planner knows nothing of world models: anything with ``cost(actions) -> costs`` can be
planned with, so it is tested on a toy quadratic cost (``tests/test_planning.py``) and driven by
the world-model adapters of :mod:`lam_core.eval.planning`.

CEM (Rubinstein, 1997), as in App. A: a Gaussian over action sequences, zero mean and unit
standard deviation at the start; each iteration samples ``N`` sequences, scores all of them in one
batched call, and refits the Gaussian to the ``K`` lowest-cost ones (the elites).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

Progress = Callable[[float, str], None]


@runtime_checkable
class PlanningModel(Protocol):
    """What the planner needs: the cost of a batch of action sequences.

    ``cost(actions)``: ``(N, H, A)`` float32 on any device → ``(N,)`` costs (lower is better).
    """

    def cost(self, actions: torch.Tensor) -> torch.Tensor: ...


@dataclass
class CEMConfig:
    """CEM settings. Defaults: the paper's DROID protocol (App. A: N=300, K=10, I=15, H=3).

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
class CEMResult:
    """Output of :func:`cem`.

    Attributes:
        plan: ``(H, A)`` lowest-cost sequence seen over all iterations (App. A: "select ... the
            best sequence").
        plan_cost: its cost.
        mean: ``(H, A)`` mean of the final Gaussian.
        best_costs: ``(I,)`` lowest cost sampled at each iteration.
        elite_costs: ``(I,)`` mean cost of each iteration's elites.
        elites: ``(I, K, H, A)`` each iteration's elites.
        evaluations: candidate sequences scored in total (``N · I``).
    """

    plan: torch.Tensor
    plan_cost: float
    mean: torch.Tensor
    best_costs: torch.Tensor
    elite_costs: torch.Tensor
    elites: torch.Tensor
    evaluations: int


@torch.no_grad()
def cem(
    model: PlanningModel,
    action_dim: int,
    cfg: CEMConfig | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: Progress | None = None,
) -> CEMResult:
    """Minimise ``model.cost`` over action sequences with the Cross-Entropy Method.

    Steps:

    1. ``μ = 0``, ``σ = init_std``, both ``(H, A)``.
    2. For each of ``I`` iterations: sample ``a ~ N(μ, σ²)`` of shape ``(N, H, A)`` (seeded),
       clip to ``[low, high]``; ``c = model.cost(a)`` ``(N,)`` in one batched call; keep the ``K``
       lowest-cost sequences ``(K, H, A)``; ``μ ← mean(elites)``, ``σ ← max(std(elites),
       min_std)``; remember the best sequence seen so far.
    3. Return the best sequence (and the final ``μ``, costs per iteration, elites).

    Args:
        model: anything with ``cost((N, H, A)) -> (N,)``.
        action_dim: A.
        cfg: N, K, I, H, initial std, bounds.
        seed: seeds the sampling (a CPU generator, so plans are the same on any device).
        device: where the candidate tensors live (default: CPU).
        progress: ``progress(fraction, message)`` after each iteration.

    Returns:
        A :class:`CEMResult`.
    """
    cfg = cfg or CEMConfig()
    if not 1 <= cfg.elites <= cfg.samples:
        raise ValueError(f"need 1 <= elites <= samples, got K={cfg.elites}, N={cfg.samples}")
    device = torch.device(device or "cpu")
    shape = (cfg.horizon, action_dim)
    gen = torch.Generator().manual_seed(seed)
    mean = torch.zeros(shape)
    std = torch.full(shape, float(cfg.init_std))
    best, best_cost = mean.clone(), float("inf")
    best_costs, elite_costs, elites_seen = [], [], []
    for it in range(cfg.iterations):
        noise = torch.randn((cfg.samples, *shape), generator=gen)
        actions = mean + std * noise
        if cfg.low is not None or cfg.high is not None:
            actions = actions.clamp(cfg.low, cfg.high)
        costs = model.cost(actions.to(device)).float().cpu().reshape(-1)
        if costs.shape[0] != cfg.samples:
            raise ValueError(f"cost returned {tuple(costs.shape)} for {cfg.samples} candidates")
        order = costs.argsort()[: cfg.elites]
        elites = actions[order]
        mean = elites.mean(0)
        std = elites.std(0, unbiased=False).clamp_min(cfg.min_std)
        if costs[order[0]] < best_cost:
            best, best_cost = actions[order[0]].clone(), float(costs[order[0]])
        best_costs.append(float(costs[order[0]]))
        elite_costs.append(float(costs[order].mean()))
        elites_seen.append(elites)
        if progress is not None:
            progress((it + 1) / cfg.iterations, f"CEM iteration {it + 1}/{cfg.iterations}")
    return CEMResult(
        plan=best,
        plan_cost=best_cost,
        mean=mean,
        best_costs=torch.tensor(best_costs),
        elite_costs=torch.tensor(elite_costs),
        elites=torch.stack(elites_seen),
        evaluations=cfg.samples * cfg.iterations,
    )
