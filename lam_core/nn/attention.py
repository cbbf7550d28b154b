"""Attention with 3-D rotary position embeddings (time, row, column) and frame-causal masks.

Every transformer in lam-studio (encoder, IDM, world model, decoder, controller) attends through
:class:`Attention`: ``scaled_dot_product_attention`` with RoPE applied per axis (paper §4: "RoPE
(Su et al., 2021; Assran et al., 2025)"), optionally with a key/value cache for autoregressive
rollouts.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


def grid_positions(steps: int, rows: int, cols: int, device=None, t0: int = 0) -> torch.Tensor:
    """Integer positions of a ``steps × rows × cols`` token grid, time-major.

    Returns:
        ``(steps * rows * cols, 3)`` long tensor of ``(t, row, col)``; ``t`` starts at ``t0``.
    """
    t = torch.arange(t0, t0 + steps, device=device)
    r = torch.arange(rows, device=device)
    c = torch.arange(cols, device=device)
    return torch.stack(torch.meshgrid(t, r, c, indexing="ij"), dim=-1).reshape(-1, 3)


def frame_causal_mask(
    steps: int, tokens_per_step: int, device=None, past_steps: int = 0
) -> torch.Tensor:
    """Boolean attention mask where a token of step t sees every token of steps ≤ t.

    Args:
        steps: number of query steps.
        tokens_per_step: tokens in each step.
        past_steps: cached steps before the queries (all visible to every query).

    Returns:
        ``(steps * N, (past_steps + steps) * N)`` bool, True = may attend.
    """
    q_step = torch.arange(steps, device=device).repeat_interleave(tokens_per_step) + past_steps
    k_step = torch.arange(past_steps + steps, device=device).repeat_interleave(tokens_per_step)
    return q_step[:, None] >= k_step[None, :]


def neighbourhood_mask(grid: int, radius: int, steps: int = 1, device=None) -> torch.Tensor:
    """Boolean attention mask over ``steps`` grids of ``grid × grid`` tokens (step-major, rows
    then columns): a token sees the tokens, of any step, at most ``radius`` rows and columns away.

    Returns:
        ``(steps · grid², steps · grid²)`` bool, True = may attend.
    """
    idx = torch.arange(grid * grid, device=device)
    row, col = (idx // grid).repeat(steps), (idx % grid).repeat(steps)
    return ((row[:, None] - row[None, :]).abs() <= radius) & (
        (col[:, None] - col[None, :]).abs() <= radius)


class Rotation(NamedTuple):
    """cos and sin of the RoPE angles of a token grid, each ``(L, head_dim)``: computed once per
    forward and shared by every layer of a stack (:func:`shared_rotation`) instead of per layer
    and per query/key."""

    cos: torch.Tensor
    sin: torch.Tensor


class RoPE3D(nn.Module):
    """Rotary embedding over (time, row, column): each axis rotates its own share of a head.

    A head of width ``d`` is seen as ``d/2`` channel pairs ``(i, i + d/2)``; ``d // 6`` pairs
    rotate with the time position, as many with the row and with the column, at frequencies
    ``θ^(-2k/a)`` (``a = 2·(d // 6)``); left-over pairs are not rotated. Scores then depend only
    on relative positions. Angles are one small matmul, the rotation a fused multiply-add.
    """

    def __init__(self, head_dim: int, theta: float = 10000.0):
        super().__init__()
        pairs = head_dim // 6
        if pairs == 0:
            raise ValueError(f"head_dim must be ≥ 6 for 3-D RoPE, got {head_dim}")
        if head_dim % 2:
            raise ValueError(f"head_dim must be even for RoPE, got {head_dim}")
        inv_freq = 1.0 / theta ** (torch.arange(pairs).float() * 2 / (2 * pairs))
        freqs = torch.zeros(3, head_dim // 2)  # (axis, pair) → angular frequency
        for axis in range(3):
            freqs[axis, axis * pairs : (axis + 1) * pairs] = inv_freq
        self.register_buffer("freqs", freqs, persistent=False)

    def angles(self, positions: torch.Tensor) -> Rotation:
        """cos and sin of the angles of ``positions`` (``(L, 3)`` integer ``(t, row, col)``)."""
        angles = positions.to(self.freqs.dtype) @ self.freqs  # L, d/2
        return Rotation(torch.cat([angles.cos()] * 2, dim=-1), torch.cat([angles.sin()] * 2, -1))

    def rotation(self, positions: torch.Tensor | Rotation) -> Rotation:
        """``positions`` as a :class:`Rotation` (already one: as it is)."""
        return positions if isinstance(positions, Rotation) else self.angles(positions)

    def forward(self, x: torch.Tensor, positions: torch.Tensor | Rotation) -> torch.Tensor:
        """Rotate ``x``.

        Args:
            x: ``(B, heads, L, head_dim)``.
            positions: ``(L, 3)`` integer ``(t, row, col)``, or their :meth:`angles`.
        """
        rot = self.rotation(positions)
        cos, sin = rot.cos.to(x.dtype), rot.sin.to(x.dtype)
        x1, x2 = x.chunk(2, dim=-1)
        return x * cos + torch.cat((-x2, x1), dim=-1) * sin


def shared_rotation(blocks, positions: torch.Tensor) -> torch.Tensor | Rotation:
    """The RoPE angles of ``positions`` for a stack of blocks whose attention heads share one
    width (so one :class:`RoPE3D` frequency table), computed once; ``positions`` unchanged when
    the stack has no RoPE."""
    rope = blocks[0].attn.rope if len(blocks) else None
    return positions if rope is None else rope.angles(positions)


class KVCache:
    """Keys and values of already processed tokens, one entry per attention layer."""

    def __init__(self):
        self.keys: dict[int, torch.Tensor] = {}
        self.values: dict[int, torch.Tensor] = {}
        self.steps = 0  # number of complete steps held

    def get(self, layer: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        return self.keys.get(layer), self.values.get(layer)

    def append(
        self, layer: int, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if layer in self.keys:
            k = torch.cat([self.keys[layer], k], dim=2)
            v = torch.cat([self.values[layer], v], dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v


class Attention(nn.Module):
    """Multi-head self-attention over ``scaled_dot_product_attention`` with 3-D RoPE."""

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True, rope: bool = True):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.rope = RoPE3D(self.head_dim) if rope else None

    def forward(
        self,
        x: torch.Tensor,
        positions: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
        layer: int = 0,
    ) -> torch.Tensor:
        """Attend.

        Args:
            x: ``(B, L, D)`` tokens.
            positions: ``(L, 3)`` positions of these tokens (required when RoPE is on), or
                their :class:`Rotation` (:func:`shared_rotation`).
            mask: bool ``(L, L_keys)``, True = may attend; ``L_keys`` includes cached tokens.
            cache: when given, keys/values of ``x`` are appended and attention runs over all.
            layer: index of this layer in ``cache``.

        Returns:
            ``(B, L, D)``.
        """
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if self.rope is not None:  # one set of angles for queries and keys
            rot = self.rope.rotation(positions)
            q, k = self.rope(q, rot), self.rope(k, rot)
        if cache is not None:
            k, v = cache.append(layer, k, v)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class CrossAttention(nn.Module):
    """Multi-head cross-attention (queries from one set of tokens, keys/values from another)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B, Lq, D)``, ``context``: ``(B, Lk, D)`` → ``(B, Lq, D)``."""
        b, lq, d = x.shape
        h = self.heads
        q = self.q(x).view(b, lq, h, d // h).transpose(1, 2)
        k, v = self.kv(context).view(b, -1, 2, h, d // h).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, lq, d))
