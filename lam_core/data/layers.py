"""Layers: a MiniWild scene closer to real video, ``MiniWildConfig(scene="layers")``
(docs/DESIGN.md#miniwild).

A camera over a real photograph pans at per-step random velocities (as ``"pan"``; still for the
whole clip with ``still_camera_probability``), and 1-3 foreground layers move over it:

- kinds: ``"cutout"`` (an irregular blob or an ellipse, anti-aliased, filled with another photo's
  texture), the movers' ``"disc"``, ``"box"`` (faces where it goes) and ``"patch"`` (a framed photo
  cut, also turning), a ``"cross"`` like the reach world's effector (two perpendicular bars ~3 px
  thick, 10-16 px long, sometimes outlined), a walking ``"stick"`` figure (legs swap on every step
  it moves) and a shaded ``"ball"``;
- parallax: a layer moves with the camera by its own depth factor (uniform in 1.0-1.6: content at
  the background's depth moves by ``-camera velocity``, a layer by ``-depth · camera velocity``),
  plus its own motion; nearer layers are drawn over farther ones;
- own motion: per-step random velocities (``"steps"``, as ``scenes.step_velocities``), runs
  that start, stop and turn (``"runs"``: 1-4 steps still or moving in one direction, then a
  new run, turning) or none (``"still"``), speeds uniform in ``cfg.layer_speed`` (frame pixels of a
  64 px frame per step, scaled with ``size``);
- half the layers bounce at the frame border (fully in view), the others may leave the frame:
  some of those start outside it and walk in, some walk out (an entry played backwards);
- motion blur in a share of clips (each frame the mean of 3-5 sub-frame renders along the motion of
  the step that ends at it), mild sensor noise as in the other scenes, then a JPEG round trip at a
  random quality in a share of clips (each frame its own blocks: no frame bleeds into another).

The same ``seed`` and settings always give the same frames; the geometry does not depend on the
blur, codec or noise probabilities (their random draws are always made). Coordinates: ``x`` is the
column, ``y`` the row, in pixels.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np

from lam_core.clip import Clip
from lam_core.data.common import MiniWildConfig, _random_colors
from lam_core.data.scenes import _bilinear, _bounce, _finish, _pick_photo, step_velocities

__all__ = ["LAYER_KINDS", "LayerSettings", "render_layers"]

LAYER_KINDS = ("cutout", "disc", "box", "patch", "cross", "stick", "ball")
_TURNING = ("box", "patch")  # kinds that face the way they go


@dataclass(frozen=True)
class LayerSettings:
    """The ``"layers"`` scene's fixed choices (``MiniWildConfig`` holds only ``layer_speed``; the
    camera's speeds and still steps are ``min_speed``, ``max_speed`` and ``still_probability``,
    the sensor noise ``scene_noise_probability`` and ``scene_max_noise``, the photo window
    ``view``). Lengths are pixels of a 64 px frame."""

    still_camera_probability: float = 0.3  # the camera does not move in the whole clip
    layers: tuple[int, int] = (1, 3)  # how many foreground layers, inclusive
    depth: tuple[float, float] = (1.0, 1.6)  # parallax factor relative to the background
    kinds: tuple[tuple[str, float], ...] = (
        ("cutout", 3.0), ("disc", 1.0), ("box", 1.0), ("patch", 1.0), ("cross", 2.0),
        ("stick", 1.0), ("ball", 1.0))  # kind, weight
    still_object_probability: float = 0.15  # no own motion (moves with the camera only);
    # layers that walk in or out of the frame always have their own motion
    runs_probability: float = 0.5  # runs that start, stop and turn, else per-step velocities
    exit_probability: float = 0.5  # free to leave the frame, else bounces at its border
    enter_probability: float = 0.3  # a free layer starts outside the frame and walks in
    leave_probability: float = 0.3  # a free layer walks out of the frame (an entry reversed)
    blur_probability: float = 0.3
    blur_samples: tuple[int, int] = (3, 5)  # sub-frame renders averaged, inclusive
    exposure: tuple[float, float] = (0.5, 1.0)  # share of the step the shutter is open
    codec_probability: float = 0.4
    quality: tuple[int, int] = (30, 80)  # JPEG quality, inclusive


DEFAULT_SETTINGS = LayerSettings()


def _grid(extent: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Sprite coordinates around its centre: ``x`` ``(1, S)``, ``y`` ``(S, 1)`` and ``S``, with at
    least two empty pixels between ``extent`` and the border."""
    side = 2 * math.ceil(extent) + 5
    g = np.arange(side, dtype=np.float32) - np.float32((side - 1) / 2)
    return g[None, :], g[:, None], side


def _cover(dist) -> np.ndarray:
    """Anti-aliased coverage of a signed distance (negative inside)."""
    return np.clip(np.float32(0.5) - dist, 0, 1).astype(np.float32)


def _box_sdf(x, y, half_x: float, half_y: float) -> np.ndarray:
    qx, qy = np.abs(x) - np.float32(half_x), np.abs(y) - np.float32(half_y)
    outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2)
    return outside + np.minimum(np.maximum(qx, qy), 0)


def _segment_dist(x, y, a, b) -> np.ndarray:
    """Distance of every point to the segment from ``a`` to ``b`` (xy)."""
    ax, ay = a
    dx, dy = b[0] - ax, b[1] - ay
    t = np.clip(((x - ax) * dx + (y - ay) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
    return np.sqrt((x - ax - t * dx) ** 2 + (y - ay - t * dy) ** 2)


def _texture(rng, x, y, scale: float, avoid: str):
    """Another photo than ``avoid`` sampled at sprite coordinates: ``(S, S, 3)`` and its name."""
    for _ in range(8):
        name, photo, tint = _pick_photo(rng)
        if name != avoid:
            break
    k = rng.uniform(1.0, 2.5) * 64 / scale  # photo pixels per frame pixel (scale: frame size)
    reach = float(max(np.abs(x).max(), np.abs(y).max())) * k + 2
    h, w = photo.shape[:2]
    px, py = rng.uniform([reach, reach], [max(w - 1 - reach, reach + 1),
                                          max(h - 1 - reach, reach + 1)])
    xx, yy = np.broadcast_arrays(x * np.float32(k) + np.float32(px),
                                 y * np.float32(k) + np.float32(py))
    texture = _bilinear(photo, xx, yy)
    if tint is not None:
        texture = texture * tint.astype(np.float32)
    return texture, name


def _sprite(rng, kind: str, color: np.ndarray, u: float, avoid: str):
    """One layer's look: premultiplied RGBA ``(P, S, S, 4)`` float32 (``P`` poses), its extent
    (centre to the farthest pixel it may cover) and its photo texture's name (or None)."""
    paint = color.astype(np.float32)
    texture_name = None
    if kind in ("disc", "box", "patch"):  # as the movers
        half = rng.uniform(12, 24) * u / 2
        extent = half * (1.0 if kind == "disc" else math.sqrt(2)) + 0.5
        x, y, _ = _grid(extent)
        if kind == "disc":
            dist = np.sqrt(x * x + y * y) - np.float32(half)
        else:
            width = half * (rng.uniform(0.6, 1.0) if kind == "box" else 1.0)
            dist = _box_sdf(x, y, half, width)
        alpha = _cover(dist)
        rgb = np.broadcast_to(paint, (*alpha.shape, 3))
        if kind == "box":  # the front is darker: turning shows
            rgb = rgb * (1 - 0.45 * np.clip(x - np.float32(0.5 * half) + 0.5, 0, 1))[..., None]
        elif kind == "patch":  # a photo cut framed in the colour
            texture, texture_name = _texture(rng, x, y, 64 * u, avoid)
            inner = _cover(dist + np.float32(max(1.5, 0.15 * half)))[..., None]
            rgb = rgb + (texture - rgb) * inner
    elif kind == "cutout":  # an irregular blob or an ellipse, filled with a photo
        radius = rng.uniform(7, 14) * u
        if rng.random() < 0.5:
            k = np.arange(2, 5)[:, None, None]
            amp, phase = rng.uniform(0, 0.16, 3), rng.uniform(0, 2 * np.pi, 3)
            extent = radius * (1 + amp.sum()) + 0.5
            x, y, _ = _grid(extent)
            theta = np.arctan2(y, x)[None]
            wobble = (amp[:, None, None] * np.cos(k * theta + phase[:, None, None])).sum(0)
            dist = np.sqrt(x * x + y * y) - np.float32(radius) * (1 + wobble.astype(np.float32))
        else:
            ax, ay = radius, radius * rng.uniform(0.5, 1.0)
            turn = rng.uniform(0, np.pi)
            extent = ax + 0.5
            x, y, _ = _grid(extent)
            c, s = np.float32(math.cos(turn)), np.float32(math.sin(turn))
            ex, ey = (x * c + y * s) / np.float32(ax), (y * c - x * s) / np.float32(ay)
            dist = (np.sqrt(ex * ex + ey * ey) - 1) * np.float32(ay)
        alpha = _cover(dist)
        rgb, texture_name = _texture(rng, x, y, 64 * u, avoid)
    elif kind == "cross":  # two perpendicular bars, sometimes in a dark outline
        half, thick = rng.uniform(10, 16) * u / 2, 3 * u / 2
        outline = float(rng.random() < 0.5) * max(1.0, u)
        extent = math.hypot(half, thick) + outline + 0.5
        x, y, _ = _grid(extent)
        dist = np.minimum(_box_sdf(x, y, half, thick), _box_sdf(x, y, thick, half))
        alpha, inner = _cover(dist - np.float32(outline)), _cover(dist)[..., None]
        rgb = paint * 0.25 + (paint - paint * 0.25) * inner
    elif kind == "stick":  # a walking figure, upright; pose 1 has its legs and arms closer
        height = rng.uniform(10, 16) * u
        extent = height / 2 + 1.5 * u + 0.5
        x, y, _ = _grid(extent)
        hh, head, thick = height / 2, 0.15 * height, max(0.8, 0.75 * u)
        neck, hip = -hh + 2 * head, 0.1 * height
        poses = []
        for leg, arm in ((0.22, 0.28), (0.05, 0.1)):
            parts = [np.sqrt(x * x + (y - np.float32(-hh + head)) ** 2) - np.float32(head)]
            for a, b in (((0, neck), (0, hip)), ((0, hip), (leg * height, hh)),
                         ((0, hip), (-leg * height, hh)), ((0, neck + 0.05 * height),
                                                           (arm * height, 0.05 * height)),
                         ((0, neck + 0.05 * height), (-arm * height, 0.05 * height))):
                parts.append(_segment_dist(x, y, a, b) - np.float32(thick))
            poses.append(_cover(np.minimum.reduce(parts)))
        alpha = np.stack(poses)
        rgb = np.broadcast_to(paint, (*alpha.shape, 3))
    elif kind == "ball":  # a shaded sphere with a highlight
        radius = rng.uniform(3, 5) * u
        extent = radius + 0.5
        x, y, _ = _grid(extent)
        r2 = (x * x + y * y) / np.float32(radius * radius)
        nz = np.sqrt(np.clip(1 - r2, 0, 1))
        light = np.clip((-0.5 * x - 0.6 * y) / np.float32(radius) + 0.62 * nz, 0, 1)
        shade = (0.35 + 0.65 * light)[..., None]
        highlight = np.clip(light - 0.8, 0, 1)[..., None] * 4
        rgb = paint * shade + (255 - paint * shade) * highlight * 0.6
        alpha = _cover(np.sqrt(x * x + y * y) - np.float32(radius))
    else:
        raise ValueError(f"unknown layer kind {kind!r} (valid: {', '.join(LAYER_KINDS)})")
    alpha = alpha if alpha.ndim == 3 else alpha[None]
    rgba = np.concatenate([np.broadcast_to(rgb, (*alpha.shape, 3)) * alpha[..., None],
                           alpha[..., None]], axis=-1)
    # a sample reads the sprite's pixels up to one away in x and y: it covers up to extent + √2
    return np.ascontiguousarray(rgba, np.float32), float(extent) + 1.5, texture_name


def _own_motion(rng, n: int, cfg: MiniWildConfig, st: LayerSettings, u: float, inward):
    """A layer's own velocities ``(n, 2)`` (frame pixels per step) and the way they were drawn.
    ``inward``: the direction (radians) of a layer that starts outside the frame, else None."""
    lo, hi = cfg.layer_speed[0] * u, cfg.layer_speed[1] * u
    if inward is None and rng.random() < st.still_object_probability:
        return np.zeros((n, 2)), "still"
    if inward is None and rng.random() >= st.runs_probability:
        angle = rng.uniform(0, 2 * np.pi, n)
        speed = rng.uniform(lo, hi, n)
        speed[rng.random(n) < cfg.still_probability] = 0.0
        return speed[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1), "steps"
    velocity, t = np.zeros((n, 2)), 0
    if inward is None:
        heading, moving = rng.uniform(0, 2 * np.pi), bool(rng.random() < 0.6)
    else:  # walks in first, fast enough to show
        heading, moving = inward + rng.uniform(-np.pi / 4, np.pi / 4), True
    while t < n:
        length = int(rng.integers(3, 5) if t == 0 and inward is not None else rng.integers(1, 5))
        if moving:
            floor = max(lo, min(2 * u, hi)) if inward is not None and t == 0 else lo
            speed = rng.uniform(floor, hi)
            velocity[t : t + length] = speed * np.array([math.cos(heading), math.sin(heading)])
        t += length
        if not moving or rng.random() < 0.5:  # start, or stop
            moving = not moving
        heading += rng.uniform(-np.pi, np.pi)  # and a new direction for the next run
    return velocity, "runs"


def _color_against(rng, mean: np.ndarray) -> np.ndarray:
    """A colour far from ``mean`` (the background's mean colour): bright and dark candidates."""
    candidates = _random_colors(rng, 6)
    candidates = np.concatenate([candidates, candidates * 0.3])
    return candidates[np.argmax(((candidates - mean) ** 2).sum(1))]


def _sample(sprite: np.ndarray, pose: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Premultiplied RGBA of ``sprite`` ``(P, S, S, 4)`` at sprite columns ``x`` and rows ``y``
    ``(T, ...)`` (pose ``pose[t]``), bilinear; outside the sprite: transparent."""
    side = sprite.shape[1]
    x, y = np.clip(x, 0, side - 1.001), np.clip(y, 0, side - 1.001)
    x0, y0 = x.astype(np.int32), y.astype(np.int32)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    base = (pose.astype(np.int32) * side * side).reshape((-1,) + (1,) * (x.ndim - 1))
    flat, i = sprite.reshape(-1, 4), base + y0 * side + x0
    a, b, c, d = (flat.take(i + k, axis=0) for k in (0, 1, side, side + 1))
    top = a + (b - a) * fx
    return top + (c + (d - c) * fx - top) * fy


def _blur_offsets(velocity: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Sub-frame offsets ``(T, K, 2)``: frame t is exposed along the step that ends at it (frame 0
    along the first step), ``fractions`` ``(K,)`` of that step around its time."""
    along = np.concatenate([velocity[:1], velocity]) if len(velocity) else np.zeros((1, 2))
    return along[:, None, :] * fractions[None, :, None]


def _composite(frames, sprite, extent, position, angle, pose, offsets) -> np.ndarray:
    """Draw a layer over ``frames`` ``(T, H, W, 3)`` in place: its sprite at ``position`` ``(T, 2)``
    turned by ``angle`` ``(T,)``, averaged over its copies moved by each sub-frame offset
    ``(T, K, 2)`` (the sharp layer is sampled once per frame, then its copies are added at
    sub-pixel shifts). Returns the coverage inside each frame ``(T,)`` in pixels."""
    n, h, w = frames.shape[:3]
    side = 2 * math.ceil(extent + 2)  # a window that holds the sharp layer
    origin = np.floor(position).astype(np.int64) - side // 2  # (T, 2) its top left pixel
    pix = np.arange(side)
    dx = (origin[:, 0, None] + pix - position[:, 0, None]).astype(np.float32)[:, None, :]
    dy = (origin[:, 1, None] + pix - position[:, 1, None]).astype(np.float32)[:, :, None]
    c = np.float32((sprite.shape[1] - 1) / 2)
    if np.any(angle):
        cos = np.cos(angle).astype(np.float32)[:, None, None]
        sin = np.sin(angle).astype(np.float32)[:, None, None]
        sx, sy = cos * dx + sin * dy + c, cos * dy - sin * dx + c
    else:
        sx, sy = np.broadcast_arrays(dx + c, dy + c)
    window = _sample(sprite, pose, sx, sy)  # (T, B, B, 4)
    k = offsets.shape[1]
    if k > 1 and offsets.any():  # motion blur: the mean of the shifted copies
        pad = math.ceil(float(np.abs(offsets).max())) + 1
        blurred = np.zeros((n, side + 2 * pad, side + 2 * pad, 4), np.float32)
        for t in range(n):
            if not offsets[t].any():
                blurred[t, pad : pad + side, pad : pad + side] = window[t]
                continue
            for ox, oy in offsets[t]:
                ix, iy = math.floor(ox), math.floor(oy)
                fx, fy = ox - ix, oy - iy
                for (r, q), weight in (((0, 0), (1 - fx) * (1 - fy)), ((0, 1), fx * (1 - fy)),
                                       ((1, 0), (1 - fx) * fy), ((1, 1), fx * fy)):
                    if weight > 1e-6:
                        y0, x0 = pad + iy + r, pad + ix + q
                        blurred[t, y0 : y0 + side, x0 : x0 + side] += window[t] * np.float32(
                            weight / k)
        window, origin, side = blurred, origin - pad, side + 2 * pad
    covered = np.zeros(n)
    for t in range(n):
        x0, y0 = origin[t]
        a0, b0 = max(0, -x0), max(0, -y0)  # the window's part inside the frame
        a1, b1 = min(side, w - x0), min(side, h - y0)
        if a1 <= a0 or b1 <= b0:
            continue
        part = window[t, b0:b1, a0:a1]
        region = frames[t, y0 + b0 : y0 + b1, x0 + a0 : x0 + a1]
        region *= 1 - part[..., 3:]
        region += part[..., :3]
        covered[t] = part[..., 3].sum()
    return covered


def _pan_views(photo, center, zoom: float, flip: bool, shifts: np.ndarray, s: int) -> np.ndarray:
    """Frames ``(T, s, s, 3)`` float32 of a camera that translates over a photo: frame t is the mean
    of the views shifted by ``shifts[t, k]`` ``(T, K, 2)`` (xy frame pixels) from the one centred
    on photo point ``center`` at ``zoom`` frame pixels per photo pixel (mirrored if ``flip``).
    The path's panorama is rendered once at the frame's scale, then cut at sub-pixel shifts (4
    slices each, much cheaper than rendering every view from the photo)."""
    low = np.floor(shifts.reshape(-1, 2).min(0)).astype(np.int64)
    rel = shifts - low  # >= 0: the views' top left in the panorama
    span = np.ceil(rel.reshape(-1, 2).max(0)).astype(np.int64) + s + 1
    x = center[0] + (np.arange(span[0]) + low[0] - (s - 1) / 2) / zoom
    y = center[1] + (np.arange(span[1]) + low[1] - (s - 1) / 2) / zoom
    x, y = np.broadcast_arrays(x.astype(np.float32)[None, :], y.astype(np.float32)[:, None])
    panorama = _bilinear(photo, photo.shape[1] - 1 - x if flip else x, y)
    frames = np.zeros((shifts.shape[0], s, s, 3), np.float32)
    for t, views in enumerate(rel):
        for sx, sy in views:
            ix, iy = int(sx), int(sy)
            fx, fy = sx - ix, sy - iy
            a = panorama[iy : iy + s + 1, ix : ix + s + 1]
            for (r, c), weight in (((0, 0), (1 - fx) * (1 - fy)), ((0, 1), fx * (1 - fy)),
                                   ((1, 0), (1 - fx) * fy), ((1, 1), fx * fy)):
                if weight > 1e-6:
                    frames[t] += a[r : r + s, c : c + s] * np.float32(weight / len(views))
    return frames


def _jpeg(frames: np.ndarray, quality: int) -> np.ndarray:
    """A JPEG round trip (4:2:0) of every frame: one image of the frames stacked, each padded above
    and below by copies of its own edge rows (16-row blocks), so that no block, chroma sample or
    chroma upsampling (which reads the neighbouring rows) mixes two frames."""
    from PIL import Image

    h, w = frames.shape[1:3]
    below = (-h) % 16 + 16
    padded = np.pad(frames, ((0, 0), (16, below), (0, 0), (0, 0)), mode="edge")
    buffer = io.BytesIO()
    Image.fromarray(padded.reshape(-1, w, 3)).save(buffer, "JPEG", quality=int(quality))
    out = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return np.ascontiguousarray(out.reshape(padded.shape)[:, 16 : 16 + h])


def render_layers(seed: int, cfg: MiniWildConfig, settings: LayerSettings | None = None) -> Clip:
    """Render one ``"layers"`` clip (``generate_clip`` calls this with the default settings).

    Args:
        seed: the clip's seed.
        cfg: the generator's settings (``cfg.scene`` is not read).
        settings: the scene's fixed choices (default :class:`LayerSettings`).

    Returns:
        A clip of ``(num_frames, size, size, 3)`` uint8 frames. ``meta``: ``generator``, ``scene``,
        ``seed``, ``background`` (``photo:<name>``), ``camera`` (as ``"pan"``'s: ``center``,
        ``offset``, ``velocity`` ``(T-1, 2)`` frame pixels, content moves by ``-velocity``,
        ``zoom``, ``rotation`` (zeros), ``flip``, ``still``), ``agents`` in drawing order (later
        ones occlude earlier ones): ``kind``, ``color``, ``position`` ``(T, 2)`` xy frame pixels,
        ``velocity`` ``(T-1, 2)`` its steps in the frame (parallax included),
        ``own_velocity`` ``(T-1, 2)`` = ``velocity + depth · camera velocity``, ``depth``,
        ``angle`` ``(T,)``, ``scale`` ``(T,)`` (centre to its farthest pixel), ``visible`` ``(T,)``
        (covers some of the frame, even a part of a pixel; occlusion by other layers not counted),
        ``motion`` (how its own velocities were drawn, before any bounce: ``"steps"``, ``"runs"``
        or ``"still"``), ``exits`` (free to leave the frame, else it bounces at the border),
        ``texture`` (``photo:<name>`` or None); ``distractors`` (``blur``, ``codec``, ``noise``).
    """
    st = settings or DEFAULT_SETTINGS
    rng = np.random.default_rng(seed)
    n, s, u = cfg.num_frames, cfg.size, cfg.size / 64
    # the effects' draws come first and always, so that the geometry does not depend on them
    blurred = bool(rng.random() < st.blur_probability)
    samples = int(rng.integers(st.blur_samples[0], st.blur_samples[1] + 1))
    exposure = float(rng.uniform(*st.exposure))
    coded = bool(rng.random() < st.codec_probability)
    quality = int(rng.integers(st.quality[0], st.quality[1] + 1))
    fractions = (exposure * (np.linspace(0, 1, samples) - 0.5) if blurred and samples > 1
                 else np.zeros(1))

    # the camera over a photo, as "pan" without zoom or rotation
    name, photo, tint = _pick_photo(rng)
    h, w = photo.shape[:2]
    flip = bool(rng.random() < 0.5)
    still = bool(rng.random() < st.still_camera_probability)
    velocity = step_velocities(rng, n - 1, cfg) * (not still)  # (T-1, 2) frame pixels
    zoom = max(s / np.exp(rng.uniform(*np.log(cfg.view))), s / (min(h, w) - 4))
    half = (s / 2 + 1 + cfg.max_speed * u) / zoom  # room for the blur's sub-frames too
    half = min(half, (min(h, w) - 1) / 2 - 1)
    lo, hi = np.array([half, half]), np.array([w - 1 - half, h - 1 - half])
    center = _bounce(rng.uniform(lo, hi), velocity / zoom, lo, hi)  # (T, 2) photo pixels
    camera_velocity = np.diff(center, axis=0) * zoom  # the steps taken, frame pixels
    offset = np.concatenate([np.zeros((1, 2)), np.cumsum(camera_velocity, axis=0)])
    shifts = offset[:1, None] if still else offset[:, None] + _blur_offsets(camera_velocity,
                                                                               fractions)
    frames = _pan_views(photo, center[0], zoom, flip, shifts, s)
    if tint is not None:
        frames *= tint.astype(np.float32)
    if still:
        frames = np.repeat(frames, n, axis=0)
    mean = frames[0].reshape(-1, 3).mean(0)  # the layers' colours stand out from it

    layers = []
    kinds, weights = zip(*st.kinds)
    p = np.asarray(weights, float) / float(sum(weights))
    for _ in range(int(rng.integers(st.layers[0], st.layers[1] + 1))):
        kind = kinds[int(rng.choice(len(kinds), p=p))]
        depth = float(rng.uniform(*st.depth))
        color = _color_against(rng, mean)
        sprite, extent, texture = _sprite(rng, kind, color, u, name)
        if texture is not None and kind == "cutout":  # all photo: its colour is the texture's
            color = sprite[0, ..., :3].sum((0, 1)) / max(float(sprite[0, ..., 3].sum()), 1e-6)
        exits = bool(rng.random() < st.exit_probability)
        inward, start, way = None, rng.uniform(0, s - 1, 2), rng.random()
        if not exits:
            low, high = extent, max(s - 1 - extent, extent)
            start = rng.uniform(low, high, 2)
        elif way < st.enter_probability + st.leave_probability:  # just outside an edge, heading in
            edge = int(rng.integers(4))
            axis, outside = edge % 2, -extent - rng.uniform(0.5, 3) * u
            start[axis] = outside if edge < 2 else s - 1 - outside
            inward = (0.0, np.pi / 2, np.pi, -np.pi / 2)[edge]
        own, motion = _own_motion(rng, n - 1, cfg, st, u, inward)
        if inward is not None and way >= st.enter_probability:  # the entry played backwards
            start, own = start + own.sum(0), -own[::-1]
        steps = own - depth * camera_velocity  # parallax: the camera moves it by -depth·v
        if exits:
            position = np.concatenate([start[None], start + np.cumsum(steps, axis=0)])
        else:
            position = _bounce(start, steps, low, high)
        step = np.diff(position, axis=0)  # (T-1, 2) after the bounces
        own = step + depth * camera_velocity
        angle = np.zeros(n)
        if kind in _TURNING:  # faces where it last went by itself
            angle[0] = rng.uniform(-np.pi, np.pi)
            for t in range(n - 1):
                moved = np.hypot(*own[t]) > 1e-6
                angle[t + 1] = math.atan2(own[t, 1], own[t, 0]) if moved else angle[t]
        pose = np.zeros(n, np.int64)
        if sprite.shape[0] > 1:  # the legs swap on every step it walks
            pose[1:] = np.cumsum(np.hypot(own[:, 0], own[:, 1]) > 0.25) % 2
        layers.append({"kind": kind, "depth": depth, "sprite": sprite, "extent": extent,
                       "position": position, "step": step, "own": own, "angle": angle,
                       "pose": pose, "color": color, "motion": motion, "exits": exits,
                       "texture": None if texture is None else f"photo:{texture}"})

    agents = []
    for layer in sorted(layers, key=lambda item: item["depth"]):  # far first, near over it
        offsets = _blur_offsets(layer["step"], fractions)
        covered = _composite(frames, layer["sprite"], layer["extent"], layer["position"],
                             layer["angle"], layer["pose"], offsets)
        agents.append({
            "kind": layer["kind"], "color": np.clip(layer["color"], 0, 255).astype(np.uint8),
            "position": layer["position"].astype(np.float32),
            "velocity": layer["step"].astype(np.float32),
            "own_velocity": layer["own"].astype(np.float32), "depth": layer["depth"],
            "angle": layer["angle"].astype(np.float32),
            "scale": np.full(n, layer["extent"], np.float32), "visible": covered > 0,
            "motion": layer["motion"], "exits": layer["exits"], "texture": layer["texture"],
        })

    frames, distractors = _finish(rng, frames, cfg)
    if blurred:
        distractors["blur"] = {"samples": samples, "exposure": exposure}
    if coded:
        frames = _jpeg(frames, quality)
        distractors["codec"] = {"format": "jpeg", "quality": quality}
    camera = {"center": center.astype(np.float32), "offset": offset.astype(np.float32),
              "velocity": camera_velocity.astype(np.float32),
              "zoom": np.full(n, zoom, np.float32), "rotation": np.zeros(n, np.float32),
              "flip": flip, "still": still}
    meta = {"generator": "miniwild", "scene": "layers", "seed": int(seed),
            "background": f"photo:{name}", "camera": camera, "agents": agents,
            "distractors": distractors}
    return Clip(frames=frames, fps=cfg.fps, meta=meta)
