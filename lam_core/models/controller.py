"""Controller c(a_t, s_t) → z_t: real actions to latent actions (paper §7, App. A).

Trained with L2 to the frozen IDM's latents on action-labeled video, so a latent action world model
can be driven (and planned with) in real actions.

* ``mlp``: z_t = MLP(a_t), ignoring the frame.
* ``adapter`` (App. A): 2 self-attention blocks over the current step's tokens (optionally
  ``k × k`` merged first, like the world model's: planning runs it once per candidate and step), a
  3-layer MLP embedding of the action, cross-attention from the action token to the frame tokens,
  then a linear layer to D_z. With a latent grid (``latent_grid > 1``) it answers per cell: the
  action's embedding is added to every frame token, a third block lets the cells agree, and each
  token's linear output is its cell's latent (and a global latent, if any, comes from their mean).
"""

from __future__ import annotations

import torch
from torch import nn

from lam_core.config import ControllerConfig
from lam_core.nn import (
    MLP,
    Block,
    CrossAttention,
    grid_positions,
    merge_tokens,
    merged_grid,
    shared_rotation,
)

KINDS = ("mlp", "adapter")


def action_mlp(action_dim: int, hidden: int, out: int) -> nn.Sequential:
    """3-layer MLP ``action_dim → hidden → hidden → out``."""
    return nn.Sequential(
        nn.Linear(action_dim, hidden),
        nn.GELU(),
        nn.Linear(hidden, hidden),
        nn.GELU(),
        nn.Linear(hidden, out),
    )


class Controller(nn.Module):
    """Controller.

    Args:
        cfg: controller config.
    """

    def __init__(self, cfg: ControllerConfig):
        super().__init__()
        self.check(cfg)
        self.cfg = cfg
        if cfg.kind == "mlp":
            self.action_embed = action_mlp(cfg.action_dim, cfg.hidden, cfg.latent_dim)
        else:
            self.merged = merged_grid(cfg.grid, cfg.token_merge)
            self.frame_proj = nn.Linear(cfg.feature_dim * cfg.token_merge**2, cfg.width)
            self.blocks = nn.ModuleList(Block(cfg.width, cfg.heads) for _ in range(2))
            self.action_embed = action_mlp(cfg.action_dim, cfg.hidden, cfg.width)
            self.cells = cfg.latent_grid * cfg.latent_grid
            if self.cells > 1:  # per cell: the action joins every token
                self.cell_block = Block(cfg.width, cfg.heads)
            else:  # one latent: the action token reads the frame
                self.norm_q = nn.LayerNorm(cfg.width)
                self.norm_kv = nn.LayerNorm(cfg.width)
                self.cross = CrossAttention(cfg.width, cfg.heads)
            self.norm_out = nn.LayerNorm(cfg.width)
            self.mlp = MLP(cfg.width, 4 * cfg.width)
            slots = self.cells + int(cfg.global_latent)
            self.out = nn.Linear(cfg.width, cfg.latent_dim // slots)
            self.out_global = (nn.Linear(cfg.width, cfg.latent_dim // slots)
                               if cfg.global_latent else None)

    @staticmethod
    def check(cfg: ControllerConfig) -> None:
        """Raise ``ValueError`` (``controller.<key>: …``) for settings the controller cannot use."""
        if cfg.kind not in KINDS:
            raise ValueError(f"controller.kind: must be {' or '.join(KINDS)}, not {cfg.kind!r}")
        merged = merged_grid(cfg.grid, cfg.token_merge, "controller.token_merge")
        cells = cfg.latent_grid * cfg.latent_grid
        slots = cells + int(cfg.global_latent)
        if cells > 1 and (cfg.kind != "adapter" or cfg.latent_grid != merged
                          or cfg.latent_dim % slots):
            raise ValueError(f"controller.latent_grid: a grid of {cfg.latent_grid}² latents needs "
                             f"the adapter with a merged token grid of the same size (got "
                             f"{cfg.kind}, {merged}) and latent_dim a multiple of the cells "
                             f"(+ 1 with a global latent)")
        if cfg.global_latent and cells == 1:
            raise ValueError("controller.global_latent: needs a latent grid "
                             "(controller.latent_grid > 1)")

    def forward(self, actions: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """Map actions to latent actions.

        Args:
            actions: ``(B, T, A)`` real actions a_t.
            features: ``(B, T, N, D)`` the step s_t each action starts from (adapter only).

        Returns:
            ``(B, T, D_z)`` latent actions.
        """
        cfg = self.cfg
        if cfg.kind == "mlp":
            return self.action_embed(actions)
        if features is None:
            raise ValueError("the adapter controller needs the current step's features")
        features = merge_tokens(features, cfg.grid, cfg.grid, cfg.token_merge)
        b, t, n, d = features.shape
        ba = actions.shape[0]
        if b not in (1, ba):
            raise ValueError(f"features of batch {b} for actions of batch {ba}: give one start "
                             "per action sequence, or one shared by all")
        x = self.frame_proj(features.reshape(b * t, n, d))
        pos = shared_rotation(self.blocks, grid_positions(1, self.merged, self.merged, x.device))
        for blk in self.blocks:
            x = blk(x, pos)
        if b != ba:  # one start shared by the candidates (CEM): encoded once, then broadcast
            x = x.reshape(1, t, n, -1).expand(ba, -1, -1, -1).reshape(ba * t, n, -1)
        b = ba
        q = self.action_embed(actions.reshape(b * t, 1, -1))  # B*T, 1, W
        if self.cells > 1:  # every cell's token hears the action; each gives its cell's latent
            h = self.cell_block(x + q, pos)
            h = h + self.mlp(self.norm_out(h))
            z = self.out(h)  # B*T, cells, d: cells in row-major order
            if self.out_global is not None:  # then the frame's latent
                z = torch.cat([z, self.out_global(h.mean(dim=1, keepdim=True))], dim=1)
            return z.reshape(b, t, cfg.latent_dim)
        q = q + self.cross(self.norm_q(q), self.norm_kv(x))
        q = q + self.mlp(self.norm_out(q))
        return self.out(q).reshape(b, t, cfg.latent_dim)
