"""Layers shared by the models of lam_core."""

from lam_core.nn.attention import (
    Attention,
    CrossAttention,
    KVCache,
    RoPE3D,
    Rotation,
    frame_causal_mask,
    grid_positions,
    neighbourhood_mask,
    shared_rotation,
)
from lam_core.nn.layers import (
    MLP,
    Block,
    merge_tokens,
    merged_grid,
    patchify,
    split_tokens,
    unpatchify,
)

__all__ = [
    "MLP",
    "Attention",
    "Block",
    "CrossAttention",
    "KVCache",
    "RoPE3D",
    "Rotation",
    "frame_causal_mask",
    "grid_positions",
    "merge_tokens",
    "merged_grid",
    "neighbourhood_mask",
    "patchify",
    "shared_rotation",
    "split_tokens",
    "unpatchify",
]
