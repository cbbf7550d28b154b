"""World model p(s_0:t, z_t) → ŝ_t+1: a ViT with 3-D RoPE, frame-causal attention and frame-wise
AdaLN-zero conditioning (paper §4, App. A; AdaLN-zero from Peebles & Xie, 2023).

The condition of step t (a latent action z_t, a real action a_t, or nothing for the deterministic
model) modulates only the tokens of step t. A grid of latents (``LAMConfig.latent_grid``) is
applied where it was inferred: each token of step t gets its own cell's embedding added, and the
AdaLN modulation takes the mean embedding of the cells (or, with ``cell_modulation``, each
token its own cell's); a global latent (``LAMConfig.global_latent``) has its own embedding,
added to every cell's. The head (``lam.head``, :mod:`lam_core.models.heads`) is the output layer
and decides what its outputs mean: the next step's features (the paper), or on pixel features a
flow that warps the last frame (:mod:`lam_core.models.flow`). Training uses teacher forcing
(:meth:`forward`); rollouts are autoregressive with a key/value cache (:meth:`rollout`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from lam_core.config import LAMConfig
from lam_core.models.heads import build_head, check_head
from lam_core.nn import (
    MLP,
    Attention,
    KVCache,
    frame_causal_mask,
    grid_positions,
    merge_tokens,
    merged_grid,
    shared_rotation,
)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class AdaLNBlock(nn.Module):
    """Transformer block whose norms are modulated per step by the condition; gates start at zero,
    so the block is the identity at initialisation."""

    def __init__(self, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = MLP(width, int(width * mlp_ratio))
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))
        nn.init.zeros_(self.modulation[-1].weight)
        nn.init.zeros_(self.modulation[-1].bias)

    def forward(self, x, cond, positions, mask, cache=None, layer=0):
        """``x``: ``(B, S, N, W)`` tokens of S steps; ``cond``: ``(B, S, W)``, one per step, or
        ``(B, S, N, W)``, one per token."""
        b, s, n, w = x.shape
        mod = self.modulation(cond)
        if mod.ndim == 3:
            mod = mod[:, :, None]  # B, S, 1, 6W: frame-wise
        shift1, scale1, gate1, shift2, scale2, gate2 = mod.chunk(6, dim=-1)
        h = modulate(self.norm1(x), shift1, scale1).reshape(b, s * n, w)
        x = x + gate1 * self.attn(h, positions, mask, cache, layer).reshape(b, s, n, w)
        return x + gate2 * self.mlp(modulate(self.norm2(x), shift2, scale2))


class RolloutCache(KVCache):
    """A :class:`KVCache` with room for ``capacity`` tokens per layer, allocated at the first
    append: each step writes its keys and values in place (appending by concatenation copies the
    whole cache at every step, O(steps²)). Same keys and values, bit for bit.

    Args:
        capacity: tokens per layer it will hold (steps processed × tokens per step).
    """

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity
        self.filled: dict[int, int] = {}

    def get(self, layer: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if layer not in self.keys:
            return None, None
        end = self.filled[layer]
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        start = self.filled.get(layer, 0)
        end = start + k.shape[2]
        if layer not in self.keys or end > self.keys[layer].shape[2]:  # first, or more than planned
            room = max(self.capacity, 2 * end if layer in self.keys else end)
            shape = (k.shape[0], k.shape[1], room, k.shape[3])
            held = self.get(layer)
            self.keys[layer], self.values[layer] = k.new_empty(shape), v.new_empty(shape)
            if held[0] is not None:
                self.keys[layer][:, :, :start], self.values[layer][:, :, :start] = held
        self.keys[layer][:, :, start:end] = k
        self.values[layer][:, :, start:end] = v
        self.filled[layer] = end
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def broadcast(self, batch: int) -> None:
        """Copy a batch-1 cache (a shared prefix) to ``batch`` rows."""
        for store in (self.keys, self.values):
            for layer, held in store.items():
                if held.shape[0] != batch:
                    full = held.new_empty(batch, *held.shape[1:])
                    full[:, :, : self.filled[layer]] = held[:, :, : self.filled[layer]]
                    store[layer] = full


class WorldModel(nn.Module):
    """Frame-causal, frame-wise conditioned ViT predictor.

    Args:
        cfg: the LAM config (``kind`` decides the condition: latents, actions or none).
    """

    def __init__(self, cfg: LAMConfig):
        super().__init__()
        self.check(cfg)
        self.cfg = cfg
        wm = cfg.world_model
        k = cfg.token_merge
        self.grid = merged_grid(cfg.grid, k)
        self.proj_in = nn.Linear(cfg.feature_dim * k * k, wm.width)
        per_cell = cfg.regularizer.latent_dim
        cond_dim = {"latent": per_cell, "action": cfg.action_dim, "deterministic": 0}[cfg.kind]
        self.cells = cfg.latent_cells if cfg.kind == "latent" else 1
        self.global_embed = None
        if cond_dim:
            self.cond_embed = nn.Sequential(
                nn.Linear(cond_dim, wm.width), nn.SiLU(), nn.Linear(wm.width, wm.width)
            )
            if cfg.global_latent and cfg.kind == "latent":  # zero at init: changes nothing yet
                self.global_embed = nn.Sequential(
                    nn.Linear(cond_dim, wm.width), nn.SiLU(), nn.Linear(wm.width, wm.width)
                )
                nn.init.zeros_(self.global_embed[-1].weight)
                nn.init.zeros_(self.global_embed[-1].bias)
        else:
            self.cond_embed = None
            self.null_cond = nn.Parameter(torch.zeros(wm.width))
        self.blocks = nn.ModuleList(
            AdaLNBlock(wm.width, wm.heads, wm.mlp_ratio) for _ in range(wm.depth)
        )
        self.final_norm = nn.LayerNorm(wm.width, elementwise_affine=False, eps=1e-6)
        self.final_modulation = nn.Sequential(nn.SiLU(), nn.Linear(wm.width, 2 * wm.width))
        nn.init.zeros_(self.final_modulation[-1].weight)
        nn.init.zeros_(self.final_modulation[-1].bias)
        self.head = build_head(cfg, wm.width)  # the output layer and what it means

    @staticmethod
    def check(cfg: LAMConfig) -> None:
        """Raise ``ValueError`` (``lam.<key>: …``) for settings the world model cannot use: the
        token merge, the latent grid (the merged token grid) and the head's own."""
        grid = merged_grid(cfg.grid, cfg.token_merge, "lam.token_merge")
        if cfg.latent_grid != 1 and (cfg.kind != "latent" or cfg.latent_grid != grid):
            raise ValueError(f"lam.latent_grid: must be 1 or, for latent models, the world "
                             f"model's merged token grid {grid} (grid {cfg.grid} / "
                             f"lam.token_merge {cfg.token_merge}), not latent_grid "
                             f"{cfg.latent_grid}")
        if cfg.cell_modulation and cfg.latent_grid == 1:
            raise ValueError("lam.cell_modulation: needs a latent grid (lam.latent_grid > 1)")
        check_head(cfg)

    def embed_conditions(self, cond: torch.Tensor | None, b: int, steps: int):
        """``(B, S, C)`` or None → the step's embedding ``(B, S, W)`` and, with a latent grid,
        each cell's ``(B, S, cells, W)`` (else None)."""
        if self.cond_embed is None:
            return self.null_cond.expand(b, steps, -1), None
        if cond is None or cond.shape[:2] != (b, steps):
            got = None if cond is None else tuple(cond.shape)
            raise ValueError(f"expected conditions of shape ({b}, {steps}, C), got {got}")
        if self.cells == 1:
            return self.cond_embed(cond), None
        slots = cond.unflatten(-1, (self.cells + int(self.global_embed is not None), -1))
        cells = self.cond_embed(slots[:, :, : self.cells])  # B, S, cells, W
        if self.global_embed is not None:  # the frame's latent joins every cell's
            cells = cells + self.global_embed(slots[:, :, -1:])
        return cells.mean(dim=2), cells

    def _run(self, features, cond, t0: int, cache: KVCache | None) -> torch.Tensor:
        """Head outputs ``(B, S, n, out)`` for each of the S given steps (positions from ``t0``).

        Features of batch 1 with conditions of batch B are broadcast (a shared start): the
        tokens are projected once and the conditions make them B."""
        cfg, k = self.cfg, self.cfg.token_merge
        b, s, _, _ = features.shape
        if cond is not None and cond.shape[0] > b == 1:
            b = cond.shape[0]
        tokens = merge_tokens(features, cfg.grid, cfg.grid, k)  # B|1, S, n, k²D
        n = tokens.shape[2]
        c, per_token = self.embed_conditions(cond, b, s)  # B, S, W; B, S, n, W | None
        x = self.proj_in(tokens)  # B|1, S, n, W
        if per_token is not None:
            x = x + per_token
        elif cfg.condition_add:
            x = x + c[:, :, None]
        x = x.expand(b, -1, -1, -1)  # B, S, n, W
        pos = shared_rotation(self.blocks, grid_positions(s, self.grid, self.grid, x.device, t0=t0))
        past = cache.steps if cache is not None else 0
        # one query step sees every cached step and itself: no mask needed (same result)
        mask = None if s == 1 else frame_causal_mask(s, n, x.device, past_steps=past)
        if per_token is not None and cfg.cell_modulation:
            c = per_token
        for i, blk in enumerate(self.blocks):
            x = blk(x, c, pos, mask, cache, i)
        if cache is not None:
            cache.steps += s
        mod = self.final_modulation(c)
        shift, scale = (mod if mod.ndim == 4 else mod[:, :, None]).chunk(2, dim=-1)
        return self.head(modulate(self.final_norm(x), shift, scale))  # B, S, n, out

    def predict(self, features: torch.Tensor, cond: torch.Tensor | None = None):
        """Teacher forcing with the head's extras: ``(ŝ_1 … ŝ_S (B, S, N, D), extras)`` (the
        flow head's flow; see :meth:`WorldModelHead.loss_terms
        <lam_core.models.head.WorldModelHead.loss_terms>`). See :meth:`forward`."""
        return self.head.next_steps(self._run(features, cond, 0, None), features)

    def forward(self, features: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher forcing.

        Args:
            features: ``(B, S, N, D)`` steps s_0 … s_S-1.
            cond: ``(B, S, C)``: the condition of each step's transition (z_t for s_t → s_t+1), or
                None for the deterministic model.

        Returns:
            ``(B, S, N, D)``: ŝ_1 … ŝ_S; entry t depends only on steps ≤ t and conditions ≤ t.
        """
        return self.predict(features, cond)[0]

    def rollout(
        self,
        context: torch.Tensor,
        cond: torch.Tensor | None,
        horizon: int | None = None,
        use_cache: bool = True,
        next_cond: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
        *,
        return_displacements: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        """Autoregressive rollout from context steps.

        Args:
            context: ``(B, C, N, D)`` real steps s_0 … s_C-1; ``(1, C, N, D)`` with conditions of
                batch B is a start shared by B candidates (its shared prefix is computed once).
            cond: ``(B, C - 1 + H, C_dim)``: conditions of the context's transitions then of the H
                predicted ones; None for the deterministic model (then ``horizon`` is required).
            horizon: H (default: from ``cond``).
            use_cache: keep keys/values of processed steps (fast); False recomputes the prefix at
                every step (the reference the cache is tested against).
            next_cond: conditions decided during the rollout (a controller, paper App. A eq. 2):
                ``next_cond(i, s) -> (B, 1, C_dim)`` is the condition of predicted step ``i``
                given the step ``s`` ``(B, 1, N, D)`` it starts from. Then ``cond`` holds only
                the context's ``C - 1`` transitions (None when ``C = 1``) and ``horizon`` is
                required.
            return_displacements: also return, for each predicted step, the head's composed
                displacement from the anchor (the last context frame): ``(B, H, 2, h, w)``
                pixels at the model's resolution, step t's pixel ``x`` taken from the anchor at
                ``x + D_t(x)`` (:meth:`WorldModelHead.displacement
                <lam_core.models.head.WorldModelHead.displacement>`); None for a head without
                a flow. For rendering at a display resolution (:mod:`lam_core.rendering`).

        Returns:
            ``(B, H, N, D)`` predicted steps ŝ_C … ŝ_C+H-1; with ``return_displacements``, the
            pair ``(steps, displacements | None)``.
        """
        c = context.shape[1]
        known = 0 if cond is None else cond.shape[1]
        if next_cond is not None:
            if horizon is None or known != c - 1:
                raise ValueError(
                    f"with next_cond, give horizon and the {c - 1} context conditions "
                    f"(got horizon={horizon}, {known} conditions)"
                )
        elif horizon is None:
            if cond is None:
                raise ValueError("horizon is required when there are no conditions")
            horizon = known - (c - 1)
        if horizon < 1 or (next_cond is None and cond is not None and known < c - 1 + horizon):
            raise ValueError(
                f"need {c - 1 + horizon} conditions for {c} context steps + "
                f"{horizon} predictions, got {known}"
            )
        conds = [] if cond is None else list(cond.split(1, dim=1))

        def conditions(first: int, last: int, current: torch.Tensor) -> torch.Tensor | None:
            """Conditions of transitions ``first … last``; asks ``next_cond`` for new ones (a
            shared start's batch-1 conditions are broadcast to the candidates' batch)."""
            if next_cond is not None and len(conds) <= last:
                conds.append(next_cond(last - (c - 1), current))
            if not conds:
                return None
            parts = conds[first : last + 1]
            b = max(p.shape[0] for p in parts)
            return torch.cat([p.expand(b, -1, -1) for p in parts], dim=1)

        state = self.head.rollout_state(context)  # e.g. the flow head's FlowComposer
        preds: list[torch.Tensor] = []
        moves: list[torch.Tensor] = []  # composed displacements, when asked for
        prev = context[:, -1:]
        n = self.grid * self.grid
        cache = RolloutCache((c + horizon - 1) * n) if use_cache else None
        for i in range(horizon):
            t = c - 1 + i
            if not use_cache:  # recompute the whole prefix (the cache's reference)
                seq = torch.cat([context.expand(len(prev), -1, -1, -1), *preds], dim=1)
                out = self._run(seq, conditions(0, t, prev), 0, None)[:, -1:]
            elif i > 0:  # one new step, attending to the cached ones
                out = self._run(prev, conditions(t, t, prev), t, cache)
            else:
                out = self._first_step(context, conditions, cache)
            prev = self.head.next_steps(out, prev, state)[0]
            preds.append(prev)
            if return_displacements and (moved := self.head.displacement(state)) is not None:
                moves.append(moved)
        steps = torch.cat(preds, dim=1)
        if not return_displacements:
            return steps
        return steps, (torch.stack(moves, dim=1) if len(moves) == horizon else None)

    def _first_step(self, context: torch.Tensor, conditions, cache: RolloutCache):
        """Head output ``(B, 1, n, out)`` of the context's last step, the context in ``cache``.

        A context of batch 1 whose last transition has conditions of batch B (candidates that
        share a start, e.g. CEM) is a shared prefix: its first ``C − 1`` steps, conditioned on
        shared transitions, go through the model once, their keys and values are broadcast to
        the B candidates, and only the last context step is computed per candidate.
        """
        c, last = context.shape[1], context[:, -1:]
        cond = conditions(c - 1, c - 1, last)
        if cond is None or cond.shape[0] <= context.shape[0]:  # no broadcast: all steps at once
            return self._run(context, conditions(0, c - 1, last), 0, cache)[:, -1:]
        if c > 1:
            self._run(context[:, :-1], conditions(0, c - 2, last), 0, cache)
            cache.broadcast(cond.shape[0])
        return self._run(last, cond, c - 1, cache)
