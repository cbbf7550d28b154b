"""Layers shared by several models: MLP, pre-LN transformer block, (un)patchify of videos."""

from __future__ import annotations

import torch
from torch import nn

from lam_core.nn.attention import Attention, KVCache


class MLP(nn.Module):
    """Two-layer GELU MLP ``dim → hidden → out``."""

    def __init__(self, dim: int, hidden: int, out: int | None = None):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden, out or dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-LN transformer block: ``x + attn(LN(x))``, then ``x + mlp(LN(x))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, rope: bool = True):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, rope=rope)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(
        self,
        x: torch.Tensor,
        positions: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
        layer: int = 0,
    ) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), positions, mask, cache, layer)
        return x + self.mlp(self.norm2(x))


def patchify(video: torch.Tensor, tubelet: int, patch: int) -> torch.Tensor:
    """Cut a video into tubelet × patch × patch cubes.

    Args:
        video: ``(B, T, C, H, W)`` with ``T % tubelet == 0`` and ``H, W`` multiples of ``patch``.

    Returns:
        ``(B, T / tubelet, (H / patch) * (W / patch), tubelet * patch * patch * C)``.
    """
    b, t, c, h, w = video.shape
    if t % tubelet or h % patch or w % patch:
        raise ValueError(
            f"video of shape {tuple(video.shape)} does not tile into tubelet {tubelet}, "
            f"patch {patch}"
        )
    x = video.reshape(b, t // tubelet, tubelet, c, h // patch, patch, w // patch, patch)
    x = x.permute(0, 1, 4, 6, 2, 5, 7, 3)  # B, T', h, w, tubelet, p, p, C
    return x.reshape(b, t // tubelet, (h // patch) * (w // patch), tubelet * patch * patch * c)


def unpatchify(
    tokens: torch.Tensor, tubelet: int, patch: int, rows: int, cols: int
) -> torch.Tensor:
    """Inverse of :func:`patchify`: ``(B, T', rows*cols, tubelet*p*p*C)`` → ``(B, T, C, H, W)``."""
    b, steps, _, d = tokens.shape
    c = d // (tubelet * patch * patch)
    x = tokens.reshape(b, steps, rows, cols, tubelet, patch, patch, c)
    x = x.permute(0, 1, 4, 7, 2, 5, 3, 6)  # B, T', tubelet, C, rows, p, cols, p
    return x.reshape(b, steps * tubelet, c, rows * patch, cols * patch)


def merged_grid(grid: int, k: int, name: str = "token_merge") -> int:
    """Tokens per row after :func:`merge_tokens` with ``k``; ``name`` is the setting's dotted key
    in the error when ``k`` does not divide ``grid`` (the one check of every token merge)."""
    if k < 1 or grid % k:
        raise ValueError(f"{name}: must divide the token grid ({grid} tokens per row), not "
                         f"{name.rsplit('.', 1)[-1]} {k}")
    return grid // k


def merge_tokens(x: torch.Tensor, rows: int, cols: int, k: int) -> torch.Tensor:
    """Merge ``k × k`` neighbouring tokens of a grid.

    ``(B, T, rows*cols, D)`` → ``(B, T, rows*cols/k², k²D)``.
    """
    if k == 1:
        return x
    b, t, _, d = x.shape
    x = x.reshape(b, t, rows // k, k, cols // k, k, d).permute(0, 1, 2, 4, 3, 5, 6)
    return x.reshape(b, t, (rows // k) * (cols // k), k * k * d)


def split_tokens(x: torch.Tensor, rows: int, cols: int, k: int) -> torch.Tensor:
    """Inverse of :func:`merge_tokens` (``rows``, ``cols`` of the fine grid)."""
    if k == 1:
        return x
    b, t, _, kd = x.shape
    d = kd // (k * k)
    x = x.reshape(b, t, rows // k, cols // k, k, k, d).permute(0, 1, 2, 4, 3, 5, 6)
    return x.reshape(b, t, rows * cols, d)
