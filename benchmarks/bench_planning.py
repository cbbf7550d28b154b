"""Seconds per CEM plan (reach protocol, paper App. A: N=300, K=10, I=15, H=3) on random weights of
the ``small`` preset, with the adapter and the MLP controller and for the action-conditioned model.
The ratio adapter / MLP says what the controller costs in planning."""

from __future__ import annotations

import torch

from lam_core import LatentActionPipeline, get_preset
from lam_core.eval.planning import REACH_CEM, time_plan
from lam_core.planning import CEMConfig


def _pipeline(kind: str = "latent", controller: str = "adapter") -> LatentActionPipeline:
    torch.manual_seed(0)
    cfg = get_preset("small", kind=kind)
    cfg.controller.kind = controller
    return LatentActionPipeline.from_config(cfg)


def run(quick: bool = False) -> dict:
    cfg = CEMConfig(samples=60, elites=6, iterations=3, horizon=3) if quick else REACH_CEM
    adapter = time_plan(_pipeline(controller="adapter"), cfg)
    mlp = time_plan(_pipeline(controller="mlp"), cfg)
    action = time_plan(_pipeline(kind="action"), cfg)
    return {"cem": f"N={cfg.samples} K={cfg.elites} I={cfg.iterations} H={cfg.horizon}",
            "plan_s_adapter_controller": adapter, "plan_s_mlp_controller": mlp,
            "plan_s_action_conditioned": action, "adapter_over_mlp": adapter / mlp}
