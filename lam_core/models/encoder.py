"""Frame-causal video encoders f: clip in [0, 1] → features ``(B, T', N, D_enc)`` (paper §4).

Three encoders share one interface:

* :class:`PatchEncoder` — exact: the features of a step are the pixels of its patches. Nothing is
  learned, so any footage is represented (decoding is exact, :class:`~lam_core.models.decoder.
  PatchDecoder`); the ``pixel`` preset's (the embedded default): a learned encoder trained on
  procedural scenes turns real uploads into coloured blocks. It departs from the paper, whose
  world model works on V-JEPA 2 features: on two CPU cores there is no V-JEPA 2, and pixels
  let the world model move content with a flow head (:mod:`lam_core.models.flow`).
* :class:`TinyEncoder` — a small trainable ViT (tubelet patches, frame-causal attention with 3-D
  RoPE), trained with the decoder as an autoencoder; the ``small`` preset's encoder.
* :class:`VJEPA2Encoder` — V-JEPA 2 through ``transformers`` (``VJEPA2Model``), frozen. Each tubelet
  is encoded on its own, so step t never sees later frames (the paper's frame-causal encoder).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lam_core.config import EncoderConfig
from lam_core.nn import Block, frame_causal_mask, grid_positions, patchify, shared_rotation

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def check_video(video: torch.Tensor, tubelet: int) -> None:
    if video.ndim != 5 or video.shape[2] != 3:
        raise ValueError(f"expected a clip of shape (B, T, 3, H, W), got {tuple(video.shape)}")
    if video.shape[1] % tubelet:
        raise ValueError(
            f"clip has {video.shape[1]} frames, not a multiple of the tubelet size {tubelet}"
        )


def patch_feature_dim(cfg: EncoderConfig) -> int:
    """Feature width of the patch encoder: ``tubelet · patch² · 3``."""
    return cfg.tubelet * cfg.patch_size**2 * 3


class PatchEncoder(nn.Module):
    """Exact patch features: ``(B, T, 3, H, W)`` in [0, 1] → ``(B, T / tubelet, grid², D)`` with
    ``D = tubelet · patch² · 3`` pixel values in [0, 1]. Frame causal by construction.

    Args:
        cfg: ``kind="patch"`` encoder config; ``dim`` must be ``tubelet · patch² · 3``.
    """

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        if cfg.dim != patch_feature_dim(cfg):
            raise ValueError(
                f"a patch encoder with tubelet {cfg.tubelet} and patch {cfg.patch_size} has "
                f"features of width {patch_feature_dim(cfg)}, but its config says dim={cfg.dim}"
            )
        if cfg.image_size % cfg.patch_size:
            raise ValueError(f"image_size {cfg.image_size} is not a multiple of the patch size "
                             f"{cfg.patch_size}")
        self.cfg = cfg

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        check_video(video, cfg.tubelet)
        if video.shape[-2:] != (cfg.image_size, cfg.image_size):
            raise ValueError(f"expected {cfg.image_size}×{cfg.image_size} frames, got "
                             f"{tuple(video.shape[-2:])}")
        return patchify(video, cfg.tubelet, cfg.patch_size)


class TinyEncoder(nn.Module):
    """Small frame-causal ViT encoder.

    Args:
        cfg: ``kind="tiny"`` encoder config.
    """

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        patch_dim = cfg.tubelet * cfg.patch_size**2 * 3
        self.embed = nn.Linear(patch_dim, cfg.dim)
        self.blocks = nn.ModuleList(
            Block(cfg.dim, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(cfg.dim)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Encode.

        Args:
            video: ``(B, T, 3, H, W)`` in [0, 1], ``H = W = image_size``, ``T % tubelet == 0``.

        Returns:
            features ``(B, T / tubelet, grid², dim)``.
        """
        cfg = self.cfg
        check_video(video, cfg.tubelet)
        x = patchify(video * 2.0 - 1.0, cfg.tubelet, cfg.patch_size)  # B, T', N, P
        b, steps, n, _ = x.shape
        x = self.embed(x).reshape(b, steps * n, cfg.dim)
        pos = shared_rotation(self.blocks, grid_positions(steps, cfg.grid, cfg.grid, x.device))
        mask = frame_causal_mask(steps, n, x.device)
        for blk in self.blocks:
            x = blk(x, pos, mask)
        return self.norm(x).reshape(b, steps, n, cfg.dim)


class VJEPA2Encoder(nn.Module):
    """Frozen V-JEPA 2 encoder, one tubelet at a time (frame causal).

    Args:
        cfg: ``kind="vjepa2"`` config; ``hub_id`` is a hub id or a local folder holding a
            ``VJEPA2Model`` (``config.json`` + weights).
        model: an already built ``VJEPA2Model`` (tests pass a tiny random one).
    """

    def __init__(self, cfg: EncoderConfig, model: nn.Module | None = None):
        super().__init__()
        if model is None:
            from transformers import VJEPA2Model

            if not cfg.hub_id:
                raise ValueError("a vjepa2 encoder needs hub_id (a hub id or a local folder)")
            # safetensors only: a pickled pytorch_model.bin from a stranger could run code
            model = VJEPA2Model.from_pretrained(cfg.hub_id, use_safetensors=True)
        mcfg = model.config
        self.cfg = cfg = EncoderConfig(
            **{
                **cfg.__dict__,
                "image_size": mcfg.crop_size,
                "patch_size": mcfg.patch_size,
                "tubelet": mcfg.tubelet_size,
                "dim": mcfg.hidden_size,
            }
        )
        self.model = model.eval().requires_grad_(False)
        self.register_buffer(
            "mean", torch.tensor(IMAGENET_MEAN).view(1, 1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "std", torch.tensor(IMAGENET_STD).view(1, 1, 3, 1, 1), persistent=False
        )

    def train(self, mode: bool = True) -> VJEPA2Encoder:
        super().train(mode)
        self.model.eval()  # always frozen
        return self

    def preprocess(self, video: torch.Tensor) -> torch.Tensor:
        """Resize the shorter side to ``crop_size``, centre crop, ImageNet-normalise."""
        size = self.cfg.image_size
        b, t, c, h, w = video.shape
        if (h, w) != (size, size):
            scale = size / min(h, w)
            nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
            x = F.interpolate(
                video.reshape(b * t, c, h, w),
                size=(nh, nw),
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )
            top, left = (nh - size) // 2, (nw - size) // 2
            video = x[:, :, top : top + size, left : left + size].reshape(b, t, c, size, size)
        return (video - self.mean) / self.std

    @torch.no_grad()
    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """``(B, T, 3, H, W)`` in [0, 1] → ``(B, T / tubelet, (crop/patch)², hidden)``."""
        cfg = self.cfg
        check_video(video, cfg.tubelet)
        x = self.preprocess(video)
        b, t = x.shape[:2]
        steps = t // cfg.tubelet
        x = x.reshape(b * steps, cfg.tubelet, *x.shape[2:])  # each tubelet on its own
        feats = self.model.get_vision_features(pixel_values_videos=x)
        return feats.reshape(b, steps, -1, feats.shape[-1])


def build_encoder(cfg: EncoderConfig) -> nn.Module:
    """Build the encoder named by ``cfg.kind``."""
    if cfg.kind == "patch":
        return PatchEncoder(cfg)
    if cfg.kind == "tiny":
        return TinyEncoder(cfg)
    if cfg.kind == "vjepa2":
        return VJEPA2Encoder(cfg)
    raise ValueError(f"unknown encoder kind {cfg.kind!r}; expected 'patch', 'tiny' or 'vjepa2'")
