"""The clip processor (lam_core/processing.py): one sampling, one resize and one tensor per input,
from the file to the model; display frames from the same read; clips already processed, or at
the model's rate and size, pass through untouched."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

import lam_core.video as video_io
import lam_core.video_timing as timing
from lam_core import Clip, operations
from lam_core.processing import ClipProcessor, ProcessedClip
from lam_core.video import crop_resize, read_video, write_video
from studio import handlers, media

from .helpers import tiny_pipeline

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # gr.Warning outside a request


def gradient_video(path: Path, frames: int, fps: float, h: int, w: int, seed: int = 0) -> str:
    """A textured gradient with a square moving right, as an h264 mp4."""
    rng = np.random.default_rng(seed)
    base = np.linspace(20, 220, w)[None, :, None] + rng.integers(0, 30, (h, w, 1))
    out = np.repeat(base.astype(np.uint8)[None], frames, axis=0).repeat(3, axis=3)
    for t in range(frames):
        x = (3 * t) % (w - 12)
        out[t, h // 3 : h // 3 + 12, x : x + 12] = (250, 40, 40)
    return str(write_video(path, out, fps))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("ckpt") / "tiny"
    tiny_pipeline().save_pretrained(folder)  # 4 fps, 32 px, tubelet 2
    return str(folder)


@pytest.fixture(scope="module")
def uploads(tmp_path_factory) -> dict[tuple[int, int], str]:
    """Two uploads at other rates and sizes than the model's, keyed by their frame size: 30 fps
    for 5 s (sampled at 4 fps) and 10 fps for 0.9 s (too short for 4 fps: sampled faster)."""
    folder = tmp_path_factory.mktemp("uploads")
    return {
        (48, 64): gradient_video(folder / "a.mp4", 150, 30.0, 48, 64, seed=1),
        (40, 56): gradient_video(folder / "b.mp4", 9, 10.0, 40, 56, seed=2),
    }


def patch_everywhere(monkeypatch, original, wrapper) -> None:
    """Replace ``original`` by ``wrapper`` in every loaded lam_core and studio module that holds
    it, so a call through any import of it is seen."""
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] not in ("lam_core", "studio") or module is None:
            continue
        for attr, value in list(vars(module).items()):
            if value is original:
                monkeypatch.setattr(module, attr, wrapper)


@pytest.fixture
def counted(monkeypatch) -> dict:
    """Counting wrappers around the sampling and the resize of lam_core.

    ``samplings``: picks of frames by time (``frame_indices`` or ``nearest_frames``), except the
    ones :func:`~lam_core.video.sampling_rate` makes to choose a rate; ``resized``: frames that
    went through :func:`~lam_core.video.crop_resize` (the one resize), by their size before it.
    """
    seen = {"samplings": 0, "resized": Counter(), "choosing": 0}

    def picking(original):
        def wrapper(*args, **kwargs):
            if not seen["choosing"]:
                seen["samplings"] += 1
            return original(*args, **kwargs)

        return wrapper

    def choosing(*args, **kwargs):
        seen["choosing"] += 1
        try:
            return rate(*args, **kwargs)
        finally:
            seen["choosing"] -= 1

    def resizing(x, size):
        seen["resized"][tuple(x.shape[-2:])] += int(np.prod(x.shape[:-3]))
        return crop_resize(x, size)

    rate = timing.sampling_rate
    for original in (timing.frame_indices, timing.nearest_frames):
        patch_everywhere(monkeypatch, original, picking(original))
    patch_everywhere(monkeypatch, rate, choosing)
    patch_everywhere(monkeypatch, crop_resize, resizing)
    return seen


def test_an_upload_is_sampled_and_resized_once(ckpt, uploads, counted):
    """From the file to the model, each upload is sampled once and each of its frames resized
    once, from the file's size; transfer, cycle and leakage alike (cycle reuses the read)."""
    processor = ClipProcessor(fps=4.0, image_size=32, tubelet=2)
    paths = list(uploads.values())
    frames = {size: media.read_upload(p, processor, "x").clip.num_frames
              for size, p in uploads.items()}
    assert frames[(48, 64)] == 20 and frames[(40, 56)] == 9  # 5 s at 4 fps; all 9 at 10 fps
    for run in (
        lambda: handlers.transfer(*paths, ckpt, progress=None),
        lambda: handlers.cycle(*paths, ckpt, progress=None),
        lambda: handlers.leakage(*paths, ckpt, progress=None),
    ):
        counted["samplings"], counted["resized"] = 0, Counter()
        run()
        assert counted["samplings"] == 2  # one per upload
        # every frame once, from the file's resolution (the display frames of these small
        # uploads are the same crop, unresized, from the same decode)
        assert {size: n for size, n in counted["resized"].items() if size in frames} == frames
        # anything else resized is drawing: display frames fitted to a panel of the video
        assert set(counted["resized"]) - set(frames) <= {(40, 40), (48, 48)}
    assert counted["choosing"] == 0


def test_a_processed_clip_or_one_at_the_models_rate_and_size_passes_through(counted):
    processor = ClipProcessor(fps=4.0, image_size=32, tubelet=2)
    frames = np.random.default_rng(0).integers(0, 255, (10, 32, 32, 3), dtype=np.uint8)
    clip = Clip(frames, fps=4.0)
    processed = processor.process(clip)
    assert processed.clip.frames is frames and processed.fps == 4.0
    assert processor.process(processed) is processed
    assert counted["samplings"] == 0 and not counted["resized"]
    # a processed clip sampled faster than the model's rate keeps its frames and its true rate
    fast = processor.process(Clip(frames, fps=12.0))
    assert counted["samplings"] == 1 and fast.num_frames == 4  # 12 fps → 4 fps: every third
    dense = ProcessedClip(Clip(frames, fps=12.0), processed.video)
    assert processor.to_tensor(dense).shape == (1, 10, 3, 32, 32) and dense.fps == 12.0
    assert counted["samplings"] == 1 and not counted["resized"]
    # action-labeled clips hold one real frame per step: never resampled
    acted = processor.process(Clip(frames, fps=8.0, actions=np.zeros((4, 2), np.float32)))
    assert acted.num_frames == 10 and counted["samplings"] == 1


def test_display_frames_come_from_the_same_read(tmp_path):
    path = gradient_video(tmp_path / "wide.mp4", 40, 20.0, 96, 160)
    processor = ClipProcessor(fps=4.0, image_size=32, tubelet=2)
    processed = processor.read(path, display=64)
    model, shown = processed.clip, processed.display
    assert model.frames.shape == (8, 32, 32, 3) and shown.frames.shape == (8, 64, 64, 3)
    assert shown.fps == model.fps == 4.0
    np.testing.assert_array_equal(shown.meta["indices"], model.meta["indices"])  # same frames
    # the same crop: the display frames brought down to the model's size are the model frames
    down = video_io.resize_center_crop(shown.frames, 32).astype(int)
    assert np.abs(down - model.frames).mean() < 2
    assert processor.display(processed) is shown
    # long side ≤ 512 and never enlarged: the centre square of a 96×160 video stays 96
    assert processor.display(path).frames.shape == (8, 96, 96, 3)
    assert processor.display(path, long_side=48).frames.shape == (8, 48, 48, 3)
    # a clip in memory at its own resolution: the model's sampling, the display's size
    whole = read_video(path)
    assert whole.fps == 20.0
    mem = processor.display(whole, long_side=64)
    np.testing.assert_array_equal(mem.frames, shown.frames)
    assert mem.fps == 4.0
    with pytest.raises(ValueError, match="without display frames"):
        processor.display(processor.read(path))


def test_the_pipeline_owns_one_processor_and_the_operations_are_functions(pipe, video):
    assert pipe.processor == ClipProcessor.from_config(pipe.encoder.cfg)
    assert (pipe.fps, pipe.image_size, pipe.tubelet) == (4.0, 32, 2)
    a, b = video[:1], video[1:]
    r1, r2 = operations.transfer(pipe, a, b, context=2), pipe.transfer(a, b, context=2)
    assert np.array_equal(r1.transferred.frames, r2.transferred.frames)
    assert operations.leakage(pipe, a, b).ratio == pytest.approx(pipe.leakage(a, b).ratio)
    assert operations.cycle(pipe, a, b).ratio == pytest.approx(pipe.cycle(a, b).ratio)
    s = pipe.encode(video)
    assert operations.one_step_errors(pipe, s).shape == (s.shape[1] - 1,)


def test_fit_crops_and_resizes_dataset_videos_once():
    processor = ClipProcessor(fps=None, image_size=16)
    video = torch.rand(4, 3, 24, 40)
    out = processor.fit(video)
    assert out.shape == (4, 3, 16, 16)
    torch.testing.assert_close(out, crop_resize(video[..., 8:32], 16))  # the centre square
    same = torch.rand(4, 3, 16, 16)
    assert torch.equal(processor.fit(same), same)
