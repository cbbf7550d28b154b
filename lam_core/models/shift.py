"""A world-model head that moves tokens instead of repainting them (``lam.head: shift``; beyond
the paper).

The feature head regresses the next step, and under uncertainty a regression averages: content
moves by a fraction of the distance and blurs (docs/DESIGN.md#why-a-flow-head). The flow head
avoids that by warping pixels, so it needs pixel features. This head does the same on any
features (V-JEPA 2's as well as patches), one token at a time: each token of ``s_t+1`` says where
in the 3 × 3 neighbourhood of its position in ``s_t`` its content comes from (softmax weights
``w``) and adds a residual ``r`` for what no neighbour holds (content entering the view)::

    ŝ_t+1(x) = Σ_j w_j(x) · s_t(x + δ_j) + r(x),   δ_j ∈ {−1, 0, 1}²

Content moves by whole tokens (a patch, or ``token_merge`` patches, per step), so the head suits
motion of a token or more per step. The output layer starts at zero and the centre's logit
carries a fixed bias (:data:`STAY_BIAS`), so an untrained model keeps 99.7 % of each token in
place. The logged ``shift_tokens`` is the mean length of ``Σ_j w_j δ_j``, in tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lam_core.config import LAMConfig
from lam_core.models.head import WorldModelHead
from lam_core.nn import split_tokens

OFFSETS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))  # rows, columns; centre: 4
STAY_BIAS = 8.0  # added to the centre's logit: e⁸ / (e⁸ + 8) ≈ 0.997 of a token stays at first


class ShiftHead(WorldModelHead):
    """``lam.head: shift``: per token, 9 logits (its 3 × 3 neighbourhood in ``s_t``, row-major)
    then ``D`` residual values."""

    @classmethod
    def output_dim(cls, cfg: LAMConfig) -> int:
        return cfg.token_merge * cfg.token_merge * (len(OFFSETS) + cfg.feature_dim)

    def next_steps(self, out, features, state=None):
        """The extras are the weights ``(B, S, N, 9)``."""
        cfg, g = self.cfg, self.cfg.grid
        per_token = split_tokens(out, g, g, cfg.token_merge).float()  # B, S, N, 9 + D
        logits, residual = per_token.split([len(OFFSETS), cfg.feature_dim], dim=-1)
        bias = torch.zeros(len(OFFSETS), device=logits.device)
        bias[OFFSETS.index((0, 0))] = STAY_BIAS
        weights = torch.softmax(logits + bias, dim=-1)
        b, s, n, d = features.shape
        grid = features.float().reshape(b * s, g, g, d).permute(0, 3, 1, 2)
        padded = F.pad(grid, (1, 1, 1, 1), mode="replicate")  # edges repeat; r fills the rest
        nxt = residual
        for j, (dy, dx) in enumerate(OFFSETS):
            moved = padded[:, :, 1 + dy : 1 + dy + g, 1 + dx : 1 + dx + g]
            moved = moved.permute(0, 2, 3, 1).reshape(b, s, n, d)
            nxt = nxt + weights[..., j : j + 1] * moved
        return nxt.to(features.dtype), weights

    def loss_terms(self, extras, cfg):
        """No auxiliary loss; ``shift_tokens``: how far the weights move content, in tokens."""
        offsets = torch.tensor(OFFSETS, dtype=extras.dtype, device=extras.device)  # 9, 2
        return None, {"shift_tokens": (extras @ offsets).norm(dim=-1).mean().detach()}
