"""Cycle consistency of latent actions (paper §6, Table 2): infer on A, apply to B, re-infer on
B's prediction, apply to A; compare A's rollout error with its own latents ("original") and with
the cycled ones ("transfer").

Over ``n_pairs`` seeded random pairs of held-out clips we call
:meth:`LatentActionPipeline.cycle` and report the mean feature L1 of both rollouts and their ratio
(paper: ×1.03–×1.34), plus pixel L1 / LPIPS of the decoded rollouts against A's real frames when the
pipeline has a decoder (the paper reports LPIPS over 2 s of prediction).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lam_core.clip import Clip
from lam_core.eval.common import Progress, heldout_clips, no_progress, random_pairs, ratio
from lam_core.eval.metrics import mean_or_none, pixel_metrics
from lam_core.pipeline import LatentActionPipeline


@dataclass
class CycleSummary:
    """Table 2 for one pipeline.

    Attributes:
        pairs: ``[(a, b), ...]`` clip indices.
        direct_error: mean feature L1 of A's rollout with A's latents ("Original").
        cycled_error: the same with the latents re-inferred on B's transferred prediction.
        ratio: ``cycled_error / direct_error``.
        direct_errors, cycled_errors: ``(P, H)`` per pair and step.
        direct_pixel_l1, cycled_pixel_l1, direct_lpips, cycled_lpips: decoded rollouts vs A's real
            frames (None without a decoder / without LPIPS weights).
    """

    pairs: list[tuple[int, int]]
    direct_error: float
    cycled_error: float
    ratio: float
    direct_errors: np.ndarray
    cycled_errors: np.ndarray
    direct_pixel_l1: float | None
    cycled_pixel_l1: float | None
    direct_lpips: float | None
    cycled_lpips: float | None


def _pixels(clip: Clip) -> torch.Tensor:
    """A decoded clip (uint8, model fps) → ``(1, T, 3, H, W)`` in [0, 1]."""
    return torch.from_numpy(clip.frames).permute(0, 3, 1, 2).float().div(255)[None]


@torch.no_grad()
def cycle(
    pipeline: LatentActionPipeline,
    clips: Sequence[Clip] | None = None,
    *,
    n_pairs: int = 32,
    n_clips: int = 32,
    context: int = 1,
    seed: int = 0,
    progress: Progress | None = None,
) -> CycleSummary:
    """Cycle A → B → A over random pairs.

    Args:
        pipeline: kind ``"latent"``.
        clips: clips to pair (default: ``n_clips`` MiniWild validation clips).
        n_pairs: random ordered pairs (A, B), seeded by ``seed``.
        n_clips: MiniWild clips when ``clips`` is None.
        context: real steps of each rollout.
        seed: seeds the pairs.
        progress: ``progress(fraction, message)``.
    """
    if not pipeline.lam.uses_latents:
        raise ValueError(f"a {pipeline.lam.cfg.kind!r} model has no latent actions to cycle")
    report = progress or no_progress
    clips = list(clips) if clips is not None else heldout_clips(n_clips)
    pairs = random_pairs(n_pairs, len(clips), seed)
    direct, cycled, pix = [], [], {"direct": [], "cycled": []}
    lo = context * pipeline.tubelet
    for i, (a, b) in enumerate(pairs):
        res = pipeline.cycle(clips[a], clips[b], context=context)
        direct.append(res.direct_errors)
        cycled.append(res.cycled_errors)
        if res.direct is not None:
            hi = res.direct.num_frames
            truth = pipeline.to_tensor(clips[a])[:, lo:hi].cpu()
            for key, clip in (("direct", res.direct), ("cycled", res.cycled)):
                pix[key].append(pixel_metrics(_pixels(clip)[:, lo:hi], truth))
        report((i + 1) / len(pairs), f"cycle: pair {i + 1}/{len(pairs)}")
    h = min(len(e) for e in direct)
    d = np.stack([e[:h] for e in direct])
    c = np.stack([e[:h] for e in cycled])

    def mean_of(key: str, metric: str) -> float | None:
        vals = [m[metric] for m in pix[key]]
        if not vals or any(v is None for v in vals):
            return None
        return mean_or_none(np.concatenate([v.reshape(-1) for v in vals]))

    return CycleSummary(
        pairs=pairs,
        direct_error=float(d.mean()),
        cycled_error=float(c.mean()),
        ratio=ratio(c.mean(), d.mean()),
        direct_errors=d,
        cycled_errors=c,
        direct_pixel_l1=mean_of("direct", "pixel_l1"),
        cycled_pixel_l1=mean_of("cycled", "pixel_l1"),
        direct_lpips=mean_of("direct", "lpips"),
        cycled_lpips=mean_of("cycled", "lpips"),
    )
