"""Frame-causal ViT decoder: features → pixels (paper App. A), trained with L1 + LPIPS.

Only for looking at predictions and scoring them in pixel space; the latent action model never
sees pixels.
"""

from __future__ import annotations

import torch
from torch import nn

from lam_core.config import DecoderConfig
from lam_core.nn import Block, frame_causal_mask, grid_positions, shared_rotation, unpatchify


class PatchDecoder(nn.Module):
    """The exact inverse of the patch encoder: patch pixels back into frames (no weights).

    Args:
        cfg: ``kind="patch"`` decoder config.
    """

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.cfg = cfg

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, T', grid², tubelet·p²·3)`` → ``(B, T'·tubelet, 3, H, W)``."""
        cfg = self.cfg
        if features.shape[2] != cfg.grid**2:
            raise ValueError(f"decoder expects {cfg.grid**2} tokens per step, got "
                             f"{features.shape[2]}")
        return unpatchify(features, cfg.tubelet, cfg.patch_size, cfg.grid, cfg.grid)


def build_decoder(cfg: DecoderConfig) -> nn.Module:
    """Build the decoder named by ``cfg.kind``."""
    if cfg.kind == "patch":
        return PatchDecoder(cfg)
    if cfg.kind == "vit":
        return Decoder(cfg)
    raise ValueError(f"unknown decoder kind {cfg.kind!r}; expected 'vit' or 'patch'")


class Decoder(nn.Module):
    """Decoder.

    Args:
        cfg: decoder config (its grid must match the encoder's).
    """

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.cfg = cfg
        self.proj = nn.Linear(cfg.feature_dim, cfg.width)
        self.blocks = nn.ModuleList(
            Block(cfg.width, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(cfg.width)
        self.head = nn.Linear(cfg.width, cfg.tubelet * cfg.patch_size**2 * 3)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Decode.

        Args:
            features: ``(B, T', N, D)`` with ``N = grid²``.

        Returns:
            ``(B, T' * tubelet, 3, H, W)``, roughly in [0, 1] (clamp to display); frames of step t
            depend only on steps ≤ t.
        """
        cfg = self.cfg
        b, steps, n, _ = features.shape
        if n != cfg.grid**2:
            raise ValueError(f"decoder expects {cfg.grid**2} tokens per step, got {n}")
        x = self.proj(features).reshape(b, steps * n, cfg.width)
        pos = shared_rotation(self.blocks, grid_positions(steps, cfg.grid, cfg.grid, x.device))
        mask = frame_causal_mask(steps, n, x.device)
        for blk in self.blocks:
            x = blk(x, pos, mask)
        x = self.head(self.norm(x)).reshape(b, steps, n, -1)
        return unpatchify(x, cfg.tubelet, cfg.patch_size, cfg.grid, cfg.grid) + 0.5
