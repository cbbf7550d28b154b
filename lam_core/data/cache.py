"""Feature cache: encode a dataset once with the frozen encoder, train from the stored features.

The paper keeps the encoder frozen while the world model, the IDM and the decoder train (§4,
App. A), so a clip's features never change: computing them once and reading them back for every
epoch removes the encoder from the training step (docs/DESIGN.md#at-scale).

A cache folder::

    index.json               {"format": "lam-studio-feature-cache", "format_version": 1,
                              "encoder": {...EncoderConfig...}, "dtype": "float16",
                              "count": n, "feature_shape": [T', N, D],
                              "action_shape": [K-1, A] | null,
                              "shards": [{"file": "shard_00000.safetensors", "count": 1024}, ...],
                              "dataset": {...what was encoded...}}
    shard_00000.safetensors  "features" (n_i, T', N, D) [+ "actions" (n_i, K-1, A) float32]

Features are stored in **float16** by default: the encoders end with a LayerNorm, so features are
O(1) and far inside fp16's range (a build that would overflow raises instead of writing inf);
fp16 keeps 11 significant bits (relative error ≤ 2^-11 ≈ 5e-4), 8× finer than bf16's 8 bits (4e-3,
the size of the differences between the models we compare), at half of fp32's disk and page-cache
footprint. fp32 is available where bit-equality with on-the-fly encoding matters (tests), bf16 for
features that do not fit fp16.

The folder is written under a temporary name and renamed when complete, so a half-written cache
is never mistaken for a finished one.
"""

from __future__ import annotations

import bisect
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from lam_core.config import config_to_dict

INDEX_NAME = "index.json"
CACHE_FORMAT = "lam-studio-feature-cache"
FORMAT_VERSION = 1
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


class FeatureCacheError(ValueError):
    """A feature cache is missing, incomplete or corrupt; the message names the file."""


def shard_name(i: int) -> str:
    return f"shard_{i:05d}.safetensors"


def _dtype_name(dtype: torch.dtype | str) -> str:
    for name, dt in DTYPES.items():
        if dtype in (name, dt):
            return name
    raise ValueError(f"cache dtype must be one of {sorted(DTYPES)}, got {dtype!r}")


def describe_dataset(dataset: Any) -> dict:
    """A JSON description of a dataset: its class, length and (dataclass) settings."""
    desc: dict[str, Any] = {"class": type(dataset).__name__, "length": len(dataset)}
    for attr in ("cfg", "world", "num_steps", "tubelet", "root", "num_frames", "fps", "size"):
        value = getattr(dataset, attr, None)
        if value is None:
            continue
        if hasattr(value, "__dataclass_fields__"):
            value = config_to_dict(value)
        desc[attr] = json.loads(json.dumps(value, default=str))
    seeds = getattr(dataset, "seeds", None)
    if isinstance(seeds, range):
        desc["seeds"] = [seeds.start, seeds.stop]
    return desc


@torch.no_grad()
def build_feature_cache(
    encoder: nn.Module,
    dataset: torch.utils.data.Dataset,
    out_dir: str | Path,
    batch_size: int = 32,
    shard_size: int = 1024,
    dtype: torch.dtype | str = torch.float16,
    description: dict | None = None,
    num_workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Encode every item of ``dataset`` once with the frozen ``encoder`` and store the features.

    Args:
        encoder: clip ``(B, T, 3, H, W)`` → features ``(B, T', N, D)``; has ``.cfg`` (an
            EncoderConfig). Run in eval mode without gradients, on its own device; on CUDA under
            bf16 autocast.
        dataset: items ``{"video": (T, 3, H, W)[, "actions": (K-1, A)]}`` in a fixed order.
        out_dir: the cache folder (must not exist yet).
        batch_size: clips per encoder call.
        shard_size: clips per shard file.
        dtype: storage type of the features (``float16``, ``bfloat16`` or ``float32``).
        description: what was encoded (stored in ``index.json``; default: :func:`describe_dataset`).
        num_workers: DataLoader workers producing the clips.
        progress: ``progress(done, total)`` after each batch.

    Returns:
        ``out_dir``.

    Raises:
        FileExistsError: ``out_dir`` exists.
        FeatureCacheError: the encoder produced non-finite values or values beyond ``dtype``.
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"{out_dir}: already exists; remove it to rebuild the cache")
    name = _dtype_name(dtype)
    store = DTYPES[name]
    limit = torch.finfo(store).max
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    was_training = encoder.training
    encoder.eval()
    device = next(iter(encoder.parameters()), torch.zeros(())).device
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                         num_workers=num_workers)
    shards: list[dict] = []
    feats: list[torch.Tensor] = []
    acts: list[torch.Tensor] = []
    shapes: dict[str, list[int] | None] = {"feature_shape": None, "action_shape": None}

    def flush() -> None:
        tensors = {"features": torch.cat(feats).contiguous()}
        if acts:
            tensors["actions"] = torch.cat(acts).float().contiguous()
        file = shard_name(len(shards))
        save_file(tensors, str(tmp / file), metadata={"format": CACHE_FORMAT})
        shards.append({"file": file, "count": len(tensors["features"])})
        feats.clear()
        acts.clear()

    try:
        done = 0
        for batch in loader:
            video = batch["video"].to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                f = encoder(video).float()
            if not torch.isfinite(f).all() or f.abs().max() > limit:
                raise FeatureCacheError(
                    f"{out_dir}: encoder features of clips {done}–{done + len(f) - 1} are not "
                    f"finite or exceed the range of {name} (max |x| {f.abs().max():.3g}); "
                    "use dtype='float32'")
            shapes["feature_shape"] = list(f.shape[1:])
            if "actions" in batch:
                shapes["action_shape"] = list(batch["actions"].shape[1:])
            for j in range(len(f)):  # fill shards of exactly shard_size clips
                feats.append(f[j : j + 1].to("cpu", store))
                if "actions" in batch:
                    acts.append(batch["actions"][j : j + 1])
                if len(feats) == shard_size:
                    flush()
            done += len(f)
            if progress is not None:
                progress(done, len(dataset))
        if feats:
            flush()
        if not shards:
            raise FeatureCacheError(f"{out_dir}: the dataset is empty; nothing to cache")
        index = {
            "format": CACHE_FORMAT, "format_version": FORMAT_VERSION,
            "encoder": config_to_dict(encoder.cfg), "dtype": name, "count": done,
            **shapes, "shards": shards,
            "dataset": description if description is not None else describe_dataset(dataset),
        }
        (tmp / INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n")
        tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        encoder.train(was_training)
    return out_dir


def read_index(directory: str | Path) -> dict:
    """Read and validate a cache's ``index.json``.

    Raises:
        FeatureCacheError: naming the file when it is missing, not JSON or lacks a field.
    """
    path = Path(directory) / INDEX_NAME
    if not path.is_file():
        raise FeatureCacheError(f"{path}: missing (not a feature cache, or its build did not "
                                "finish)")
    try:
        index = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FeatureCacheError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(index, dict) or index.get("format") != CACHE_FORMAT:
        raise FeatureCacheError(f"{path}: 'format' is not {CACHE_FORMAT!r}")
    if index.get("format_version") != FORMAT_VERSION:
        raise FeatureCacheError(f"{path}: format_version {index.get('format_version')!r} is not "
                                f"{FORMAT_VERSION}")
    for key in ("encoder", "dtype", "count", "feature_shape", "shards"):
        if key not in index:
            raise FeatureCacheError(f"{path}: field {key!r} is missing")
    shards = index["shards"]
    if not isinstance(shards, list) or not shards or not all(
            isinstance(s, dict) and isinstance(s.get("file"), str)
            and isinstance(s.get("count"), int) and s["count"] > 0 for s in shards):
        raise FeatureCacheError(f"{path}: 'shards' must be a non-empty list of "
                                "{'file': str, 'count': int > 0}")
    if sum(s["count"] for s in shards) != index["count"]:
        raise FeatureCacheError(f"{path}: shard counts do not add up to count={index['count']}")
    return index


class FeatureCacheDataset(torch.utils.data.Dataset):
    """Items of a feature cache: ``{"features": (T', N, D) float32[, "actions": (K-1, A)]}``.

    Shards are memory-mapped with ``safetensors.safe_open`` (each process, DataLoader workers
    included, opens its own handles on first use); an item reads only its own slice.

    Args:
        directory: a folder written by :func:`build_feature_cache`.
        expected_encoder: if given, the encoder config the features must come from.

    Raises:
        FeatureCacheError: naming the file when the index or a shard is missing, unreadable or
            does not match the index, or when the cache comes from another encoder.
    """

    def __init__(self, directory: str | Path, expected_encoder: Any | None = None):
        self.directory = Path(directory)
        self.index = read_index(self.directory)
        index_path = self.directory / INDEX_NAME
        expected = None if expected_encoder is None else config_to_dict(expected_encoder)
        if expected is not None and expected != self.index["encoder"]:
            raise FeatureCacheError(
                f"{index_path}: the cache was built with another encoder config "
                f"({self.index['encoder']}) than the one in use ({expected})")
        self.files = [self.directory / s["file"] for s in self.index["shards"]]
        self.counts = [s["count"] for s in self.index["shards"]]
        self.starts = [0]
        for c in self.counts:
            self.starts.append(self.starts[-1] + c)
        self.has_actions = self.index.get("action_shape") is not None
        want = {"features": [None, *self.index["feature_shape"]]}
        if self.has_actions:
            want["actions"] = [None, *self.index["action_shape"]]
        for file, count in zip(self.files, self.counts, strict=True):
            self._check_shard(file, count, want)
        self._handles: dict[int, Any] = {}

    @staticmethod
    def _check_shard(file: Path, count: int, want: dict[str, list]) -> None:
        if not file.is_file():
            raise FeatureCacheError(f"{file}: missing shard (listed in {INDEX_NAME})")
        try:  # safetensors also rejects a truncated file here, not at a random training step
            with safe_open(str(file), framework="pt") as f:
                keys = set(f.keys())
                shapes = {k: list(f.get_slice(k).get_shape()) for k in want if k in keys}
        except (SafetensorError, OSError, ValueError) as e:
            raise FeatureCacheError(f"{file}: cannot read shard ({e})") from e
        for key, shape in want.items():
            if key not in keys:
                raise FeatureCacheError(f"{file}: tensor {key!r} is missing")
            if shapes[key] != [count, *shape[1:]]:
                raise FeatureCacheError(f"{file}: {key} has shape {shapes[key]}, index.json says "
                                        f"{[count, *shape[1:]]}")

    def __len__(self) -> int:
        return self.starts[-1]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_handles"] = {}  # file handles do not cross process boundaries
        return state

    def _handle(self, shard: int):
        if shard not in self._handles:
            try:
                self._handles[shard] = safe_open(str(self.files[shard]), framework="pt")
            except (SafetensorError, OSError) as e:
                raise FeatureCacheError(f"{self.files[shard]}: cannot open shard ({e})") from e
        return self._handles[shard]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"item {i} of a cache of {len(self)}")
        shard = bisect.bisect_right(self.starts, i) - 1
        j = i - self.starts[shard]
        handle = self._handle(shard)
        try:
            item = {"features": handle.get_slice("features")[j : j + 1][0].float()}
            if self.has_actions:
                item["actions"] = handle.get_slice("actions")[j : j + 1][0].float()
        except (SafetensorError, OSError, ValueError) as e:
            raise FeatureCacheError(f"{self.files[shard]}: cannot read item {j} ({e})") from e
        return item
