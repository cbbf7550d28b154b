"""Drifting noise: clips of a smooth random colour field that moves by a new random step every
frame (``data.source: noise``; docs/DESIGN.md#data-sources).

The smallest source with the property the LAM needs (docs/DESIGN.md#per-step-random-motion): the
whole frame moves, by a velocity drawn afresh for every transition (zero with
``still_probability``, else a uniform direction and a speed uniform in ``speed`` pixels of a 64 px
frame, scaled with ``size``), so the next frame cannot be extrapolated from the past ones. The
field is periodic (white noise low-passed in the Fourier domain, a random correlation length per
clip) and shifted in the Fourier domain, so sub-pixel steps are exact and it never runs out of
canvas. No photo, no texture: what moves is pure structure, a control for what the model learns
from content. ``meta["camera"]`` holds the steps (``velocity`` ``(T-1, 2)``, xy frame pixels;
content moves by ``-velocity``) and their sum (``offset`` ``(T, 2)``).
"""

from __future__ import annotations

import numpy as np
import torch

from lam_core.clip import Clip, frames_to_tensor
from lam_core.data.common import split_seeds

__all__ = ["NoiseDataset", "generate_noise_clip"]


def generate_noise_clip(seed: int, num_frames: int = 16, size: int = 64, fps: float = 4.0,
                        speed: tuple[float, float] = (0.5, 4.0),
                        still_probability: float = 0.2) -> Clip:
    """One clip; the same arguments always give the same frames.

    Args:
        seed: the clip's seed.
        num_frames: frames T.
        size: frame side in pixels.
        fps: the clip's frame rate.
        speed: the range of a moving step's speed, pixels of a 64 px frame.
        still_probability: the chance that a step does not move.

    Returns:
        ``(T, size, size, 3)`` uint8 frames; ``meta``: ``generator``, ``seed``, ``scale`` (the
        field's correlation length in pixels) and ``camera`` (``velocity``, ``offset``).
    """
    rng = np.random.default_rng(seed)
    n = num_frames
    angle = rng.uniform(0, 2 * np.pi, n - 1)
    step = rng.uniform(*speed, n - 1) * (size / 64)
    step[rng.random(n - 1) < still_probability] = 0.0
    velocity = step[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)  # (T-1, 2) xy
    offset = np.concatenate([np.zeros((1, 2)), np.cumsum(velocity, axis=0)])  # (T, 2)
    scale = rng.uniform(2.0, 8.0) * size / 64  # correlation length, pixels
    k = np.fft.fftfreq(size)  # cycles per pixel
    ky, kx = k[:, None], k[None, :]
    spectrum = np.fft.fft2(rng.standard_normal((3, size, size)))
    spectrum *= np.exp(-2 * (np.pi * scale) ** 2 * (kx**2 + ky**2))  # a Gaussian low-pass
    # the content at x of frame t is the field at x + offset_t: content moves by -velocity
    phase = np.exp(2j * np.pi * (kx[None] * offset[:, 0, None, None]
                                 + ky[None] * offset[:, 1, None, None]))  # (T, S, S)
    fields = np.fft.ifft2(spectrum[None] * phase[:, None]).real  # (T, 3, S, S)
    fields /= fields[0].std(axis=(1, 2), keepdims=True) + 1e-8
    mix = rng.normal(0, 1, (3, 3)) * 0.5 + np.eye(3)  # colours that vary together or apart
    rgb = np.einsum("ij,tjhw->thwi", mix, fields) * rng.uniform(25, 50) + rng.uniform(80, 176, 3)
    frames = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    camera = {"velocity": velocity.astype(np.float32), "offset": offset.astype(np.float32)}
    meta = {"generator": "noise", "seed": int(seed), "scale": float(scale), "camera": camera}
    return Clip(frames=np.ascontiguousarray(frames), fps=fps, meta=meta)


class NoiseDataset(torch.utils.data.Dataset):
    """Drifting-noise clips as model inputs: ``{"video": (T, 3, H, W) float32 in [0, 1]}``; item
    ``i`` of a split is always the same clip (seeds as MiniWild's, so the splits never meet).

    Args:
        length: number of clips.
        split: ``"train"`` or ``"val"``.
        num_frames, size, fps: the clips' shape and rate.
        seed_offset: first seed of the split.
    """

    def __init__(self, length: int = 1000, split: str = "train", num_frames: int = 16,
                 size: int = 64, fps: float = 4.0, seed_offset: int = 0) -> None:
        self.seeds = split_seeds(length, split, seed_offset)
        self.num_frames, self.size, self.fps = num_frames, size, fps

    def __len__(self) -> int:
        return len(self.seeds)

    def clip(self, i: int) -> Clip:
        """Item ``i`` as a clip (with its ground truth in ``meta``)."""
        return generate_noise_clip(self.seeds[i], self.num_frames, self.size, self.fps)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"video": frames_to_tensor(self.clip(i).frames)}
