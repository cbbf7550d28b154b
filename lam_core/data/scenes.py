"""Pan and movers: MiniWild scenes whose motion changes at random every step
(docs/DESIGN.md#per-step-random-motion).

A world model that can extrapolate motion from the past frames needs no latent action: with
smooth velocities the latent collapsed in measured runs. In these scenes every transition
``t → t+1`` draws a fresh velocity, independent of the past: zero with ``still_probability``, else
a uniform direction and a speed uniform in ``[min_speed, max_speed]`` (pixels of a 64 px frame,
scaled with ``size``).

- ``"pan"``: a camera over a real photograph. A window of the photo (``view`` photo pixels across)
  is rendered with bilinear sub-pixel sampling; its centre follows the velocities (content moves by
  ``-velocity`` in the frame) and bounces at the photo's border. Some clips also zoom and rotate a
  little, with a new rate every step; mild sensor noise.
- ``"movers"``: a still camera on a photo window or a procedural texture, and 1–2 large movers (a
  disc, a box with a darker front, a framed photo patch) in a colour far from the background,
  drawn with anti-aliased edges; they bounce at the frame border, so they stay fully in view.

:func:`mixture_weights` and :func:`choose_scene` draw each item's scene from weights
(``data.mixture`` of the training recipes; the dataset is
:class:`lam_core.data.miniwild.MixtureDataset`). Photos: scikit-image's and scikit-learn's bundled
ones, licences in :data:`PHOTO_SOURCES`. Coordinates: ``x`` is the column, ``y`` the row, in
pixels. The helpers here (photos, bilinear sampling, bounces, noise) also draw the ``"layers"``
scene (:mod:`lam_core.data.layers`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from lam_core.clip import Clip
from lam_core.data.common import (
    MOVER_KINDS,
    PHOTOS,
    SCENES,
    MiniWildConfig,
    _noise_bank,
    _random_colors,
    load_photos,
    procedural_texture,
)

__all__ = [
    "MOVER_KINDS",
    "PHOTO_SOURCES",
    "choose_scene",
    "load_scene_photos",
    "mixture_weights",
    "pan_over",
    "render_movers",
    "render_pan",
    "step_velocities",
]

MIXTURE_STREAM = 0x6D6978  # the scene choice's random stream, apart from the clip's own
_SKIMAGE = "scikit-image (skimage.data)"
_SKLEARN = "scikit-learn (sklearn.datasets.load_sample_images)"
PHOTO_SOURCES: dict[str, str] = {  # from the packages' docstrings and images/README.txt
    "astronaut": f"{_SKIMAGE}, NASA photo of Eileen Collins, public domain",
    "camera": f"{_SKIMAGE}, CC0 by the photographer (Lav Varshney)",
    "chelsea": f"{_SKIMAGE}, CC0 by the photographer (Stefan van der Walt)",
    "coffee": f"{_SKIMAGE}, CC0 by the photographer (Rachel Michetti)",
    "coins": f"{_SKIMAGE}, Brooklyn Museum Collection, no known copyright restrictions",
    "rocket": f"{_SKIMAGE}, SpaceX launch photo, released into the public domain",
    "hubble_deep_field": f"{_SKIMAGE}, NASA/HubbleSite, public domain",
    "moon": f"{_SKIMAGE}, no licence note in its docstring (the package is BSD-3-Clause)",
    "brick": f"{_SKIMAGE}, CC0 Textures, CC0",
    "grass": f"{_SKIMAGE}, DeviantArt (linolafett), CC0",
    "gravel": f"{_SKIMAGE}, CC0 Textures, CC0",
    "china": f"{_SKLEARN}, CC BY 2.0, Flickr danielbuechele",
    "flower": f"{_SKLEARN}, CC BY 2.0, Flickr vultilion (the README's attribution line says "
              "danielbuechele)",
}


def _shrink(image: np.ndarray, short_side: int) -> np.ndarray:
    """RGB uint8 shrunk by a whole factor (block means) to a short side of about ``short_side``."""
    k = max(1, min(image.shape[:2]) // short_side)
    h, w = image.shape[0] // k * k, image.shape[1] // k * k
    image = image[:h, :w, :3].reshape(h // k, k, w // k, k, 3).mean(axis=(1, 3))
    return np.ascontiguousarray(image.round().astype(np.uint8))


@functools.cache
def load_scene_photos(short_side: int = 256) -> dict[str, np.ndarray]:
    """Every photo of :data:`PHOTO_SOURCES` (bundled with the packages, no download) as RGB uint8
    ``(H, W, 3)`` with a shorter side of about ``short_side``. Loaded once, then cached."""
    from sklearn.datasets import load_sample_images

    photos = dict(zip(PHOTOS, load_photos(short_side)))
    bunch = load_sample_images()
    for path, image in zip(bunch.filenames, bunch.images):
        photos[Path(path).stem] = _shrink(np.asarray(image), short_side)
    return {name: photos[name] for name in PHOTO_SOURCES}


@functools.cache
def _photo_table() -> tuple[tuple[str, np.ndarray, bool], ...]:
    """``(name, (H, W, 3) float32 photo, grey)`` for every photo."""
    return tuple((name, p.astype(np.float32), bool((p == p[..., :1]).all()))
                 for name, p in load_scene_photos().items())


def _pick_photo(rng: np.random.Generator) -> tuple[str, np.ndarray, np.ndarray | None]:
    """A random photo: its name, ``(H, W, 3)`` float32 pixels and a colour tint if it is grey."""
    table = _photo_table()
    name, photo, grey = table[int(rng.integers(len(table)))]
    return name, photo, (_random_colors(rng, 1)[0] / 255 * 0.6 + 0.4 if grey else None)


def _bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``image`` ``(H, W, 3)`` float32 at columns ``x`` and rows ``y`` (any shape ``S``, clamped to
    the image), bilinearly interpolated: ``S + (3,)`` float32."""
    h, w = image.shape[:2]
    x, y = np.clip(x, 0, w - 1), np.clip(y, 0, h - 1)
    x0, y0 = np.minimum(x.astype(np.int32), w - 2), np.minimum(y.astype(np.int32), h - 2)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    flat, i = image.reshape(-1, 3), y0 * w + x0
    a, b, c, d = (flat.take(i + k, axis=0) for k in (0, 1, w, w + 1))
    top = a + (b - a) * fx
    return top + (c + (d - c) * fx - top) * fy


def _render(photo, center, zoom, rotation, size: int, flip: bool) -> np.ndarray:
    """Views of a photo, ``(T, size, size, 3)`` float32: frame pixel ``(row i, col j)`` of step t
    sees ``center[t] + R(rotation[t]) ((j, i) - (size - 1) / 2) / zoom[t]`` (a mirrored photo if
    ``flip``). ``center`` ``(T, 2)`` xy photo pixels, ``zoom`` and ``rotation`` ``(T,)``."""
    grid = np.arange(size, dtype=np.float32) - np.float32((size - 1) / 2)
    gx, gy = grid[None, None, :], grid[None, :, None]
    cos = (np.cos(rotation) / zoom).astype(np.float32)[:, None, None]
    sin = (np.sin(rotation) / zoom).astype(np.float32)[:, None, None]
    cx, cy = (center.astype(np.float32)[:, k, None, None] for k in (0, 1))
    x, y = cx + cos * gx - sin * gy, cy + sin * gx + cos * gy  # (T, H, W)
    return _bilinear(photo, photo.shape[1] - 1 - x if flip else x, y)


def step_velocities(rng: np.random.Generator, n: int, cfg: MiniWildConfig) -> np.ndarray:
    """``(n, 2)`` independent per-step velocities, frame pixels per frame: exactly zero with
    ``cfg.still_probability``, else a uniform direction and a speed uniform in
    ``[cfg.min_speed, cfg.max_speed] · size / 64``.

    Args:
        rng: source of randomness.
        n: transitions.
        cfg: the generator's settings.
    """
    angle = rng.uniform(0, 2 * np.pi, n)
    speed = rng.uniform(cfg.min_speed, cfg.max_speed, n) * (cfg.size / 64)
    speed[rng.random(n) < cfg.still_probability] = 0.0
    return speed[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)


def _bounce(start: np.ndarray, steps: np.ndarray, lo, hi) -> np.ndarray:
    """Positions ``(n + 1, 2)`` of a walk from ``start`` by ``steps`` ``(n, 2)``, reflected at
    ``lo`` and ``hi`` (then clipped, for steps longer than the room)."""
    out = np.empty((len(steps) + 1, 2))
    out[0] = start
    for t, step in enumerate(steps):
        p = out[t] + step
        p = np.where(p < lo, 2 * lo - p, p)
        out[t + 1] = np.clip(np.where(p > hi, 2 * hi - p, p), lo, hi)
    return out


def _finish(rng: np.random.Generator, frames: np.ndarray, cfg: MiniWildConfig):
    """Float frames ``(T, H, W, 3)`` in 0-255, with sensor noise (``scene_noise_probability``), to
    uint8; also the distractors' description."""
    distractors = {}
    if rng.random() < cfg.scene_noise_probability:
        sigma = rng.uniform(0.3, 1.0) * cfg.scene_max_noise
        bank = _noise_bank(max(1 << 20, 1 << frames.size.bit_length()))  # std 64
        offset = int(rng.integers(0, bank.size - frames.size))
        noise = bank[offset : offset + frames.size].reshape(frames.shape)
        frames += noise * np.float32(sigma / 64)
        distractors["noise"] = float(sigma)
    return np.clip(frames + 0.5, 0, 255).astype(np.uint8), distractors


def render_pan(seed: int, cfg: MiniWildConfig) -> Clip:
    """Render one ``"pan"`` clip; the same ``seed`` and ``cfg`` always give the same frames.

    Returns:
        A clip of ``(num_frames, size, size, 3)`` uint8 frames at ``cfg.fps``. ``meta`` holds
        ``generator``, ``scene``, ``seed``, ``background`` (``photo:<name>`` or ``texture``),
        ``camera`` (``offset`` ``(T, 2)``: xy of the window centre relative to frame 0 in frame
        pixels, content at step t appears displaced by ``-offset[t]``; ``velocity`` ``(T-1, 2)``
        its steps; ``zoom`` ``(T,)`` frame pixels per photo pixel; ``rotation`` ``(T,)`` radians;
        ``center`` ``(T, 2)`` in photo pixels), ``agents`` (as the ``"wild"`` scene's: ``kind``,
        ``color``, ``position`` ``(T, 2)`` xy frame pixels, ``angle`` ``(T,)``, ``scale`` ``(T,)``
        half the side or the radius, ``visible`` ``(T,)``; plus ``velocity`` ``(T-1, 2)``) and
        ``distractors``. The ``"movers"`` and ``"layers"`` scenes' ``meta`` has the same keys.
    """
    rng = np.random.default_rng(seed)
    n, s = cfg.num_frames, cfg.size
    name, photo, tint = _pick_photo(rng)
    h, w = photo.shape[:2]
    flip = bool(rng.random() < 0.5)
    velocity = step_velocities(rng, n - 1, cfg)  # (T-1, 2) frame pixels
    moving = np.any(velocity != 0, axis=1)
    zoom_rate, turn = np.zeros(n - 1), np.zeros(n - 1)  # per step; none on still steps
    if rng.random() < cfg.pan_zoom_probability:
        zoom_rate = rng.uniform(-1, 1, n - 1) * cfg.max_zoom_rate * moving
    if rng.random() < cfg.rotation_probability:
        turn = np.radians(rng.uniform(-1, 1, n - 1) * cfg.max_rotation) * moving
    rotation = np.concatenate([[0.0], np.cumsum(turn)])
    zoom = s / np.exp(rng.uniform(*np.log(cfg.view))) * np.exp(np.r_[0.0, np.cumsum(zoom_rate)])
    reach = s / 2 * (math.sqrt(2) if turn.any() else 1.0)  # frame centre to corner (or edge)
    zoom = np.maximum(zoom, reach / (min(h, w) / 2 - 2))  # the window must fit on the photo
    half = reach / zoom.min() + 1  # how far from its centre the window reaches, photo pixels
    lo, hi = np.array([half, half]), np.array([w - 1 - half, h - 1 - half])
    cos, sin = np.cos(rotation[1:]), np.sin(rotation[1:])
    vx, vy = velocity[:, 0] / zoom[1:], velocity[:, 1] / zoom[1:]
    # the point at the frame centre of step t appears at -velocity[t] from it in step t+1
    steps = np.stack([cos * vx - sin * vy, sin * vx + cos * vy], axis=1)  # photo pixels
    center = _bounce(rng.uniform(lo, hi), steps, lo, hi)  # (T, 2)
    d = np.diff(center, axis=0) * zoom[1:, None]  # the steps taken, after the bounces
    velocity = np.stack([cos * d[:, 0] + sin * d[:, 1], cos * d[:, 1] - sin * d[:, 0]], axis=1)
    frames = _render(photo, center, zoom, rotation, s, flip)  # (T, H, W, 3)
    if tint is not None:
        frames *= tint.astype(np.float32)
    frames, distractors = _finish(rng, frames, cfg)
    offset = np.concatenate([np.zeros((1, 2)), np.cumsum(velocity, axis=0)])
    camera = {"center": center.astype(np.float32), "offset": offset.astype(np.float32),
              "velocity": velocity.astype(np.float32), "zoom": zoom.astype(np.float32),
              "rotation": rotation.astype(np.float32), "flip": flip}
    meta = {"generator": "miniwild", "scene": "pan", "seed": int(seed),
            "background": f"photo:{name}", "camera": camera, "agents": [],
            "distractors": distractors}
    return Clip(frames=frames, fps=cfg.fps, meta=meta)


def pan_over(image: np.ndarray, velocity: np.ndarray, size: int = 64, fps: float = 4.0,
             zoom: float = 1.0) -> Clip:
    """A camera pan over any image (e.g. a frame of real footage), for evaluations.

    Args:
        image: ``(H, W, 3)`` uint8, larger than the window (``size / zoom`` pixels plus the path).
        velocity: ``(T-1, 2)`` the window's steps in frame pixels (content moves by −velocity).
        size: the frame side.
        fps: the clip's frame rate.
        zoom: frame pixels per image pixel.

    Returns:
        ``T`` frames starting at the image's centre; the window bounces at the image's edges and
        ``meta["camera"]["velocity"]`` holds the steps it really took (``offset`` their sum).
    """
    photo = np.asarray(image, np.float32)
    h, w = photo.shape[:2]
    half = size / 2 / zoom + 1
    if min(h, w) < 2 * half + 2:
        raise ValueError(f"a {w}×{h} image is too small for a {size} px window at zoom {zoom}")
    lo, hi = np.array([half, half]), np.array([w - 1 - half, h - 1 - half])
    center = _bounce(np.array([(w - 1) / 2, (h - 1) / 2]), np.asarray(velocity) / zoom, lo, hi)
    n = len(center)
    frames = _render(photo, center, np.full(n, zoom), np.zeros(n), size, False)
    steps = (np.diff(center, axis=0) * zoom).astype(np.float32)
    offset = np.concatenate([np.zeros((1, 2), np.float32), np.cumsum(steps, axis=0)])
    meta = {"generator": "pan_over", "camera": {"velocity": steps, "offset": offset}}
    return Clip(np.clip(frames + 0.5, 0, 255).astype(np.uint8), fps=fps, meta=meta)


def _still_background(rng: np.random.Generator, cfg: MiniWildConfig):
    """``(H, W, 3)`` float32 background of a still camera, its description, centre and zoom."""
    s = cfg.size
    if rng.random() >= cfg.photo_probability:
        return (procedural_texture(rng, s, s).astype(np.float32), "texture",
                np.full(2, (s - 1) / 2), 1.0)
    name, photo, tint = _pick_photo(rng)
    h, w = photo.shape[:2]
    zoom = max(s / np.exp(rng.uniform(*np.log(cfg.view))), s / (min(h, w) - 4))
    half = s / 2 / zoom + 1
    center = rng.uniform([half, half], [w - 1 - half, h - 1 - half])
    frame = _render(photo, center[None], np.array([zoom]), np.zeros(1), s, rng.random() < 0.5)[0]
    if tint is not None:
        frame *= tint.astype(np.float32)
    return frame, f"photo:{name}", center, zoom


def render_movers(seed: int, cfg: MiniWildConfig) -> Clip:
    """Render one ``"movers"`` clip (``meta``: as :func:`render_pan`'s)."""
    rng = np.random.default_rng(seed)
    n, s, u = cfg.num_frames, cfg.size, cfg.size / 64
    background, description, center, zoom = _still_background(rng, cfg)
    frames = np.repeat(background[None], n, axis=0)  # (T, H, W, 3) float32
    pix = np.arange(s, dtype=np.float32)
    xs, ys = pix[None, None, :], pix[None, :, None]
    agents = []
    for _ in range(int(rng.integers(cfg.min_movers, cfg.max_movers + 1))):
        kind = cfg.mover_kinds[int(rng.integers(len(cfg.mover_kinds)))]
        half = rng.uniform(*cfg.mover_size) * u / 2
        reach = half * (1.0 if kind == "disc" else math.sqrt(2)) + 0.5  # centre to the last pixel
        lo, hi = reach, max(s - 1 - reach, reach)
        position = _bounce(rng.uniform(lo, hi, 2), step_velocities(rng, n - 1, cfg), lo, hi)
        step = np.diff(position, axis=0)  # (T-1, 2) after the bounces
        angle = np.full(n, rng.uniform(-np.pi, np.pi))  # faces where it last went
        for t in range(n - 1):
            angle[t + 1] = math.atan2(step[t, 1], step[t, 0]) if step[t].any() else angle[t]
        # a colour far from the background around its path (candidates bright and dark)
        x0, y0 = np.maximum(position.min(0) - reach, 0).astype(int)
        x1, y1 = np.ceil(position.max(0) + reach + 1).astype(int)
        local = background[y0:y1, x0:x1].reshape(-1, 3).mean(0)
        candidates = _random_colors(rng, 6)
        candidates = np.concatenate([candidates, candidates * 0.3])
        color = candidates[np.argmax(((candidates - local) ** 2).sum(1))]

        fx, fy = (position[:, k].astype(np.float32)[:, None, None] for k in (0, 1))
        cos, sin = (f(angle).astype(np.float32)[:, None, None] for f in (np.cos, np.sin))
        dx, dy = xs - fx, ys - fy  # (T, H, W)
        along, across = dx * cos + dy * sin, dy * cos - dx * sin
        if kind == "disc":
            dist = np.sqrt(dx * dx + dy * dy) - np.float32(half)  # signed distance to the edge
        else:  # a box is a little narrower across than along (heading shows)
            width = half * (rng.uniform(0.6, 1.0) if kind == "box" else 1.0)
            qx, qy = np.abs(along) - np.float32(half), np.abs(across) - np.float32(width)
            outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2)
            dist = outside + np.minimum(np.maximum(qx, qy), 0)
        cover = np.clip(0.5 - dist, 0, 1)[..., None]  # (T, H, W, 1) anti-aliased coverage
        paint = color.astype(np.float32)
        if kind == "box":  # the front is darker: turning shows
            front = np.clip(along - np.float32(0.5 * half) + 0.5, 0, 1)[..., None]
            paint = paint * (1 - 0.45 * front)
        elif kind == "patch":  # a photo cut, rotating with the mover, framed in the colour
            _, photo, _ = _pick_photo(rng)
            side = rng.uniform(12, 32)  # photo pixels across the patch
            px, py = rng.uniform(side, np.array(photo.shape[1::-1]) - 1 - side)
            k = np.float32(side / 2 / half)
            texture = _bilinear(photo, px + along * k, py + across * k)  # (T, H, W, 3)
            inner = np.clip(0.5 - dist - max(1.5, 0.15 * half), 0, 1)[..., None]
            paint = paint + (texture - paint) * inner
        frames += cover * (paint - frames)
        agents.append({
            "kind": kind, "color": np.clip(color, 0, 255).astype(np.uint8),
            "position": position.astype(np.float32), "angle": angle.astype(np.float32),
            "scale": np.full(n, half, np.float32), "velocity": step.astype(np.float32),
            "visible": np.ones(n, bool),
        })
    frames, distractors = _finish(rng, frames, cfg)
    camera = {"center": np.tile(center, (n, 1)).astype(np.float32),
              "offset": np.zeros((n, 2), np.float32), "velocity": np.zeros((n - 1, 2), np.float32),
              "zoom": np.full(n, zoom, np.float32), "rotation": np.zeros(n, np.float32)}
    meta = {"generator": "miniwild", "scene": "movers", "seed": int(seed),
            "background": description, "camera": camera, "agents": agents,
            "distractors": distractors}
    return Clip(frames=frames, fps=cfg.fps, meta=meta)


def mixture_weights(weights: Mapping) -> dict[str, float]:
    """Check scene weights and normalise them.

    Args:
        weights: scene name (one of ``SCENES``) → weight, a finite number ≥ 0, not all zero.

    Returns:
        the probabilities of the scenes with a positive weight, in ``SCENES`` order.

    Raises:
        ValueError: naming the valid keys.
    """
    valid = f"(valid keys: {', '.join(SCENES)}; weights are numbers >= 0, not all zero)"
    if not isinstance(weights, Mapping) or not weights:
        raise ValueError(f"expected a mapping of scene to weight, got {weights!r} {valid}")
    unknown = [k for k in weights if k not in SCENES]
    if unknown:
        raise ValueError(f"unknown scene(s) {', '.join(map(repr, unknown))} {valid}")
    for key, w in weights.items():
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ValueError(f"{key}: weight {w!r} is not a finite number >= 0 {valid}")
    total = float(sum(weights.values()))
    if total <= 0:
        raise ValueError(f"all weights are zero {valid}")
    return {k: weights[k] / total for k in SCENES if weights.get(k, 0) > 0}


def choose_scene(seed: int, probabilities: Mapping[str, float]) -> str:
    """The scene of the item with ``seed``, drawn from ``probabilities`` (see
    :func:`mixture_weights`) by a generator seeded with ``seed`` (its own stream)."""
    draw, total = np.random.default_rng([seed, MIXTURE_STREAM]).random(), 0.0
    for name, p in probabilities.items():
        total += p
        if draw < total:
            return name
    return name
