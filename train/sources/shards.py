"""``data.source: shards``: WebDataset shards of ``train/shards.py pack``, streamed
(:mod:`lam_core.data.shards`, :class:`lam_core.data.streams.ShardSource`; docs/SCALE.md):
``data.shards``, ``data.shard_index``, ``data.val_shards``, ``data.shard_features`` and
``data.shuffle_buffer``. Its lines take ``shards`` (required), ``index`` and ``val_shards``
(its held-out clips).
"""

from __future__ import annotations

import warnings

from lam_core.config import config_to_dict
from lam_core.data.shards import ShardClips, ShardError
from lam_core.data.streams import ShardSource
from train.job import JobConfig, SourceConfig
from train.sources.base import Source, fail


def check_shards(job: JobConfig, source: ShardSource, at: str, encoder_cfg=None) -> None:
    """The shards hold clips this run can use (frames per clip, fps; features of its encoder).

    Raises:
        ShardError: naming the index and the setting that differs.
    """
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


class Shards(Source):
    name = "shards"
    keys = ("shards", "index", "val_shards")
    required = "shards"
    streamed = True

    def line(self, job):
        d = job.data
        return SourceConfig(source=self.name, shards=d.shards, index=d.shard_index,
                            val_shards=d.val_shards)

    def check_data(self, job):
        d = job.data
        if d.shuffle_buffer < 1:
            fail("data.shuffle_buffer", "must be ≥ 1")
        if d.sources is None and d.source != self.name:
            for key in ("shards", "shard_index", "val_shards"):
                if getattr(d, key) is not None:
                    fail(f"data.{key}", "needs source: shards")
            if d.shard_features:
                fail("data.shard_features", "needs source: shards (or data.sources of shards)")
        if d.sources is None and d.source == self.name:
            if not d.shards:
                fail("data.shards", "is required with source: shards (a brace pattern of .tar "
                     "URLs)")
            if job.train.eval_every and not d.val_shards:
                fail("data.val_shards", "is required for validation with source: shards "
                     "(held-out shards), or set train.eval_every: 0")
        for i, s in enumerate(d.sources or ()):
            if d.shard_features and s.source != self.name:
                fail(f"data.sources[{i}].source", "data.shard_features: true needs every source "
                     "to be shards (features and videos do not mix in one batch)")

    def stream(self, job, line, index, at, encoder_cfg=None):
        d = job.data
        source = ShardSource(line.shards, line.index, seed=job.train.seed,
                             shuffle_buffer=d.shuffle_buffer, features=d.shard_features)
        check_shards(job, source, at, encoder_cfg)
        return source

    def has_validation(self, line):
        return bool(line.val_shards)

    def validation(self, job, line, n):
        return ShardClips(line.val_shards, length=n) if line.val_shards else None
