"""Transfer fidelity on MiniWild (beyond the paper; cf. §6 "Which embodiment do the latent actions
learn?", Fig. 7–8).

The paper shows transfers by eye. MiniWild knows where its agents are, so we can ask whether the
motion of A's agent shows up in B's prediction *where* it happened in A (the paper finds actions
are spatially localised and camera-relative) and *how* (direction and size). We pick source clips
A with a still camera, one agent that stays in view and no moving distractors (leaves, flicker),
transfer A's latents onto ordinary MiniWild clips B with :meth:`LatentActionPipeline.transfer`,
decode, and measure the moved region of B's prediction with :func:`estimate_motion`.

Estimator ("centroid of change"). With ``X_0`` the last context frame and ``X_t`` the last frame
of predicted step t, the change map ``C_t = Σ_rgb |X_t − X_0|`` of an object translating by ``d_t``
over a still background lives on the symmetric difference of its old and new silhouettes, whose
centroid is the midpoint ``p_0 + d_t / 2`` (exact for a centrally symmetric object of uniform
contrast). We keep the top ``1 − quantile`` pixels of ``C_t`` (weighted by ``C_t``), take their
centroid ``c_t``, fit ``c_t = a + b·t`` by least squares over t = 1 … H (weighted by the change
mass of each step: small early changes are dominated by pixel rounding) and report the start
``p̂_0 = a`` ("where") and the displacement ``d̂_H = 2·b·H`` ("how"; constant velocity assumed).

Limits, honestly: one moving region on a still background is assumed — B's own moving agents,
camera motion or flicker that survive in the prediction, objects appearing or leaving, occlusion,
asymmetric shapes and non-uniform contrast all bias it; the decoder's blur spreads the change; a
velocity that changes within the horizon breaks the linear fit; displacements of a few pixels are
dominated by pixel rounding (on a synthetic disc of radius 5 px, 2.5 px in 7 steps came out with
the wrong sign; 10 px came out within ~6 %), and an object that leaves the frame is
underestimated. So every number comes with two calibrations on the same A clips: the estimator
on A's real frames (``real_*``: how good the estimator is) and on A's own decoded IDM rollout
(``self_*``: what the model reproduces at all).
The transfer numbers mean something only where those two are good.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from lam_core.clip import Clip
from lam_core.eval.common import Progress, heldout_clips, no_progress
from lam_core.pipeline import LatentActionPipeline


@dataclass
class MotionEstimate:
    """Output of :func:`estimate_motion` (pixels, ``(x, y)`` = column, row).

    Attributes:
        start: ``(2,)`` estimated position of the moved region at step 0 (``p̂_0``).
        displacement: ``(2,)`` estimated displacement from step 0 to step H (``d̂_H``).
        centroids: ``(H, 2)`` centroids of change ``c_t``.
        change: mean change per pixel (0–3 in [0, 1] units); near 0 means nothing moved.
    """

    start: np.ndarray
    displacement: np.ndarray
    centroids: np.ndarray
    change: float


def estimate_motion(frames: np.ndarray, quantile: float = 0.9) -> MotionEstimate:
    """Centroid-of-change motion estimate (see the module docstring).

    Args:
        frames: ``(H + 1, S, S, 3)`` (uint8 or float in [0, 1]): the reference frame ``X_0`` then
            one frame per step.
        quantile: pixels of ``C_t`` below this quantile are ignored.
    """
    x = np.asarray(frames, np.float64)
    if x.max() > 1.5:
        x = x / 255.0
    if len(x) < 3:
        raise ValueError("the estimator needs a reference and at least two later frames")
    h, w = x.shape[1:3]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    cents, changes, mass = [], [], []
    for frame in x[1:]:
        c = np.abs(frame - x[0]).sum(-1)
        changes.append(c.mean())
        keep = c * (c >= max(np.quantile(c, quantile), 1e-6))
        mass.append(keep.sum())
        if mass[-1] <= 0:
            cents.append([(w - 1) / 2, (h - 1) / 2])
        else:
            cents.append([(keep * xs).sum() / mass[-1], (keep * ys).sum() / mass[-1]])
    cents = np.array(cents)
    t = np.arange(1, len(cents) + 1, dtype=np.float64)
    # weighted by the change mass: small early changes are dominated by pixel rounding
    sw = np.sqrt(np.maximum(np.array(mass), 1e-12))[:, None]
    design = np.stack([np.ones_like(t), t], axis=1)
    (a, b), *_ = np.linalg.lstsq(design * sw, cents * sw, rcond=None)
    return MotionEstimate(
        start=a, displacement=2 * b * len(cents), centroids=cents, change=float(np.mean(changes))
    )


def _cosine(u: np.ndarray, v: np.ndarray) -> float:
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    return float(u @ v / (nu * nv)) if nu > 0 and nv > 0 else 0.0


@dataclass
class FidelityResult:
    """Transfer fidelity over pairs (A: single-agent source, B: ordinary target).

    For each of ``transfer`` (A's latents on B), ``self`` (A's own rollout) and ``real`` (A's real
    frames) — ``metrics[f"{what}_{m}"]`` — with m in:

    - ``cosine``: mean cosine similarity of the estimated and true displacement directions;
    - ``magnitude_ratio``: median of ``|d̂| / |d|``;
    - ``location_error``: mean distance in pixels between ``p̂_0`` and A's agent at step 0.

    Attributes:
        pairs: ``[(source_seed, target_index), ...]``.
        image_size: the model's frame side (pixels are in this unit).
        metrics: the means above.
        per_pair: ``{"true_displacement": (P, 2), "true_start": (P, 2), "<what>_displacement":
            (P, 2), "<what>_start": (P, 2), "<what>_change": (P,)}``.
        estimator: one line naming the estimator (the module docstring has its limits).
    """

    pairs: list[tuple[int, int]]
    image_size: int
    metrics: dict[str, float]
    per_pair: dict[str, np.ndarray]
    estimator: str = field(default="centroid of change, linear fit (lam_core.eval.fidelity)")


def single_agent_sources(
    n: int, seed: int = 0, min_move: float = 4.0, size: int = 64, num_frames: int = 16
) -> list[Clip]:
    """``n`` MiniWild validation clips with a still camera, one agent that stays in view (centre
    at least 4 px from the border) and moves at least ``min_move`` px, no leaves or flicker."""
    from lam_core.data.miniwild import MiniWildConfig, generate_clip, split_seeds

    cfg = MiniWildConfig(
        num_frames=num_frames,
        size=size,
        min_agents=1,
        max_agents=1,
        camera_motion_probability=0.0,
        zoom_probability=0.0,
        leaves_probability=0.0,
        flicker_probability=0.0,
    )
    out = []
    for s in split_seeds(50 * n + 100, "val", 500_000 + seed):
        clip = generate_clip(s, cfg)
        pos = clip.meta["agents"][0]["position"]
        inside = ((pos >= 4) & (pos <= size - 5)).all()
        if inside and np.linalg.norm(pos[-1] - pos[0]) >= min_move:
            out.append(clip)
            if len(out) == n:
                return out
    raise RuntimeError(f"found only {len(out)} single-agent MiniWild clips for {n} pairs")


@torch.no_grad()
def transfer_fidelity(
    pipeline: LatentActionPipeline,
    targets: Sequence[Clip] | None = None,
    *,
    n_pairs: int = 16,
    seed: int = 0,
    quantile: float = 0.9,
    progress: Progress | None = None,
) -> FidelityResult:
    """Does A's agent motion appear in B's prediction where and as it should?

    Args:
        pipeline: kind ``"latent"`` with a decoder.
        targets: clips B (default: MiniWild validation clips); pair i uses ``targets[i % len]``.
        n_pairs: pairs (one single-agent source each).
        seed: selects the sources.
        quantile: the estimator's change threshold.
        progress: ``progress(fraction, message)``.
    """
    if not pipeline.lam.uses_latents or pipeline.decoder is None:
        raise ValueError("transfer fidelity needs latent actions and a decoder")
    report = progress or no_progress
    sources = single_agent_sources(n_pairs, seed)
    targets = list(targets) if targets is not None else heldout_clips(n_pairs, seed_offset=seed)
    tub, size = pipeline.tubelet, pipeline.image_size
    per: dict[str, list] = {}
    pairs = []
    for i, a in enumerate(sources):
        b = targets[i % len(targets)]
        pos = a.meta["agents"][0]["position"] * (size / a.frames.shape[1])
        ends = np.arange(tub - 1, a.num_frames, tub)  # last frame of each step
        real = pipeline.to_clip(pipeline.to_tensor(a)).frames
        runs = {
            "real": real,
            "self": pipeline.transfer(a, a).transferred.frames,
            "transfer": pipeline.transfer(a, b).transferred.frames,
        }
        steps = min(len(v) for v in runs.values()) // tub
        ends = ends[:steps]
        per.setdefault("true_start", []).append(pos[ends[0]])
        per.setdefault("true_displacement", []).append(pos[ends[-1]] - pos[ends[0]])
        for what, frames in runs.items():
            est = estimate_motion(frames[ends], quantile)
            per.setdefault(f"{what}_start", []).append(est.start)
            per.setdefault(f"{what}_displacement", []).append(est.displacement)
            per.setdefault(f"{what}_change", []).append(est.change)
        pairs.append((int(a.meta["seed"]), i % len(targets)))
        report((i + 1) / len(sources), f"fidelity: pair {i + 1}/{len(sources)}")
    arrays = {k: np.array(v) for k, v in per.items()}
    true_d, true_p = arrays["true_displacement"], arrays["true_start"]
    metrics = {}
    for what in ("transfer", "self", "real"):
        d, p = arrays[f"{what}_displacement"], arrays[f"{what}_start"]
        metrics[f"{what}_cosine"] = float(np.mean([_cosine(u, v) for u, v in zip(d, true_d)]))
        metrics[f"{what}_magnitude_ratio"] = float(
            np.median(np.linalg.norm(d, axis=1) / np.maximum(np.linalg.norm(true_d, axis=1), 1e-6))
        )
        metrics[f"{what}_location_error"] = float(np.linalg.norm(p - true_p, axis=1).mean())
    return FidelityResult(pairs=pairs, image_size=size, metrics=metrics, per_pair=arrays)
