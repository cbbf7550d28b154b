"""Streams of clips mixed from several sources by weight, split over processes and DataLoader
workers, resumable at any step (docs/DESIGN.md#at-scale; the paper's Table S3 mixes in-the-wild
video with a labeled domain by weight).

A *source* gives each reader (a process × DataLoader worker) an endless stream of items indexed
by how many it has consumed: ``source.items(reader, readers, start)``. Two kinds:

- :class:`MapSource` wraps a map-style dataset (MiniWild, an action world, a video folder): the
  readers share one index stream of per-epoch permutations drawn from ``(seed, source, epoch)``;
  reader ``r``'s ``j``-th item is stream position ``j × readers + r``, so readers never share an
  item within an epoch and an epoch is every item once.
- :class:`ShardSource`: WebDataset shards (format in lam_core/data/shards.py). Readers each read
  a disjoint part of every epoch, and each epoch covers every clip exactly once:

1. Epoch ``e`` orders the shards by a permutation drawn from ``(seed, e)`` (the same in every
   reader). With at least as many shards as readers, reader ``r`` takes shards ``r, r + R, …``
   of that order (the rank's share, then the worker's: reader ``r = rank + world × worker``).
   With fewer shards than readers every reader reads every shard and keeps clips ``r, r + R, …``
   of the epoch's clip sequence (correct, but each reader reads all the bytes: pack more,
   smaller shards; a warning says so).
2. A reader's clips pass through a shuffle buffer of ``shuffle_buffer`` clips (the classic one:
   fill, then each new clip evicts a random slot). Its random draws depend only on
   ``(seed, epoch, reader)`` and on the clip counts of ``index.json``, not on the bytes, so the
   output order is computed before a byte is read (:func:`buffer_order`).
3. A reader can therefore start at any position ``(epoch, clips consumed)``: the shards whose clips
   were all consumed are not opened, earlier clips of an open shard are skipped undecoded, and at
   most ``shuffle_buffer`` clips are held in memory, as with the buffer itself. ``--resume``
   continues the stream exactly (:class:`ClipStream` maps a training step to each reader's
   position).

:class:`ClipStream` is the ``IterableDataset`` the trainer reads with a plain ``DataLoader(stream,
batch_size=B, num_workers=W)``. Positions ``p = 0, 1, …`` of a process (rank) draw their source
from the weights with a generator seeded by ``(seed, rank, p // 1024)``: deterministic per
``(seed, rank, position)``, so proportions hold per batch on average and on every rank. The
DataLoader asks its workers for batches in turn (batch ``b`` from worker ``b mod W``), so worker
``w`` fills positions ``[bB, (b+1)B)`` of the batches ``b ≡ w (mod W)``. A process restarted at
micro-step ``k`` (``configure(..., start_batch=k)``) gives its worker ``w`` the role of worker
``(w + k) mod W`` and starts each source where that worker's stream was: the batches after a
resume equal those of the uninterrupted run (same number of processes and workers).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np
import torch

from lam_core.data.shards import (
    ShardError,
    decode_sample,
    default_index,
    read_index,
    resolve_shards,
    shard_samples,
)
from lam_core.processing import ClipProcessor

__all__ = ["MIX_BLOCK", "ClipStream", "MapSource", "ShardSource", "StreamSource", "buffer_order"]

logger = logging.getLogger(__name__)

MIX_BLOCK = 1024  # positions per seeded block of source draws
MIX_STREAM = 0x6D697873  # the source draws' random stream
INDEX_STREAM = 0x696E6478  # a map source's permutations
SHUFFLE_STREAM = 0x73687566  # a shard reader's buffer, apart from the shard order


class StreamSource(Protocol):
    """What :class:`ClipStream` reads: per-reader endless item streams."""

    def items(self, reader: int, readers: int, start: int = 0) -> Iterator[dict[str, Any]]: ...


class MapSource:
    """A map-style dataset as per-reader streams (see the module docstring).

    Args:
        dataset: items ``{"video": (T, 3, H, W)[, ...]}``; ``set_epoch(e)`` is called when it has
            one (video folders draw other windows per epoch).
        seed: seeds the permutations.
        stream: tells this source's permutations apart from another's with the same seed.
        name: prefix of the item keys (tests).
    """

    def __init__(self, dataset: torch.utils.data.Dataset, seed: int = 0, stream: int = 0,
                 name: str = "map") -> None:
        if len(dataset) < 1:
            raise ValueError(f"source {name}: the dataset is empty")
        self.dataset, self.seed, self.stream, self.name = dataset, seed, stream, name
        self._epoch, self._perm = -1, np.arange(0)

    def __len__(self) -> int:
        return len(self.dataset)

    def item(self, position: int) -> dict[str, Any]:
        """The item at global stream position ``position``."""
        epoch, i = divmod(position, len(self.dataset))
        if epoch != self._epoch:
            rng = np.random.default_rng([self.seed, INDEX_STREAM, self.stream, epoch])
            self._epoch, self._perm = epoch, rng.permutation(len(self.dataset))
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        index = int(self._perm[i])
        return {**self.dataset[index], "key": f"{self.name}:{index}"}

    def items(self, reader: int, readers: int, start: int = 0) -> Iterator[dict[str, Any]]:
        j = start
        while True:
            yield self.item(j * readers + reader)
            j += 1


def buffer_order(n: int, buffer: int, rng: np.random.Generator) -> np.ndarray:
    """The order in which a shuffle buffer of ``buffer`` clips emits inputs ``0 … n-1``.

    Fill the buffer with the first ``buffer`` inputs; each later input replaces a uniformly drawn
    slot, whose clip is emitted; at the end the rest leaves in a random order. Output ``t``
    is then always an input ``< t + buffer`` (what keeps memory bounded when replayed).
    """
    if buffer >= n:
        return rng.permutation(n)
    slots = list(range(buffer))
    out = []
    for j, x in zip(rng.integers(0, buffer, size=n - buffer).tolist(), range(buffer, n)):
        out.append(slots[j])
        slots[j] = x
    out.extend(np.asarray(slots)[rng.permutation(buffer)].tolist())
    return np.asarray(out, dtype=np.int64)


class ShardSource:
    """The clips of a set of shards as endless per-reader streams (see the module docstring).

    Args:
        shards: brace pattern of shard URLs (paths, ``file://``, ``pipe:``, ...).
        index: ``index.json`` (path or URL); default: beside the shards (:func:`default_index`).
        seed: shuffles the shard order per epoch and seeds the buffers.
        shuffle_buffer: clips held by each reader's shuffle buffer.
        features: yield ``{"features": (T', N, D) float32}`` (packed with ``--features``)
            instead of ``{"video": (T, 3, S, S) float32 in [0, 1]}``.

    Raises:
        ShardError: the index is missing or invalid, or the pattern names unlisted shards.
    """

    def __init__(self, shards: str, index: str | None = None, *, seed: int = 0,
                 shuffle_buffer: int = 1000, features: bool = False) -> None:
        self.pattern, self.seed, self.features = shards, seed, features
        self.shuffle_buffer = max(1, int(shuffle_buffer))
        self.index_url = index or default_index(shards)
        if self.index_url is None:
            raise ShardError(f"{shards!r}: give the shards' index.json explicitly (it cannot be "
                             "derived from a URL with a scheme)")
        self.index = read_index(self.index_url)
        if features and not self.index.get("features"):
            raise ShardError(f"{self.index_url}: the shards hold no features (pack with "
                             "--features ENCODER_DIR)")
        self.shards = resolve_shards(shards, self.index, self.index_url)
        self.counts = np.array([c for _, c in self.shards], dtype=np.int64)
        self._warned = False

    def __len__(self) -> int:
        return int(self.counts.sum())

    def _order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.shards))

    def plan(self, epoch: int, reader: int, readers: int) -> list[tuple[int, np.ndarray]]:
        """``[(shard, clip ordinals within it)]`` that ``reader`` reads in ``epoch``, in order."""
        order = self._order(epoch)
        if len(order) >= readers:
            return [(int(s), np.arange(self.counts[s])) for s in order[reader::readers]]
        if len(self) < readers:
            raise ShardError(f"{self.pattern}: {len(self)} clips for {readers} readers "
                             "(processes × data workers); use fewer workers or more clips")
        if not self._warned:
            self._warned = True
            logger.warning("%s: %d shards for %d readers (processes × data workers): every "
                           "reader reads every shard and keeps its share of the clips; pack "
                           "more, smaller shards", self.pattern, len(order), readers)
        plan, base = [], 0
        for s in order:
            first = (reader - base) % readers  # the first of this shard's clips that is ours
            plan.append((int(s), np.arange(first, self.counts[s], readers)))
            base += int(self.counts[s])
        return plan

    def epoch_size(self, epoch: int, reader: int, readers: int) -> int:
        """Clips ``reader`` reads in ``epoch``."""
        order = self._order(epoch)
        if len(order) >= readers:
            return int(self.counts[order[reader::readers]].sum())
        return len(range(reader, len(self), readers))

    def locate(self, reader: int, readers: int, start: int) -> tuple[int, int]:
        """``(epoch, offset)`` of a reader's ``start``-th clip."""
        epoch = 0
        while start >= (size := self.epoch_size(epoch, reader, readers)):
            start -= size
            epoch += 1
        return epoch, start

    def items(self, reader: int, readers: int, start: int = 0) -> Iterator[dict[str, Any]]:
        """Reader ``reader`` of ``readers``: its clips from its ``start``-th on, endlessly
        (``{"video" | "features", "key"}``; ``key`` is ``<shard>/<clip>``: the shard's place in
        the pattern, the clip's number in the pack)."""
        epoch, offset = self.locate(reader, readers, start)
        while True:
            yield from self._epoch_items(epoch, reader, readers, offset)
            epoch, offset = epoch + 1, 0

    def _epoch_items(self, epoch: int, reader: int, readers: int,
                     offset: int) -> Iterator[dict[str, Any]]:
        plan = self.plan(epoch, reader, readers)
        sizes = [len(ords) for _, ords in plan]
        n = sum(sizes)
        rng = np.random.default_rng([self.seed, SHUFFLE_STREAM, epoch, reader, readers])
        order = buffer_order(n, self.shuffle_buffer, rng)
        needed = np.zeros(n, dtype=bool)
        needed[order[offset:]] = True
        inputs = self._inputs(plan, sizes, needed)
        pending: dict[int, dict[str, bytes]] = {}
        for want in order[offset:].tolist():
            while want not in pending:
                i, sample = next(inputs)
                pending[i] = sample
            yield decode_sample(pending.pop(want), self.features)

    def _inputs(self, plan: list[tuple[int, np.ndarray]], sizes: list[int],
                needed: np.ndarray) -> Iterator[tuple[int, dict[str, bytes]]]:
        """``(epoch input number, raw sample)`` of the needed inputs; other shards stay closed."""
        base = 0
        for (shard, ords), size in zip(plan, sizes):
            mine = needed[base:base + size]
            if mine.any():
                url, count = self.shards[shard]
                wanted = np.zeros(count, dtype=bool)
                wanted[ords[mine]] = True
                position = {int(o): base + j for j, o in enumerate(ords)}
                for ordinal, sample in shard_samples(url, count, wanted):
                    sample["__key__"] = f"{shard}/{sample['__key__']}"
                    yield position[ordinal], sample
            base += size

class ClipStream(torch.utils.data.IterableDataset):
    """Items of several sources mixed by weight, for ``DataLoader(stream, batch_size=B)``.

    Call :meth:`configure` before iterating (the trainer does): rank, world size, batch size and
    the micro-step to start from.

    Args:
        sources: the sources (:class:`MapSource`, ``ShardSource``, anything with ``items``).
        weights: one positive weight per source (normalised).
        seed: seeds the source draws.
        keys: item entries kept (``("video",)`` or ``("features",)``; others, e.g. ``actions``,
            are dropped so that every source's items stack into one batch).
        size: videos are centre-cropped and resized to ``size × size`` when they have another
            size (:meth:`lam_core.processing.ClipProcessor.fit`).
        with_keys: also yield ``"key"``, a string naming the source and the clip (tests).

    Raises:
        ValueError: no source, or weights that are not positive.
    """

    def __init__(self, sources: Sequence[StreamSource], weights: Sequence[float] | None = None,
                 seed: int = 0, keys: Sequence[str] = ("video",), size: int | None = None,
                 with_keys: bool = False) -> None:
        super().__init__()
        weights = [1.0] * len(sources) if weights is None else [float(w) for w in weights]
        if not sources or len(weights) != len(sources):
            raise ValueError("need at least one source and one weight per source")
        if not all(np.isfinite(w) and w > 0 for w in weights):
            raise ValueError(f"weights must be positive, got {weights}")
        self.sources, self.seed = list(sources), seed
        self.probabilities = np.asarray(weights) / sum(weights)
        self.keys, self.size, self.with_keys = tuple(keys), size, with_keys
        self.processor = ClipProcessor(fps=None, image_size=size)
        self.configure()

    def configure(self, rank: int = 0, world: int = 1, batch_size: int = 1,
                  start_batch: int = 0) -> None:
        """Set this process's place: ``rank`` of ``world`` processes, ``batch_size`` items per
        micro-step, first micro-step ``start_batch`` (a resumed run: the step × grad_accum)."""
        if not 0 <= rank < world or batch_size < 1 or start_batch < 0:
            raise ValueError(f"bad position rank={rank} world={world} batch_size={batch_size} "
                             f"start_batch={start_batch}")
        self.rank, self.world = rank, world
        self.batch_size, self.start_batch = batch_size, start_batch

    def draws(self, block: int) -> np.ndarray:
        """Source of each of this rank's positions ``[block·1024, (block+1)·1024)``."""
        if len(self.sources) == 1:
            return np.zeros(MIX_BLOCK, dtype=np.int64)
        rng = np.random.default_rng([self.seed, MIX_STREAM, self.rank, block])
        return rng.choice(len(self.sources), size=MIX_BLOCK, p=self.probabilities)

    def _consumed(self, worker: int, workers: int) -> list[int]:
        """Items each source gave worker ``worker`` before ``start_batch``."""
        end = self.start_batch * self.batch_size
        counts = np.zeros(len(self.sources), dtype=np.int64)
        for block in range(-(-end // MIX_BLOCK)):
            pos = np.arange(block * MIX_BLOCK, min((block + 1) * MIX_BLOCK, end))
            mine = (pos // self.batch_size) % workers == worker
            counts += np.bincount(self.draws(block)[: len(pos)][mine],
                                  minlength=len(self.sources))
        return counts.tolist()

    def worker_items(self, worker: int, workers: int) -> Iterator[dict[str, Any]]:
        """What DataLoader worker ``worker`` of ``workers`` yields: the positions of its batches.

        ``worker`` is the worker's id in the *current* DataLoader; after a resume it plays the
        role of worker ``(worker + start_batch) mod workers`` of the uninterrupted run.
        """
        role = (worker + self.start_batch) % workers
        reader, readers = self.rank + self.world * role, self.world * workers
        streams = [src.items(reader, readers, start)
                   for src, start in zip(self.sources, self._consumed(role, workers))]
        b = self.start_batch + worker  # its first batch
        block, draws = -1, np.zeros(0, dtype=np.int64)
        while True:
            for p in range(b * self.batch_size, (b + 1) * self.batch_size):
                if p // MIX_BLOCK != block:
                    block = p // MIX_BLOCK
                    draws = self.draws(block)
                s = int(draws[p % MIX_BLOCK])
                yield self._prepare(next(streams[s]), s)
            b += workers

    def _prepare(self, item: dict[str, Any], source: int) -> dict[str, Any]:
        out = {}
        for k in self.keys:
            if k not in item:
                raise KeyError(f"source {source} gave no {k!r} (it has {sorted(item)})")
            out[k] = item[k]
        if out.get("video") is not None:
            out["video"] = self.processor.fit(out["video"])
        if self.with_keys:
            out["key"] = f"{source}:{item.get('key', '?')}"
        return out

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return self.worker_items(worker, workers)

    def rank_items(self, workers: int = 1) -> Iterator[dict[str, Any]]:
        """This rank's items in the order a ``DataLoader`` with ``workers`` workers yields them
        (batches from the workers in turn), computed in this process (tests, benchmarks)."""
        its = [self.worker_items(w, workers) for w in range(max(workers, 1))]
        while True:
            for it in its:
                for _ in range(self.batch_size):
                    yield next(it)
