"""Rollouts shown at the footage's own resolution (docs/DESIGN.md#display-rendering).

The embedded model runs at 64 × 64, so its predictions of a 1080p upload are soft 64-px frames.
The flow head, though, predicts *motion*, and motion does not depend on the resolution: a
rollout's composed displacement ``D_t`` (:class:`~lam_core.models.flow.FlowComposer`: step t's
pixel ``x`` comes from the anchor, the last real frame, at ``x + D_t(x)``) is upsampled to the
display frames and scaled to their pixels, and warps the anchor's own display frame at its own
resolution (:func:`render_at`). Only the fill, where the warp has no source in the anchor, comes
from the model-resolution prediction, upsampled: the same composition as the rollout's
(``v_A · A(x + D) + (1 − v_A) · prediction``), one resolution up.

Heads without a flow (the paper's feature head, the shift head) have no displacement: their
predictions are only upsampled (:func:`upsample_frames`), which adds no detail.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lam_core.models.flow import pixel_grid

__all__ = ["CHUNK", "MODE", "render_at", "upsample_frames"]

MODE = "bicubic"  # the anchor's interpolation (render_at's mode; docs/DESIGN.md#display-rendering)
CHUNK = 4  # frames rendered at once (4 frames at 512² are ~12 MB per float tensor)


def _resize(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(B, C, h, w)`` float → ``(B, C, H, W)``, bilinear (``align_corners=False``, the
    convention of :func:`~lam_core.models.flow.sample_at`), antialiased when it shrinks."""
    if x.shape[-2:] == (height, width):
        return x
    shrink = height < x.shape[-2] or width < x.shape[-1]
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False,
                         antialias=shrink)


def _as_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    return x.detach().cpu() if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """``(B, 3, H, W)`` float in [0, 255] → ``(B, H, W, 3)`` uint8 (rounded)."""
    return x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def upsample_frames(frames: np.ndarray | torch.Tensor, height: int, width: int) -> np.ndarray:
    """``(S, h, w, 3)`` uint8 frames → ``(S, H, W, 3)`` uint8, bilinear: a prediction without a
    flow shown at a display size (and the fill of :func:`render_at`)."""
    x = _as_tensor(frames)
    out = np.empty((len(x), height, width, 3), np.uint8)
    for i in range(0, len(x), CHUNK):
        part = x[i : i + CHUNK].permute(0, 3, 1, 2).float()
        out[i : i + len(part)] = _to_uint8(_resize(part, height, width))
    return out


@torch.inference_mode()
def render_at(
    display_anchor: np.ndarray | torch.Tensor,
    displacements: np.ndarray | torch.Tensor,
    predicted_frames: np.ndarray | torch.Tensor,
    mode: str = MODE,
) -> np.ndarray:
    """A flow rollout rendered at the anchor's display resolution.

    For each step t: ``D_t`` is upsampled bilinearly to ``(H, W)`` and scaled to display pixels
    (x by ``W / w``, y by ``H / h``); the display anchor is sampled at ``x + D_t(x)``
    (``grid_sample`` with ``mode``, ``align_corners=False`` and border padding, the coordinates
    of :func:`~lam_core.models.flow.sample_at`); where that sample falls outside the anchor (its
    in-frame share ``v < 1``, :func:`~lam_core.models.flow.inside_share`), the model-resolution
    prediction, upsampled, is blended in by ``1 − v``.

    Args:
        display_anchor: ``(H, W, 3)`` uint8, the rollout's anchor frame (its last real frame) at
            the display resolution, the same crop as the model's frame.
        displacements: ``(S, 2, h, w)`` composed displacements (x, y) in model pixels
            (``pipe.rollout(..., return_displacements=True)``).
        predicted_frames: ``(S, h, w, 3)`` uint8, the model's predictions (the fill).
        mode: the anchor's interpolation (``grid_sample``'s, the same coordinates):
            ``"bicubic"`` (the default) or ``"bilinear"`` (the model's own). Bilinear sampling
            half a pixel off the grid averages two neighbours and loses much of a real frame's
            fine detail; bicubic keeps most of it (docs/DESIGN.md#display-rendering has the
            numbers). Both return a whole-pixel shift exactly.

    Returns:
        ``(S, H, W, 3)`` uint8.
    """
    anchor = _as_tensor(display_anchor)
    if anchor.ndim != 3 or anchor.shape[-1] != 3:
        raise ValueError(f"display_anchor must be (H, W, 3), got {tuple(anchor.shape)}")
    moves, preds = _as_tensor(displacements).float(), _as_tensor(predicted_frames)
    if moves.ndim != 4 or moves.shape[1] != 2 or len(preds) != len(moves):
        raise ValueError(f"need displacements (S, 2, h, w) and predicted frames (S, h, w, 3) of "
                         f"the same S, got {tuple(moves.shape)} and {tuple(preds.shape)}")
    height, width = anchor.shape[:2]
    h, w = moves.shape[-2:]
    anchor = anchor.permute(2, 0, 1)[None].float()  # 1, 3, H, W in [0, 255]
    base = pixel_grid(height, width)  # 1, H, W, 2: grid_sample coordinates of the pixel centres
    # model pixels → grid units: x · (W / w) display pixels · (2 / W) = x · 2 / w
    to_grid = torch.tensor([2.0 / w, 2.0 / h]).view(1, 2, 1, 1)
    half = torch.tensor([width / 2, height / 2])
    out = np.empty((len(moves), height, width, 3), np.uint8)
    for i in range(0, len(moves), CHUNK):
        grid = _resize(moves[i : i + CHUNK] * to_grid, height, width).permute(0, 2, 3, 1) + base
        n = len(grid)
        image = F.grid_sample(anchor.expand(n, -1, -1, -1), grid, mode=mode,
                              padding_mode="border", align_corners=False)
        # the in-frame share of each sample (inside_share's closed form, in grid units: along x
        # min(u + 1, W − u) = (1 + W (1 − |g|)) / 2 with u = ((g + 1) W − 1) / 2)
        share = (1 - grid.abs()).mul_(half).add_(0.5).clamp_(0, 1).prod(dim=-1)[:, None]
        if bool((share < 1).any()):  # the fill: the prediction, upsampled, where the anchor ends
            fill = _resize(preds[i : i + n].permute(0, 3, 1, 2).float(), height, width)
            image = torch.lerp(fill, image, share)  # v·warped + (1 − v)·fill
        out[i : i + n] = _to_uint8(image)
    return out
