"""Data sources in one registry (train/sources, docs/DESIGN.md#sources-of-a-run), proved by the
``noise`` source (lam_core/data/noise.py + its entry): it checks, builds, describes, mixes into a
stream and trains like the others."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lam_core import LatentActionPipeline
from lam_core.config import ConfigError
from lam_core.data.noise import NoiseDataset, generate_noise_clip
from lam_core.data.streams import ClipStream
from lam_core.data.worlds import WORLDS
from train import lam
from train.config import load_job_config
from train.data import build_dataset, data_description
from train.sources import SOURCES, Source
from train.sources.base import Seeded

CONFIGS = Path(__file__).resolve().parents[1] / "train" / "configs"


def job(out: Path, *overrides: str):
    return load_job_config(CONFIGS / "tiny_lam.yaml", [f"train.output_dir={out}", *overrides])


def test_every_source_is_registered_once_under_its_own_name():
    assert set(SOURCES) >= {"miniwild", "world", "folder", "shards", "noise"}
    for name, source in SOURCES.items():
        assert isinstance(source, Source) and source.name == name
    assert [s.name for s in SOURCES.values() if s.streamed] == ["shards"]
    assert WORLDS == ("reach", "drive", "pusht")


def test_noise_clips_drift_by_their_ground_truth_and_repeat_by_seed():
    clip = generate_noise_clip(5, num_frames=12, size=32, fps=2.0)
    again = generate_noise_clip(5, num_frames=12, size=32, fps=2.0)
    assert clip.frames.shape == (12, 32, 32, 3) and clip.frames.dtype == np.uint8
    assert np.array_equal(clip.frames, again.frames) and clip.fps == 2.0
    assert not np.array_equal(clip.frames, generate_noise_clip(6, 12, 32).frames)
    assert clip.frames.std() > 10  # structure, not a flat colour
    velocity = clip.meta["camera"]["velocity"]
    assert velocity.shape == (11, 2) and (np.linalg.norm(velocity, axis=1) == 0).any()
    # the shift that best explains the next frame (phase correlation) is −velocity
    moved = generate_noise_clip(3, num_frames=2, size=32, speed=(4.0, 4.0), still_probability=0)
    true = moved.meta["camera"]["velocity"][0]
    f0, f1 = (np.fft.fft2(moved.frames[i].astype(float), axes=(0, 1)) for i in (0, 1))
    cross = np.fft.ifft2(f1 * np.conj(f0), axes=(0, 1)).real.sum(-1)
    dy, dx = np.unravel_index(np.argmax(cross), cross.shape)
    found = np.array([(dx + 16) % 32 - 16, (dy + 16) % 32 - 16])
    assert np.abs(found + true).max() <= 1  # content moved by −velocity


def test_the_noise_source_builds_checks_and_describes_itself(tmp_path):
    run = job(tmp_path, "data.source=noise", "data.train_clips=6", "data.val_clips=2")
    train, val = build_dataset(run, "train"), build_dataset(run, "val")
    assert isinstance(train, NoiseDataset) and len(train) == 6 and len(val) == 2
    item = train[0]["video"]
    assert item.shape == (run.data.num_frames, 3, 32, 32) and 0 <= item.min() <= item.max() <= 1
    assert not torch.equal(train[0]["video"], val[0]["video"])  # disjoint seeds
    assert data_description(run, "train") == {"source": "noise", "split": "train",
                                              "num_frames": run.data.num_frames, "clips": 6}
    with pytest.raises(ConfigError, match=r"data\.sources\[0\]\.scene: not a key of source "
                                          r"noise \(its keys: weight, clips\)"):
        job(tmp_path, "data.sources=[{source: noise, scene: pan}]")
    with pytest.raises(ConfigError, match=r"data\.source: must be one of .*noise"):
        job(tmp_path, "data.source=static")
    mixed = job(tmp_path, "data.sources=[{source: noise, weight: 2, clips: 5}, "
                          "{source: miniwild, scene: pan}]", "data.val_clips=3")
    stream = build_dataset(mixed, "train")
    assert isinstance(stream, ClipStream)
    assert next(iter(stream))["video"].shape == (mixed.data.num_frames, 3, 32, 32)
    assert len(build_dataset(mixed, "val")) == 3  # 2 noise + 1 pan, by weight


@pytest.mark.usefixtures("fresh_accelerate_state")
def test_a_lam_trains_on_noise(tmp_path):
    final = lam.train(job(tmp_path / "run", "data.source=noise", "train.steps=2",
                          "train.eval_every=0", "data.train_clips=4"))
    trained = LatentActionPipeline.from_pretrained(final)
    assert trained.lam.cfg.head == "features"
    record = json.loads((final / "lam" / "config.json").read_text())["training"]
    assert record["runs"][-1]["data"]["source"] == "noise"


def test_a_seeded_source_is_one_line():
    class Still(torch.utils.data.Dataset):  # any dataset of the seeded signature
        def __init__(self, length, split, num_frames, size, fps):
            self.shape, self.length = (num_frames, 3, size, size), length

        def __len__(self):
            return self.length

        def __getitem__(self, i):
            return {"video": torch.full(self.shape, 0.5)}

    source = Seeded("still", Still)
    run = load_job_config(CONFIGS / "tiny_lam.yaml", [])
    line = source.line(run)
    assert line.source == "still" and len(source.dataset(run, line, "train", 3)) == 3
