"""``data.source: miniwild``: MiniWild clips (:mod:`lam_core.data.miniwild`), one scene or a
mixture of scenes by weight (``data.mixture``), with the generator settings of ``data.miniwild``.
Its lines take ``scene`` (default ``wild``) and ``clips``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace

from lam_core.config import ConfigError
from lam_core.data.miniwild import (
    SCENES,
    MiniWildConfig,
    MiniWildDataset,
    MixtureDataset,
    mixture_weights,
)
from train.job import JobConfig, SourceConfig
from train.sources.base import Source, fail


def miniwild_config(job: JobConfig) -> MiniWildConfig:
    """The MiniWild generator settings of a run: its frames, size and fps, plus
    ``data.miniwild``.

    Raises:
        ConfigError: naming ``data.miniwild.<key>`` for an unknown field or a bad value.
    """
    d, enc = job.data, job.encoder
    valid = {f.name for f in dataclasses.fields(MiniWildConfig)} - {"num_frames", "size", "fps"}
    given = d.miniwild or {}
    unknown = sorted(set(given) - valid)
    if unknown:
        raise ConfigError(f"data.miniwild.{unknown[0]}: unknown MiniWild setting (valid: "
                          f"{', '.join(sorted(valid))})")
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in given.items()}
    try:
        return MiniWildConfig(num_frames=d.num_frames, size=enc.image_size, fps=enc.fps,
                              **options)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"data.miniwild: {e}") from e


class MiniWild(Source):
    name = "miniwild"
    keys = ("scene", "clips")

    def line(self, job):
        return SourceConfig(source=self.name, scene=miniwild_config(job).scene)

    def check_data(self, job):
        miniwild_config(job)  # data.miniwild, for every run
        d = job.data
        if d.mixture is not None:
            if d.source != self.name:
                fail("data.mixture", f"mixes MiniWild scenes, needs source: miniwild (got "
                     f"{d.source})")
            try:
                mixture_weights(d.mixture)
            except ValueError as e:
                raise ConfigError(f"data.mixture: {e}") from e

    def check_line(self, job, line, at):
        if line.scene is not None and line.scene not in SCENES:
            fail(f"{at}.scene", f"must be one of {', '.join(SCENES)}, got {line.scene!r}")

    def dataset(self, job, line, split, length):
        cfg = miniwild_config(job)
        if job.data.mixture is not None:  # data.source: miniwild only
            return MixtureDataset(cfg, job.data.mixture, length=length, split=split)
        return MiniWildDataset(replace(cfg, scene=line.scene or "wild"), length=length,
                               split=split)

    def describe(self, job):
        d, desc = job.data, {}
        if d.mixture is not None:
            desc["mixture"] = mixture_weights(d.mixture)  # the scenes' probabilities
        if d.miniwild:
            desc["miniwild"] = dict(d.miniwild)
        return desc
