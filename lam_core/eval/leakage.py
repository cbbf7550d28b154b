"""Future leakage (paper §6, Table 1): stitch the end of clip B onto clip A and compare the
one-step prediction error at the cut with the error at the same step without the cut.

A latent that encoded the whole next frame would show no spike at a scene cut; the paper finds
the error more than doubles (×2.0–×2.5) for every regularizer. Over ``n_pairs`` seeded random
pairs of held-out clips we call :meth:`LatentActionPipeline.leakage` and report the mean errors at
the cut and their ratio (ratio of means, as in Table 1; the mean of per-pair ratios is kept too).
The paper reports LPIPS of decoded frames; this measures the IDM-conditioned one-step error in
feature space (L1), the quantity the world model is trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lam_core.clip import Clip
from lam_core.eval.common import Progress, heldout_clips, no_progress, random_pairs, ratio
from lam_core.pipeline import LatentActionPipeline


@dataclass
class LeakageSummary:
    """Table 1 for one pipeline.

    Attributes:
        pairs: ``[(a, b), ...]`` clip indices; ``cut``: first step taken from B.
        error_no_cut: mean one-step feature L1 at the cut step without the cut ("w/o change").
        error_cut: the same with the cut ("w/ change").
        ratio: ``error_cut / error_no_cut``; ``mean_pair_ratio``: mean of per-pair ratios.
        errors, errors_cut: ``(P, T'-1)`` one-step errors per pair and transition.
        pair_ratios: ``(P,)``.
    """

    pairs: list[tuple[int, int]]
    cut: int
    error_no_cut: float
    error_cut: float
    ratio: float
    mean_pair_ratio: float
    errors: np.ndarray
    errors_cut: np.ndarray
    pair_ratios: np.ndarray


@torch.no_grad()
def leakage(
    pipeline: LatentActionPipeline,
    clips: Sequence[Clip] | None = None,
    *,
    n_pairs: int = 32,
    n_clips: int = 32,
    cut: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> LeakageSummary:
    """Future leakage over random pairs.

    Args:
        pipeline: kind ``"latent"`` (IDM latents; the other kinds run too but leak nothing).
        clips: clips to pair (default: ``n_clips`` MiniWild validation clips).
        n_pairs: random ordered pairs (A, B), seeded by ``seed``.
        n_clips: MiniWild clips when ``clips`` is None.
        cut: first step from B (default: the middle step).
        seed: seeds the pairs.
        progress: ``progress(fraction, message)``.
    """
    report = progress or no_progress
    clips = list(clips) if clips is not None else heldout_clips(n_clips)
    pairs = random_pairs(n_pairs, len(clips), seed)
    errs, errs_cut, cuts = [], [], []
    for i, (a, b) in enumerate(pairs):
        res = pipeline.leakage(clips[a], clips[b], cut=cut)
        errs.append(res.errors)
        errs_cut.append(res.errors_cut)
        cuts.append(res.cut)
        report((i + 1) / len(pairs), f"leakage: pair {i + 1}/{len(pairs)}")
    t = min(len(e) for e in errs)
    errors = np.stack([e[:t] for e in errs])
    errors_cut = np.stack([e[:t] for e in errs_cut])
    at = np.array(cuts) - 1  # the transition into the cut step
    rows = np.arange(len(pairs))
    before, after = errors[rows, at], errors_cut[rows, at]
    return LeakageSummary(
        pairs=pairs,
        cut=int(cuts[0]),
        error_no_cut=float(before.mean()),
        error_cut=float(after.mean()),
        ratio=ratio(after.mean(), before.mean()),
        mean_pair_ratio=float(np.mean(after / np.maximum(before, 1e-12))),
        errors=errors,
        errors_cut=errors_cut,
        pair_ratios=after / np.maximum(before, 1e-12),
    )
