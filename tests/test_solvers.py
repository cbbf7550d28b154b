"""The planning solvers behind one interface (lam_core/planning.py; docs/DESIGN.md#planners): a toy
quadratic cost, a tiny random pipeline's rollout cost, warm starts, time budgets, cancellation."""

import time

import numpy as np
import pytest
import torch

from lam_core.eval.planning import (
    LatentPlanningModel,
    RepeatedAction,
    compare_solvers,
    drive_protocol,
    episode_features,
    make_episode,
    reach_protocol,
    solver_table,
)
from lam_core.planning import (
    CEM,
    ICEM,
    SOLVERS,
    CEMConfig,
    PlanResult,
    Replanner,
    WarmStart,
    build_solver,
    cem,
    colored_noise,
    solver_from_config,
    solver_settings,
)

from .helpers import tiny_pipeline

TARGET = torch.tensor([[0.5, -0.3], [0.1, 0.8], [-0.6, 0.2]])
# small settings: each solver converges on the toy in well under a second
SMALL = {
    "cem": {"samples": 64, "elites": 8, "iterations": 10},
    "icem": {"samples": 64, "elites": 8, "iterations": 10},
    "mppi": {"samples": 64, "iterations": 10},
    "gradient": {"starts": 4, "iterations": 60, "lr": 0.1},
}


def quadratic(target: torch.Tensor, delay: float = 0.0):
    """``cost(a) = Σ (a − target)²`` per candidate (differentiable); ``delay`` seconds per call."""

    def cost(actions: torch.Tensor) -> torch.Tensor:
        if delay:
            time.sleep(delay)
        return (actions - target.to(actions)).pow(2).sum(dim=(1, 2))

    return cost


@pytest.mark.parametrize("name", list(SOLVERS))
def test_each_solver_lowers_a_quadratic_cost(name):
    solver = build_solver(name, **SMALL[name])
    res = solver.plan(quadratic(TARGET), horizon=3, action_dim=2)
    assert isinstance(res, PlanResult) and res.solver == name
    assert res.actions.shape == (3, 2) and res.warm_state.mean.shape == (3, 2)
    zero = float(quadratic(TARGET)(torch.zeros(1, 3, 2)))
    assert res.cost < zero / 20 and res.cost == pytest.approx(
        float(quadratic(TARGET)(res.actions[None])), rel=1e-5
    )
    assert res.iterations == SMALL[name]["iterations"] and res.stopped == "iterations"
    assert res.best_costs.shape == res.elite_costs.shape == (res.iterations,)
    assert res.evaluations > 0 and res.seconds > 0
    assert res.elites.shape[0] == res.iterations and res.elites.shape[2:] == (3, 2)
    # seeded: the same plan twice
    assert torch.equal(res.actions, solver.plan(quadratic(TARGET), 3, 2).actions)


@pytest.mark.parametrize("name", list(SOLVERS))
def test_each_solver_respects_the_bounds(name):
    far = torch.tensor([[3.0, -3.0]] * 3)  # outside [-0.5, 0.5]: the best plan sits on the bounds
    res = build_solver(name, **SMALL[name]).plan(quadratic(far), 3, 2, bounds=(-0.5, 0.5))
    assert res.elites.abs().max() <= 0.5 + 1e-6 and res.actions.abs().max() <= 0.5 + 1e-6
    assert (res.actions[:, 0] > 0.4).all() and (res.actions[:, 1] < -0.4).all()
    with pytest.raises(ValueError, match="low < high"):
        build_solver(name).plan(quadratic(far), 3, 2, bounds=(1.0, -1.0))


@pytest.mark.parametrize("name", list(SOLVERS))
def test_a_warm_start_beats_a_cold_one_on_the_shifted_problem(name):
    """MPC: the problem of the next step is the last one shifted by one action. With one
    iteration each, the plan warm-started from the shifted last plan is much better (the new
    last action is unknown to both)."""
    horizon = 5
    target = torch.tensor([[0.8, -0.7], [0.6, -0.8], [0.7, 0.7], [-0.8, 0.6], [-0.7, -0.6]])
    settings = {**SMALL[name], "iterations": 1, "init_std": 0.3}
    first = build_solver(name, **{**settings, "iterations": SMALL[name]["iterations"]}).plan(
        quadratic(target), horizon, 2
    )
    shifted = torch.cat([target[1:], torch.tensor([[0.5, 0.5]])])
    one = build_solver(name, **settings)
    cold = one.plan(quadratic(shifted), horizon, 2, seed=3)
    warm = one.plan(quadratic(shifted), horizon, 2, seed=3, warm_start=first.next_warm_start())
    assert cold.iterations == warm.iterations == 1
    assert warm.cost < 0.7 * cold.cost


def test_warm_start_shift_fit_and_icem_keeps_elites():
    mean = torch.arange(6.0).reshape(3, 2)
    w = WarmStart(mean, mean[None].repeat(4, 1, 1)).shift()
    assert torch.equal(w.mean, torch.tensor([[2.0, 3], [4, 5], [4, 5]]))  # last step repeated
    assert w.elites.shape == (4, 3, 2) and torch.equal(w.elites[0], w.mean)
    assert torch.equal(WarmStart(mean[:1]).shift().mean, mean[:1])  # a repeated action stays
    assert WarmStart(mean).fit(2).mean.shape == (2, 2)
    assert torch.equal(WarmStart(mean).fit(4).mean[-1], mean[-1])
    # iCEM's first iteration adds ξ·K of the warm start's elites and the mean to its samples
    icem = ICEM(samples=40, elites=10, iterations=1, keep_elites=0.3)
    first = icem.plan(quadratic(TARGET), 3, 2)
    assert first.warm_state.elites.shape == (10, 3, 2)
    assert first.evaluations == 40 + 1  # cold: no elites yet, the mean
    warm = icem.plan(quadratic(TARGET), 3, 2, warm_start=first.next_warm_start())
    assert warm.evaluations == 40 + 3 + 1
    # a plain tensor is a mean; a PlanResult its (unshifted) final state
    assert icem.plan(quadratic(TARGET), 3, 2, warm_start=TARGET).best_costs[0] < 1e-2
    again = icem.plan(quadratic(TARGET), 3, 2, warm_start=first)
    assert again.best_costs[0] <= first.cost + 1e-6


def test_icem_samples_fewer_each_iteration():
    icem = ICEM(samples=100, elites=10, decay=1.25)
    assert [icem.samples_at(i) for i in (0, 1, 2, 20)] == [100, 80, 64, 20]


@pytest.mark.parametrize("name", list(SOLVERS))
def test_a_budget_stops_the_solver(name):
    slow = quadratic(TARGET, delay=0.01)  # 10 ms per batched call
    solver = build_solver(name, **{**SMALL[name], "iterations": 1000})
    t0 = time.perf_counter()
    res = solver.plan(slow, 3, 2, budget_s=0.05)
    assert time.perf_counter() - t0 < 0.2 and res.stopped == "budget"
    assert 1 <= res.iterations < 20 and res.seconds <= 0.2
    # budget 0: one iteration, so there is a plan
    assert solver.plan(slow, 3, 2, budget_s=0).iterations == 1


@pytest.mark.parametrize("name", list(SOLVERS))
def test_cancel_stops_the_solver(name):
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 3

    res = build_solver(name, **SMALL[name]).plan(quadratic(TARGET), 3, 2, cancel=cancel)
    assert res.iterations == 3 and res.stopped == "cancelled" and np.isfinite(res.cost)
    at_once = build_solver(name).plan(quadratic(TARGET), 3, 2, cancel=lambda: True)
    assert at_once.iterations == 0 and at_once.cost == float("inf")
    assert at_once.actions.shape == (3, 2) and at_once.best_costs.shape == (0,)


def test_progress_under_a_budget_and_without():
    seen = []
    CEM(samples=16, elites=4, iterations=3).plan(
        quadratic(TARGET), 3, 2, progress=lambda f, m: seen.append((f, m))
    )
    assert [f for f, _ in seen] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert seen[0][1] == "CEM iteration 1/3"
    seen.clear()
    CEM(samples=16, elites=4).plan(
        quadratic(TARGET, 0.005), 3, 2, budget_s=0.05, progress=lambda f, m: seen.append(f)
    )
    assert seen == sorted(seen) and 0 < seen[-1] <= 1


def test_registry_settings_and_the_cem_entry_point():
    assert set(SOLVERS) == {"cem", "icem", "mppi", "gradient"}
    with pytest.raises(ValueError, match="unknown solver"):
        build_solver("annealing")
    with pytest.raises(ValueError, match="no setting"):
        build_solver("mppi", elites_fraction=0.1)
    assert solver_settings("icem")["beta"] == 2.0
    cfg = CEMConfig(samples=50, elites=5, iterations=4, init_std=0.7)
    s = solver_from_config("cem", cfg, seed=3)
    assert (s.samples, s.elites, s.iterations, s.init_std, s.seed) == (50, 5, 4, 0.7, 3)
    m = solver_from_config("mppi", cfg)
    assert (m.samples, m.iterations, m.init_std) == (50, 4, 0.5)  # its own init_std
    assert solver_from_config("gradient", cfg).iterations == 4
    # the studio's entry point takes a solver name and a budget, and keeps CEM's names
    res = cem(quadratic(TARGET), 2, cfg, seed=1, solver="icem")
    assert res.solver == "icem" and res.plan.shape == (3, 2) and res.iterations == 4
    assert res.plan_cost < 0.5 and res.best_costs.shape == res.elite_costs.shape == (4,)
    timed = cem(quadratic(TARGET, 0.01), 2, cfg, solver="mppi", budget_s=0.05)
    assert timed.stopped == "budget" and timed.seconds < 0.2
    assert cem(quadratic(TARGET), 2, cfg, solver=ICEM(samples=20, elites=4)).solver == "icem"


def test_gradient_solver_needs_a_differentiable_cost():
    def frozen(actions):
        with torch.no_grad():
            return quadratic(TARGET)(actions)

    with pytest.raises(ValueError, match="differentiable"):
        build_solver("gradient").plan(frozen, 3, 2)


def test_colored_noise():
    g = torch.Generator().manual_seed(0)
    white = colored_noise((4000, 10, 2), 0.0, g)
    red = colored_noise((4000, 10, 2), 2.0, g)
    assert red.shape == (4000, 10, 2)
    assert red.std(dim=(0, 2)).sub(1).abs().max() < 0.05  # unit variance at every step

    def lag1(x):
        return float((x[:, 1:] * x[:, :-1]).mean() / x.pow(2).mean())

    assert abs(lag1(white)) < 0.05 and lag1(red) > 0.5  # coloured: smooth along time
    assert colored_noise((5, 1, 2), 2.0, g).shape == (5, 1, 2)  # H = 1: white


def test_replanner_shifts_its_warm_start():
    mpc = Replanner(ICEM(samples=32, elites=4, iterations=3), action_dim=2)
    first = mpc(quadratic(TARGET), 3)
    assert torch.equal(mpc.warm.mean[:2], first.warm_state.mean[1:])
    second = mpc(quadratic(TARGET[1:]), 2)  # a shrinking horizon keeps the first actions
    assert second.actions.shape == (2, 2) and len(mpc.plans) == 2
    assert second.best_costs[0] < first.best_costs[0]
    mpc.reset()
    assert mpc.warm is None


# ------------------------------------------------------------------ a tiny random pipeline
@pytest.fixture(scope="module")
def rollout_cost():
    pipe = tiny_pipeline()
    ep = make_episode("reach", 10**9, 3, pipe.tubelet)
    start, goal = episode_features(pipe, ep)
    return pipe, LatentPlanningModel(pipe, start, goal)


def test_differentiable_cost_matches_the_cost(rollout_cost):
    _, model = rollout_cost
    a = (torch.rand(4, 3, 2) * 2 - 1).requires_grad_(True)
    c = model.differentiable_cost(a)
    torch.testing.assert_close(c.detach(), model.cost(a.detach()), rtol=1e-4, atol=1e-5)
    (g,) = torch.autograd.grad(c.sum(), a)
    assert g.shape == a.shape and g.abs().sum() > 0
    # nothing accumulates in the model's parameters
    assert all(p.grad is None for p in model.pipeline.parameters())
    straight = RepeatedAction(model, horizon=3)
    torch.testing.assert_close(
        straight.differentiable_cost(a[:, :1]).detach(), straight.cost(a[:, :1].detach())
    )


@pytest.mark.parametrize("name", list(SOLVERS))
def test_each_solver_lowers_a_rollout_cost(rollout_cost, name):
    _, model = rollout_cost
    settings = {
        "cem": {"samples": 24, "elites": 4, "iterations": 3},
        "icem": {"samples": 24, "elites": 4, "iterations": 3},
        "mppi": {"samples": 24, "iterations": 3},
        "gradient": {"starts": 4, "iterations": 4, "lr": 0.2},
    }[name]
    res = build_solver(name, **settings).plan(model, 3, 2)
    zero = float(model.cost(torch.zeros(1, 3, 2)))
    assert res.cost < zero
    assert res.actions.abs().max() <= 1.0


def test_protocols_take_a_solver_and_a_budget(rollout_cost):
    pipe, _ = rollout_cost
    small = CEMConfig(samples=12, elites=3, iterations=2, horizon=3)
    res = reach_protocol(pipe, episodes=2, cfg=small, solver="mppi", budget_s=0.3)
    assert res.method == "controller+MPPI" and res.solver == "mppi" and res.budget_s == 0.3
    assert res.iterations.shape == res.evaluations.shape == res.plan_costs.shape == (2,)
    assert res.best_costs.shape == (2, res.iterations.max())
    assert 0 < res.seconds_per_plan < 1.0
    drive = drive_protocol(
        pipe, episodes=1, cfg=CEMConfig(samples=8, elites=2, iterations=2, horizon=1),
        solver="gradient",
    )
    assert drive.plans.shape == (1, 8, 2) and np.allclose(drive.plans[0], drive.plans[0, :1])
    assert drive.method == "controller+gradient" and drive.iterations.tolist() == [2]
    # the default is still CEM (the report's numbers)
    assert reach_protocol(pipe, episodes=1, cfg=small).method == "controller+CEM"


def test_compare_solvers_and_its_table(rollout_cost):
    pipe, _ = rollout_cost
    cfg = CEMConfig(samples=24, elites=4, iterations=2)
    results = compare_solvers(
        pipe, "reach", ["cem", "icem", "gradient"], budgets=[0.1], episodes=1, cfg=cfg,
        settings={"gradient": {"starts": 3}},
    )
    assert [r.solver for r in results] == ["cem", "icem", "gradient"]
    assert results[2].solver_settings["starts"] == 3 and results[0].zero_plan_costs.shape == (1,)
    table = solver_table(results)
    assert table.count("\n") == 4 and "| reach | iCEM | N=24 K=4 | 0.1 s |" in table
    assert "| gradient | 3 starts" in table
    with pytest.raises(ValueError, match="no setting"):
        compare_solvers(pipe, "reach", ["cem"], settings={"cem": {"starts": 3}})


def test_bench_planning_solver_rows_fit(rollout_cost):
    """benchmarks/bench_planning.py's solver rows on the tiny pipeline (a smoke test: a changed
    signature must not wait for a full benchmark run to show)."""
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parent.parent / "benchmarks"
    sys.path.insert(0, str(bench))
    try:
        import bench_planning
        from harness import Context
    finally:
        sys.path.remove(str(bench))
    pipe, _ = rollout_cost
    cfg = CEMConfig(samples=12, elites=3, iterations=2, horizon=3)
    rows = bench_planning.solver_rows(Context(True, 1, {}), pipe, cfg, budget_s=0.05)
    assert [r.extra["solver"] for r in rows] == list(SOLVERS)
    assert rows[0].ratio == 1.0 and all(r.value > 0 and "load" in r.note for r in rows)
