"""Size presets in one registry (like DiT's ``DiT_models``): ``tiny`` and ``tiny-pixel`` for tests,
``pixel`` for the embedded CPU default (exact pixel patches and a flow head), ``small`` for a
learned tiny encoder with the paper's feature head at CPU size, ``paper`` for the paper's scale
(V-JEPA 2-L features, ViT-L world model). docs/DESIGN.md#presets compares them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from lam_core.config import (
    ControllerConfig,
    DecoderConfig,
    EncoderConfig,
    LAMConfig,
    RegularizerConfig,
    TransformerConfig,
)


@dataclass
class PipelineConfig:
    """The configs of every component of one pipeline."""

    encoder: EncoderConfig
    lam: LAMConfig
    decoder: DecoderConfig
    controller: ControllerConfig


def _make(
    enc: EncoderConfig,
    latent_dim: int,
    idm: TransformerConfig,
    wm: TransformerConfig,
    dec: TransformerConfig,
    token_merge: int,
    ctrl_width: int,
    idm_token_merge: int = 1,
) -> PipelineConfig:
    lam = LAMConfig(
        feature_dim=enc.dim,
        grid=enc.grid,
        token_merge=token_merge,
        idm_token_merge=idm_token_merge,
        regularizer=RegularizerConfig(latent_dim=latent_dim),
        idm=idm,
        world_model=wm,
    )
    decoder = DecoderConfig(
        feature_dim=enc.dim,
        image_size=enc.image_size,
        patch_size=enc.patch_size,
        tubelet=enc.tubelet,
        width=dec.width,
        depth=dec.depth,
        heads=dec.heads,
    )
    controller = ControllerConfig(
        latent_dim=latent_dim,
        feature_dim=enc.dim,
        grid=enc.grid,
        width=ctrl_width,
        heads=max(1, ctrl_width // 32),
        hidden=2 * ctrl_width,
    )
    return PipelineConfig(enc, lam, decoder, controller)


def _pixel(size: int, latent_dim: int, idm, wm, merge: int, ctrl_width: int, flow_grid: int):
    """Exact patches (8 px, one frame per step) + flow head + difference IDM + noisy latents."""
    enc = EncoderConfig(kind="patch", image_size=size, patch_size=8, tubelet=1, dim=192)
    cfg = _make(enc, latent_dim, idm, wm, TransformerConfig(), merge, ctrl_width)
    cfg.decoder.kind = "patch"
    cfg.controller.token_merge = merge  # the world model's tokens: 4× cheaper CEM candidates
    lam = cfg.lam
    lam.head, lam.patch_size, lam.flow_grid = "flow", enc.patch_size, flow_grid
    lam.idm_input, lam.condition_add, lam.predict_residual = "difference", True, True
    lam.regularizer.kind, lam.regularizer.beta, lam.regularizer.logvar_offset = "noisy", 1e-3, -5.0
    return cfg


PRESETS: dict[str, PipelineConfig] = {
    # Seconds on a CPU: unit tests and smoke runs.
    "tiny": _make(
        EncoderConfig(image_size=32, patch_size=8, dim=48, depth=1, heads=2),
        latent_dim=16,
        idm=TransformerConfig(48, 1, 2),
        wm=TransformerConfig(48, 2, 2),
        dec=TransformerConfig(48, 1, 2),
        token_merge=1,
        ctrl_width=48,
    ),
    # The pixel design in seconds (tests of the flow head).
    "tiny-pixel": _pixel(32, 8, TransformerConfig(48, 1, 2), TransformerConfig(48, 2, 2), merge=1,
                         ctrl_width=48, flow_grid=8),
    # A learned encoder with the paper's feature head at CPU size (train/recipes/embedded.sh):
    # 64×64 frames, 8×8 tokens per step, world model and IDM over 4×4 merged tokens (the merged
    # IDM makes a LAM step 2.3× cheaper, benchmarks/bench_training.py, at the same validation L1:
    # docs/results-2026-11-26.md).
    "small": _make(
        EncoderConfig(image_size=64, patch_size=8, dim=96, depth=4, heads=4),
        latent_dim=128,
        idm=TransformerConfig(128, 2, 4),
        wm=TransformerConfig(192, 4, 6),
        dec=TransformerConfig(128, 4, 4),
        token_merge=2,
        ctrl_width=128,
        idm_token_merge=2,
    ),
    # The embedded default: exact 8×8 RGB patches of 64×64 frames, one frame per step (so any
    # upload is represented: decoding is exact), a world model whose head predicts a flow that
    # warps the last frame (lam_core.models.flow), an IDM that sees each position's (s_t, s_t+1,
    # difference), D_z = 16 noisy latents whose posterior starts nearly deterministic. Why each
    # choice: docs/DESIGN.md#why-the-embedded-design; what it measures: docs/RESULTS.md.
    "pixel": _pixel(64, 16, TransformerConfig(128, 3, 4), TransformerConfig(256, 4, 4), merge=2,
                    ctrl_width=128, flow_grid=16),
    # The paper (§4, App. A): V-JEPA 2-L at 256 px, ViT-L world model and decoder, D_z = 128.
    "paper": _make(
        EncoderConfig(
            kind="vjepa2",
            image_size=256,
            patch_size=16,
            dim=1024,
            depth=24,
            heads=16,
            hub_id="facebook/vjepa2-vitl-fpc64-256",
        ),
        latent_dim=128,
        idm=TransformerConfig(1024, 4, 16),
        wm=TransformerConfig(1024, 24, 16),
        dec=TransformerConfig(1024, 24, 16),
        token_merge=1,
        ctrl_width=1024,
    ),
}


def get_preset(
    name: str, regularizer: str | None = None, kind: str | None = None
) -> PipelineConfig:
    """A fresh copy of preset ``name``, optionally with another regularizer or LAM kind.

    Args:
        name: ``tiny``, ``tiny-pixel``, ``pixel``, ``small`` or ``paper``.
        regularizer: ``sparse``, ``noisy``, ``discrete`` or ``none``.
        kind: ``latent``, ``deterministic`` or ``action``.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    cfg = copy.deepcopy(PRESETS[name])
    if regularizer is not None:
        cfg.lam.regularizer.kind = regularizer
    if kind is not None:
        cfg.lam.kind = kind
    return cfg
