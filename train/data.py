"""Data of the training scripts (docs/DESIGN.md#sources-of-a-run): the clips of the run's sources
(:mod:`train.sources`: :func:`build_dataset`, :func:`data_description`), encoded on the fly by
the frozen encoder or read from a feature cache (paper §4: the encoder stays frozen, so its
features can be computed once); for scale, a stream of WebDataset shards and weighted mixtures of
sources (``data.source: shards``, ``data.sources``; docs/SCALE.md).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from lam_core.checkpoint import build_component, load_component
from lam_core.data.cache import (
    DTYPES,
    INDEX_NAME,
    FeatureCacheDataset,
    FeatureCacheError,
    build_feature_cache,
    read_index,
)
from train.job import JobConfig
from train.sources import build_dataset, build_stream, data_description, is_stream

__all__ = [
    "build_dataset",
    "data_description",
    "encode",
    "ensure_cache",
    "features_of",
    "fit_video",
    "load_frozen_encoder",
    "training_data",
    "validation_batches",
]


def load_frozen_encoder(job: JobConfig) -> nn.Module:
    """The frozen encoder: from ``encoder_path``, else built from the config (V-JEPA 2 loads its
    ``hub_id``; a ``tiny`` encoder without weights is random, which only tests should use)."""
    if job.encoder_path:
        encoder = load_component(job.encoder_path, expected="encoder")
    else:
        if job.encoder.kind == "tiny":
            warnings.warn("no encoder_path: the frozen encoder is a RANDOM tiny encoder (fine for "
                          "tests; train one with train/decoder.py train.train_encoder=true)",
                          stacklevel=2)
        encoder = build_component("encoder", job.encoder)
    return encoder.eval().requires_grad_(False)


def fit_video(video: torch.Tensor, size: int) -> torch.Tensor:
    """``(B, T, 3, H, W)`` resized (area) to ``size × size`` when the data has another size."""
    b, t, c, h, w = video.shape
    if (h, w) == (size, size):
        return video
    out = F.interpolate(video.reshape(b * t, c, h, w), size=(size, size), mode="area")
    return out.reshape(b, t, c, size, size)


@torch.no_grad()
def encode(encoder: nn.Module, video: torch.Tensor) -> torch.Tensor:
    """Frozen features ``(B, T', N, D)`` float32 of a clip batch ``(B, T, 3, H, W)``."""
    return encoder(fit_video(video, encoder.cfg.image_size)).float()


class _Resized(Dataset):
    """Items with their video resized to the encoder's input size (for the cache build)."""

    def __init__(self, dataset: Dataset, size: int):
        self.dataset, self.size = dataset, size

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        item = {k: v for k, v in self.dataset[i].items() if isinstance(v, torch.Tensor)}
        item["video"] = fit_video(item["video"][None], self.size)[0]
        return item


def ensure_cache(job: JobConfig, encoder: nn.Module, log=print) -> Path:
    """Build ``data.cache_dir`` from the training split with the frozen encoder unless it exists;
    one process only (several writing one cache would collide)."""
    d = job.data
    cache = Path(d.cache_dir)
    if not (cache / INDEX_NAME).is_file():
        if cache.exists() and any(cache.iterdir()):
            raise FeatureCacheError(f"{cache / INDEX_NAME}: missing in a non-empty folder")
        if cache.exists():
            cache.rmdir()
        dataset = build_dataset(job, "train")
        log(f"building the feature cache {cache} ({len(dataset)} clips, {d.cache_dtype})")
        build_feature_cache(encoder, _Resized(dataset, job.encoder.image_size), cache,
                            batch_size=max(job.train.batch_size, 16),
                            shard_size=d.cache_shard_size, dtype=DTYPES[d.cache_dtype],
                            description=data_description(job, "train"),
                            num_workers=job.train.num_workers)
    return cache


def training_data(job: JobConfig, trainer, encoder: nn.Module) -> Dataset:
    """The training items: raw clips, or ``{"features"[, "actions"]}`` from ``data.cache_dir``
    (built by the main process with the frozen encoder when missing).

    Raises:
        FeatureCacheError: the cache exists but was built from another encoder or other data.
    """
    if is_stream(job):  # features in the shards must come from this encoder
        return build_stream(job, encoder_cfg=encoder.cfg)
    if not job.data.cache_dir:
        return build_dataset(job, "train")
    cache = Path(job.data.cache_dir)
    if trainer.is_main:
        ensure_cache(job, encoder, trainer.print)
    trainer.accelerator.wait_for_everyone()
    index, desc = read_index(cache), data_description(job, "train")
    if index["dataset"] != desc:
        raise FeatureCacheError(f"{cache / INDEX_NAME}: holds {index['dataset']}, this run needs "
                                f"{desc}; point data.cache_dir elsewhere")
    return FeatureCacheDataset(cache, expected_encoder=encoder.cfg)


def features_of(batch: dict, encoder: nn.Module) -> torch.Tensor:
    """A batch's features: cached ones, or the frozen encoder's (no grad)."""
    if "features" in batch:
        return batch["features"]
    return encode(encoder, batch["video"])


@torch.no_grad()
def validation_batches(job: JobConfig, encoder: nn.Module, device: torch.device,
                       keep_video: bool = False) -> list[dict[str, torch.Tensor]]:
    """The held-out split, encoded once: ``[{"features"[, "actions"][, "video"]}]``."""
    dataset = build_dataset(job, "val")
    loader = torch.utils.data.DataLoader(dataset, batch_size=job.train.batch_size)
    out = []
    for batch in loader:
        video = fit_video(batch["video"].to(device), job.encoder.image_size)
        item = {"features": encode(encoder, video)}
        if "actions" in batch:
            item["actions"] = batch["actions"].to(device).float()
        if keep_video:
            item["video"] = video
        out.append(item)
    return out
