"""The latent action model: IDM g + regularizer + world model p, trained jointly (paper §3–§4).

``L_t = ‖s_t+1 − p(s_0:t, z_t)‖₁ + L_z(z_t)``, ``z_t = g(s_t, s_t+1)``. Two other kinds share the
class so every consumer sees one interface: ``"deterministic"`` (no latent, the low end of the
capacity axis) and ``"action"`` (conditioned on real actions: the V-JEPA 2-AC baseline).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from lam_core.config import LAMConfig
from lam_core.models.idm import InverseDynamics
from lam_core.models.regularizers import build_regularizer
from lam_core.models.world_model import WorldModel

KINDS = ("latent", "deterministic", "action")


@dataclass
class LAMOutput:
    """Teacher-forced forward pass.

    Attributes:
        predictions: ``(B, T'-1, N, D)`` ŝ_1 … ŝ_T'-1.
        latents: ``(B, T'-1, D_z)`` (None unless ``kind == "latent"``).
        loss: prediction L1 + regularizer loss.
        prediction_loss, regularizer_loss: the two main parts.
        stats: detached scalars for logging.
        auxiliary_loss: the rest of ``loss``: the head's term (the flow head's ``flow_l1``) and
            the weighted two-step unroll (``rollout_weight``), None if none.
    """

    predictions: torch.Tensor
    latents: torch.Tensor | None
    loss: torch.Tensor
    prediction_loss: torch.Tensor
    regularizer_loss: torch.Tensor
    stats: dict[str, torch.Tensor] = field(default_factory=dict)
    auxiliary_loss: torch.Tensor | None = None


CHANGE_FROM = ("target", "both")  # lam.change_from: whose change weighs a token


def prediction_l1(pred: torch.Tensor, features: torch.Tensor, change_weight: float = 0.0,
                  skip: int = 0, change_from: str = "target"):
    """L1 of ``pred`` ``(B, T'-1, N, D)`` against ``features[:, 1:]``; with ``change_weight`` > 0,
    each token is weighted by ``1 + change_weight · c`` where ``c`` is its change
    ``|s_t+1 − s_t|`` over the clip's mean change, normalised so the weights average to 1 (movers
    are a few percent of the pixels: plain L1 makes copying the last frame nearly optimal).
    ``change_from="both"``: ``c`` is the larger of the target's change and the prediction's
    ``|ŝ_t+1 − s_t|`` (without gradient), so a token the prediction changes where the target
    stays still weighs as much as a missed move (moving the whole frame with a small agent is no
    longer the cheap way to place the agent). ``skip``: leave out the first steps (their
    predictions are not scored)."""
    pred, target, last = pred[:, skip:], features[:, 1 + skip:], features[:, skip:-1]
    error = (pred.float() - target.float()).abs().mean(-1)  # B, T'-1, N
    if change_weight <= 0:
        return error.mean()
    change = (target - last).float().abs().mean(-1)  # B, T'-1, N
    if change_from == "both":
        change = torch.maximum(change, (pred.detach().float() - last.float()).abs().mean(-1))
    change = change / change.mean(dim=(1, 2), keepdim=True).clamp(min=1e-6)
    weight = 1 + change_weight * change
    return (error * weight).sum() / weight.sum()


class LatentActionModel(nn.Module):
    """IDM + regularizer + world model.

    Args:
        cfg: LAM config.
    """

    def __init__(self, cfg: LAMConfig):
        super().__init__()
        self.check(cfg)
        self.cfg = cfg
        if cfg.kind == "latent":
            self.regularizer = build_regularizer(cfg.regularizer)
            self.idm = InverseDynamics(
                cfg.feature_dim,
                cfg.grid,
                self.regularizer.raw_dim,
                cfg.idm,
                cfg.idm_token_merge,
                cfg.idm_input,
                cfg.latent_grid,
                cfg.idm_radius,
                cfg.global_latent,
            )
        self.world_model = WorldModel(cfg)

    @staticmethod
    def check(cfg: LAMConfig) -> None:
        """Every value check of a LAM config, in one place (the training config calls it too).

        Raises:
            ValueError: the message starts with the dotted key, ``lam.<key>: …``.
        """
        if cfg.kind not in KINDS:
            raise ValueError(f"lam.kind: must be one of {', '.join(KINDS)}, not {cfg.kind!r}")
        if cfg.change_weight < 0:
            raise ValueError(f"lam.change_weight: must be ≥ 0, not {cfg.change_weight}")
        if cfg.change_from not in CHANGE_FROM:
            raise ValueError(f"lam.change_from: must be one of {', '.join(CHANGE_FROM)}, not "
                             f"{cfg.change_from!r}")
        if cfg.rollout_weight < 0:
            raise ValueError(f"lam.rollout_weight: must be ≥ 0, not {cfg.rollout_weight}")
        InverseDynamics.check(cfg.grid, cfg.idm_token_merge, cfg.idm_input, cfg.latent_grid,
                              cfg.idm_radius, cfg.global_latent)
        WorldModel.check(cfg)

    @property
    def uses_latents(self) -> bool:
        return self.cfg.kind == "latent"

    def infer_latents(self, features: torch.Tensor, return_stats: bool = False):
        """Latent actions of every transition: ``(B, T', N, D)`` → ``(B, T'-1, D_z)``.

        In eval mode this is deterministic (noisy: the mean; discrete: the nearest code). With a
        latent grid (``latent_grid > 1``) the regularizer sees each cell's latent (its loss is
        the mean over cells, as over transitions) and the cells are returned side by side (the
        global latent, if any, last).
        """
        if not self.uses_latents:
            raise ValueError(f"a {self.cfg.kind!r} model has no latent actions")
        out = self.regularizer(self.idm(features))
        if self.cfg.latent_slots > 1:  # B, T'-1, slots, d → B, T'-1, slots·d
            out.latents = out.latents.flatten(-2)
        return out if return_stats else out.latents

    def conditions(
        self,
        features: torch.Tensor,
        actions: torch.Tensor | None = None,
    ):
        """Teacher-forcing conditions: ``(cond (B, T'-1, C) | None, regularizer output | None)``."""
        if self.cfg.kind == "latent":
            reg = self.infer_latents(features, return_stats=True)
            return reg.latents, reg
        if self.cfg.kind == "action":
            steps = features.shape[1] - 1
            if actions is None or actions.shape[1] < steps:
                got = None if actions is None else tuple(actions.shape)
                raise ValueError(
                    f"an action-conditioned model needs actions (B, {steps}, A), got {got}"
                )
            return actions[:, :steps], None
        return None, None

    def forward(self, features: torch.Tensor, actions: torch.Tensor | None = None) -> LAMOutput:
        """Teacher-forced prediction of steps 1 … T'-1.

        Args:
            features: ``(B, T', N, D)`` from the frozen encoder.
            actions: ``(B, T'-1, A)`` real actions (``"action"`` kind only).
        """
        cfg = self.cfg
        cond, reg = self.conditions(features, actions)
        pred, extras = self.world_model.predict(features[:, :-1], cond)
        pred_loss = prediction_l1(pred, features, cfg.change_weight,
                                  change_from=cfg.change_from)
        reg_loss = reg.loss if reg is not None else pred_loss.new_zeros(())
        stats = {k: v for k, v in reg.stats.items() if v.ndim == 0} if reg is not None else {}
        aux, head_stats = self.world_model.head.loss_terms(extras, cfg)
        stats.update(head_stats)
        if cfg.rollout_weight > 0 and pred.shape[1] > 1:  # step t+1 from ŝ_t (t ≥ 1)
            own = torch.cat([features[:, :1], pred[:, :-1].to(features.dtype)], dim=1)
            rolled = prediction_l1(self.world_model.predict(own, cond)[0], features,
                                   cfg.change_weight, skip=1, change_from=cfg.change_from)
            stats["rollout_loss"] = rolled.detach()
            aux = cfg.rollout_weight * rolled + (0 if aux is None else aux)
        loss = pred_loss + reg_loss if aux is None else pred_loss + reg_loss + aux
        latents = cond if self.uses_latents else None
        return LAMOutput(pred, latents, loss, pred_loss, reg_loss, stats, aux)

    def rollout(
        self,
        context: torch.Tensor,
        cond: torch.Tensor | None = None,
        horizon: int | None = None,
        use_cache: bool = True,
        next_cond=None,
        *,
        return_displacements: bool = False,
    ):
        """See :meth:`WorldModel.rollout`; ``cond`` are latents, actions or None by kind."""
        return self.world_model.rollout(context, cond, horizon, use_cache, next_cond,
                                        return_displacements=return_displacements)
