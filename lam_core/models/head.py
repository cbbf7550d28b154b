"""The world model's head: its output layer and what its outputs mean
(docs/DESIGN.md#world-model-heads).

A :class:`WorldModelHead` is the ``nn.Linear`` from the transformer's width to ``out_dim`` values
per merged token (so its weights stay ``world_model.head.*`` in every checkpoint), plus what
turns those values into the next step:

- :meth:`~WorldModelHead.next_steps`: head outputs and the steps they start from → the predicted
  next steps and the head's extras (for its loss terms; the flow head's flow);
- :meth:`~WorldModelHead.rollout_state`: state a rollout carries from step to step (the flow
  head's :class:`~lam_core.models.flow.FlowComposer`; None here);
- :meth:`~WorldModelHead.displacement`: where a rollout's last step takes its pixels from in the
  rollout's anchor frame (the flow head's composed flow; None here), for rendering a rollout at
  a display resolution (:mod:`lam_core.rendering`);
- :meth:`~WorldModelHead.loss_terms`: an auxiliary loss and logged stats from the extras;
- :meth:`~WorldModelHead.check`: the ``LAMConfig`` values the head cannot work with, as a
  ``ValueError`` whose message starts with the dotted key (``lam.flow_grid: …``).

:class:`FeatureHead` is the paper's. The registry of heads (``lam.head``) is
:mod:`lam_core.models.heads`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lam_core.config import LAMConfig
from lam_core.nn import merge_tokens, split_tokens


class WorldModelHead(nn.Linear):
    """Base of the world model's heads: a linear layer ``width → out_dim`` per merged token.

    Subclasses set :meth:`output_dim` and :meth:`next_steps`, and may override
    :meth:`check`, :meth:`zero_init`, :meth:`rollout_state` and :meth:`loss_terms`.

    Args:
        cfg: the LAM config (checked with :meth:`check` first).
        width: the world model's width.
    """

    def __init__(self, cfg: LAMConfig, width: int):
        self.check(cfg)
        super().__init__(width, self.output_dim(cfg))
        self.cfg = cfg
        if self.zero_init(cfg):  # an untrained model copies the last step
            nn.init.zeros_(self.weight)
            nn.init.zeros_(self.bias)

    @classmethod
    def check(cls, cfg: LAMConfig) -> None:
        """Raise ``ValueError`` (message ``lam.<key>: …``) for settings this head cannot use."""

    @classmethod
    def output_dim(cls, cfg: LAMConfig) -> int:
        """Outputs per merged token."""
        raise NotImplementedError

    @classmethod
    def zero_init(cls, cfg: LAMConfig) -> bool:
        """Whether the output layer starts at zero."""
        return True

    @property
    def out_dim(self) -> int:
        """Outputs per merged token."""
        return self.out_features

    def next_steps(self, out: torch.Tensor, features: torch.Tensor,
                   state: Any = None) -> tuple[torch.Tensor, Any]:
        """Head outputs ``(B, S, n, out_dim)`` and the S steps they start from ``(B, S, N, D)``
        → the predicted next steps ``(B, S, N, D)`` and the extras :meth:`loss_terms` reads
        (None: nothing). ``state`` is :meth:`rollout_state`'s (rollouts, S = 1) or None."""
        raise NotImplementedError

    def rollout_state(self, context: torch.Tensor) -> Any:
        """State a rollout from ``context`` ``(B, C, N, D)`` passes to every :meth:`next_steps`
        (None: none)."""
        return None

    def displacement(self, state: Any) -> torch.Tensor | None:
        """After a rollout step, the composed displacement ``(B, 2, H, W)`` (pixels, x then y)
        from the rollout's anchor frame: that step's pixel ``x`` comes from the anchor at ``x +
        D(x)``. None for heads that do not move pixels (all but the flow head)."""
        return None

    def loss_terms(self, extras: Any, cfg: LAMConfig) -> tuple[torch.Tensor | None, dict]:
        """Teacher forcing: ``(auxiliary loss | None, {name: detached scalar})`` from the extras of
        :meth:`next_steps`."""
        return None, {}


class FeatureHead(WorldModelHead):
    """``lam.head: features`` (the paper): the next step's features, predicted as the change
    ``s_t+1 − s_t`` with ``lam.predict_residual`` (the output layer then starts at zero)."""

    @classmethod
    def output_dim(cls, cfg: LAMConfig) -> int:
        return cfg.feature_dim * cfg.token_merge * cfg.token_merge

    @classmethod
    def zero_init(cls, cfg: LAMConfig) -> bool:
        return cfg.predict_residual

    def next_steps(self, out, features, state=None):
        cfg = self.cfg
        if cfg.predict_residual:
            out = out + merge_tokens(features, cfg.grid, cfg.grid, cfg.token_merge)
        return split_tokens(out, cfg.grid, cfg.grid, cfg.token_merge), None
