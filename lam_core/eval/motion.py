"""Motion estimators for the transfer evaluations (beyond the paper; cf. §6, Fig. 7–8).

The paper shows transfers by eye. Here the motion in a predicted video is measured, step by step,
with two estimators that need no model:

* :func:`phase_shift` — the global shift between two frames by phase correlation (the normalised
  cross-power spectrum of Hann-windowed grey frames; its inverse FFT peaks at the shift, refined
  to sub-pixel by a parabola through the peak's neighbours). For camera motion (pans).
* :func:`track` — one object's position frame by frame by template matching (sum of squared
  differences inside the object's disc, over whole-pixel offsets around the last position, then
  tenths of a pixel), the template cut from the first frame around the object's known position.
  For movers on a still background.

Both are calibrated on real frames with known motion in every evaluation (the ``real_*`` numbers):
a transfer number means something only where the estimator reads the truth correctly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lam_core.eval.common import Progress, no_progress


def gray(frame: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 or float in [0, 1] → ``(H, W)`` float64 luminance in [0, 1]."""
    x = np.asarray(frame, np.float64)
    if x.max() > 1.5:
        x = x / 255.0
    return x @ np.array([0.299, 0.587, 0.114])


def _parabola(minus: float, center: float, plus: float) -> float:
    """Offset in (-0.5, 0.5) of the extremum of the parabola through three equally spaced values."""
    denom = minus - 2 * center + plus
    return 0.0 if abs(denom) < 1e-12 else float(np.clip(0.5 * (minus - plus) / denom, -0.5, 0.5))


def phase_shift(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How far the content moved from frame ``a`` to frame ``b``: ``(dx, dy)`` in pixels with
    ``b(x) ≈ a(x − d)`` (x = column, y = row).

    Args:
        a, b: ``(H, W, 3)`` or ``(H, W)`` frames (uint8 or float in [0, 1]).
    """
    ga, gb = (gray(f) if np.ndim(f) == 3 else np.asarray(f, np.float64) for f in (a, b))
    h, w = ga.shape
    window = np.outer(np.hanning(h), np.hanning(w))
    fa = np.fft.fft2((ga - ga.mean()) * window)
    fb = np.fft.fft2((gb - gb.mean()) * window)
    cross = fb * np.conj(fa)
    corr = np.fft.ifft2(cross / np.maximum(np.abs(cross), 1e-12)).real
    py, px = np.unravel_index(np.argmax(corr), corr.shape)
    sub_x = _parabola(corr[py, (px - 1) % w], corr[py, px], corr[py, (px + 1) % w])
    sub_y = _parabola(corr[(py - 1) % h, px], corr[py, px], corr[(py + 1) % h, px])
    dx = (px + w // 2) % w - w // 2 + sub_x
    dy = (py + h // 2) % h - h // 2 + sub_y
    return np.array([dx, dy])


def step_shifts(frames: np.ndarray) -> np.ndarray:
    """``(T, H, W, 3)`` frames → ``(T − 1, 2)`` content shifts between consecutive frames."""
    return np.array([phase_shift(frames[t], frames[t + 1]) for t in range(len(frames) - 1)])


def _bilinear_patch(image: np.ndarray, x: float, y: float, half: int) -> np.ndarray:
    """The ``(2·half+1)²`` patch of ``image`` ``(H, W)`` centred at the sub-pixel ``(x, y)``,
    edges repeated."""
    h, w = image.shape
    ys = np.clip(y + np.arange(-half, half + 1), 0, h - 1)
    xs = np.clip(x + np.arange(-half, half + 1), 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = image[np.ix_(y0, x0)] * (1 - fx) + image[np.ix_(y0, x1)] * fx
    bottom = image[np.ix_(y1, x0)] * (1 - fx) + image[np.ix_(y1, x1)] * fx
    return top * (1 - fy) + bottom * fy


def track(frames: np.ndarray, start: np.ndarray, radius: float, search: int = 6) -> np.ndarray:
    """Positions ``(T, 2)`` (x, y) of the object at ``start`` in frame 0, frame by frame.

    Args:
        frames: ``(T, H, W, 3)`` uint8 or float in [0, 1].
        start: ``(2,)`` the object's centre in frame 0.
        radius: the object's radius: the template is the disc of ``radius + 0.5`` around
            ``start`` (no background in it, which would pull the match back to where the object
            was). Measured on MiniWild discs: within ~0.5 px of the truth.
        search: the largest per-frame move searched, in pixels.
    """
    images = [gray(f) for f in frames]
    half = int(np.ceil(radius)) + 2
    grid = np.arange(-half, half + 1)
    mask = (grid[:, None] ** 2 + grid[None, :] ** 2 <= (radius + 0.5) ** 2).astype(np.float64)
    template = _bilinear_patch(images[0], float(start[0]), float(start[1]), half)
    pos = np.asarray(start, np.float64).copy()
    out = [pos.copy()]
    coarse, fine = np.arange(-search, search + 1.0), np.linspace(-0.6, 0.6, 13)

    def best(image: np.ndarray, center: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        cost = [[(mask * np.square(_bilinear_patch(image, center[0] + ox, center[1] + oy, half)
                                   - template)).sum() for ox in offsets] for oy in offsets]
        iy, ix = np.unravel_index(np.argmin(cost), (len(offsets), len(offsets)))
        return center + np.array([offsets[ix], offsets[iy]])

    for image in images[1:]:  # whole pixels first, then tenths of a pixel around the best
        pos = best(image, best(image, pos, coarse), fine)
        out.append(pos.copy())
    return np.array(out)


def direction_agreement(pred: np.ndarray, true: np.ndarray, min_move: float = 0.5) -> dict:
    """Per-step agreement of estimated and true displacements ``(S, 2)`` (steps where the truth
    moves less than ``min_move`` px are left out of the cosine).

    Returns:
        ``{"cosine": mean cosine, "magnitude_ratio": Σ|pred| / Σ|true|, "steps": steps used}``.
    """
    pred, true = np.asarray(pred, np.float64).reshape(-1, 2), np.asarray(true).reshape(-1, 2)
    moving = np.linalg.norm(true, axis=1) >= min_move
    if not moving.any():
        return {"cosine": float("nan"), "magnitude_ratio": float("nan"), "steps": 0}
    p, t = pred[moving], true[moving]
    norms = np.linalg.norm(p, axis=1) * np.linalg.norm(t, axis=1)
    cos = np.where(norms > 0, (p * t).sum(1) / np.maximum(norms, 1e-12), 0.0)
    ratio = np.linalg.norm(p, axis=1).sum() / np.linalg.norm(t, axis=1).sum()
    return {"cosine": float(cos.mean()), "magnitude_ratio": float(ratio), "steps": len(p)}


# ----------------------------------------------------------------------------------- protocols
def _psnr(pred: np.ndarray, true: np.ndarray) -> float:
    """PSNR in dB of uint8 (or [0, 1]) frames."""
    p, t = (np.asarray(x, np.float64) / (255.0 if np.asarray(x).dtype == np.uint8 else 1.0)
            for x in (pred, true))
    return float(10 * np.log10(1.0 / max(np.mean((p - t) ** 2), 1e-12)))


def _agreement(prefix: str, pred: list[np.ndarray], true: list[np.ndarray]) -> dict[str, float]:
    """:func:`direction_agreement` over all pairs' steps, keys prefixed."""
    out = direction_agreement(np.concatenate(pred), np.concatenate(true))
    return {f"{prefix}_cosine": out["cosine"], f"{prefix}_magnitude_ratio": out["magnitude_ratio"]}


@dataclass
class MotionTransferResult:
    """A motion-transfer evaluation over pairs (A: source, B: target).

    ``metrics`` holds, for ``real`` (the estimator on A's real frames: its calibration), ``self``
    (A's own rollout), ``transfer`` (B driven by A's latents) and ``control`` (B's own rollout,
    compared with A's motion: should be unrelated), ``<what>_cosine`` (mean per-step cosine of
    estimated and true displacements, steps where A moves ≥ 0.5 px) and
    ``<what>_magnitude_ratio`` (Σ|estimated| / Σ|true|); and the protocol's own numbers (drift,
    PSNR). ``per_pair`` keeps the per-step displacements ``(P, S, 2)``.
    """

    name: str
    pairs: list[tuple[int, int]]
    metrics: dict[str, float]
    per_pair: dict[str, np.ndarray]
    estimator: str


def real_images(folder, side: int = 128, limit: int | None = None) -> list[np.ndarray]:
    """The first frame of every readable video in ``folder`` (sorted by name), resized and
    centre-cropped to ``side × side``: still images to pan over (held-out real footage)."""
    from pathlib import Path

    from lam_core.eval.common import VIDEO_SUFFIXES
    from lam_core.video import VideoDecodeError, read_video, resize_center_crop

    images = []
    for path in sorted(Path(folder).iterdir()):
        if path.suffix.lower() in VIDEO_SUFFIXES:
            try:
                images.append(resize_center_crop(read_video(path, max_frames=1).frames, side)[0])
            except VideoDecodeError:
                continue
    return images[:limit]


def random_velocities(rng: np.random.Generator, steps: int, speed: tuple[float, float]):
    """``(steps, 2)`` velocities: a uniform direction and a speed in ``speed`` at every step."""
    angle = rng.uniform(0, 2 * np.pi, steps)
    return rng.uniform(*speed, steps)[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1)


@torch.no_grad()
def camera_motion_transfer(
    pipeline,
    images: Sequence[np.ndarray],
    *,
    n_pairs: int = 16,
    steps: int = 7,
    speed: tuple[float, float] = (1.0, 3.0),
    seed: int = 0,
    progress: Progress | None = None,
) -> MotionTransferResult:
    """Camera motion transferred between pans over still images (e.g. frames of real footage).

    Pair i pans over image ``i`` (A, a new random direction and speed every step) and over
    another image (B, its own random pan); A's latents drive B. Shifts are measured by
    :func:`phase_shift` between consecutive frames and compared with A's true pan. Also:
    ``drift`` (px/step) of a still pan of B rolled out with its own latents, and the PSNR of A's
    own rollout and of the transfer (against B panned exactly as A) beside copying the first
    frame at every step (``*_psnr_copy``).

    Args:
        pipeline: a latent model with a decoder.
        images: ``(H, W, 3)`` uint8 images, each larger than the model's frame plus the path.
        n_pairs: pairs (images are reused when there are fewer).
        steps: predicted steps per pair.
        speed: the range of camera speeds, frame pixels per step.
        seed: the pans' seed.
        progress: ``progress(fraction, message)``.
    """
    from lam_core.data.scenes import pan_over

    if len(images) < 2:
        raise ValueError("camera motion transfer needs at least two images")
    report = progress or no_progress
    size, fps = pipeline.image_size, pipeline.fps
    per: dict[str, list] = {}
    pairs, psnr, drift = [], {}, []
    for i in range(n_pairs):
        ia = i % len(images)
        ib = (ia + 1 + (i // len(images)) % (len(images) - 1)) % len(images)
        rng = np.random.default_rng([seed, i])
        va, vb = (random_velocities(rng, steps, speed) for _ in range(2))
        a = pan_over(images[ia], va, size, fps)
        b = pan_over(images[ib], vb, size, fps)
        ideal = pan_over(images[ib], a.meta["camera"]["velocity"], size, fps)
        still = pan_over(images[ib], np.zeros((steps, 2)), size, fps)
        truth = -a.meta["camera"]["velocity"]  # content moves against the camera
        moved = pipeline.transfer(a, b)
        own = pipeline.transfer(a, a).transferred.frames
        runs = {"real": a.frames, "self": own, "transfer": moved.transferred.frames,
                "control": moved.target_own.frames}
        per.setdefault("true", []).append(truth)
        for what, frames in runs.items():
            per.setdefault(what, []).append(step_shifts(frames[: steps + 1]))
        still_frames = pipeline.transfer(still, still).transferred.frames
        drift.append(np.linalg.norm(step_shifts(still_frames), axis=1).mean())
        for key, pred, true in (("self", own, a.frames), ("transfer", moved.transferred.frames,
                                                           ideal.frames)):
            psnr.setdefault(f"{key}_psnr", []).append(_psnr(pred[1:], true[1:steps + 1]))
            copy = np.repeat(true[:1], steps, axis=0)
            psnr.setdefault(f"{key}_psnr_copy", []).append(_psnr(copy, true[1:steps + 1]))
        pairs.append((ia, ib))
        report((i + 1) / n_pairs, f"camera motion: pair {i + 1}/{n_pairs}")
    metrics = {}
    for what in ("real", "self", "transfer", "control"):
        metrics.update(_agreement(what, per[what], per["true"]))
    metrics["still_drift_px"] = float(np.mean(drift))
    metrics.update({k: float(np.mean(v)) for k, v in psnr.items()})
    return MotionTransferResult("camera", pairs, metrics, {k: np.array(v) for k, v in per.items()},
                                "phase correlation between consecutive frames")


def single_mover_clips(n: int, split_offset: int, steps: int = 7, size: int = 64,
                       fps: float = 4.0) -> list:
    """``n`` held-out MiniWild ``movers`` clips with one disc, a still camera and no noise (a
    disc looks the same whichever way it turns, so template tracking reads it exactly; boxes and
    patches turn to face where they go)."""
    from lam_core.data.miniwild import MiniWildConfig, generate_clip, split_seeds

    cfg = MiniWildConfig(scene="movers", num_frames=steps + 1, size=size, fps=fps, min_movers=1,
                         max_movers=1, scene_noise_probability=0.0, mover_kinds=("disc",))
    return [generate_clip(s, cfg) for s in split_seeds(n, "val", split_offset)]


@torch.no_grad()
def mover_motion_transfer(
    pipeline,
    *,
    n_pairs: int = 16,
    steps: int = 7,
    seed: int = 0,
    progress: Progress | None = None,
) -> MotionTransferResult:
    """A mover's motion transferred onto another mover (MiniWild ``movers``, held out).

    A and B each hold one mover on a still background; A's latents drive B. B's mover is tracked
    (:func:`track`, from its known position in frame 0) in the transfer and compared with A's
    true per-step motion; A's mover is tracked in A's real frames (calibration) and in its own
    rollout. Also the PSNR of A's own rollout beside copying the first frame.

    Args:
        pipeline: a latent model with a decoder.
        n_pairs: pairs.
        steps: predicted steps per pair.
        seed: selects the clips.
        progress: ``progress(fraction, message)``.
    """
    report = progress or no_progress
    size, fps = pipeline.image_size, pipeline.fps
    sources = single_mover_clips(n_pairs, 700_000 + 1000 * seed, steps, size, fps)
    targets = single_mover_clips(n_pairs, 800_000 + 1000 * seed, steps, size, fps)
    per: dict[str, list] = {}
    psnr: dict[str, list] = {}
    for i, (a, b) in enumerate(zip(sources, targets)):
        agent_a, agent_b = a.meta["agents"][0], b.meta["agents"][0]
        half_a, half_b = float(agent_a["scale"][0]), float(agent_b["scale"][0])  # radii
        moved = pipeline.transfer(a, b)
        own = pipeline.transfer(a, a).transferred.frames
        per.setdefault("true", []).append(np.diff(agent_a["position"], axis=0))
        for what, frames, start, half in (
            ("real", a.frames, agent_a["position"][0], half_a),
            ("self", own, agent_a["position"][0], half_a),
            ("transfer", moved.transferred.frames, agent_b["position"][0], half_b),
            ("control", moved.target_own.frames, agent_b["position"][0], half_b),
        ):
            positions = track(frames[: steps + 1], start, half)
            per.setdefault(what, []).append(np.diff(positions, axis=0))
        psnr.setdefault("self_psnr", []).append(_psnr(own[1:], a.frames[1 : steps + 1]))
        copy = np.repeat(a.frames[:1], steps, axis=0)
        psnr.setdefault("self_psnr_copy", []).append(_psnr(copy, a.frames[1 : steps + 1]))
        report((i + 1) / n_pairs, f"mover motion: pair {i + 1}/{n_pairs}")
    metrics = {}
    for what in ("real", "self", "transfer", "control"):
        metrics.update(_agreement(what, per[what], per["true"]))
    metrics.update({k: float(np.mean(v)) for k, v in psnr.items()})
    pairs = [(int(a.meta["seed"]), int(b.meta["seed"])) for a, b in zip(sources, targets)]
    return MotionTransferResult("mover", pairs, metrics, {k: np.array(v) for k, v in per.items()},
                                "template tracking (sum of squared differences)")
