"""The interface of a kind of training data (docs/DESIGN.md#sources-of-a-run): :class:`Source`, and
:class:`Seeded`, the whole source of a seeded procedural dataset.
"""

from __future__ import annotations

from collections.abc import Callable

from torch.utils.data import Dataset

from lam_core.config import ConfigError
from lam_core.data.streams import MapSource
from train.job import JobConfig, SourceConfig


def fail(key: str, message: str) -> None:
    """Raise the :class:`ConfigError` of ``key`` (``data.sources[1].world: …``)."""
    raise ConfigError(f"{key}: {message}")


class Source:
    """One kind of training data, registered by :attr:`name` in :data:`train.sources.SOURCES`.

    A run names it as ``data.source: <name>`` (the single form, settings in ``data.*``; it may
    be cached) or as a line of ``data.sources`` (a :class:`~train.job.SourceConfig`). Both reach
    the methods below as a line: :meth:`line` turns the single form into one.

    Attributes:
        name: the name recipes use.
        keys: the keys of a ``data.sources`` line it reads, besides ``source`` and ``weight``.
        required: the one of them a line must set (None: none).
        streamed: only a stream (no map-style dataset, no cache): shards.
    """

    name: str = ""
    keys: tuple[str, ...] = ()
    required: str | None = None
    streamed: bool = False

    def line(self, job: JobConfig) -> SourceConfig:
        """``data.source: <name>`` and its ``data.*`` settings as a line."""
        return SourceConfig(source=self.name)

    def check_data(self, job: JobConfig) -> None:
        """The ``data.*`` keys it owns, checked for every run (whichever source it trains on).

        Raises:
            ConfigError: naming the key.
        """

    def check_line(self, job: JobConfig, line: SourceConfig, at: str) -> None:
        """The values of one of its lines (``at``: ``data.sources[i]``); the keys were checked.

        Raises:
            ConfigError: naming the key.
        """

    def dataset(self, job: JobConfig, line: SourceConfig, split: str, length: int) -> Dataset:
        """The map-style dataset of a split: items ``{"video": (T, 3, H, W)[, …]}``."""
        raise NotImplementedError(f"source {self.name} is streamed only")

    def describe(self, job: JobConfig) -> dict:
        """What ``data.source: <name>`` adds to the description of its data (a feature cache's
        ``index.json``, the training record); keys of the base description are not repeated."""
        return {}

    def stream(self, job: JobConfig, line: SourceConfig, index: int, at: str,
               encoder_cfg=None):
        """The training stream of a line (the ``index``-th of the run's): by default its
        map-style dataset read in a resumable order (:class:`MapSource`)."""
        length = line.clips or job.data.train_clips
        return MapSource(self.dataset(job, line, "train", length), seed=job.train.seed,
                         stream=index, name=self.name)

    def has_validation(self, line: SourceConfig) -> bool:
        """Whether :meth:`validation` gives clips for this line."""
        return True

    def validation(self, job: JobConfig, line: SourceConfig, n: int) -> Dataset | None:
        """``n`` held-out clips of a line (None: it has none)."""
        return self.dataset(job, line, "val", n)


class Seeded(Source):
    """The source of a seeded procedural dataset ``make(length=, split=, num_frames=, size=,
    fps=)`` of the run's clip shape (e.g. :class:`lam_core.data.noise.NoiseDataset`); its lines
    take ``clips``.

    Args:
        name: the name recipes use.
        make: the dataset class (or any callable with those arguments).
    """

    keys = ("clips",)

    def __init__(self, name: str, make: Callable[..., Dataset]):
        self.name, self.make = name, make

    def dataset(self, job, line, split, length):
        enc = job.encoder
        return self.make(length=length, split=split, num_frames=job.data.num_frames,
                         size=enc.image_size, fps=enc.fps)
