"""MiniWild's ``"wild"`` scene (docs/DESIGN.md#miniwild; the paper's data, §4).

The paper trains on YoutubeTemporal-1B: many embodiments, moving cameras, distractors. This scene
makes small clips with those traits, rendered directly at the target size with vectorised numpy:

- a background cut from a real photograph (scikit-image's bundled images, loaded once) or a
  procedural texture (gradients, stripes, smooth colour blobs), larger than the frame;
- a camera that pans and zooms over it;
- 0-3 agents of different embodiments (discs, boxes, stick figures with swinging limbs, textured
  patches cut from photos) that move with smooth velocities, turn, grow or shrink, enter and leave;
- distractors: an oscillating patch of "leaves" (high-frequency texture moving back and forth),
  global flicker and sensor noise.

Coordinates: ``x`` is the column, ``y`` the row, both in pixels; a frame pixel ``(row i, col j)``
sees the background point ``center + ((j, i) - (size - 1) / 2) / zoom``.
"""

from __future__ import annotations

import numpy as np

from lam_core.clip import Clip
from lam_core.data.common import (
    PHOTOS,
    MiniWildConfig,
    _noise_bank,
    _pack,
    _packed_photos,
    _random_colors,
    _texture_channels,
    _unpack,
)

__all__ = ["render_wild"]


def _smooth_path(rng: np.random.Generator, n: int, speed: float) -> tuple[np.ndarray, np.ndarray]:
    """Displacements ``(n, 2)`` from the start and headings ``(n,)`` of a smoothly turning walk."""
    t = np.arange(n, dtype=np.float64)
    heading = (rng.uniform(0, 2 * np.pi) + rng.normal(0, 0.15) * t
               + rng.uniform(0, 0.6) * np.sin(t * rng.uniform(0.2, 0.8) + rng.uniform(0, 6.3)))
    speeds = speed * (1 + 0.3 * np.sin(t * rng.uniform(0.1, 0.5) + rng.uniform(0, 6.3)))
    steps = speeds[:, None] * np.stack([np.cos(heading), np.sin(heading)], axis=1)
    return np.concatenate([np.zeros((1, 2)), np.cumsum(steps[:-1], axis=0)]), heading


def _camera(rng: np.random.Generator, cfg: MiniWildConfig, canvas_hw: tuple[int, int]):
    """Camera ``center`` ``(T, 2)`` xy in background pixels and ``zoom`` ``(T,)``, kept so that the
    whole view stays on the background."""
    n, s = cfg.num_frames, cfg.size
    t = np.arange(n)
    zoom = np.full(n, rng.uniform(*cfg.zoom_range))
    if rng.random() < cfg.zoom_probability:
        zoom *= np.exp(rng.uniform(-1, 1) * cfg.max_zoom_rate * (t - (n - 1) / 2))
    zoom = np.maximum(zoom, (s + 2) / (min(canvas_hw) - 2))  # the view must fit on the canvas
    half = (s / 2 + 1) / zoom.min()
    center = np.zeros((n, 2))
    for axis, extent in ((0, canvas_hw[1]), (1, canvas_hw[0])):
        room = extent - 2 * half  # how far the centre may travel
        pan = 0.0
        if rng.random() < cfg.camera_motion_probability:
            pan = float(np.clip(rng.uniform(-1, 1) * cfg.max_pan * (n - 1), -room, room))
        start = rng.uniform(half - min(pan, 0), extent - half - max(pan, 0))
        center[:, axis] = start + pan * t / max(n - 1, 1)
    return center, zoom


def _disc(xs, ys, x, y, radius) -> np.ndarray:
    """``(T, H, W)`` mask of discs centred at ``(x, y)`` ``(T,)`` with radii ``(T,)``."""
    return (xs - x[:, None, None]) ** 2 + (ys - y[:, None, None]) ** 2 < (radius**2)[:, None, None]


def _draw_disc(frames, xs, ys, fx, fy, radius, angle, color, rng) -> None:
    frames[_disc(xs, ys, fx, fy, radius)] = _pack(color)
    # a darker dot shows which way the disc faces
    dx, dy = fx + 0.55 * radius * np.cos(angle), fy + 0.55 * radius * np.sin(angle)
    frames[_disc(xs, ys, dx, dy, 0.3 * radius)] = _pack(color * 0.4)


def _rotated(xs, ys, fx, fy, half, angle):
    """Agent-frame coordinates ``(u, v)`` in units of ``half`` for every pixel, ``(T, H, W)``."""
    c = (np.cos(angle) / half).astype(np.float32)[:, None, None]
    s = (np.sin(angle) / half).astype(np.float32)[:, None, None]
    dx, dy = xs - fx[:, None, None], ys - fy[:, None, None]
    return dx * c + dy * s, dy * c - dx * s


def _draw_box(frames, xs, ys, fx, fy, half, angle, color, rng) -> None:
    u, v = _rotated(xs, ys, fx, fy, half, angle)
    inside = (np.abs(u) < 1) & (np.abs(v) < rng.uniform(0.4, 0.9))
    frames[inside] = _pack(color)
    frames[inside & (u > 0.6)] = _pack(color * 0.6)  # the front is darker: turning shows


def _draw_patch(frames, xs, ys, fx, fy, half, angle, color, rng) -> None:
    photo, p = _packed_photos()[rng.integers(len(PHOTOS))][0], 16
    top, left = rng.integers(0, photo.shape[0] - p), rng.integers(0, photo.shape[1] - p)
    texture = photo[top : top + p, left : left + p]
    u, v = _rotated(xs, ys, fx, fy, half, angle)
    inside = (np.abs(u) < 1) & (np.abs(v) < 1)
    iu = np.clip(((u[inside] + 1) * (p / 2)).astype(np.int64), 0, p - 1)
    iv = np.clip(((v[inside] + 1) * (p / 2)).astype(np.int64), 0, p - 1)
    frames[inside] = texture[iv, iu]


def _draw_stick(frames, xs, ys, fx, fy, length, angle, color, phase) -> None:
    """A stick figure whose body axis points along ``angle - pi/2`` (upright when angle = 0)."""
    n, h, w = frames.shape
    up = np.stack([np.sin(angle), -np.cos(angle)], axis=1) * length[:, None]  # hip -> neck
    side = np.stack([-up[:, 1], up[:, 0]], axis=1)
    hip = np.stack([fx, fy], axis=1) - 0.2 * up
    neck = hip + up
    swing = 0.6 * np.sin(phase)[:, None]

    def limb(root, sign, reach):
        return root + reach * (-up * np.cos(swing) + sign * side * np.sin(swing))

    segments = [(hip, neck), (hip, limb(hip, 1, 0.9)), (hip, limb(hip, -1, 0.9)),
                (neck, limb(neck, -1, 0.7)), (neck, limb(neck, 1, 0.7))]
    a = np.stack([s[0] for s in segments], axis=1)  # (T, S, 2)
    b = np.stack([s[1] for s in segments], axis=1)
    lin = np.linspace(0, 1, 12)[None, None, :, None]
    pts = (a[:, :, None] + (b - a)[:, :, None] * lin).reshape(n, -1, 2)  # (T, P, 2)
    thick = np.array([[0, 0], [1, 0], [0, 1], [1, 1]])
    pix = (np.floor(pts)[:, :, None] + thick[None, None]).reshape(n, -1, 2).astype(np.int64)
    tt = np.broadcast_to(np.arange(n)[:, None], pix.shape[:2])
    ok = (pix[..., 0] >= 0) & (pix[..., 0] < w) & (pix[..., 1] >= 0) & (pix[..., 1] < h)
    packed = _pack(color)
    frames[tt[ok], pix[..., 1][ok], pix[..., 0][ok]] = packed
    head = neck + 0.3 * up
    frames[_disc(xs, ys, head[:, 0], head[:, 1], 0.28 * length)] = packed


def _leaves(rng, frames, iy, ix, cfg: MiniWildConfig, center) -> None:
    """Foliage fixed in the scene whose texture shakes back and forth."""
    tile = _pack(_random_colors(rng, 1)[0] * rng.uniform(0.3, 1.2, (16, 16, 1)))
    cx, cy = center + rng.uniform(-1, 1, 2) * cfg.size / 3
    rx, ry = rng.uniform(6, 18, 2) * cfg.size / 64
    ex, ey = (((ix - cx) / rx) ** 2).astype(np.float32), (((iy - cy) / ry) ** 2).astype(np.float32)
    inside = ex + ey < 1  # (T, H, W)
    t = np.arange(cfg.num_frames)
    shift = np.rint(rng.uniform(2, 5) * np.sin(t * rng.uniform(1.5, 3.0) + rng.uniform(0, 6.3)))
    shift = shift.astype(np.int64)[:, None, None]
    sy = np.broadcast_to((iy + shift // 2) % 16, inside.shape)[inside]
    sx = np.broadcast_to((ix + shift) % 16, inside.shape)[inside]
    frames[inside] = tile[sy, sx]


def _background(rng: np.random.Generator, cfg: MiniWildConfig):
    """A packed background ``(Hc, Wc)`` uint32, its description, and a tint for grey photos."""
    if rng.random() < cfg.photo_probability:
        index = int(rng.integers(len(PHOTOS)))
        canvas, grey = _packed_photos()[index]
        tint = _random_colors(rng, 1)[0] / 255 * 0.6 + 0.4 if grey else None
        return canvas, f"photo:{PHOTOS[index]}", tint
    return _pack(_texture_channels(rng, cfg.canvas, cfg.canvas), axis=0), "texture", None


def render_wild(seed: int, cfg: MiniWildConfig) -> Clip:
    """Render one ``"wild"`` clip; the same ``seed`` and ``cfg`` always give the same frames.

    Args:
        seed: the clip's seed.
        cfg: the generator's settings.

    Returns:
        A clip of ``(num_frames, size, size, 3)`` uint8 frames at ``cfg.fps``. ``meta`` holds
        ``seed``, ``background``, ``camera = {"center", "offset", "zoom"}`` (per frame: centre in
        background pixels ``(T, 2)``, pan relative to frame 0 ``(T, 2)``, zoom ``(T,)``; at zoom 1
        a background point moves in the frame by ``-(offset_t - offset_0)``), ``agents`` (in
        drawing order, later ones occlude earlier ones: ``kind``, ``color``, per-frame
        ``position`` ``(T, 2)`` xy in frame pixels, ``angle`` ``(T,)`` radians, ``scale`` ``(T,)``
        on-screen size in pixels, ``visible`` ``(T,)`` centre inside the frame) and
        ``distractors``.
    """
    rng = np.random.default_rng(seed)
    n, s, u = cfg.num_frames, cfg.size, cfg.size / 64

    canvas, background, tint = _background(rng, cfg)
    flip = rng.random() < 0.5
    center, zoom = _camera(rng, cfg, canvas.shape)
    grid = np.arange(s, dtype=np.float32) - (s - 1) / 2
    iy = np.floor(center[:, 1, None, None] + grid[None, :, None] / zoom[:, None, None] + 0.5)
    ix = np.floor(center[:, 0, None, None] + grid[None, None, :] / zoom[:, None, None] + 0.5)
    iy = np.clip(iy, 0, canvas.shape[0] - 1).astype(np.int64)  # (T, H, 1)
    ix = np.clip(ix, 0, canvas.shape[1] - 1).astype(np.int64)  # (T, 1, W)
    column = canvas.shape[1] - 1 - ix if flip else ix  # a mirrored background
    frames = canvas.ravel().take(iy * canvas.shape[1] + column)  # (T, H, W) packed
    if tint is not None:  # grey photo: colour it through a lookup table
        frames = _pack(np.arange(256)[:, None] * tint).take(frames & 255)

    distractors = {"leaves": bool(rng.random() < cfg.leaves_probability)}
    if distractors["leaves"]:
        _leaves(rng, frames, iy, ix, cfg, center[0])

    pix = np.arange(s, dtype=np.float32)
    xs, ys = pix[None, None, :], pix[None, :, None]
    agents = []
    for _ in range(int(rng.integers(cfg.min_agents, cfg.max_agents + 1))):
        kind = str(rng.choice(cfg.embodiments))
        color = _random_colors(rng, 1)[0]
        speed = rng.uniform(*cfg.agent_speed) * u
        start_frame = rng.uniform(-0.2, 1.2, 2) * (s - 1)  # may start outside and walk in
        start = center[0] + (start_frame - (s - 1) / 2) / zoom[0]
        moves, heading = _smooth_path(rng, n, speed)
        heading = heading.astype(np.float32)
        world = start + moves  # (T, 2) background pixels
        position = ((world - center) * zoom[:, None] + (s - 1) / 2).astype(np.float32)
        growth = np.exp(rng.uniform(-0.4, 0.4) * (np.arange(n) - (n - 1) / 2) / max(n - 1, 1))
        size = rng.uniform(4, 9) * u if kind != "stick" else rng.uniform(9, 15) * u
        scale = (size * growth * zoom).astype(np.float32)
        fx, fy = position[:, 0], position[:, 1]
        if kind == "stick":  # upright with a sway; limbs swing with the distance walked
            t = np.arange(n, dtype=np.float32)
            angle = 0.3 * np.sin(t * rng.uniform(0.3, 1.0) + rng.uniform(0, 6.3))
            walked = np.linalg.norm(np.diff(world, axis=0), axis=1)
            phase = np.concatenate([[0.0], np.cumsum(walked)]) / (0.25 * size)
            _draw_stick(frames, xs, ys, fx, fy, scale, angle, color, phase + rng.uniform(0, 6))
        else:
            angle = heading
            draw = {"disc": _draw_disc, "box": _draw_box, "patch": _draw_patch}[kind]
            draw(frames, xs, ys, fx, fy, scale, angle, color, rng)
        agents.append({
            "kind": kind, "color": _unpack(_pack(color)), "position": position,
            "angle": np.asarray(angle, np.float32), "scale": scale,
            "visible": (fx >= 0) & (fx <= s - 1) & (fy >= 0) & (fy <= s - 1),
        })

    frames = _unpack(frames)  # (T, H, W, 3) uint8
    # flicker and noise in int16: gain in 1/64 steps, noise sigma in 1/4 steps (float is 5x slower)
    flicker = rng.random() < cfg.flicker_probability
    sigma = rng.uniform(1.0, cfg.max_noise) if rng.random() < cfg.noise_probability else 0.0
    if flicker or sigma:
        x = frames.astype(np.int16)
        if flicker:
            gain = 1 + rng.uniform(0.04, 0.15) * np.sin(np.arange(n) * rng.uniform(1, 3)
                                                        + rng.uniform(0, 6.3))
            gain64 = np.rint(gain * 64).astype(np.int16)
            distractors["flicker"] = gain64 / np.float32(64)
            x *= gain64[:, None, None, None]
            x >>= 6
        if sigma:
            k = max(1, round(sigma * 4))
            distractors["noise"] = k / 4
            bank = _noise_bank(max(1 << 20, 1 << (2 * x.size).bit_length()))
            offset = int(rng.integers(0, bank.size - x.size))
            noise = bank[offset : offset + x.size].reshape(x.shape) * np.int16(k)
            noise >>= 8
            x += noise
        frames = np.clip(x, 0, 255, out=x).astype(np.uint8)

    camera = {"center": center.astype(np.float32), "zoom": zoom.astype(np.float32),
              "offset": (center - center[0]).astype(np.float32)}
    meta = {"generator": "miniwild", "seed": int(seed), "background": background,
            "camera": camera, "agents": agents, "distractors": distractors}
    return Clip(frames=frames, fps=cfg.fps, meta=meta)
