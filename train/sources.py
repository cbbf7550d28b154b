"""Streamed training data (docs/DESIGN.md#at-scale): ``data.source: shards`` and ``data.sources``,
a list of weighted sources mixed per sample (the paper's Table S3 mixes in-the-wild video with a
labeled domain by weight). One readable line per source in a recipe::

    data:
      sources:
        - {source: miniwild, scene: pan, weight: 4}
        - {source: world, world: reach, weight: 2}      # its clips, without the actions
        - {source: shards, shards: "/data/wild/shard-{000000..000099}.tar", weight: 3}
        - {source: folder, folder: /data/videos, weight: 1}

Keys of a source line: ``source`` (required: miniwild, world, folder or shards), ``weight``
(> 0, default 1) and, by source, ``scene`` (miniwild; default wild), ``world`` (world: reach,
drive or pusht), ``clips`` (miniwild, world: seeds of the training split; default
``data.train_clips``), ``folder`` (folder), ``shards``, ``index``, ``val_shards`` (shards).
Errors name the key: ``data.sources[2].shards: required with source: shards``.
``data.mixture`` (MiniWild scenes only) stays the shorthand it was (map-style, unchanged).

Both build a :class:`lam_core.data.streams.ClipStream` that ``Trainer.fit`` reads with a plain
DataLoader, resumable at any step; validation is a small map-style set: each source's held-out
split (``val_shards`` for shards), in proportion to the weights.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from lam_core.config import ConfigError, config_to_dict

if TYPE_CHECKING:
    from train.config import JobConfig

SOURCES = ("miniwild", "world", "folder", "shards")
WORLDS = ("reach", "drive", "pusht")
# the keys each source may set besides source and weight
SOURCE_KEYS = {"miniwild": ("scene", "clips"), "world": ("world", "clips"), "folder": ("folder",),
               "shards": ("shards", "index", "val_shards")}
REQUIRED = {"world": "world", "folder": "folder", "shards": "shards"}


@dataclass
class SourceConfig:
    """One weighted source of ``data.sources`` (see the module docstring for the keys)."""

    source: str = ""
    weight: float = 1.0
    scene: str | None = None
    world: str | None = None
    clips: int | None = None
    folder: str | None = None
    shards: str | None = None
    index: str | None = None
    val_shards: str | None = None


def is_stream(job: JobConfig) -> bool:
    """Whether the run trains from a :class:`ClipStream` (shards or a list of sources)."""
    return job.data.sources is not None or job.data.source == "shards"


def stream_sources(job: JobConfig) -> list[SourceConfig]:
    """``data.sources``, or ``data.source: shards`` as a list of one."""
    d = job.data
    if d.sources is not None:
        return list(d.sources)
    return [SourceConfig(source="shards", shards=d.shards, index=d.shard_index,
                         val_shards=d.val_shards)]


def check_sources(job: JobConfig) -> None:
    """Value checks of ``data.source: shards`` and ``data.sources``.

    Raises:
        ConfigError: naming the key (``data.sources[1].world``).
    """
    from lam_core.data.miniwild import SCENES

    d, t = job.data, job.train

    def fail(key: str, message: str) -> None:
        raise ConfigError(f"{key}: {message}")

    if d.shuffle_buffer < 1:
        fail("data.shuffle_buffer", "must be ≥ 1")
    if not is_stream(job):
        for key in ("shards", "shard_index", "val_shards"):
            if getattr(d, key) is not None:
                fail(f"data.{key}", "needs source: shards")
        if d.shard_features:
            fail("data.shard_features", "needs source: shards (or data.sources of shards)")
        return
    if d.cache_dir:
        fail("data.cache_dir", "a stream (source: shards, data.sources) is not cached; pack the "
             "features into the shards (train/shards.py pack --features) and set "
             "data.shard_features: true")
    if d.sources is None:
        if not d.shards:
            fail("data.shards", "is required with source: shards (a brace pattern of .tar URLs)")
        if t.eval_every and not d.val_shards:
            fail("data.val_shards", "is required for validation with source: shards (held-out "
                 "shards), or set train.eval_every: 0")
        return
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
        allowed = SOURCE_KEYS[s.source]
        for key in ("scene", "world", "clips", "folder", "shards", "index", "val_shards"):
            if getattr(s, key) is not None and key not in allowed:
                fail(f"{at}.{key}", f"not a key of source {s.source} (its keys: "
                     f"{', '.join(('weight', *allowed))})")
        if s.source in REQUIRED and not getattr(s, REQUIRED[s.source]):
            fail(f"{at}.{REQUIRED[s.source]}", f"is required with source: {s.source}")
        if s.scene is not None and s.scene not in SCENES:
            fail(f"{at}.scene", f"must be one of {', '.join(SCENES)}, got {s.scene!r}")
        if s.world is not None and s.world not in WORLDS:
            fail(f"{at}.world", f"must be one of {', '.join(WORLDS)}, got {s.world!r}")
        if s.clips is not None and s.clips < 1:
            fail(f"{at}.clips", "must be ≥ 1")
        if d.shard_features and s.source != "shards":
            fail(f"{at}.source", "data.shard_features: true needs every source to be shards "
                 "(features and videos do not mix in one batch)")
    if t.eval_every and all(s.source == "shards" and not s.val_shards for s in d.sources):
        fail("data.sources", "no source gives validation clips: add val_shards to a shards "
             "source, or set train.eval_every: 0")


def _map_dataset(job: JobConfig, s: SourceConfig, split: str, length: int | None) -> Dataset:
    """The map-style dataset of a miniwild, world or folder source."""
    d, enc = job.data, job.encoder
    if length is None:
        length = s.clips or d.train_clips
    if s.source == "miniwild":
        from lam_core.data.miniwild import MiniWildDataset
        from train.config import miniwild_config  # train.config imports this module

        cfg = miniwild_config(job)
        return MiniWildDataset(replace(cfg, scene=s.scene or "wild"), length=length, split=split)
    if s.source == "world":
        from lam_core.data.worlds import ActionWorldDataset

        return ActionWorldDataset(s.world, length=length, split=split,
                                  num_steps=d.num_frames // enc.tubelet, tubelet=enc.tubelet)
    from lam_core.data.folders import VideoFolderDataset

    return VideoFolderDataset(s.folder, num_frames=d.num_frames, fps=enc.fps,
                              size=enc.image_size, split=split, seed=job.train.seed)


def _check_shards(job: JobConfig, source, at: str, encoder_cfg: Any | None) -> None:
    """The shards hold clips this run can use (frames per clip, fps; features of its encoder)."""
    from lam_core.data.shards import ShardError

    clip, enc = source.index.get("clip") or {}, job.encoder
    if clip.get("num_frames") not in (None, job.data.num_frames):
        raise ShardError(f"{source.index_url}: clips of {clip['num_frames']} frames, the run "
                         f"needs data.num_frames={job.data.num_frames} ({at}); repack with "
                         f"--num-frames {job.data.num_frames}")
    if clip.get("fps") not in (None, enc.fps):
        warnings.warn(f"{source.index_url}: clips at {clip['fps']} fps, the encoder expects "
                      f"{enc.fps} fps ({at})", stacklevel=3)
    feats = source.index.get("features")
    if source.features and encoder_cfg is not None and feats["encoder"] != config_to_dict(
            encoder_cfg):
        raise ShardError(f"{source.index_url}: the features come from another encoder "
                         f"({feats['encoder']}) than this run's ({config_to_dict(encoder_cfg)})")


def build_stream(job: JobConfig, encoder_cfg: Any | None = None):
    """The training stream of ``data.source: shards`` or ``data.sources``.

    Args:
        job: the run config.
        encoder_cfg: the frozen encoder's config; with ``data.shard_features`` the shards'
            features must come from it.

    Raises:
        ShardError: shards that are missing, unlisted, of another clip length or encoder.
    """
    from lam_core.data.streams import ClipStream, MapSource, ShardSource

    d, seed = job.data, job.train.seed
    sources, weights = [], []
    for i, s in enumerate(stream_sources(job)):
        at = f"data.sources[{i}]" if d.sources is not None else "data.shards"
        if s.source == "shards":
            src = ShardSource(s.shards, s.index, seed=seed, shuffle_buffer=d.shuffle_buffer,
                              features=d.shard_features)
            _check_shards(job, src, at, encoder_cfg)
        else:
            src = MapSource(_map_dataset(job, s, "train", None), seed=seed, stream=i,
                            name=s.source)
        sources.append(src)
        weights.append(s.weight)
    keys = ("features",) if d.shard_features else ("video",)
    return ClipStream(sources, weights, seed=seed, keys=keys, size=job.encoder.image_size)


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
    """``data.val_clips`` held-out clips: each source's share by weight (at least one clip each;
    a shards source gives them from its ``val_shards``, or none)."""
    from lam_core.data.shards import ShardClips

    d = job.data
    lines = stream_sources(job)
    total = sum(s.weight for s in lines)
    parts: list[tuple[Dataset, int]] = []
    for s in lines:
        n = max(1, round(d.val_clips * s.weight / total))
        if s.source == "shards":
            if s.val_shards:
                parts.append((ShardClips(s.val_shards, length=n), n))
        else:
            parts.append((_map_dataset(job, s, "val", n), n))
    return ValidationClips(parts, job.encoder.image_size)


def describe_sources(job: JobConfig) -> dict:
    """What a stream trains on (for the training record in the final model's config)."""
    lines = [{k: v for k, v in config_to_dict(s).items() if v is not None}
             for s in stream_sources(job)]
    desc: dict[str, Any] = {"source": "sources" if job.data.sources is not None else "shards",
                            "num_frames": job.data.num_frames, "sources": lines}
    if job.data.shard_features:
        desc["features"] = True
    return desc
