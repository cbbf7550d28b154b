"""``data.source: folder``: fixed-length clips of the video files under a folder
(:class:`lam_core.data.folders.VideoFolderDataset`; ``data.folder``). Its lines take ``folder``
(required).
"""

from __future__ import annotations

from pathlib import Path

from lam_core.data.folders import VideoFolderDataset
from train.job import SourceConfig
from train.sources.base import Source, fail


class Folder(Source):
    name = "folder"
    keys = ("folder",)
    required = "folder"

    def line(self, job):
        return SourceConfig(source=self.name, folder=job.data.folder)

    def check_data(self, job):
        if job.data.source == self.name and not job.data.folder:
            fail("data.folder", "is required with source: folder")

    def dataset(self, job, line, split, length):
        enc = job.encoder
        return VideoFolderDataset(line.folder, num_frames=job.data.num_frames, fps=enc.fps,
                                  size=enc.image_size, split=split, seed=job.train.seed)

    def describe(self, job):
        return {"folder": str(Path(job.data.folder).resolve())}
