"""Does a latent action world model move objects? Measured in pixels against ground truth.

Per-step direction read by template tracking at sub-pixel motions is noise (a still, blurring
object reads as moving); here every number is a distance in pixels. On clips of anti-aliased shapes
moving over backdrops the model never trained on (:func:`object_clips`), rows: ``truth`` (the real
frames: the tracker's calibration, ratio ≈ 1, error ≈ 0), ``copy`` (frame 0 repeated: ratio 0,
error = the whole distance), ``own`` (A's rollout), ``transfer`` (A's latents on B, whose object
starts where A's does, of another shape, size, colour and background) and ``locality`` (B with a
``near`` object starting there and a ``far`` one ≥ 24 px away, which should stay: ``far_speed``,
px/step). Per clip, against A's true motion: ``path_ratio`` (tracked path length / true),
``net_ratio`` (tracked end displacement projected on the true one / |true|², NaN below 1 px),
``cosine`` (per step where the truth moves ≥ 1 px; a still step scores 0), ``epe_px`` (end-point
error after 7 steps), ``background_change`` (mean |frame t − frame 0|, 0–255, over pixels ≥ 8 px
from every object on its ideal path). Lengths are at 64 px and scale with the frame side.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from lam_core.checkpoint import CheckpointError
from lam_core.clip import Clip
from lam_core.eval.common import VIDEO_SUFFIXES, Progress, no_progress, read_clips
from lam_core.eval.motion import _parabola, direction_agreement, step_shifts
from lam_core.pipeline import LatentActionPipeline
from lam_core.video import resize_center_crop

SHAPES = ("disc", "square", "ring", "texture")
BACKGROUNDS = ("plain", "gradient", "noise")
ROWS = ("truth", "copy", "own", "transfer", "locality")
REAL_KEYS = ("transfer_cosine", "transfer_ratio", "own_cosine", "own_ratio", "still_drift_px")
STEPS = 7


def background(kind: str, rng: np.random.Generator, size: int = 64,
               backdrops: list[np.ndarray] | None = None) -> np.ndarray:
    """A ``(size, size, 3)`` float background in [0, 1]: ``plain`` (one colour), ``gradient``
    (two colours, linear at a random angle), ``noise`` (uniform noise blurred by σ = 1.5 px at
    64, std 30/255) or ``real`` (one of ``backdrops``, centre-cropped, maybe mirrored)."""
    (c1, c2), g = rng.uniform(0.1, 0.9, (2, 3)), np.arange(size) / (size - 1) - 0.5
    if kind in ("plain", "gradient"):
        angle = rng.uniform(0, 2 * np.pi) * (kind == "gradient")
        u = np.clip(np.cos(angle) * g[None, :] + np.sin(angle) * g[:, None] + 0.5, 0, 1)
        return c1 + (c2 - c1) * u[..., None] * (kind == "gradient")
    if kind == "noise":
        f = np.fft.fftfreq(size) * np.pi * 1.5 * size / 64
        n = np.fft.ifft2(np.fft.fft2(rng.uniform(-1, 1, (size, size, 3)), axes=(0, 1)) * np.exp(
            -2 * (f[:, None] ** 2 + f[None] ** 2))[..., None], axes=(0, 1)).real
        return np.clip(0.8 * c1 + 0.1 + n * (30 / 255) / n.std(), 0, 1)
    if kind != "real" or not backdrops:
        raise ValueError(f"unknown background {kind!r} (or 'real' without backdrops)")
    image = np.asarray(backdrops[rng.integers(len(backdrops))], np.uint8)
    image = resize_center_crop(image[None], size)[0] / 255.0
    return image[:, ::-1].copy() if rng.random() < 0.5 else image


def real_backdrops(folder: str | Path, n: int | None = None, size: int = 64) -> list[np.ndarray]:
    """The first and the middle frame of every readable video in ``folder`` (sorted by name) as
    ``(size, size, 3)`` uint8 centre crops, at most ``n``; ``[]`` when the folder is missing."""
    from lam_core.video import VideoDecodeError, read_video

    images, paths = [], sorted(Path(folder).glob("*")) if Path(folder).is_dir() else []
    for path in (p for p in paths if p.suffix.lower() in VIDEO_SUFFIXES):
        try:
            frames = read_video(path, size=size).frames
        except VideoDecodeError:
            continue
        images += [frames[0], frames[len(frames) // 2]]
    return images[:n]


def _sdf(obj: dict, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Signed distance (px, < 0 inside) of ``obj``'s shape at offsets from its centre."""
    r = obj["radius"]
    if obj["kind"] == "square":  # side 2r
        qx, qy = np.abs(dx) - r, np.abs(dy) - r
        return np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0)
    d = np.hypot(dx, dy)
    return np.abs(d - 0.75 * r) - 0.25 * r if obj["kind"] == "ring" else d - r


def _placed(meta: dict, positions: list[np.ndarray] | None):
    """``(t, object, x offsets, y offsets)`` of the frame's pixels from each object at each t."""
    yy, xx = np.mgrid[: len(meta["background"]), : len(meta["background"])].astype(np.float64)
    for obj, path in zip(meta["objects"], positions or [o["positions"] for o in meta["objects"]]):
        yield from ((t, obj, xx - x, yy - y) for t, (x, y) in enumerate(path))


def render(meta: dict, positions: list[np.ndarray] | None = None) -> np.ndarray:
    """``(T, H, W, 3)`` uint8 frames of a clip (``meta`` of :func:`object_clips`), its objects at
    ``positions`` (one ``(T, 2)`` each; default: their own), covering ``clip(0.5 − signed
    distance, 0, 1)`` of a pixel (anti-aliased); a texture: three plane waves."""
    frames = np.repeat(meta["background"][None], STEPS + 1, axis=0)
    for t, obj, dx, dy in _placed(meta, positions):
        cover, color = np.clip(0.5 - _sdf(obj, dx, dy), 0, 1)[..., None], np.asarray(obj["color"])
        if obj["kind"] == "texture":
            k, phase = obj["waves"][:, :2], obj["waves"][:, 2]
            wave = np.cos(dx[..., None] * k[:, 0] + dy[..., None] * k[:, 1] + phase).mean(-1)
            color = color * (0.775 + 0.225 * wave)[..., None]
        frames[t] = frames[t] * (1 - cover) + color * cover
    return np.round(np.clip(frames, 0, 1) * 255).astype(np.uint8)


def near_mask(meta: dict, positions: list[np.ndarray] | None = None) -> np.ndarray:
    """``(T, H, W)`` bool: within 8 px (at 64) of an object at t (``positions``: :func:`render`)."""
    out = np.zeros((STEPS + 1, *meta["background"].shape[:2]), bool)
    for t, obj, dx, dy in _placed(meta, positions):
        out[t] |= _sdf(obj, dx, dy) <= 8.0 * len(out[t]) / 64
    return out


def _path(rng, motion: str, start, speed: float, lo: float, hi: float) -> np.ndarray:
    """``(STEPS + 1, 2)`` positions from ``start``: ``smooth`` turns by a constant ≤ 20° a step,
    ``random`` takes a new uniform direction every step; reflected into ``[lo, hi]``."""
    angle, turn = rng.uniform(0, 2 * np.pi), np.radians(rng.uniform(-20, 20))
    pos = [np.asarray(start, np.float64)]
    for t in range(STEPS):
        angle = rng.uniform(0, 2 * np.pi) if motion == "random" else angle + turn * (t > 0)
        p = pos[-1] + (v := speed * np.array([np.cos(angle), np.sin(angle)]))
        for i in range(2):
            while not lo <= p[i] <= hi:  # reflect at the border
                p[i], v[i] = (2 * lo if p[i] < lo else 2 * hi) - p[i], -v[i]
        angle = float(np.arctan2(v[1], v[0]))
        pos.append(p)
    return np.array(pos)


def _object(rng, kind: str, radius: float, bg: np.ndarray, path: np.ndarray, **extra) -> dict:
    """An object whose colour, of 4 random colours and their dark and light versions, is the
    farthest from the background near ``path`` (10th percentile of the distances to its pixels,
    not the distance to their mean: a dark coat under a bright sky averages to a grey)."""
    yy, xx = np.mgrid[: len(bg), : len(bg)]
    under = (np.hypot(xx - path[:, :1, None], yy - path[:, 1:, None]) <= radius + 2).any(0)
    colors = np.concatenate([c := rng.uniform(0.2, 1.0, (4, 3)), 0.3 * c, 1 - 0.3 * (1 - c)])
    far = np.percentile(np.linalg.norm(bg[under][None] - colors[:, None], axis=2), 10, axis=1)
    obj = {"kind": kind, "radius": float(radius), "color": colors[np.argmax(far)], **extra}
    if kind == "texture":  # wavelengths of 5–12 px (at 64)
        angle, freq = rng.uniform(0, 2 * np.pi, 3), 2 * np.pi / rng.uniform(5, 12, 3) * 64 / len(bg)
        obj["waves"] = np.stack([freq * np.cos(angle), freq * np.sin(angle),
                                 rng.uniform(0, 2 * np.pi, 3)], 1)
    return obj


def _clip(bg: np.ndarray, objects: list[dict], fps: float, **meta) -> Clip:
    """A :class:`Clip` of ``objects`` (each with its ``positions``) over ``bg``, with its truth."""
    meta = {"background": bg, "objects": objects, **meta}
    meta["positions"] = np.stack([o["positions"] for o in objects])
    meta["radius"], meta["near"] = np.array([o["radius"] for o in objects]), near_mask(meta)
    return Clip(render(meta), fps=fps, meta=meta)


def object_clips(n: int, seed: int = 0, motion: str = "smooth",
                 backgrounds: tuple[str, ...] = BACKGROUNDS,
                 speed: tuple[float, float] = (0.5, 6.0), size: int = 64, fps: float = 4.0,
                 objects: int = 1, backdrops: list[np.ndarray] | None = None) -> list[Clip]:
    """``n`` clips of 8 frames (seeded): clip ``i`` has background ``backgrounds[i % len]``
    (``real`` needs ``backdrops``), shape ``SHAPES[(i // len) % 4]`` (then the next), diameters of
    8–24 px (8–16 with two objects), a speed in ``speed`` px/step, ``smooth`` (turning by a constant
    ≤ 20° a step) or ``random`` motion (a new direction every step), reflected to stay in view;
    lengths scale by ``size / 64``. ``meta``: ``positions`` ``(objects, T, 2)`` (x, y), ``radius``,
    ``near`` ``(T, H, W)`` (:func:`near_mask`), ``objects`` (for :func:`render`), ``background``,
    ``background_kind``, ``motion``."""
    if motion not in ("smooth", "random"):
        raise ValueError(f"motion must be smooth or random, got {motion!r}")
    backgrounds = tuple(b for b in backgrounds if b != "real" or backdrops)
    s, clips = size / 64, []
    for i in range(n):
        rng = np.random.default_rng([seed, 7, i, motion == "random"])
        kind = backgrounds[i % len(backgrounds)]
        bg, objs = background(kind, rng, size, backdrops), []
        for j in range(objects):
            r = rng.uniform(4, 12 if objects == 1 else 8) * s
            lo, hi = r + 1, size - 2 - r
            path = _path(rng, motion, rng.uniform(lo, hi, 2), rng.uniform(*speed) * s, lo, hi)
            shape = SHAPES[(i // len(backgrounds) + j) % len(SHAPES)]
            objs.append(_object(rng, shape, r, bg, path, positions=path))
        clips.append(_clip(bg, objs, fps, background_kind=kind, motion=motion, seed=seed))
    return clips


def partner(a: Clip, seed, two: bool = False, backdrops: list[np.ndarray] | None = None) -> Clip:
    """B for clip A: an object starting at A's object's start, of another shape, size, colour and
    texture, over another kind of background, small enough to follow A's path in view; with
    ``two``, a second (``far``) object ≥ 24 px (at 64) from it, as far from A's path as 400 tries
    find. B's objects stand still (with context 1 only B's first frame reaches the model)."""
    rng, size, path_a = np.random.default_rng(seed), a.frames.shape[1], a.meta["positions"][0]
    s, kinds = size / 64, BACKGROUNDS + ("real",) * bool(backdrops)
    kind = [k for k in kinds if k != a.meta["background_kind"]][rng.integers(len(kinds) - 1)]
    bg = background(kind, rng, size, backdrops)
    room = min(path_a.min(), (size - 1 - path_a).min()) - 1
    r = rng.uniform(4 * s, max(4 * s, min((8 if two else 12) * s, room)))
    shape = [k for k in SHAPES if k != a.meta["objects"][0]["kind"]][rng.integers(3)]
    objs = [_object(rng, shape, r, bg, path_a, positions=np.repeat(path_a[:1], STEPS + 1, 0))]
    if two:
        rf = rng.uniform(4, 8) * s
        cand = rng.uniform(rf + 1, size - 2 - rf, (400, 2))
        gap = np.linalg.norm(cand[:, None] - path_a[None], axis=2).min(1)
        far = cand[np.argmax(gap - 1e3 * (np.linalg.norm(cand - path_a[0], axis=1) < 24 * s))]
        objs.append(_object(rng, SHAPES[rng.integers(4)], rf, bg, far[None],
                            positions=np.repeat(far[None], STEPS + 1, 0)))
    return _clip(bg, objs, a.fps, background_kind=kind, motion="still", seed=seed)


def _sample(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``image`` ``(H, W, C)`` at ``(x, y)`` arrays (edges repeated)."""
    h, w = image.shape[:2]
    x, y = np.clip(x, 0, w - 1), np.clip(y, 0, h - 1)
    x0, y0 = np.minimum(np.floor(x).astype(int), w - 2), np.minimum(np.floor(y).astype(int), h - 2)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    top = image[y0, x0] * (1 - fx) + image[y0, x0 + 1] * fx
    return top * (1 - fy) + (image[y0 + 1, x0] * (1 - fx) + image[y0 + 1, x0 + 1] * fx) * fy


def track(frames: np.ndarray, start, radius: float, search: int = 9,
          shape: dict | None = None) -> np.ndarray:
    """Positions ``(T, 2)`` (x, y) of the object at ``start`` in frame 0, frame by frame.

    The template: frame 0's pixels (uint8 RGB) whose centres lie in the disc of ``radius`` around
    ``start`` or in the object's ``shape`` (an entry of ``meta["objects"]``: a ring's hole shows
    background); a 1 px band of background pulled 3 of 200 validation clips off by > 1 px (real
    backdrops). Each frame: squared differences at whole-pixel offsets within ``±search`` of the
    last position, a parabola through the best one's neighbours, then Gauss–Newton steps on the
    bilinearly sampled frame, each kept only if it lowers the cost. Always against frame 0."""
    imgs, start = np.asarray(frames, np.float64) / 255.0, np.asarray(start, np.float64)
    c0, square = np.round(start).astype(int), shape is not None and shape["kind"] == "square"
    half = int(np.ceil(radius * (np.sqrt(2) if square else 1))) + 1
    pad, side, g = half + search + 1, 2 * half + 1, np.arange(-half, half + 1)
    gx, gy = np.meshgrid(g - start[0] + c0[0], g - start[1] + c0[1])
    weight = ((np.hypot(gx, gy) - radius if shape is None else _sdf(shape, gx, gy)) <= 0) * 1.0
    padded = np.pad(imgs, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    ax, ay = np.meshgrid(g + c0[0] + pad, g + c0[1] + pad)  # the template's pixels
    template, d, out = padded[0][ay, ax], np.zeros(2), [start.copy()]

    def cost(image, dd):
        diff = _sample(image, ax + dd[0], ay + dd[1]) - template
        return (weight[..., None] * diff**2).sum(), diff

    for frame in padded[1:]:
        ci = np.clip(c0 + np.round(d).astype(int), 0, np.array(imgs.shape[2:0:-1]) - 1) - c0
        y0, x0 = c0[::-1] + ci[::-1] + pad - search - half
        region = frame[y0 : y0 + side + 2 * search, x0 : x0 + side + 2 * search]
        windows = sliding_window_view(region, (side, side), axis=(0, 1))
        grid = np.einsum("ijcpq,pq->ij", (windows - template.transpose(2, 0, 1)) ** 2, weight)
        iy, ix = np.unravel_index(np.argmin(grid), grid.shape)
        whole = ci + np.array([ix - search, iy - search], np.float64)
        sub = np.array([_parabola(*grid[iy, ix - 1 : ix + 2]) if 0 < ix < len(grid) - 1 else 0,
                        _parabola(*grid[iy - 1 : iy + 2, ix]) if 0 < iy < len(grid) - 1 else 0])
        (best, diff), d = cost(frame, whole + sub), whole + sub
        if grid[iy, ix] <= best:  # the parabola may land worse than the whole pixel
            (best, diff), d = (grid[iy, ix], cost(frame, whole)[1]), whole
        grads, trial = np.gradient(frame, axis=(1, 0)), d.copy()
        for _ in range(4):  # Gauss–Newton on the translation
            jac = np.stack([_sample(g, ax + trial[0], ay + trial[1]) for g in grads], -1)
            hess = np.einsum("pq,pqca,pqcb->ab", weight, jac, jac) + 1e-9 * np.eye(2)
            step = -np.linalg.solve(hess, np.einsum("pq,pqca,pqc->a", weight, jac, diff))
            c, diff = cost(frame, trial := trial + np.clip(step, -0.5, 0.5))
            best, d = (c, trial.copy()) if c < best else (best, d)
        out.append(start + d)
    return np.array(out)


def path_metrics(pred: np.ndarray, true: np.ndarray, min_move: float = 1.0) -> dict[str, float]:
    """Tracked ``pred`` against ``true`` positions (both ``(T, 2)``, one start): ``path_ratio``,
    ``net_ratio``, ``cosine`` and ``epe_px`` of the module's docstring (``min_move``: its 1 px)."""
    sp, st = np.diff(pred, axis=0), np.diff(true, axis=0)
    lp, lt = np.linalg.norm(sp, axis=1), np.linalg.norm(st, axis=1)
    p, t, ok = pred[-1] - pred[0], true[-1] - true[0], lt >= min_move  # net displacements
    return {"path_ratio": lp.sum() / max(lt.sum(), 1e-12),
            "net_ratio": p @ t / (t @ t) if t @ t >= min_move**2 else np.nan,
            "cosine": ((sp * st).sum(1)[ok] / np.maximum(lp * lt, 1e-12)[ok]).mean()
            if ok.any() else np.nan, "epe_px": np.linalg.norm(pred[-1] - true[-1])}


@dataclass
class ObjectMotionResult:
    """:func:`object_motion`'s numbers. ``rows``: row → ``<metric>_median`` / ``_mean`` over clips
    (NaNs left out; ``far_speed`` for locality); ``groups``: ``"motion=smooth"``, … → rows over
    those clips (A's motion and background; B's is another); ``per_clip``: row → metric →
    ``(N,)``; ``labels``: ``(N,)`` ``motion``, ``background``, ``shape``, ``true_speed``."""

    rows: dict[str, dict[str, float]]
    groups: dict[str, dict[str, dict[str, float]]]
    per_clip: dict[str, dict[str, np.ndarray]]
    labels: dict[str, np.ndarray]
    size: int = 64


def _stats(values, name: str) -> dict[str, float]:
    """``{name_median, name_mean}`` of the finite ``values`` (NaN when there are none)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)] if np.isfinite(v).any() else np.full(1, np.nan)
    return {f"{name}_median": float(np.median(v)), f"{name}_mean": float(np.mean(v))}


@torch.no_grad()
def object_motion(pipeline, n_clips: int = 24, seed: int = 0,
                  backdrops: list[np.ndarray] | None = None, progress: Progress | None = None,
                  speed: tuple[float, float] = (0.5, 6.0)) -> ObjectMotionResult:
    """Object motion of a latent world model in pixels: the rows of the module's docstring, over
    ``n_clips`` clips of each motion kind (``smooth``, ``random``), backgrounds in turn (``real``
    too given ``backdrops``, :func:`real_backdrops`), speeds in ``speed`` px/step at 64 px (the
    tracker searches 3 px further); ``pipeline``: a latent model with a decoder."""
    report, size = progress or no_progress, pipeline.image_size
    kinds = BACKGROUNDS + ("real",) * bool(backdrops)
    clips = [c for m in ("smooth", "random") for c in object_clips(
        n_clips, seed, m, kinds, speed, size, pipeline.fps, 1, backdrops)]
    search = int(np.ceil(speed[1] * size / 64)) + 3
    per: dict[str, dict[str, list]] = {row: {} for row in ROWS}
    for i, a in enumerate(clips):
        true = a.meta["positions"][0]
        targets = {"transfer": partner(a, [seed, 11, i], False, backdrops),
                   "locality": partner(a, [seed, 13, i], True, backdrops)}
        runs = {"truth": a.frames, "copy": np.repeat(a.frames[:1], len(true), axis=0),
                **{row: pipeline.transfer(a, b).transferred.frames[: len(true)]
                   for row, b in (("own", a), *targets.items())}}
        for row, frames in runs.items():
            meta = targets.get(row, a).meta
            obj = meta["objects"][0]
            out = path_metrics(track(frames, true[0], obj["radius"], search, shape=obj), true)
            away = ~near_mask(meta, [true, *meta["positions"][1:]]).any(0)  # far objects stay
            out["background_change"] = np.abs(frames[1:, away] - frames[:1, away] * 1.0).mean()
            if row == "locality":
                far = meta["objects"][1]
                pos = track(frames, far["positions"][0], far["radius"], search, shape=far)
                out["far_speed"] = np.linalg.norm(np.diff(pos, axis=0), axis=1).mean()
            for k, v in out.items():
                per[row].setdefault(k, []).append(float(v))
        report((i + 1) / len(clips), f"object motion: clip {i + 1}/{len(clips)}")
    per_clip = {r: {k: np.array(v) for k, v in m.items()} for r, m in per.items()}
    lab = {k: np.array([get(c.meta) for c in clips]) for k, get in (
        ("motion", lambda m: m["motion"]), ("background", lambda m: m["background_kind"]),
        ("shape", lambda m: m["objects"][0]["kind"]),
        ("true_speed", lambda m: np.linalg.norm(np.diff(m["positions"][0], axis=0), 2, 1).mean()))}

    def summary(keep: np.ndarray) -> dict[str, dict[str, float]]:
        return {r: {k: v for name, vals in m.items() for k, v in _stats(vals[keep], name).items()}
                for r, m in per_clip.items()}

    groups = {f"{key}={value}": summary(lab[key] == value)
              for key, values in (("motion", ("smooth", "random")), ("background", kinds))
              for value in values}
    return ObjectMotionResult(summary(lab["motion"] != ""), groups, per_clip, lab, size)


@torch.no_grad()
def real_camera_motion(pipeline, folder: str | Path, pairs: int = 16, seed: int = 0,
                       progress: Progress | None = None, min_speed: float = 0.5) -> dict:
    """Global (camera) motion of real videos transferred between them, by phase correlation.

    Clips: 8-frame windows of the videos in ``folder`` (the model's fps and size, ≤ 64 frames a
    video); A's per-step :func:`~lam_core.eval.motion.phase_shift` on its real frames is the
    reference. For ``pairs`` seeded pairs (A moving ≥ ``min_speed`` px/step, B from another
    video): ``transfer_cosine`` (mean over A's steps ≥ 0.5 px) and ``transfer_ratio`` (px/step of
    A's latents on B / of A), ``own_*`` for A's own rollout, ``still_drift_px`` (px/step of B's
    first frame repeated, rolled out with its own latents); ``_median`` / ``_mean`` over pairs."""
    report, n, size = progress or no_progress, STEPS + 1, pipeline.image_size
    clips = [Clip(resize_center_crop(c.frames[k : k + n], size), c.fps, meta=c.meta) for c in
             read_clips(folder, pipeline.fps, 64) for k in range(0, c.num_frames - STEPS, n)]
    if len({c.meta["path"] for c in clips}) < 2:
        raise ValueError(f"{folder}: need two readable videos of ≥ {n} frames")
    shifts = [step_shifts(c.frames) for c in clips]
    speeds = np.array([np.linalg.norm(s, axis=1).mean() for s in shifts])
    chosen = [(i, j) for i in np.flatnonzero(speeds >= min_speed) for j in range(len(clips))
              if clips[j].meta["path"] != clips[i].meta["path"]]
    chosen = [chosen[k] for k in np.random.default_rng(seed).permutation(len(chosen))[:pairs]]
    per: dict[str, list] = {"transfer": [], "own": [], "still": []}
    for k, (i, j) in enumerate(chosen):
        still = Clip(np.repeat(clips[j].frames[:1], n, axis=0), fps=pipeline.fps)
        for what, a, b in (("transfer", clips[i], clips[j]), ("own", clips[i], clips[i]),
                           ("still", still, still)):
            s = step_shifts(pipeline.transfer(a, b).transferred.frames[:n])
            v = np.linalg.norm(s, axis=1).mean()
            per[what].append((direction_agreement(s, shifts[i])["cosine"], v / speeds[i], v))
        report((k + 1) / len(chosen), f"real camera motion: pair {k + 1}/{len(chosen)}")
    per = {k: np.reshape(v, (-1, 3)) for k, v in per.items()}
    values = (per["transfer"][:, 0], per["transfer"][:, 1], per["own"][:, 0], per["own"][:, 1],
              per["still"][:, 2])
    return {"clips": len(clips), "moving_clips": int((speeds >= min_speed).sum()),
            "pairs": len(chosen), **_stats([speeds[i] for i, _ in chosen], "source_speed_px"),
            **{k: v for key, x in zip(REAL_KEYS, values) for k, v in _stats(x, key).items()}}


def _md(head: list, rows: list) -> list[str]:
    """The lines of a markdown table."""
    return [" | ".join(["", *map(str, r), ""]).strip() for r in [head, ["---"] * len(head), *rows]]


def format_table(result: ObjectMotionResult | dict) -> str:
    """Markdown tables of :func:`object_motion` (all clips: median (mean); then medians by motion
    and by background) or of :func:`real_camera_motion` (a dict)."""
    f = lambda x: "–" if x is None or not np.isfinite(x) else f"{x:.2f}"  # noqa: E731
    if isinstance(result, dict):
        return "\n".join([
            f"Real camera motion (phase correlation): {result['pairs']} pairs of {result['clips']}"
            f" windows ({result['moving_clips']} moving ≥ 0.5 px/step; A's mean speed "
            f"{f(result['source_speed_px_mean'])} px/step)", "", *_md(["metric", "median", "mean"],
            [[k, f(result[k + "_median"]), f(result[k + "_mean"])] for k in REAL_KEYS])])
    keys = ("path_ratio", "net_ratio", "cosine", "epe_px", "background_change", "far_speed")
    rows = [[row, *(f"{f(m[k + '_median'])} ({f(m[k + '_mean'])})" if k + "_mean" in m else ""
                    for k in keys)] for row, m in result.rows.items()]
    groups = [[f"{g} ({(result.labels[g.split('=')[0]] == g.split('=')[1]).sum()})", *(
        " / ".join(f(m[r][k + "_median"]) for k in ("path_ratio", "cosine", "epe_px"))
        for r in ROWS)] for g, m in result.groups.items()]
    return "\n".join([
        f"Object motion: {len(result.labels['motion'])} clips at {result.size} px (true "
        f"speed {f(np.mean(result.labels['true_speed']))} px/step), median (mean) over clips", "",
        *_md(["row", *keys], rows), "", "By motion and background: median path_ratio / cosine / "
        "epe_px", "", *_md(["clips", *ROWS], groups)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lam_core.eval.objects", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="assets/checkpoints/pixel-noisy",
                    help="a pipeline folder (kind latent, with a decoder)")
    ap.add_argument("--clips", help="a folder of real videos: backdrops and camera motion")
    ap.add_argument("--n", type=int, default=24, help="clips of each motion kind (≥ 1)")
    ap.add_argument("--json", help="write the numbers to this file")
    args = ap.parse_args(argv)
    for what, path in (("checkpoint", args.checkpoint), ("--clips", args.clips)):
        if path and not Path(path).is_dir():
            ap.error(f"{what} not found: {path} (a folder)")
    if args.n < 1:
        ap.error("--n must be ≥ 1")
    try:
        pipe = LatentActionPipeline.from_pretrained(args.checkpoint)
    except (CheckpointError, OSError, ValueError) as e:
        ap.error(f"{args.checkpoint}: {e}")
    if not pipe.lam.uses_latents or pipe.decoder is None:
        ap.error(f"{args.checkpoint} has no latent actions or no decoder: nothing to transfer")
    backdrops = real_backdrops(args.clips, size=pipe.image_size) if args.clips else None
    result = object_motion(pipe, args.n, 0, backdrops)
    real = real_camera_motion(pipe, args.clips) if args.clips else None
    print(format_table(result) + ("\n\n" + format_table(real) if real else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"rows": result.rows, "groups": result.groups, "real_camera": real}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
