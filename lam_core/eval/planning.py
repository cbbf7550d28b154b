"""Goal-conditioned planning with a world model (paper §7; App. A "Planning protocol for DROID" /
"for RECON"; Table S1 and S2 right; docs/DESIGN.md#planners), in three modules whose names are
all importable from here:

- :mod:`lam_core.eval.planning_models`: adapters that turn a pipeline into a
  :class:`~lam_core.planning.PlanningModel` for the planners of :mod:`lam_core.planning`
  (:class:`LatentPlanningModel`: controller + latent action world model, eq. 1 and 2;
  :class:`ActionConditionedPlanningModel`: the V-JEPA 2-AC row; :class:`RepeatedAction`: the
  RECON protocol's straight line), each with ``differentiable_cost`` for the gradient solver.
- :mod:`lam_core.eval.planning_protocols`: the episodes and the paper's protocols,
  :func:`reach_protocol` (DROID's role: N=300, K=10, I=15, H=3, Δxy of eq. 3 on 64 episodes; also
  Push-T with ``world="pusht"``) and :func:`drive_protocol` (RECON's role: one action repeated over
  H=8, N=120, one iteration; ATE and RPE, :func:`trajectory_errors`), each with a zero-action
  baseline and any solver of :data:`~lam_core.planning.SOLVERS` (CEM by default) with a time
  budget (``solver=``, ``budget_s=``); :func:`time_plan`.
- :mod:`lam_core.eval.solvers`: :func:`compare_solvers` runs both protocols for several solvers at
  equal wall time per plan, :func:`solver_table` prints them
  (``python -m lam_core.eval.planning --help``, the same as ``python -m lam_core.eval.solvers``).
"""

from __future__ import annotations

from lam_core.eval.planning_models import (
    ActionConditionedPlanningModel,
    LatentPlanningModel,
    RepeatedAction,
    can_plan,
    goal_distance,
    planning_model,
)
from lam_core.eval.planning_protocols import (
    DRIVE_CEM,
    DRIVE_HORIZON,
    PAPER_EPISODES,
    REACH_CEM,
    Episode,
    ModelFactory,
    PlanningResult,
    drive_protocol,
    episode_features,
    make_episode,
    reach_delta,
    reach_protocol,
    still_plan,
    time_plan,
    trajectory_errors,
)
from lam_core.eval.solvers import PROTOCOLS, compare_solvers, main, solver_table

__all__ = [
    "DRIVE_CEM",
    "DRIVE_HORIZON",
    "PAPER_EPISODES",
    "PROTOCOLS",
    "REACH_CEM",
    "ActionConditionedPlanningModel",
    "Episode",
    "LatentPlanningModel",
    "ModelFactory",
    "PlanningResult",
    "RepeatedAction",
    "can_plan",
    "compare_solvers",
    "drive_protocol",
    "episode_features",
    "goal_distance",
    "main",
    "make_episode",
    "planning_model",
    "reach_delta",
    "reach_protocol",
    "solver_table",
    "still_plan",
    "time_plan",
    "trajectory_errors",
]

if __name__ == "__main__":
    main()
