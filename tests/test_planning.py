"""The CEM planner on its own: a toy quadratic cost, no world model (STYLE.md §6, §9)."""

import pytest
import torch

from lam_core.planning import CEMConfig, PlanningModel, cem


class Quadratic:
    """``cost(a) = Σ (a − target)²`` per candidate; minimum 0 at ``target`` ``(H, A)``."""

    def __init__(self, target: torch.Tensor):
        self.target, self.calls = target, []

    def cost(self, actions: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(actions.shape))
        return (actions - self.target).pow(2).sum(dim=(1, 2))


TARGET = torch.tensor([[0.5, -0.3], [0.1, 0.8], [-0.6, 0.2]])


def test_cem_lowers_a_quadratic_cost_to_near_its_minimum():
    toy = Quadratic(TARGET)
    assert isinstance(toy, PlanningModel)
    cfg = CEMConfig(samples=200, elites=20, iterations=12, horizon=3)
    res = cem(toy, action_dim=2, cfg=cfg, seed=0)
    assert res.plan.shape == (3, 2) and res.mean.shape == (3, 2)
    assert (res.plan - TARGET).abs().max() < 0.05
    assert res.plan_cost < 5e-3
    assert res.best_costs[-1] < res.best_costs[0] / 20  # it learned, not one lucky sample
    # one batched call per iteration with all N candidates
    assert toy.calls == [(200, 3, 2)] * 12
    assert res.elites.shape == (12, 20, 3, 2) and res.evaluations == 2400
    assert res.elite_costs.shape == res.best_costs.shape == (12,)


def test_cem_is_seeded_and_respects_bounds():
    far = torch.full((3, 2), 3.0)  # outside the bounds: the best plan sits on the bound
    cfg = CEMConfig(samples=64, elites=8, iterations=6, horizon=3)
    a = cem(Quadratic(far), 2, cfg, seed=1)
    b = cem(Quadratic(far), 2, cfg, seed=1)
    assert torch.equal(a.plan, b.plan)
    assert a.elites.abs().max() <= 1.0
    assert (a.plan > 0.9).all()


def test_cem_reports_progress_and_rejects_bad_settings():
    seen = []
    cem(
        Quadratic(TARGET),
        2,
        CEMConfig(samples=16, elites=4, iterations=3),
        progress=lambda f, m: seen.append(f),
    )
    assert seen == pytest.approx([1 / 3, 2 / 3, 1.0])
    with pytest.raises(ValueError, match="elites"):
        cem(Quadratic(TARGET), 2, CEMConfig(samples=4, elites=8))
