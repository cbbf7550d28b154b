"""VideoFolderDataset: skips and names bad files, splits by file, samples reproducible clips."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from lam_core.data.folders import VideoFolderDataset, file_split
from lam_core.video import write_video

from .test_video import SHARED_VIDEOS, smooth_video


@pytest.fixture(scope="module")
def good_video(tmp_path_factory) -> Path:
    """40 frames at 8 fps (5 s), 66x50."""
    return write_video(tmp_path_factory.mktemp("src") / "good.mp4", smooth_video(40, 50, 66), 8.0)


def test_corrupt_file_is_skipped_and_named(tmp_path, good_video, caplog):
    (tmp_path / "a").mkdir()
    shutil.copy(good_video, tmp_path / "a" / "one.mp4")
    shutil.copy(good_video, tmp_path / "two.MP4")
    (tmp_path / "corrupt.mp4").write_bytes(b"not a video at all\n" * 50)
    (tmp_path / "notes.txt").write_text("ignored: not a video extension")
    with caplog.at_level(logging.WARNING, logger="lam_core.data.folders"):
        data = VideoFolderDataset(tmp_path, split="all")
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "corrupt.mp4" in caplog.records[0].getMessage()
    assert len(data) == 2
    assert [p.name for p, _ in data.skipped] == ["corrupt.mp4"]
    assert "not a readable video" in data.skipped[0][1]
    item = data[0]
    assert item["video"].shape == (16, 3, 64, 64) and item["video"].dtype == torch.float32
    assert item["video"].min() >= 0 and item["video"].max() <= 1
    assert item["path"].endswith("one.mp4")


def test_only_corrupt_files_raise_a_clear_error(tmp_path):
    (tmp_path / "x.mp4").write_bytes(b"")
    (tmp_path / "y.webm").write_bytes(b"garbage" * 10)
    with pytest.raises(ValueError) as info:
        VideoFolderDataset(tmp_path, split="all")
    message = str(info.value)
    assert str(tmp_path) in message and "2 file(s) tried" in message and "empty file" in message


def test_missing_or_empty_folder_raises(tmp_path):
    with pytest.raises(ValueError, match="no video files"):
        VideoFolderDataset(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        VideoFolderDataset(tmp_path / "nowhere")


def test_split_by_file_is_disjoint_and_deterministic(tmp_path, good_video):
    for i in range(12):
        shutil.copy(good_video, tmp_path / f"clip{i:02d}.mp4")
    every = {p.name for p in VideoFolderDataset(tmp_path, split="all").files}
    train = VideoFolderDataset(tmp_path, split="train", val_fraction=0.3)
    val = VideoFolderDataset(tmp_path, split="val", val_fraction=0.3)
    train_names, val_names = {p.name for p in train.files}, {p.name for p in val.files}
    assert train_names.isdisjoint(val_names) and train_names | val_names == every
    assert 0 < len(val_names) < 12
    again = VideoFolderDataset(tmp_path, split="val", val_fraction=0.3, seed=99)
    assert {p.name for p in again.files} == val_names  # the split ignores the window seed
    assert all(file_split(name, 0.3) == "val" for name in val_names)


def test_clips_are_reproducible_and_windows_move_with_the_epoch(tmp_path, good_video):
    shutil.copy(good_video, tmp_path / "v.mp4")
    data = VideoFolderDataset(tmp_path, split="all", num_frames=8, fps=4.0, size=32)
    a, b = data[0]["video"], data[0]["video"]
    assert a.shape == (8, 3, 32, 32)
    torch.testing.assert_close(a, b)
    other = VideoFolderDataset(tmp_path, split="all", num_frames=8, fps=4.0, size=32)
    torch.testing.assert_close(other[0]["video"], a)
    windows = set()
    for epoch in range(6):
        data.set_epoch(epoch)
        windows.add(data[0]["video"].sum().item())
    assert len(windows) > 1


def test_short_file_is_padded_with_its_last_frame(tmp_path):
    write_video(tmp_path / "short.mp4", smooth_video(5, 40, 40), fps=4.0)
    item = VideoFolderDataset(tmp_path, split="all", num_frames=16, fps=4.0, size=32)[0]["video"]
    assert item.shape == (16, 3, 32, 32)
    for t in range(5, 16):
        torch.testing.assert_close(item[t], item[4])
    assert not torch.equal(item[3], item[4])


def test_shared_real_footage():
    if not SHARED_VIDEOS.is_dir():
        pytest.skip(f"{SHARED_VIDEOS} is absent (not part of the project)")
    data = VideoFolderDataset(SHARED_VIDEOS, split="all", num_frames=16, fps=4.0, size=64)
    assert len(data) >= 1 and not data.skipped
    video = data[0]["video"]
    assert video.shape == (16, 3, 64, 64)
    assert np.isfinite(video.numpy()).all() and video.std() > 0.01
