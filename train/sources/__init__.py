"""The kinds of training data, in one registry (docs/DESIGN.md#sources-of-a-run), and what a run
builds from them.

A recipe names one source (``data.source: miniwild``, its settings in ``data.*``; map-style, may
be cached) or mixes several by weight per sample, one readable line each (the paper's Table S3
mixes in-the-wild video with a labeled domain)::

    data:
      sources:
        - {source: miniwild, scene: pan, weight: 4}
        - {source: world, world: reach, weight: 2}      # its clips, without the actions
        - {source: shards, shards: "/data/wild/shard-{000000..000099}.tar", weight: 3}
        - {source: folder, folder: /data/videos, weight: 1}

A line has ``source`` (a name of :data:`SOURCES`), ``weight`` (> 0, default 1) and the keys its
source reads (:attr:`Source.keys <train.sources.base.Source.keys>`). Errors name the key:
``data.sources[2].shards: is required with source: shards``. A list of lines, or ``data.source:
shards``, is a :class:`lam_core.data.streams.ClipStream` that ``Trainer.fit`` reads with a plain
DataLoader, resumable at any step; its validation set is each line's held-out clips in proportion
to the weights.

A new kind of data is a :class:`~train.sources.base.Source` (or, for a seeded procedural dataset,
:class:`~train.sources.base.Seeded` around it) plus its entry in :data:`SOURCES`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from lam_core.config import config_to_dict
from lam_core.data.noise import NoiseDataset
from lam_core.data.streams import ClipStream
from train.job import JobConfig, SourceConfig
from train.sources.base import Seeded, Source, fail
from train.sources.folder import Folder
from train.sources.miniwild import MiniWild, miniwild_config
from train.sources.shards import Shards
from train.sources.world import World

__all__ = [
    "SOURCES",
    "Source",
    "ValidationClips",
    "build_dataset",
    "build_stream",
    "build_validation",
    "check_data",
    "data_description",
    "is_stream",
    "miniwild_config",
    "stream_sources",
]

SOURCES: dict[str, Source] = {s.name: s for s in (
    MiniWild(),
    World(),
    Folder(),
    Shards(),
    Seeded("noise", NoiseDataset),
)}
LINE_KEYS = tuple(k for k in SourceConfig.__dataclass_fields__ if k not in ("source", "weight"))


def is_stream(job: JobConfig) -> bool:
    """Whether the run trains from a :class:`ClipStream` (a list of sources, or shards)."""
    return job.data.sources is not None or SOURCES[job.data.source].streamed


def stream_sources(job: JobConfig) -> list[SourceConfig]:
    """``data.sources``, or ``data.source`` as a list of one line."""
    d = job.data
    return list(d.sources) if d.sources is not None else [SOURCES[d.source].line(job)]


def check_data(job: JobConfig) -> None:
    """Value checks of ``data.source``, ``data.sources`` and the keys each source owns.

    Raises:
        ConfigError: naming the key (``data.sources[1].world``).
    """
    d = job.data
    if d.source not in SOURCES:
        fail("data.source", f"must be one of {', '.join(SOURCES)}, got {d.source!r}")
    if is_stream(job) and d.cache_dir:
        fail("data.cache_dir", "a stream (source: shards, data.sources) is not cached; pack the "
             "features into the shards (train/shards.py pack --features) and set "
             "data.shard_features: true")
    if d.sources is not None:
        _check_lines(job)
    for source in SOURCES.values():
        source.check_data(job)


def _check_lines(job: JobConfig) -> None:
    d = job.data
    if d.source != "miniwild" or d.mixture is not None or d.folder or d.shards:
        fail("data.sources", "each source names its own data: leave out data.source, "
             "data.mixture, data.folder and data.shards")
    if not d.sources:
        fail("data.sources", "is empty; give at least one source")
    for i, s in enumerate(d.sources):
        at = f"data.sources[{i}]"
        if s.source not in SOURCES:
            fail(f"{at}.source", f"must be one of {', '.join(SOURCES)}, got {s.source!r}")
        if not s.weight > 0:
            fail(f"{at}.weight", f"must be > 0, got {s.weight}")
        source = SOURCES[s.source]
        for key in LINE_KEYS:
            if getattr(s, key) is not None and key not in source.keys:
                fail(f"{at}.{key}", f"not a key of source {s.source} (its keys: "
                     f"{', '.join(('weight', *source.keys))})")
        if source.required and not getattr(s, source.required):
            fail(f"{at}.{source.required}", f"is required with source: {s.source}")
        if s.clips is not None and s.clips < 1:
            fail(f"{at}.clips", "must be ≥ 1")
        source.check_line(job, s, at)
    if job.train.eval_every and not any(SOURCES[s.source].has_validation(s) for s in d.sources):
        fail("data.sources", "no source gives validation clips: add val_shards to a shards "
             "source, or set train.eval_every: 0")


def build_dataset(job: JobConfig, split: str) -> Dataset:
    """The raw clips of a split: ``{"video": (T, 3, H, W)[, "actions": (K-1, A)]}``.

    Args:
        job: the run config (``data`` and the encoder's size, tubelet and fps).
        split: ``"train"`` (``data.train_clips`` clips) or ``"val"`` (``data.val_clips``).

    Returns:
        A map-style dataset; for a stream the training split is an endless ``ClipStream`` (an
        IterableDataset) and the validation split map-style.
    """
    if is_stream(job):
        return build_stream(job) if split == "train" else build_validation(job)
    d = job.data
    source = SOURCES[d.source]
    length = d.train_clips if split == "train" else d.val_clips
    return source.dataset(job, source.line(job), split, length)


def data_description(job: JobConfig, split: str) -> dict:
    """What a run trains on, as a feature cache's ``index.json`` and the training record hold it
    (compared with ``index.json`` when a cache is reused)."""
    d = job.data
    if is_stream(job):
        lines = [{k: v for k, v in config_to_dict(s).items() if v is not None}
                 for s in stream_sources(job)]
        desc: dict[str, Any] = {"source": "sources" if d.sources is not None else "shards",
                                "num_frames": d.num_frames, "sources": lines}
        if d.shard_features:
            desc["features"] = True
        return {**desc, "split": split}
    desc = {"source": d.source, "split": split, "num_frames": d.num_frames,
            "clips": d.train_clips if split == "train" else d.val_clips}
    return {**desc, **SOURCES[d.source].describe(job)}


def build_stream(job: JobConfig, encoder_cfg: Any | None = None) -> ClipStream:
    """The training stream of ``data.sources`` (or ``data.source: shards``).

    Args:
        job: the run config.
        encoder_cfg: the frozen encoder's config; with ``data.shard_features`` the shards'
            features must come from it.

    Raises:
        ShardError: shards that are missing, unlisted, of another clip length or encoder.
    """
    d = job.data
    streams, weights = [], []
    for i, s in enumerate(stream_sources(job)):
        at = f"data.sources[{i}]" if d.sources is not None else "data.shards"
        streams.append(SOURCES[s.source].stream(job, s, i, at, encoder_cfg))
        weights.append(s.weight)
    keys = ("features",) if d.shard_features else ("video",)
    return ClipStream(streams, weights, seed=job.train.seed, keys=keys,
                      size=job.encoder.image_size)


class ValidationClips(Dataset):
    """Held-out clips of several datasets, videos resized to one size, other entries dropped."""

    def __init__(self, parts: list[tuple[Dataset, int]], size: int) -> None:
        self.parts, self.size = parts, size
        self.index = [(p, i) for p, (ds, n) in enumerate(parts) for i in range(min(n, len(ds)))]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        p, j = self.index[i]
        video = self.parts[p][0][j]["video"]
        if video.shape[-2:] != (self.size, self.size):
            video = F.interpolate(video, size=(self.size, self.size), mode="area")
        return {"video": video}


def build_validation(job: JobConfig) -> Dataset:
    """``data.val_clips`` held-out clips of a stream: each line's share by weight (at least one
    clip each; a shards line gives them from its ``val_shards``, or none)."""
    lines = stream_sources(job)
    total = sum(s.weight for s in lines)
    parts: list[tuple[Dataset, int]] = []
    for s in lines:
        n = max(1, round(job.data.val_clips * s.weight / total))
        part = SOURCES[s.source].validation(job, s, n)
        if part is not None:
            parts.append((part, n))
    return ValidationClips(parts, job.encoder.image_size)
