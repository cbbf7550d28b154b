"""``data.source: world``: clips of an action-labeled world with their real actions
(:mod:`lam_core.data.worlds`; ``data.world``). Its lines take ``world`` (required) and ``clips``,
and give the clips without the actions.
"""

from __future__ import annotations

from lam_core.data.worlds import WORLDS, ActionWorldDataset
from train.job import SourceConfig
from train.sources.base import Source, fail


class World(Source):
    name = "world"
    keys = ("world", "clips")
    required = "world"

    def line(self, job):
        return SourceConfig(source=self.name, world=job.data.world)

    def check_data(self, job):
        if job.data.source == self.name and job.data.world not in WORLDS:
            fail("data.world", f"must be one of {', '.join(WORLDS)}, got {job.data.world!r}")

    def check_line(self, job, line, at):
        if line.world not in WORLDS:
            fail(f"{at}.world", f"must be one of {', '.join(WORLDS)}, got {line.world!r}")

    def dataset(self, job, line, split, length):
        tubelet = job.encoder.tubelet
        return ActionWorldDataset(line.world, length=length, split=split,
                                  num_steps=job.data.num_frames // tubelet, tubelet=tubelet)

    def describe(self, job):
        return {"world": job.data.world}
