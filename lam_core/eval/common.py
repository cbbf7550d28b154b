"""Helpers shared by the evaluations: held-out clips, batching clips for a pipeline, seeded pairs,
progress callbacks.

Held-out data is MiniWild's validation split (seeds ≥ 10⁹, never seen in training) unless the
caller passes clips of its own (e.g. real videos read with :func:`read_clips`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from lam_core.clip import Clip
from lam_core.pipeline import LatentActionPipeline
from lam_core.processing import ClipProcessor, VideoLike
from lam_core.video import VideoDecodeError

Progress = Callable[[float, str], None]
VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".avi", ".mov")


def no_progress(fraction: float, message: str) -> None:
    """The default progress callback: does nothing."""


def sub_progress(progress: Progress | None, start: float, end: float) -> Progress:
    """A callback reporting into ``[start, end]`` of ``progress``'s range."""
    if progress is None:
        return no_progress
    return lambda f, m: progress(start + (end - start) * float(f), m)


def heldout_clips(n: int, num_frames: int = 16, size: int = 64, seed_offset: int = 0) -> list[Clip]:
    """``n`` MiniWild validation clips (deterministic: seeds ``10⁹ + seed_offset + i``).

    Args:
        n: number of clips.
        num_frames: frames per clip (at MiniWild's 4 fps, the paper's rate).
        size: frame side in pixels.
        seed_offset: first validation seed, relative to the split's start.
    """
    from lam_core.data.miniwild import MiniWildConfig, generate_clip, split_seeds

    cfg = MiniWildConfig(num_frames=num_frames, size=size)
    return [generate_clip(s, cfg) for s in split_seeds(n, "val", seed_offset)]


def read_clips(
    folder: str | Path, fps: float, max_frames: int = 16, size: int | None = None
) -> list[Clip]:
    """Every readable video in ``folder`` (sorted by name) at ``fps``, at most ``max_frames``
    frames each, read by a :class:`~lam_core.processing.ClipProcessor`: centre-cropped and
    resized to ``size`` (a pipeline's ``image_size``: the clips then pass through its processor
    untouched) or at their own size (``None``). Files that cannot be decoded or are too short
    are skipped."""
    processor = ClipProcessor(fps=fps, image_size=size)
    clips = []
    for path in sorted(Path(folder).iterdir()):
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            continue
        try:
            clips.append(processor.read(path, max_frames=max_frames, min_frames=4).clip)
        except VideoDecodeError:
            continue
    return clips


def clips_to_tensor(
    pipeline: LatentActionPipeline,
    clips: Sequence[VideoLike],
    max_frames: int | None = None,
) -> torch.Tensor:
    """Stack clips as one batch ``(B, T, 3, S, S)`` on the pipeline's device.

    A :class:`Clip` is sampled at the model's fps (a processed clip keeps its sampling); a uint8
    array ``(T, H, W, 3)`` is taken frame by frame (use that for the action worlds, whose clips
    repeat each frame ``tubelet`` times at twice the model's fps). Every clip is cut to the
    shortest one.
    """
    tensors = [pipeline.to_tensor(c, max_frames=max_frames) for c in clips]
    t = min(x.shape[1] for x in tensors)
    return torch.cat([x[:, :t] for x in tensors], dim=0)


def random_pairs(n: int, num_clips: int, seed: int) -> list[tuple[int, int]]:
    """``n`` seeded ordered pairs ``(a, b)`` of distinct clip indices."""
    if num_clips < 2:
        raise ValueError(f"pairs need at least 2 clips, got {num_clips}")
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        a, b = rng.choice(num_clips, size=2, replace=False)
        pairs.append((int(a), int(b)))
    return pairs


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator`` (NaN when the denominator is 0 or NaN)."""
    if not np.isfinite(denominator) or denominator == 0:
        return float("nan")
    return float(numerator / denominator)


def batched(n: int, batch_size: int | None) -> list[slice]:
    """Slices covering ``range(n)`` in chunks of ``batch_size`` (one chunk when None)."""
    size = batch_size or n
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def to_jsonable(obj):
    """Dataclasses, numpy arrays and scalars → plain JSON values (NaN/inf → None)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
