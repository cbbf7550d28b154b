"""Reading and writing video files as :class:`~lam_core.clip.Clip` (DESIGN.md §4, "Video folders").

Reading uses decord and falls back to PyAV for what decord refuses (AV1, for instance). Frames are
resampled to a target frame rate by picking the source frame nearest in time (no interpolation), as
the paper samples 16 frames at 4 fps (§4). Frames can be resized (shorter side) and centre-cropped
to a square with :func:`resize_center_crop`. Writing produces h264/yuv420p mp4, which browsers
play.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lam_core.clip import Clip

__all__ = [
    "VideoDecodeError",
    "frame_indices",
    "probe_video",
    "read_video",
    "resize_center_crop",
    "write_video",
]


class VideoDecodeError(ValueError):
    """A video file could not be read; the message names the file and what is wrong with it."""


def _check_file(path: str | Path) -> Path:
    """Raise :class:`VideoDecodeError` for a missing, non-regular or empty file."""
    path = Path(path)
    if not path.exists():
        raise VideoDecodeError(f"{path}: file not found")
    if not path.is_file():
        raise VideoDecodeError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise VideoDecodeError(f"{path}: empty file (0 bytes)")
    return path


def _open_av(path: Path):
    """Open ``path`` with PyAV and return ``(container, video_stream)``; clear errors otherwise."""
    import av

    try:
        container = av.open(str(path))
    except Exception as e:  # av.error.InvalidDataError and friends
        reason = getattr(e, "strerror", None) or e
        raise VideoDecodeError(
            f"{path}: not a readable video (cannot parse the container: {reason})"
        ) from e
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(f"{path}: no video stream in the file")
    return container, container.streams.video[0]


def _av_fps(path: Path, stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or float(rate) <= 0:
        raise VideoDecodeError(f"{path}: the video stream has no frame rate")
    return float(rate)


def probe_video(path: str | Path) -> dict:
    """Cheap metadata of a video file, without decoding frames.

    Args:
        path: a video file.

    Returns:
        ``{"frames": int, "fps": float, "width": int, "height": int, "codec": str}``. ``frames``
        comes from the container's index, or from counting packets where the container has no
        count (webm, mkv).

    Raises:
        VideoDecodeError: the file is missing, empty, not a video or has no video stream.
    """
    path = _check_file(path)
    container, stream = _open_av(path)
    with container:
        ctx = stream.codec_context
        info = {
            "fps": _av_fps(path, stream),
            "width": int(ctx.width),
            "height": int(ctx.height),
            "codec": str(ctx.name),
        }
        frames = _count_frames(container, stream)
    if frames == 0:
        raise VideoDecodeError(f"{path}: the video stream holds no frames")
    return {"frames": frames, **info}


def _count_frames(container, stream) -> int:
    """Frames in the stream: the container's count, else its packets (demuxed, not decoded)."""
    if stream.frames:
        return int(stream.frames)
    return sum(1 for packet in container.demux(stream) if packet.size > 0)  # skip the flush packet


def frame_indices(
    num_source: int,
    source_fps: float,
    fps: float | None,
    start: float = 0.0,
    max_frames: int | None = None,
) -> np.ndarray:
    """Indices of the source frames nearest in time to ``start + k / fps``, k = 0, 1, ...

    Args:
        num_source: frames in the source.
        source_fps: frame rate of the source.
        fps: target frame rate (``None``: every source frame from ``start`` on).
        start: time of the first output frame, in seconds.
        max_frames: at most this many indices.

    Returns:
        ``(K,)`` int64 indices, all ``< num_source`` (a source frame may repeat when ``fps`` is
        above ``source_fps``).
    """
    step = 1.0 if fps is None else source_fps / fps
    first = start * source_fps
    count = int(np.floor((num_source - 0.5 - first) / step)) + 1 if first < num_source - 0.5 else 0
    if max_frames is not None:
        count = min(count, max_frames)
    idx = np.floor(first + step * np.arange(max(count, 0)) + 0.5).astype(np.int64)
    return idx[idx < num_source]


def _read_decord(path: Path, fps: float | None, start: float, max_frames: int | None):
    import decord

    reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    source_fps = float(reader.get_avg_fps())
    if not source_fps > 0:
        raise RuntimeError(f"decord reports a frame rate of {source_fps}")
    idx = frame_indices(len(reader), source_fps, fps, start, max_frames)
    frames = reader.get_batch(idx.tolist()).asnumpy() if len(idx) else None
    return frames, source_fps, len(reader)


def _read_av(path: Path, fps: float | None, start: float, max_frames: int | None):
    container, stream = _open_av(path)
    if not stream.frames:  # counting demuxes the whole file: count, then decode from a fresh open
        with container:
            num_source = _count_frames(container, stream)
        container, stream = _open_av(path)
    else:
        num_source = int(stream.frames)
    with container:
        source_fps = _av_fps(path, stream)
        idx = frame_indices(num_source, source_fps, fps, start, max_frames)
        wanted = iter(idx.tolist())
        target, picked = next(wanted, None), []
        for decoded, frame in enumerate(container.decode(stream)):
            if target is None:
                break
            if decoded == target:
                array = frame.to_ndarray(format="rgb24")
                while target == decoded:  # one source frame may serve several output frames
                    picked.append(array)
                    target = next(wanted, None)
    frames = np.stack(picked) if picked else None
    return frames, source_fps, num_source


def read_video(
    path: str | Path,
    *,
    fps: float | None = None,
    max_frames: int | None = None,
    size: int | None = None,
    start: float = 0.0,
    min_frames: int = 1,
) -> Clip:
    """Read a video file into a :class:`Clip`.

    Output frame ``k`` is the source frame nearest in time to ``start + k / fps``. decord decodes;
    PyAV takes over where decord refuses the file (AV1 for instance).

    Args:
        path: the video file (mp4, webm, mkv, avi, mov, ...).
        fps: target frame rate; ``None`` keeps every source frame and the source rate.
        max_frames: keep at most this many output frames.
        size: if given, resize the shorter side to ``size`` and centre-crop to ``size`` x ``size``.
        start: time in seconds of the first output frame.
        min_frames: raise if fewer output frames than this can be read.

    Returns:
        A clip of ``(T, H, W, 3)`` uint8 frames at ``fps`` (or the source rate), with
        ``meta = {"path", "source_fps", "source_frames", "indices", "decoder"}``.

    Raises:
        VideoDecodeError: missing, empty or unreadable file, no video stream, or fewer than
            ``min_frames`` frames; one message names the file and both decoders' reasons.
    """
    path = _check_file(path)
    if fps is not None and fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    try:
        frames, source_fps, num_source = _read_decord(path, fps, start, max_frames)
        decoder = "decord"
    except Exception as decord_error:  # decord raises RuntimeError / DECORDError
        try:
            frames, source_fps, num_source = _read_av(path, fps, start, max_frames)
            decoder = "av"
        except VideoDecodeError as av_error:
            raise VideoDecodeError(f"{av_error} [decord: {_short(decord_error)}]") from None
        except Exception as av_error:
            raise VideoDecodeError(
                f"{path}: cannot decode the video [decord: {_short(decord_error)}; "
                f"PyAV: {_short(av_error)}]"
            ) from None
    count = 0 if frames is None else len(frames)
    if count < min_frames:
        raise VideoDecodeError(
            f"{path}: fewer than {min_frames} frames (got {count} from {num_source} source frames "
            f"at {source_fps:g} fps, start={start:g} s, target fps={fps})"
        )
    if size is not None:
        frames = resize_center_crop(frames, size)
    indices = frame_indices(num_source, source_fps, fps, start, max_frames)[:count]
    meta = {
        "path": str(path),
        "source_fps": source_fps,
        "source_frames": num_source,
        "indices": indices,
        "decoder": decoder,
    }
    return Clip(frames=np.ascontiguousarray(frames), fps=fps or source_fps, meta=meta)


def _short(error: Exception) -> str:
    """The last line of an exception message, shortened (decord prints C++ traces)."""
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    text = lines[-1] if lines else type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def resize_center_crop(frames: np.ndarray, size: int) -> np.ndarray:
    """Resize the shorter side to ``size`` and centre-crop to ``size`` x ``size``.

    The centre square of side ``min(H, W)`` is cut first, then resized with antialiased bilinear
    interpolation (``torch.nn.functional.interpolate``), which is the same image as resizing first
    and cropping after.

    Args:
        frames: ``(T, H, W, 3)`` uint8 frames.
        size: output side in pixels.

    Returns:
        ``(T, size, size, 3)`` uint8 frames.
    """
    if frames.ndim != 4 or frames.dtype != np.uint8:
        raise ValueError(f"expected (T, H, W, C) uint8 frames, got {frames.shape} {frames.dtype}")
    h, w = frames.shape[1:3]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    frames = frames[:, top : top + side, left : left + side]
    if side == size:
        return np.ascontiguousarray(frames)
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    x = x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    return np.ascontiguousarray(x.numpy())


def write_video(path: str | Path, frames: np.ndarray, fps: float) -> Path:
    """Write frames as an h264/yuv420p mp4 that browsers play.

    Odd widths or heights are padded by one pixel, replicating the last row or column (yuv420p needs
    even sizes).

    Args:
        path: output file; its parent folders are created.
        frames: ``(T, H, W, 3)`` uint8 RGB frames.
        fps: frame rate.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    import av

    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
        raise ValueError(f"expected (T, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    h, w = frames.shape[1:3]
    if h % 2 or w % 2:
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(10_000))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path
