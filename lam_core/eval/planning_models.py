"""World-model adapters for the planners (paper §7, App. A; docs/DESIGN.md#planners): each turns a
pipeline into a :class:`~lam_core.planning.PlanningModel`, the cost of a batch of action sequences,
for the solvers of :mod:`lam_core.planning`.

- :class:`LatentPlanningModel`: actions → controller → latent actions → world-model rollout with
  the KV cache, batched over the N candidates; the controller sees each predicted step
  (eq. 2: ``ŝ_i+1 = p(ŝ_i, c(a_i, ŝ_i))``); cost eq. 1: ``‖s_g − ŝ_t+H‖₂`` (L2 over all tokens
  and channels of the last predicted step).
- :class:`ActionConditionedPlanningModel`: a world model of kind ``"action"`` fed the actions
  themselves (the V-JEPA 2-AC row).
- :class:`RepeatedAction`: the RECON protocol's straight line, one action repeated H times.

Each adapter also has ``differentiable_cost``, the same cost under autograd, for the gradient
solver: the rollout without the key/value cache (the cache is written in place, which autograd
cannot go back through), so a step recomputes its prefix.

The protocols that plan with them are in :mod:`lam_core.eval.planning_protocols`; every name is
also importable from :mod:`lam_core.eval.planning`.
"""

from __future__ import annotations

import inspect

import torch

from lam_core.eval.common import batched
from lam_core.pipeline import LatentActionPipeline
from lam_core.planning import PlanningModel, differentiable_cost_function

# the controller path of rollout_with_actions without its torch.no_grad (the gradient solver)
_ROLLOUT_WITH_ACTIONS = inspect.unwrap(LatentActionPipeline.rollout_with_actions)


# ---------------------------------------------------------------------------------------- rollouts
def goal_distance(pred: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    """Eq. 1: ``‖s_g − ŝ‖₂`` over all tokens and channels: ``(B, N, D)``, ``(N, D)`` → ``(B,)``."""
    return (pred.float() - goal.float()).flatten(1).norm(dim=1)


class LatentPlanningModel:
    """Cost (eq. 1) of action sequences through controller + latent action world model.

    Args:
        pipeline: kind ``"latent"`` with a controller.
        start: ``(1, C, N, D)`` features of the start (C ≥ 1 steps).
        goal: ``(1, 1, N, D)`` or ``(N, D)`` features of the goal.
        batch_size: candidates per rollout (None: all N at once).
    """

    def __init__(
        self,
        pipeline: LatentActionPipeline,
        start: torch.Tensor,
        goal: torch.Tensor,
        batch_size: int | None = None,
    ) -> None:
        self._check(pipeline)
        self.pipeline, self.batch_size = pipeline, batch_size
        self.start = start.to(pipeline.device)
        self.goal = goal.reshape(goal.shape[-2:]).to(pipeline.device)

    @staticmethod
    def _check(pipeline: LatentActionPipeline) -> None:
        if not pipeline.lam.uses_latents or pipeline.controller is None:
            raise ValueError("latent planning needs a latent action model with a controller")

    def predict(self, actions: torch.Tensor) -> torch.Tensor:
        """``(B, H, A)`` → ``(B, H, N, D)`` (:meth:`LatentActionPipeline.rollout_with_actions`).

        The start ``(1, C, N, D)`` is shared by the B candidates: its latents and the keys and
        values of its shared prefix are computed once and broadcast (same costs to float
        rounding as expanding it, ``tests/test_planning_speed.py``)."""
        return self.pipeline.rollout_with_actions(self.start, actions)

    @torch.inference_mode()
    def cost(self, actions: torch.Tensor) -> torch.Tensor:
        """``(N, H, A)`` → ``(N,)``: ``‖s_goal − ŝ_H‖₂`` of each candidate."""
        out = [
            goal_distance(self.predict(actions[s])[:, -1], self.goal)
            for s in batched(len(actions), self.batch_size)
        ]
        return torch.cat(out)

    def differentiable_cost(self, actions: torch.Tensor) -> torch.Tensor:
        """:meth:`cost` under autograd (the gradient solver): ``(N, H, A)`` → ``(N,)``, through
        :meth:`LatentActionPipeline.rollout_with_actions`'s controller path without its cache
        (written in place, it cannot be differentiated), so each step recomputes its prefix."""
        out = []
        with torch.enable_grad():
            for s in batched(len(actions), self.batch_size):
                pred = _ROLLOUT_WITH_ACTIONS(self.pipeline, self.start, actions[s], use_cache=False)
                out.append(goal_distance(pred[:, -1], self.goal))
            return torch.cat(out)


class ActionConditionedPlanningModel(LatentPlanningModel):
    """The same cost with a world model conditioned on real actions (kind ``"action"``; the
    V-JEPA 2-AC baseline of Table S1), from a one-step start."""

    @staticmethod
    def _check(pipeline: LatentActionPipeline) -> None:
        if pipeline.lam.cfg.kind != "action":
            raise ValueError(f"needs a world model of kind 'action', got {pipeline.lam.cfg.kind!r}")


class RepeatedAction:
    """Straight-line plans (RECON protocol, App. A): the planner proposes one action ``(N, 1, A)``
    that is repeated ``horizon`` times before the inner model scores it."""

    def __init__(self, model: PlanningModel, horizon: int) -> None:
        self.model, self.horizon = model, horizon

    def cost(self, actions: torch.Tensor) -> torch.Tensor:
        return self.model.cost(actions[:, :1].expand(-1, self.horizon, -1))

    def differentiable_cost(self, actions: torch.Tensor) -> torch.Tensor:
        cost = differentiable_cost_function(self.model)
        return cost(actions[:, :1].expand(-1, self.horizon, -1))


def planning_model(
    pipeline: LatentActionPipeline,
    start: torch.Tensor,
    goal: torch.Tensor,
    batch_size: int | None = None,
) -> LatentPlanningModel:
    """The adapter that fits ``pipeline``: action-conditioned for kind ``"action"``, else latent."""
    cls = (
        ActionConditionedPlanningModel
        if pipeline.lam.cfg.kind == "action"
        else (LatentPlanningModel)
    )
    return cls(pipeline, start, goal, batch_size)


def can_plan(pipeline: LatentActionPipeline) -> bool:
    """Whether the pipeline can be planned with (action world model, or latents + controller)."""
    kind = pipeline.lam.cfg.kind
    return kind == "action" or (kind == "latent" and pipeline.controller is not None)
