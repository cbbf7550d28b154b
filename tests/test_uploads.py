"""A catalogue of uploads (docs/RELIABILITY.md "Uploads: the catalogue"): each case is
generated here with PyAV (ffmpeg bundled) into a temporary folder, read with
:func:`lam_core.video.read_video` as the studio reads uploads, and sent through the studio's
``transfer`` handler.

Each case says what the user gets: ``works``, ``note`` (works, and a note says how the clip was
sampled or cut) or ``refused`` (a ``gr.Error`` titled "transfer: bad input" whose message names
the input, the file and the reason). The handler runs on a tiny random pipeline with the default
checkpoint's sampling (4 fps, one frame per model step, so a transfer needs 2 frames); the
all-black, all-white and short cases also run through the shipped default checkpoint, with no
NaN anywhere in what comes back. A case whose encoder is missing from this PyAV build is skipped
with the reason.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import gradio as gr
import numpy as np
import pytest

from lam_core import LatentActionPipeline, get_preset
from lam_core.pipeline import REPO_ROOT
from lam_core.video import VideoDecodeError, read_video
from studio import handlers, media

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # gr.Warning outside a request

FPS, TUBELET = 4.0, 1  # the default checkpoint's sampling (assets/checkpoints/pixel-noisy)
DEFAULT = REPO_ROOT / "assets" / "checkpoints" / "pixel-noisy"


# ---------------------------------------------------------------------------------- generators
def moving(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """``(n, h, w, 3)`` uint8: a textured gradient with a red square moving right."""
    rng = np.random.default_rng(seed)
    cell = max(1, min(h, w) // 16)  # texture in cells, so that a 4K frame is cheap to make
    texture = rng.integers(0, 40, (-(-h // cell), -(-w // cell), 1), dtype=np.uint8)
    texture = np.repeat(np.repeat(texture, cell, 0), cell, 1)[:h, :w]
    base = np.linspace(30, 200, w).astype(np.uint8)[None, :, None] + texture
    out = np.empty((n, h, w, 3), np.uint8)
    out[:] = base
    side = max(2, min(h, w) // 4)
    for t in range(n):
        x = (2 + 3 * t * max(1, w // 64)) % max(1, w - side)
        out[t, h // 3 : h // 3 + side, x : x + side] = (250, 40, 40)
    return out


def need(codec: str) -> None:
    """Skip the case when this PyAV build has no ``codec`` encoder (never fake the file)."""
    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV build has no {codec} encoder")


def encode(
    path: Path,
    frames: np.ndarray,
    fps: float,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    fmt: str | None = None,
    options: dict | None = None,
    rotation: int | None = None,
    times: list[float] | None = None,
    in_format: str = "rgb24",
) -> Path:
    """Encode ``frames`` into ``path`` (container from the suffix, or ``fmt``).

    Args:
        rotation: a display-matrix rotation tag (degrees counter-clockwise), as phones write.
        times: presentation times in seconds (a variable frame rate), else ``k / fps``.
        in_format: the frames' pixel format (``gray`` for ``(T, H, W)`` frames).
    """
    need(codec)
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        stream.options = {"log-level": "error"} if codec == "libx265" else (options or {})
        if rotation is not None:
            stream.set_display_rotation(rotation)
        if times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        for k, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format=in_format)
            if times is not None:
                frame.pts, frame.time_base = round(times[k] * 1000), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def audio_frame(samples: np.ndarray, pts: int) -> av.AudioFrame:
    """A mono 16 kHz float frame of ``samples`` at ``pts`` (in samples)."""
    frame = av.AudioFrame.from_ndarray(samples[None], format="fltp", layout="mono")
    frame.sample_rate, frame.pts = 16000, pts
    return frame


def audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        tone = np.sin(np.arange(1024, dtype=np.float32) / 9)
        for i in range(8):
            container.mux(stream.encode(audio_frame(tone, i * 1024)))
        container.mux(stream.encode())
    return path


def with_audio(path: Path) -> Path:
    """An h264 video with an aac sound track."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=4)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = container.add_stream("aac", rate=16000)
        for k, array in enumerate(moving(8, 48, 64)):
            container.mux(video.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
            container.mux(sound.encode(audio_frame(np.zeros(4000, np.float32), k * 4000)))
        container.mux(video.encode())
        container.mux(sound.encode())
    return path


def still(path: Path) -> Path:
    from PIL import Image

    Image.fromarray(moving(1, 48, 64)[0]).save(path)
    return path


def gif(path: Path) -> Path:
    need("gif")
    from PIL import Image

    images = [Image.fromarray(f) for f in moving(12, 40, 48)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=100, loop=0)
    return path


def truncated(path: Path) -> Path:
    whole = encode(path.with_name("whole.mp4"), moving(16, 48, 64), FPS)
    data = whole.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the index (moov) of an mp4 is at its end
    return path


def vfr(path: Path) -> Path:
    gaps = np.random.default_rng(1).choice([0.033, 0.1, 0.25], size=19)
    return encode(path, moving(20, 48, 64), 30, times=[0.0, *np.cumsum(gaps).tolist()])


def plain(n: int = 8, h: int = 48, w: int = 64, fps: float = FPS, **kw) -> Callable[[Path], Path]:
    return lambda path: encode(path, moving(n, h, w), fps, **kw)


def solid(value: int) -> Callable[[Path], Path]:
    return lambda path: encode(path, np.full((8, 48, 64, 3), value, np.uint8), FPS)


def gray(codec: str, pix_fmt: str) -> Callable[[Path], Path]:
    frames = moving(8, 48, 64)[..., 0].copy()
    return lambda path: encode(path, frames, FPS, codec, pix_fmt, in_format="gray")


# ---------------------------------------------------------------------------------- catalogue
@dataclass
class Case:
    """One upload: its file name, how to make it, what the user gets and the message or note
    (a regular expression), and the frames the model gets (``None``: not checked)."""

    id: str
    file: str
    make: Callable[[Path], Path]
    outcome: str  # "works" | "note" | "refused"
    message: str = ""
    frames: int | None = None
    twice: bool = False  # the file is both source and target


CASES = [
    Case("empty", "empty.mp4", lambda p: (p.write_bytes(b""), p)[1], "refused",
         r"empty\.mp4: empty file \(0 bytes\)"),
    Case("text-as-mp4", "notes.mp4",
         lambda p: (p.write_text("this is a text file, not a video\n" * 40), p)[1], "refused",
         r"notes\.mp4: not a readable video \(cannot parse the container: .*; a text file\)$"),
    Case("random-bytes", "random.mp4",
         lambda p: (p.write_bytes(np.random.default_rng(0).bytes(50_000)), p)[1], "refused",
         r"random\.mp4: not a readable video \(cannot parse the container: [^;]*\)$"),
    Case("truncated-mp4", "cut.mp4", truncated, "refused",
         r"cut\.mp4: not a readable video \(cannot parse the container: .*; an MP4/MOV cut short "
         r"or damaged: its index \(moov\) is missing\)$"),
    Case("1-frame", "one.mp4", plain(1), "refused",
         r"one\.mp4: fewer than 2 frames: the video holds 1 frame, and the model needs at least "
         r"2 \(two model steps\)"),
    Case("2-frames", "two.mp4", plain(2), "works", frames=2),
    Case("audio-only", "sound.mp4", audio_only, "refused",
         r"sound\.mp4: no video stream in the file$"),
    Case("still-png", "photo.png", still, "refused",
         r"photo\.png: fewer than 2 frames: a still image \(1 frame\), not a video"),
    Case("still-jpg", "photo.jpg", still, "refused",
         r"photo\.jpg: fewer than 2 frames: a still image \(1 frame\), not a video"),
    Case("animated-gif", "loop.gif", gif, "note",
         r"sampled at 7 fps instead of 4: the clip is 1\.2 s long", frames=9),
    Case("4k-2-frames", "uhd.mp4", plain(2, 2160, 3840, 30, options={"preset": "ultrafast"}),
         "note", r"sampled at 30 fps instead of 4: the clip is 0\.067 s long", frames=2),
    Case("long-capped", "long.mp4", plain(48, 24, 32), "note",
         r"used the first 10 s \(40 frames at 4 fps\) of 12\.0 s", frames=40),
    Case("vertical", "portrait.mp4", plain(8, 96, 48), "works", frames=8),
    Case("odd-101x77-mpeg4-avi-30fps", "odd.avi", plain(20, 77, 101, 30, codec="mpeg4"), "note",
         r"sampled at 12 fps instead of 4: the clip is 0\.67 s long", frames=8),
    Case("variable-frame-rate", "vfr.mkv", vfr, "works", frames=10),
    Case("1-fps", "slow.mp4", plain(8, fps=1), "note",
         r"sampled at 1 fps instead of 4: the video runs at only 1 fps", frames=8),
    Case("120-fps", "fast.mp4", plain(24, fps=120), "note",
         r"sampled at 40 fps instead of 4: the clip is 0\.2 s long", frames=8),
    Case("grayscale-h264", "gray.mp4", gray("libx264", "gray"), "works", frames=8),
    Case("grayscale-ffv1-gray8", "gray.mkv", gray("ffv1", "gray"), "works", frames=8),
    Case("yuv444", "yuv444.mp4", plain(pix_fmt="yuv444p"), "works", frames=8),
    Case("10-bit-h264", "ten.mp4", plain(pix_fmt="yuv420p10le"), "works", frames=8),
    Case("10-bit-hevc", "ten-hevc.mp4", plain(codec="libx265", pix_fmt="yuv420p10le"), "works",
         frames=8),
    Case("hevc", "hevc.mp4", plain(codec="libx265"), "works", frames=8),
    Case("vp9-webm", "vp9.webm", plain(codec="libvpx-vp9"), "works", frames=8),
    Case("vp8-webm", "vp8.webm", plain(codec="libvpx"), "works", frames=8),
    Case("av1-mp4", "av1.mp4", plain(8, 64, 64, codec="libsvtav1"), "works", frames=8),
    Case("mjpeg-avi", "mjpeg.avi", plain(codec="mjpeg", pix_fmt="yuvj420p"), "works", frames=8),
    Case("prores-mov", "prores.mov", plain(codec="prores", pix_fmt="yuv422p10le"), "works",
         frames=8),
    Case("mpeg2-ts", "broadcast.ts", plain(codec="mpeg2video"), "works", frames=8),
    Case("mkv-named-mp4", "really-mkv.mp4", plain(fmt="matroska"), "works", frames=8),
    Case("no-extension", "video", plain(fmt="mp4"), "works", frames=8),
    Case("with-sound", "talk.mp4", with_audio, "works", frames=8),
    Case("tiny-16x12", "tiny.mp4", plain(8, 12, 16), "works", frames=8),
    Case("unicode-spaces", "vidéo d'été 夏 clip.mp4", plain(), "works", frames=8),
    Case("unicode-spaces-refused", "leer 空 file.mp4", lambda p: (p.write_bytes(b""), p)[1],
         "refused", r"leer 空 file\.mp4: empty file"),
    Case("same-file-twice", "both.mp4", plain(), "works", frames=8, twice=True),
    Case("all-black", "black.mp4", solid(0), "works", frames=8),
    Case("all-white", "white.mp4", solid(255), "works", frames=8),
    Case("rotation-tag-90", "phone.mp4", plain(8, 48, 64, rotation=90), "works", frames=8),
    Case("rotation-tag-minus-90", "phone-cw.mp4", plain(8, 48, 64, rotation=-90), "works",
         frames=8),
]


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Callable[[Case], Path]:
    """Each case's file, made once per module."""
    folder, cache = tmp_path_factory.mktemp("uploads"), {}

    def get(case: Case) -> Path:
        if case.id not in cache:
            (folder / case.id).mkdir()
            cache[case.id] = case.make(folder / case.id / case.file)
        return cache[case.id]

    return get


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    """A tiny random pipeline with the default checkpoint's sampling (4 fps, 1 frame a step)."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    pipe = LatentActionPipeline.from_config(get_preset("tiny-pixel"))
    assert (pipe.fps, pipe.tubelet) == (FPS, TUBELET)
    folder = tmp_path_factory.mktemp("ckpt") / "tiny-pixel"
    pipe.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def target(tmp_path_factory) -> str:
    return str(encode(tmp_path_factory.mktemp("target") / "target.mp4", moving(8, 48, 64, 1), FPS))


def read_as_studio(path: Path):
    """``read_video`` with the arguments :func:`studio.media.read_upload` gives it."""
    return read_video(path, fps=FPS, size=64, max_frames=40, min_frames=2 * TUBELET,
                      want_frames=media.DENSE_STEPS * TUBELET)


# ---------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_read_video(case, made):
    path = made(case)
    if case.outcome == "refused":
        with pytest.raises(VideoDecodeError) as info:
            read_as_studio(path)
        assert str(path) in str(info.value)  # the file is named
        return
    clip = read_as_studio(path)
    assert clip.frames.shape[1:] == (64, 64, 3) and clip.frames.dtype == np.uint8
    if case.frames is not None:
        assert clip.num_frames == case.frames
    assert (np.diff(clip.meta["indices"]) > 0).all()  # no source frame is used twice


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_transfer_handler(case, made, tiny, target):
    path = str(made(case))
    pair = (path, path) if case.twice else (path, target)
    if case.outcome == "refused":
        with pytest.raises(gr.Error) as info:
            handlers.transfer(*pair, tiny, progress=None)
        message = info.value.message  # what the browser shows under the title
        assert info.value.title == "transfer: bad input"  # not "failed unexpectedly"
        assert message.startswith(f"source: {case.file}: ") and re.search(case.message, message)
        assert str(Path(path).parent) not in message  # the upload folder stays private
        return
    video, numbers = handlers.transfer(*pair, tiny, progress=None)
    json.dumps(numbers, allow_nan=False)  # what the browser parses
    assert all(v is None or math.isfinite(v) for v in np.ravel(numbers["latents"]))
    frames = min(case.frames, 8) if case.frames else None
    if frames:  # the target has 8 frames: context 1 + the rest predicted
        assert numbers["steps"] == frames - 1
    notes = [n for n in numbers["notes"] if n.startswith("source")]
    if case.outcome == "note":
        assert len(notes) == 1 and re.search(case.message, notes[0]), notes
        assert handlers.result_notes(numbers).startswith("- source: ")
    else:
        assert notes == []
    assert read_video(video).num_frames == numbers["frames"]


def test_rotation_tag_turns_frames_upright(made):
    """A phone video tagged to be shown turned is read the way players show it."""
    frames = moving(8, 48, 64)
    for case_id, turns in (("rotation-tag-90", 1), ("rotation-tag-minus-90", -1)):
        clip = read_video(made(next(c for c in CASES if c.id == case_id)))
        assert clip.size == (64, 48) and clip.meta["rotation"] == 90 * (turns % 4)
        upright = np.rot90(frames, turns, axes=(1, 2)).astype(int)
        assert np.abs(clip.frames.astype(int) - upright).mean() < 6  # codec noise only


def test_variable_frame_rate_is_sampled_by_time(made):
    clip = read_video(made(next(c for c in CASES if c.id == "variable-frame-rate")), fps=FPS)
    assert clip.meta["variable_rate"]
    gaps = np.random.default_rng(1).choice([0.033, 0.1, 0.25], size=19)
    times = np.array([0.0, *np.cumsum(gaps)])
    nearest = [int(np.abs(times - k / FPS).argmin()) for k in range(clip.num_frames)]
    np.testing.assert_array_equal(clip.meta["indices"], nearest)


@pytest.mark.parametrize("case_id", ["all-black", "all-white", "odd-101x77-mpeg4-avi-30fps"])
def test_default_checkpoint_gives_finite_numbers(case_id, made, target):
    """The shipped default on flat and short clips: transfer, cycle and leakage return finite
    numbers (JSON without NaN) and videos that decode."""
    if not (DEFAULT / "config.json").exists():
        pytest.skip(f"{DEFAULT} is absent")
    path = str(made(next(c for c in CASES if c.id == case_id)))
    video, numbers = handlers.transfer(path, target, str(DEFAULT), progress=None)
    json.dumps(numbers, allow_nan=False)
    assert all(numbers[k] is not None for k in ("source_error", "target_error", "transfer_shift"))
    assert read_video(video).num_frames == numbers["frames"]
    video, numbers = handlers.cycle(target, path, str(DEFAULT), progress=None)
    json.dumps(numbers, allow_nan=False)
    assert numbers["ratio"] is not None and np.isfinite(numbers["cycled_errors"]).all()
    _, _, summary, numbers = handlers.leakage(path, target, str(DEFAULT), progress=None)
    json.dumps(numbers, allow_nan=False)
    assert numbers["ratio"] is not None and "nan" not in summary.lower()
