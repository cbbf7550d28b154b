"""Capacity of latent actions (paper §5, Fig. 4): prediction error with IDM latents on held-out
clips.

The IDM sees the future, so this is the upper bound of what the latents can explain ("in-the-wild
prediction error" = capacity). For each pipeline: the autoregressive rollout from ``context`` real
steps (feature L1 per step; pixel L1, PSNR and LPIPS of the decoded frames), the teacher-forced
one-step error (Fig. 4's "one step prediction error"), the copy-last-frame baseline, and the
decoder's own floor (decoding the true features). A deterministic model (no latent) and the
unconstrained one (regularizer ``none``) are the two ends of the axis: run them like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lam_core.clip import Clip
from lam_core.eval.common import Progress, batched, clips_to_tensor, heldout_clips, no_progress
from lam_core.eval.metrics import (
    feature_l1,
    mean_or_none,
    pixel_metrics,
    rollout_pixel_metrics,
)
from lam_core.operations import one_step_errors
from lam_core.pipeline import LatentActionPipeline


def model_label(pipeline: LatentActionPipeline) -> str:
    """``sparse`` / ``noisy`` / ``discrete`` / ``none`` for latent models, else the LAM kind."""
    cfg = pipeline.lam.cfg
    return cfg.regularizer.kind if cfg.kind == "latent" else cfg.kind


@dataclass
class CapacityResult:
    """Fig. 4 for one pipeline. Means over clips; ``*_per_step`` arrays ``(H,)``.

    Attributes:
        label: regularizer or kind (:func:`model_label`).
        clips: clips evaluated; ``context``: real steps given; ``horizon``: steps predicted.
        feature_l1, feature_l1_per_step: rollout error in feature space.
        one_step_l1: teacher-forced one-step feature L1 (every transition sees real past steps).
        shuffled_one_step_l1: the same with each clip's latents taken from another clip of its
            batch (None for a deterministic model). ``latent_effect = shuffled / own − 1``: how
            much the world model uses its latents (0 = not at all).
        pixel_l1, psnr, lpips (+ ``_per_step``): decoded rollout vs the real frames (None without a
            decoder; ``lpips`` None without the LPIPS weights).
        copy_feature_l1, copy_pixel_l1, copy_psnr, copy_lpips: copy-last-frame baseline.
        decoder_pixel_l1, decoder_psnr: decoded true features vs real frames (the decoder's floor).
    """

    label: str
    clips: int
    context: int
    horizon: int
    feature_l1: float
    feature_l1_per_step: np.ndarray
    one_step_l1: float
    shuffled_one_step_l1: float | None
    pixel_l1: float | None
    psnr: float | None
    lpips: float | None
    pixel_l1_per_step: np.ndarray | None
    lpips_per_step: np.ndarray | None
    copy_feature_l1: float
    copy_feature_l1_per_step: np.ndarray
    copy_pixel_l1: float
    copy_psnr: float
    copy_lpips: float | None
    decoder_pixel_l1: float | None
    decoder_psnr: float | None


def _cat(parts: list) -> np.ndarray | None:
    return None if not parts or any(p is None for p in parts) else np.concatenate(parts)


@torch.no_grad()
def capacity(
    pipeline: LatentActionPipeline,
    clips: Sequence[Clip] | None = None,
    *,
    n_clips: int = 32,
    context: int = 1,
    seed: int = 0,
    batch_size: int = 8,
    progress: Progress | None = None,
) -> CapacityResult:
    """Rollout error with IDM latents (or none, for a deterministic model) on held-out clips.

    Args:
        pipeline: kind ``"latent"`` or ``"deterministic"``.
        clips: clips to evaluate (default: ``n_clips`` MiniWild validation clips from seed
            ``seed``); all are cut to the shortest.
        n_clips: how many MiniWild clips when ``clips`` is None.
        context: real steps the rollout starts from.
        seed: first MiniWild validation seed.
        batch_size: clips per forward pass.
        progress: ``progress(fraction, message)``.
    """
    kind = pipeline.lam.cfg.kind
    if kind == "action":
        raise ValueError("capacity needs latents or a deterministic model, not real actions")
    report = progress or no_progress
    clips = list(clips) if clips is not None else heldout_clips(n_clips, seed_offset=seed)
    video = clips_to_tensor(pipeline, clips)
    tub, steps = pipeline.tubelet, video.shape[1] // pipeline.tubelet
    horizon = steps - context
    if context < 1 or horizon < 1:
        raise ValueError(f"clips of {steps} steps leave no horizon after {context} context steps")
    roll, copy, one_step, shuffled, pix, copy_pix, dec_pix = [], [], [], [], [], [], []
    chunks = batched(len(video), batch_size)
    n_shuffled, z_prev = 0, None
    for i, sl in enumerate(chunks):
        x = video[sl]
        s = pipeline.encode(x)
        z = pipeline.infer_latents(s) if kind == "latent" else None
        pred = pipeline.rollout(s[:, :context], None if z is None else z[:, : steps - 1], horizon)
        truth = s[:, context:]
        roll.append(feature_l1(pred, truth))
        copy.append(feature_l1(s[:, context - 1 : context].expand_as(truth), truth))
        one_step.append(float(one_step_errors(pipeline, s).mean()) * len(x))
        if z is not None and (len(x) > 1 or z_prev is not None):
            # each clip gets the latents of its neighbour in the batch (or in the previous one)
            other = z.roll(1, dims=0) if len(x) > 1 else z_prev[-1:]
            shuffled.append(float(one_step_errors(pipeline, s, latents=other).mean()) * len(x))
            n_shuffled += len(x)
        z_prev = z
        last = x[:, context * tub - 1 : context * tub]
        later = x[:, context * tub :]
        copy_pix.append(pixel_metrics(last.expand_as(later), later))
        if pipeline.decoder is not None:
            pix.append(rollout_pixel_metrics(pipeline, s[:, :context], pred, x))
            dec_pix.append(pixel_metrics(pipeline.decode(s), x))
        report((i + 1) / len(chunks), f"capacity: {i + 1}/{len(chunks)} batches")

    def gather(dicts: list, key: str) -> np.ndarray | None:
        return _cat([d[key] for d in dicts]) if dicts else None

    roll_a, copy_a = np.concatenate(roll), np.concatenate(copy)
    px_l1, px_lp = gather(pix, "pixel_l1"), gather(pix, "lpips")
    return CapacityResult(
        label=model_label(pipeline),
        clips=len(video),
        context=context,
        horizon=horizon,
        feature_l1=float(roll_a.mean()),
        feature_l1_per_step=roll_a.mean(0),
        one_step_l1=sum(one_step) / len(video),
        shuffled_one_step_l1=sum(shuffled) / n_shuffled if n_shuffled == len(video) else None,
        pixel_l1=mean_or_none(px_l1),
        psnr=mean_or_none(gather(pix, "psnr")),
        lpips=mean_or_none(px_lp),
        pixel_l1_per_step=None if px_l1 is None else px_l1.mean(0),
        lpips_per_step=None if px_lp is None else px_lp.mean(0),
        copy_feature_l1=float(copy_a.mean()),
        copy_feature_l1_per_step=copy_a.mean(0),
        copy_pixel_l1=float(gather(copy_pix, "pixel_l1").mean()),
        copy_psnr=float(gather(copy_pix, "psnr").mean()),
        copy_lpips=mean_or_none(gather(copy_pix, "lpips")),
        decoder_pixel_l1=mean_or_none(gather(dec_pix, "pixel_l1")),
        decoder_psnr=mean_or_none(gather(dec_pix, "psnr")),
    )


def latent_effect(result: dict | CapacityResult) -> float | None:
    """``shuffled / own − 1`` of the one-step error (None without latents, e.g. in a report
    written before this field existed)."""
    get = result.get if isinstance(result, dict) else lambda k: getattr(result, k, None)
    own, shuffled = get("one_step_l1"), get("shuffled_one_step_l1")
    return None if shuffled is None or not own else shuffled / own - 1.0
