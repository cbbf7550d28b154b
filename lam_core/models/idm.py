"""Inverse dynamics model g(s_t, s_t+1) → one raw latent per transition (paper §3).

A small transformer over the tokens of the two steps (``input="pair"``: 3-D RoPE with time 0 and
1, full attention inside the pair) or over one token per position holding ``s_t``, ``s_t+1`` and
their difference (``input="difference"``: half the tokens, and small changes such as a mover's
stand out); optionally ``k × k`` neighbouring tokens merged into one first. Mean-pooled and
projected to the regularizer's raw width (D_z, or 2·D_z for the noisy regularizer's mean and
log-variance): over the whole frame (one latent per transition, the paper), or over each cell of
a ``cells × cells`` grid (``LAMConfig.latent_grid``: one latent per cell, so the evidence of a
small moving object is not averaged away by the still rest of the frame), optionally followed by
one latent over the whole frame (``LAMConfig.global_latent``: the camera's motion, pooled over
every cell's evidence).
"""

from __future__ import annotations

import torch
from torch import nn

from lam_core.config import TransformerConfig
from lam_core.nn import (
    Block,
    grid_positions,
    merge_tokens,
    merged_grid,
    neighbourhood_mask,
    shared_rotation,
)

INPUTS = ("pair", "difference")


class InverseDynamics(nn.Module):
    """IDM.

    Args:
        feature_dim: D_enc.
        grid: tokens per row/column of a step.
        out_dim: raw latent width.
        cfg: transformer shape.
        merge: tokens merged per row/column before the transformer (1: none).
        input: ``"pair"`` or ``"difference"`` (see the module docstring).
        cells: latents per row/column of a step (1: one per transition); must divide the
            merged grid.
        radius: 0: every token attends to every other; ``r ≥ 1``: only to tokens at most ``r``
            rows and columns away (a cell's latent then reads the motion near it, not a far
            object's).
        global_latent: with cells, one more latent per step from the mean of every token (its
            own head, :attr:`global_head`).
    """

    def __init__(
        self,
        feature_dim: int,
        grid: int,
        out_dim: int,
        cfg: TransformerConfig,
        merge: int = 1,
        input: str = "pair",
        cells: int = 1,
        radius: int = 0,
        global_latent: bool = False,
    ):
        super().__init__()
        self.check(grid, merge, input, cells, radius, global_latent)
        self.grid, self.merge, self.input = grid, merge, input
        self.merged = merged_grid(grid, merge)
        self.cells = cells
        self.radius = radius
        width_in = feature_dim * merge * merge * (3 if input == "difference" else 1)
        self.proj = nn.Linear(width_in, cfg.width)
        self.blocks = nn.ModuleList(
            Block(cfg.width, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(cfg.width)
        self.head = nn.Linear(cfg.width, out_dim)
        self.global_head = nn.Linear(cfg.width, out_dim) if global_latent else None

    @staticmethod
    def check(grid: int, merge: int = 1, input: str = "pair", cells: int = 1,
              radius: int = 0, global_latent: bool = False) -> None:
        """Raise ``ValueError`` (``lam.<key>: …``, the LAM's keys) for settings the IDM cannot
        use (the arguments are the constructor's)."""
        if input not in INPUTS:
            raise ValueError(f"lam.idm_input: must be {' or '.join(INPUTS)}, not {input!r}")
        merged = merged_grid(grid, merge, "lam.idm_token_merge")
        if cells < 1 or merged % cells:
            raise ValueError(f"lam.latent_grid: must divide the IDM's token grid {merged} (grid "
                             f"/ lam.idm_token_merge), not latent_grid {cells}")
        if radius < 0:
            raise ValueError(f"lam.idm_radius: must be ≥ 0 (0: attention across the frame), not "
                             f"{radius}")
        if global_latent and cells == 1:
            raise ValueError("lam.global_latent: needs a latent grid (lam.latent_grid > 1); with "
                             "one latent per step that latent is already the frame's")

    @torch.no_grad()
    def seed_global_head(self) -> None:
        """Start the global head as a copy of the cells' head: the global latent is then the
        mean of the cells' (the head is linear), the frame's pooled motion (a warm start from a
        model without one)."""
        self.global_head.load_state_dict(self.head.state_dict())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Infer raw latents for every transition.

        Args:
            features: ``(B, T', N, D_enc)``.

        Returns:
            ``(B, T' - 1, out_dim)``, or ``(B, T' - 1, cells² (+ 1), out_dim)`` with a latent
            grid (cells in row-major order, then the global latent if any); entry t depends only
            on steps t and t+1.
        """
        features = merge_tokens(features, self.grid, self.grid, self.merge)
        b, steps, n, d = features.shape
        before, after = features[:, :-1], features[:, 1:]
        if self.input == "difference":  # B·(T'-1), N, 3D
            x = self.proj(torch.cat([before, after, after - before], -1).reshape(-1, n, 3 * d))
            pos = grid_positions(1, self.merged, self.merged, x.device)
        else:
            pairs = torch.stack([before, after], dim=2)  # B, T'-1, 2, N, D
            x = self.proj(pairs.reshape(b * (steps - 1), 2 * n, d))
            pos = grid_positions(2, self.merged, self.merged, x.device)
        pos = shared_rotation(self.blocks, pos)
        mask = None
        if self.radius > 0:
            grids = 1 if self.input == "difference" else 2
            mask = neighbourhood_mask(self.merged, self.radius, grids, x.device)
        for blk in self.blocks:
            x = blk(x, pos, mask)
        x = self.norm(x)
        if self.cells == 1:
            return self.head(x.mean(dim=1)).reshape(b, steps - 1, -1)
        if self.input == "pair":  # a position's tokens of both steps are one cell's evidence
            x = x.reshape(x.shape[0], 2, n, -1).mean(dim=1)
        g, c = self.merged, self.cells  # mean over each (g/c)² block of positions
        out = self.head(x.reshape(-1, c, g // c, c, g // c, x.shape[-1]).mean(dim=(2, 4)))
        out = out.reshape(b, steps - 1, c * c, -1)
        if self.global_head is None:
            return out
        whole = self.global_head(x.mean(dim=1)).reshape(b, steps - 1, 1, -1)
        return torch.cat([out, whole], dim=2)
