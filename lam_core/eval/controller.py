"""Controller rollouts vs IDM rollouts (paper §7 "Rollout quality"; Tables S1 and S2, left).

On held-out clips of an action-labeled world (reach: DROID's role; drive: RECON's; Push-T), the
world model is rolled out from the first step twice: with the IDM's latents (which see the future:
the upper bound) and with the controller's latents ``c(a_t, ŝ_t)`` computed from the real actions
and the predicted steps (eq. 2). The paper reports LPIPS of both and their ratio (×1.0–×1.5); we
report feature L1 (always) and pixel L1 / LPIPS of the decoded rollouts (with a decoder / with the
LPIPS weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lam_core.data.miniwild import split_seeds
from lam_core.eval.common import Progress, batched, clips_to_tensor, no_progress, ratio
from lam_core.eval.metrics import feature_l1, mean_or_none, rollout_pixel_metrics
from lam_core.pipeline import LatentActionPipeline


@dataclass
class ControllerResult:
    """Table S1/S2 (left) for one pipeline.

    Attributes:
        world: ``reach``, ``drive`` or ``pusht``; ``clips``: clips evaluated; ``horizon``: steps.
        idm_error, controller_error: mean feature L1 of the two rollouts; ``ratio`` = controller
            / IDM.
        idm_per_step, controller_per_step: ``(H,)``.
        idm_pixel_l1, controller_pixel_l1, idm_lpips, controller_lpips, lpips_ratio: decoded
            rollouts vs real frames (None when they cannot be computed).
    """

    world: str
    clips: int
    horizon: int
    idm_error: float
    controller_error: float
    ratio: float
    idm_per_step: np.ndarray
    controller_per_step: np.ndarray
    idm_pixel_l1: float | None
    controller_pixel_l1: float | None
    idm_lpips: float | None
    controller_lpips: float | None
    lpips_ratio: float | None


def world_clips(world: str, n: int, num_steps: int, tubelet: int, seed: int = 0) -> list:
    """``n`` held-out clips (validation seeds) of an action world, each with ``actions``."""
    from lam_core.data import worlds

    if world == "pusht":
        from lam_core.data.pusht import record_pusht_clip as make
    elif world in ("reach", "drive"):
        make = worlds.make_reach_clip if world == "reach" else worlds.make_drive_clip
    else:
        raise ValueError(f"unknown world {world!r}; expected reach, drive or pusht")
    return [make(s, num_steps=num_steps, tubelet=tubelet) for s in split_seeds(n, "val", seed)]


@torch.no_grad()
def controller_eval(
    pipeline: LatentActionPipeline,
    world: str = "reach",
    *,
    n_clips: int = 32,
    num_steps: int = 8,
    seed: int = 0,
    batch_size: int = 8,
    progress: Progress | None = None,
) -> ControllerResult:
    """Rollout error with controller latents vs with IDM latents.

    Args:
        pipeline: kind ``"latent"`` with a controller trained on ``world``.
        world: ``reach``, ``drive`` or ``pusht``.
        n_clips: held-out clips.
        num_steps: model steps per clip (the rollout predicts ``num_steps - 1``).
        seed: first validation seed.
        batch_size: clips per forward pass.
        progress: ``progress(fraction, message)``.
    """
    if not pipeline.lam.uses_latents or pipeline.controller is None:
        raise ValueError("the controller evaluation needs latent actions and a controller")
    report = progress or no_progress
    clips = world_clips(world, n_clips, num_steps, pipeline.tubelet, seed)
    # frames as arrays: world clips repeat each frame `tubelet` times (App. A), no fps resampling
    video = clips_to_tensor(pipeline, [c.frames for c in clips])
    actions = torch.from_numpy(np.stack([c.actions for c in clips])).float()
    idm, ctrl, pix = [], [], {"idm": [], "ctrl": []}
    chunks = batched(len(video), batch_size)
    for i, sl in enumerate(chunks):
        x = video[sl]
        s = pipeline.encode(x)
        h = s.shape[1] - 1
        pred_idm = pipeline.rollout(s[:, :1], pipeline.infer_latents(s))
        pred_ctrl = pipeline.rollout_with_actions(s[:, :1], actions[sl, :h])
        idm.append(feature_l1(pred_idm, s[:, 1:]))
        ctrl.append(feature_l1(pred_ctrl, s[:, 1:]))
        for key, pred in (("idm", pred_idm), ("ctrl", pred_ctrl)):
            m = rollout_pixel_metrics(pipeline, s[:, :1], pred, x)
            if m is not None:
                pix[key].append(m)
        report((i + 1) / len(chunks), f"controller ({world}): {i + 1}/{len(chunks)} batches")
    idm_a, ctrl_a = np.concatenate(idm), np.concatenate(ctrl)

    def mean_of(key: str, metric: str) -> float | None:
        vals = [m[metric] for m in pix[key]]
        return (
            None if not vals or any(v is None for v in vals) else mean_or_none(np.concatenate(vals))
        )

    idm_lp, ctrl_lp = mean_of("idm", "lpips"), mean_of("ctrl", "lpips")
    return ControllerResult(
        world=world,
        clips=len(video),
        horizon=idm_a.shape[1],
        idm_error=float(idm_a.mean()),
        controller_error=float(ctrl_a.mean()),
        ratio=ratio(ctrl_a.mean(), idm_a.mean()),
        idm_per_step=idm_a.mean(0),
        controller_per_step=ctrl_a.mean(0),
        idm_pixel_l1=mean_of("idm", "pixel_l1"),
        controller_pixel_l1=mean_of("ctrl", "pixel_l1"),
        idm_lpips=idm_lp,
        controller_lpips=ctrl_lp,
        lpips_ratio=None if idm_lp is None or ctrl_lp is None else ratio(ctrl_lp, idm_lp),
    )
