"""Planning adapters and protocols (paper App. A) on tiny random pipelines and toy models."""

import numpy as np
import pytest
import torch

from lam_core.eval.planning import (
    ActionConditionedPlanningModel,
    LatentPlanningModel,
    RepeatedAction,
    drive_protocol,
    episode_features,
    make_episode,
    reach_protocol,
    time_plan,
    trajectory_errors,
)
from lam_core.planning import CEMConfig, PlanningModel

from .helpers import tiny_pipeline

SMALL = CEMConfig(samples=12, elites=3, iterations=2, horizon=3)


@pytest.fixture(scope="module")
def latent():
    return tiny_pipeline()


def test_adapters_score_batches_of_candidates(latent):
    ep = make_episode("reach", 10**9, 3, latent.tubelet)
    start, goal = episode_features(latent, ep)
    assert start.shape == goal.shape == (1, 1, 16, 48)
    actions = torch.rand(5, 3, 2) * 2 - 1
    model = LatentPlanningModel(latent, start, goal, batch_size=2)
    assert isinstance(model, PlanningModel)
    costs = model.cost(actions)
    assert costs.shape == (5,) and torch.isfinite(costs).all()
    # batching over candidates does not change the costs
    torch.testing.assert_close(costs, LatentPlanningModel(latent, start, goal).cost(actions))
    # the cost is the L2 distance of the last predicted step to the goal (eq. 1)
    last = model.predict(actions[:1])[:, -1]
    assert costs[0] == pytest.approx(float((last - goal[0, 0]).norm()), rel=1e-5)
    ac = tiny_pipeline(kind="action")
    assert ActionConditionedPlanningModel(ac, start, goal).cost(actions).shape == (5,)
    # an action world model is driven by the actions themselves
    torch.testing.assert_close(
        ac.rollout_with_actions(start.expand(5, -1, -1, -1), actions),
        ac.rollout(start.expand(5, -1, -1, -1), actions),
    )
    assert time_plan(ac, SMALL) > 0
    straight = RepeatedAction(model, horizon=4).cost(actions[:, :1])
    assert straight.shape == (5,)
    with pytest.raises(ValueError, match="kind 'action'"):
        ActionConditionedPlanningModel(latent, start, goal)


def test_reach_protocol_shapes_and_note(latent):
    res = reach_protocol(latent, episodes=2, cfg=SMALL)
    assert res.episodes == 2 and "2 of the paper's 64" in res.note
    assert res.plans.shape == res.ground_truth.shape == (2, 3, 2)
    assert res.best_costs.shape == (2, 2)
    assert set(res.metrics) == {"delta", "zero_delta", "final_px", "zero_final_px"}
    assert res.method == "controller+CEM" and res.seconds_per_plan > 0
    ac = reach_protocol(tiny_pipeline(kind="action"), episodes=1, cfg=SMALL)
    assert ac.method == "action-conditioned+CEM"


class KnownCost:
    """A toy "world model" whose cost is exactly the distance to the ground-truth actions."""

    def __init__(self, truth: np.ndarray):
        self.truth = torch.as_tensor(truth, dtype=torch.float32)

    def cost(self, actions: torch.Tensor) -> torch.Tensor:
        return (actions - self.truth).pow(2).sum(dim=(1, 2))


def test_reach_protocol_delta_is_zero_with_an_exact_toy_model():
    cfg = CEMConfig(samples=200, elites=20, iterations=12, horizon=3)
    res = reach_protocol(None, episodes=3, cfg=cfg, factory=lambda ep: KnownCost(ep.actions))
    assert res.metrics["delta"] < 0.05  # eq. 3, action units
    assert res.metrics["final_px"] < 0.5  # replayed in the world: at the goal
    assert res.metrics["zero_delta"] > 0.5  # the baseline is not trivially 0


def test_trajectory_errors_by_hand():
    truth = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0]], float)
    assert trajectory_errors(truth, truth) == (0.0, 0.0)
    slow = np.array([[0, 0, 0], [0.5, 0, 0], [1, 0, 0]], float)
    ate, rpe = trajectory_errors(slow, truth)
    assert ate == pytest.approx(np.sqrt((0.5**2 + 1**2) / 2))
    assert rpe == pytest.approx(0.5)
    # RPE compares steps in each pose's own frame: a rotated but same-shaped path has RPE 0
    turned = np.array([[0, 0, np.pi / 2], [0, 1, np.pi / 2], [0, 2, np.pi / 2]], float)
    assert trajectory_errors(turned, truth)[1] == pytest.approx(0.0, abs=1e-9)


def test_drive_protocol_plans_one_repeated_action(latent):
    cfg = CEMConfig(samples=8, elites=2, iterations=1, horizon=1)
    res = drive_protocol(latent, episodes=1, cfg=cfg)
    assert res.plans.shape == (1, 8, 2)
    assert np.allclose(res.plans[0], res.plans[0, :1])  # a straight line
    assert {"ate", "rpe", "zero_ate", "zero_rpe"} <= set(res.metrics)
    assert np.isfinite(list(res.metrics.values())).all()
