"""What every procedural MiniWild scene is drawn with (docs/DESIGN.md#miniwild): the generator's
settings (:class:`MiniWildConfig`), scikit-image's bundled photographs, procedural textures,
colours, a bank of sensor noise, packed RGB, and the seeds of the train and validation splits.

The scenes themselves: ``"wild"`` in :mod:`lam_core.data.wild`, ``"pan"`` and ``"movers"`` in
:mod:`lam_core.data.scenes`, ``"layers"`` in :mod:`lam_core.data.layers`; one clip of any of them
comes from :func:`lam_core.data.miniwild.generate_clip`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

__all__ = [
    "EMBODIMENTS",
    "MOVER_KINDS",
    "PHOTOS",
    "SCENES",
    "VAL_SEED_START",
    "MiniWildConfig",
    "load_photos",
    "procedural_texture",
    "split_seeds",
]

PHOTOS = (
    "astronaut", "camera", "chelsea", "coffee", "coins", "rocket",
    "hubble_deep_field", "moon", "brick", "grass", "gravel",
)
EMBODIMENTS = ("disc", "box", "stick", "patch")  # the "wild" scene's agents
MOVER_KINDS = ("disc", "box", "patch")  # the "movers" scene's
SCENES = ("wild", "pan", "movers", "layers")  # renderers: lam_core.data.miniwild.RENDERERS
VAL_SEED_START = 10**9  # validation clips use seeds >= this; training seeds stay below


@dataclass
class MiniWildConfig:
    """What MiniWild clips look like. Speeds are per frame; lengths in pixels of a 64 px frame
    (scaled with ``size``)."""

    num_frames: int = 16
    size: int = 64
    fps: float = 4.0
    min_agents: int = 0
    max_agents: int = 3
    embodiments: tuple[str, ...] = EMBODIMENTS
    photo_probability: float = 0.6  # background from a photo, else a procedural texture
    camera_motion_probability: float = 0.7
    max_pan: float = 2.5  # background pixels per frame
    zoom_range: tuple[float, float] = (0.8, 1.3)  # zoom of the first frame
    zoom_probability: float = 0.4  # probability that the zoom changes during the clip
    max_zoom_rate: float = 0.03  # change of log zoom per frame
    agent_speed: tuple[float, float] = (0.5, 3.0)
    leaves_probability: float = 0.3
    flicker_probability: float = 0.2
    noise_probability: float = 0.5
    max_noise: float = 6.0  # standard deviation of sensor noise, in 0-255 units (at most 20)
    canvas: int = 160  # side of a procedural background
    scene: str = "wild"  # one of SCENES; the fields below are for the other scenes only
    # every step draws a new velocity: zero with still_probability, else a uniform direction and a
    # speed uniform in [min_speed, max_speed] (camera or mover, frame pixels per frame)
    still_probability: float = 0.2
    min_speed: float = 0.5
    max_speed: float = 4.0
    view: tuple[float, float] = (64.0, 128.0)  # photo pixels across the frame (pan, movers)
    pan_zoom_probability: float = 0.2  # the pan zooms, log rate <= max_zoom_rate per frame
    rotation_probability: float = 0.2  # the pan rotates, at most max_rotation degrees per frame
    max_rotation: float = 2.0
    scene_noise_probability: float = 0.3  # sensor noise, sigma <= scene_max_noise (0-255 units)
    scene_max_noise: float = 3.0
    min_movers: int = 1
    max_movers: int = 2
    mover_size: tuple[float, float] = (12.0, 24.0)  # side or diameter of a mover
    mover_kinds: tuple[str, ...] = MOVER_KINDS
    layer_speed: tuple[float, float] = (0.5, 8.0)  # "layers": own speed of a moving layer

    def __post_init__(self) -> None:
        if self.scene not in SCENES:
            raise ValueError(f"scene must be one of {SCENES}, got {self.scene!r}")
        if not (0 <= self.still_probability <= 1 and 0 <= self.min_speed <= self.max_speed
                and 1 <= self.min_movers <= self.max_movers and 0 <= self.scene_max_noise <= 20
                and len(self.layer_speed) == 2 and 0 <= self.layer_speed[0] <= self.layer_speed[1]):
            raise ValueError("need 0 <= still_probability <= 1, 0 <= min_speed <= max_speed, "
                             "1 <= min_movers <= max_movers, 0 <= scene_max_noise <= 20 and "
                             "0 <= layer_speed[0] <= layer_speed[1]")
        unknown = set(self.embodiments) - set(EMBODIMENTS)
        if unknown or not self.embodiments:
            raise ValueError(f"embodiments must be a non-empty subset of {EMBODIMENTS}")
        if not self.mover_kinds or set(self.mover_kinds) - set(MOVER_KINDS):
            raise ValueError(f"mover_kinds must be a non-empty subset of {MOVER_KINDS}")
        if not 1 <= self.max_noise <= 20:
            raise ValueError(f"max_noise must be in [1, 20], got {self.max_noise}")
        if not 0 <= self.min_agents <= self.max_agents:
            raise ValueError(f"need 0 <= min_agents <= max_agents, got {self.min_agents}, "
                             f"{self.max_agents}")


@functools.cache
def load_photos(short_side: int = 200) -> tuple[np.ndarray, ...]:
    """scikit-image's bundled photos (:data:`PHOTOS`) as RGB uint8, shrunk by whole factors
    (block means) to a shorter side of about ``short_side``. Loaded once, then cached."""
    import skimage.data

    photos = []
    for name in PHOTOS:
        image = np.asarray(getattr(skimage.data, name)())
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        image = image[..., :3]
        k = max(1, min(image.shape[:2]) // short_side)
        h, w = image.shape[0] // k * k, image.shape[1] // k * k
        image = image[:h, :w].reshape(h // k, k, w // k, k, 3).mean(axis=(1, 3))
        photos.append(np.ascontiguousarray(image.round().astype(np.uint8)))
    return tuple(photos)


@functools.cache
def _noise_bank(n: int = 1 << 20) -> np.ndarray:
    """Fixed Gaussian noise, int16 with standard deviation 64 (cut at 6 sigma); clips read a seeded
    window of it (drawing fresh noise for every clip would cost more than rendering it)."""
    noise = np.random.default_rng(12345).standard_normal(n, dtype=np.float32) * 64
    return np.clip(np.rint(noise), -384, 384).astype(np.int16)


@functools.cache
def _blob_basis(side: int, knots: int) -> np.ndarray:
    """``(side, knots)`` linear interpolation matrix from ``knots`` control points to ``side``."""
    pos = np.linspace(0, knots - 1, side)
    return np.maximum(0.0, 1.0 - np.abs(pos[:, None] - np.arange(knots)[None])).astype(np.float32)


def _random_colors(rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n, 3)`` float32 saturated-ish colours in 0-255."""
    hue = rng.uniform(0, 1, n)
    rgb = np.clip(np.abs((hue[:, None] * 6 + np.array([0, 4, 2])) % 6 - 3) - 1, 0, 1)
    value, sat = rng.uniform(0.45, 1.0, (n, 1)), rng.uniform(0.4, 1.0, (n, 1))
    return (255 * value * (1 - sat * (1 - rgb))).astype(np.float32)


def _texture_channels(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """:func:`procedural_texture` as float32 channels first, ``(3, height, width)``."""
    y = np.arange(height, dtype=np.float32)[:, None]
    x = np.arange(width, dtype=np.float32)[None, :]
    layers = []
    for kind in rng.choice(3, size=rng.integers(1, 3), replace=False):
        c0, c1 = _random_colors(rng, 2)[:, :, None, None]
        angle = rng.uniform(0, 2 * np.pi)
        ramp = x * np.float32(np.cos(angle)) + y * np.float32(np.sin(angle))  # (H, W)
        if kind == 0:  # gradient
            t = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1.0)
        elif kind == 1:  # stripes, soft or hard
            t = 0.5 + 0.5 * np.sin(ramp * np.float32(rng.uniform(0.15, 0.8) + rng.uniform(0, 6.3)))
            t = (t > 0.5).astype(np.float32) if rng.random() < 0.5 else t
        else:  # smooth blobs: low-resolution colours interpolated up
            knots = int(rng.integers(3, 9))
            low = rng.uniform(0, 255, (3, knots, knots)).astype(np.float32)
            layers.append(_blob_basis(height, knots) @ low @ _blob_basis(width, knots).T)
            continue
        layers.append(c0 + (c1 - c0) * t)
    return layers[0] if len(layers) == 1 else (layers[0] + layers[1]) * np.float32(0.5)


def procedural_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random procedural texture: a mix of linear gradients, stripes and smooth colour blobs.

    Args:
        rng: source of randomness.
        height: rows.
        width: columns.

    Returns:
        ``(height, width, 3)`` uint8 image.
    """
    image = _texture_channels(rng, height, width)
    return np.ascontiguousarray(np.clip(image, 0, 255).astype(np.uint8).transpose(1, 2, 0))


def _pack(rgb, axis: int = -1) -> np.ndarray:
    """RGB values in 0-255 (channels along ``axis``) to one uint32 per pixel (red in the low
    byte)."""
    r, g, b = np.moveaxis(np.clip(np.asarray(rgb), 0, 255).astype(np.uint32), axis, 0)
    return r | (g << 8) | (b << 16)


def _unpack(packed: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_pack`: ``(...)`` uint32 to ``(..., 3)`` uint8."""
    return np.stack([(packed >> k).astype(np.uint8) for k in (0, 8, 16)], axis=-1)


@functools.cache
def _packed_photos() -> tuple[tuple[np.ndarray, bool], ...]:
    """Each photo packed (one uint32 per pixel) and whether it is grey."""
    return tuple((_pack(p), bool(np.array_equal(p[..., 0], p[..., 1])
                                 and np.array_equal(p[..., 0], p[..., 2]))) for p in load_photos())


def split_seeds(length: int, split: str = "train", seed_offset: int = 0) -> range:
    """Seeds of a procedural split: train ``seed_offset + i``, val ``10**9 + seed_offset + i``.

    Args:
        length: number of items.
        split: ``"train"`` or ``"val"``.
        seed_offset: first seed of the split, relative to its start.

    Returns:
        the seeds; training seeds stay below :data:`VAL_SEED_START`, so the splits never overlap.
    """
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    first = seed_offset + (VAL_SEED_START if split == "val" else 0)
    if split == "train" and first + length > VAL_SEED_START:
        raise ValueError(f"training seeds must stay below {VAL_SEED_START}")
    return range(first, first + length)
