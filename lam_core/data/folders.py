"""A folder of real video files as a dataset of fixed-length clips (docs/DESIGN.md#video-files).

Clips are sampled at the paper's rate (16 frames at 4 fps, §4), resized, centre-cropped and
tensorised by a :class:`lam_core.processing.ClipProcessor` (decoded by :mod:`lam_core.video`:
decord, PyAV fallback). The train/val split is by file, decided by a hash of the file's path
relative to the root, so it does not change when files are added elsewhere.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import torch

from lam_core.processing import ClipProcessor
from lam_core.video import VideoDecodeError, probe_video

logger = logging.getLogger(__name__)

__all__ = ["VIDEO_EXTENSIONS", "VideoFolderDataset", "file_split"]

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov")


def file_split(relative_path: str, val_fraction: float) -> str:
    """``"val"`` or ``"train"`` for a file, from a stable hash of its relative path."""
    digest = hashlib.sha1(relative_path.encode("utf-8")).digest()
    return "val" if int.from_bytes(digest[:8], "big") / 2**64 < val_fraction else "train"


class VideoFolderDataset(torch.utils.data.Dataset):
    """Every video file under ``root`` (recursive), one random clip window per item.

    Item ``i`` reads file ``i`` from a start time drawn uniformly from the windows that fit, with a
    generator seeded by ``(seed, epoch, i)``: the same item gives the same clip until
    :meth:`set_epoch` changes the epoch. A file shorter than the window is padded by repeating its
    last frame, so ``T`` is always ``num_frames``.

    Files that cannot be read are skipped when the dataset is built (each file is probed once), with
    a warning naming the file and the reason; they are listed in ``self.skipped``.

    Args:
        root: folder to search for .mp4, .webm, .mkv, .avi and .mov files.
        num_frames: frames per clip.
        fps: frame rate of the clips (``None``: the file's own rate).
        size: frames are resized (shorter side) and centre-cropped to ``size`` x ``size``.
        split: ``"train"``, ``"val"`` or ``"all"``.
        val_fraction: share of files in the validation split.
        seed: seed of the clip windows.

    Raises:
        ValueError: no video file under ``root``, none in the split, or none readable.
    """

    def __init__(self, root: str | Path, *, num_frames: int = 16, fps: float | None = 4.0,
                 size: int = 64, split: str = "train", val_fraction: float = 0.1,
                 seed: int = 0) -> None:
        if split not in ("train", "val", "all"):
            raise ValueError(f"split must be 'train', 'val' or 'all', got {split!r}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"video folder {self.root} does not exist or is not a folder")
        self.num_frames, self.fps, self.size, self.seed = num_frames, fps, size, seed
        self.processor = ClipProcessor(fps=fps, image_size=size)
        self.epoch = 0
        files = sorted(p for p in self.root.rglob("*")
                       if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
        if not files:
            raise ValueError(f"no video files ({', '.join(VIDEO_EXTENSIONS)}) under {self.root}")
        if split != "all":
            files = [p for p in files
                     if file_split(p.relative_to(self.root).as_posix(), val_fraction) == split]
            if not files:
                raise ValueError(f"split {split!r} of {self.root} is empty "
                                 f"(val_fraction={val_fraction}); use more files or split='all'")
        self.files: list[Path] = []
        self.info: list[dict] = []
        self.skipped: list[tuple[Path, str]] = []
        for path in files:
            try:
                info = probe_video(path)
            except VideoDecodeError as e:
                self.skipped.append((path, str(e)))
                logger.warning("skipping unreadable video %s: %s", path, e)
                continue
            self.files.append(path)
            self.info.append(info)
        if not self.files:
            reasons = "; ".join(reason for _, reason in self.skipped[:3])
            raise ValueError(f"no readable video in {self.root} (split {split!r}): "
                             f"{len(files)} file(s) tried, all failed; first reasons: {reasons}")

    def set_epoch(self, epoch: int) -> None:
        """Draw other clip windows from now on (items stay reproducible for a given epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        """``{"video": (num_frames, 3, size, size) float32 in [0, 1], "path": str}``."""
        path, info = self.files[i], self.info[i]
        duration = info["frames"] / info["fps"]
        window = self.num_frames / (self.fps or info["fps"])
        rng = np.random.default_rng([self.seed, self.epoch, i])
        start = rng.uniform(0, max(duration - window, 0.0))
        video = self.processor.read(path, max_frames=self.num_frames, start=start).video
        if len(video) < self.num_frames:  # short file: repeat the last frame
            video = torch.cat([video, video[-1:].expand(self.num_frames - len(video), -1, -1, -1)])
        return {"video": video, "path": str(path)}
