"""Reading and writing video files as :class:`~lam_core.clip.Clip` (docs/DESIGN.md#video-files).

Reading uses decord and falls back to PyAV for what decord refuses (AV1, animated GIF, for
instance); files with a rotation tag (phone videos) are read with PyAV and turned upright, as
players show them (decord returns such frames garbled). Frames are resampled to a target frame
rate by picking the source frame nearest in time (no interpolation), as the paper samples 16
frames at 4 fps (§4); a variable-frame-rate file is sampled by its frames' timestamps.
:func:`sampling_rate` picks another rate where the target one serves a clip badly (too short a
clip, or a source slower than the target). Frames can be resized (shorter side) and
centre-cropped to a square with :func:`resize_center_crop`, a few frames at a time so that a 4K
upload never sits in memory as floats; :func:`read_views` makes several views of the same frames
(the model's and a display size) from one decode. :class:`lam_core.processing.ClipProcessor` is
what turns video into model input on top of these. Writing produces h264/yuv420p mp4, which
browsers play.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lam_core.clip import Clip
from lam_core.video_timing import Source, frame_indices, nearest_frames, sampling_rate

__all__ = [
    "TooFewFramesError",
    "VideoDecodeError",
    "View",
    "crop_resize",
    "frame_indices",
    "nearest_frames",
    "probe_video",
    "read_video",
    "read_views",
    "resize_center_crop",
    "sampling_rate",
    "write_video",
]

CHUNK = 8  # frames decoded (and resized) at a time: bounds the memory of a 4K upload


class VideoDecodeError(ValueError):
    """A video file could not be read; the message names the file and what is wrong with it."""


class TooFewFramesError(VideoDecodeError):
    """A readable video gave fewer frames than asked for (``min_frames`` of :func:`read_video`).

    Attributes:
        frames: frames that could be read at the rate used.
        source_frames: frames in the file.
        source_fps: the file's (average) frame rate.
        min_frames: what was asked for.
    """

    def __init__(
        self, message: str, frames: int, source_frames: int, source_fps: float, min_frames: int
    ) -> None:
        super().__init__(message)
        self.frames, self.source_frames = frames, source_frames
        self.source_fps, self.min_frames = source_fps, min_frames


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
        reason = f"{getattr(e, 'strerror', None) or e}{_looks_like(path)}"
        raise VideoDecodeError(
            f"{path}: not a readable video (cannot parse the container: {reason})"
        ) from e
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(f"{path}: no video stream in the file")
    return container, container.streams.video[0]


def _looks_like(path: Path) -> str:
    """What an unparseable file seems to be, from its first bytes: ``"; <guess>"`` or ``""``."""
    with open(path, "rb") as f:
        head = f.read(512)
    if head[4:8] == b"ftyp":
        return "; an MP4/MOV cut short or damaged: its index (moov) is missing"
    control = sum((b < 32 and b not in (9, 10, 13)) or b == 127 for b in head)
    return "; a text file" if head and control == 0 else ""


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


# ---------------------------------------------------------------------------------- readers
Plan = Callable[[Source], tuple[np.ndarray, float | None]]  # source -> (indices, rate used)
View = Callable[[np.ndarray], np.ndarray]  # upright (n, H, W, 3) uint8 -> (n, h, w, 3) uint8


def _prepare(frames: np.ndarray, views: Sequence[View], turns: int) -> list[np.ndarray]:
    """Turn ``(T, H, W, 3)`` frames upright (``turns`` counter-clockwise quarter turns), then
    make each view of them."""
    if turns:
        frames = np.rot90(frames, turns, axes=(1, 2))
    return [np.ascontiguousarray(view(frames)) for view in views]


def _joined(chunks: list[list[np.ndarray]], views: int) -> list[np.ndarray] | None:
    """Per view, its chunks concatenated (``None`` when no frame was read)."""
    if not chunks:
        return None
    return [np.concatenate([c[v] for c in chunks]) for v in range(views)]


def _av_rotation(path: Path) -> int:
    """Counter-clockwise quarter turns (0-3) that show ``path`` upright: its display matrix
    (PyAV's ``frame.rotation``, read from the first frame). 0 when there is none or the file
    cannot be read (the readers then say why)."""
    try:
        container, stream = _open_av(path)
    except VideoDecodeError:
        return 0
    try:
        with container:
            frame = next(iter(container.decode(stream)), None)
            degrees = getattr(frame, "rotation", 0) or 0
    except Exception:
        return 0
    return round(degrees / 90) % 4


def _read_decord(path: Path, plan: Plan, views: Sequence[View]):
    import decord

    reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    num_source, rate = len(reader), float(reader.get_avg_fps())
    if not rate > 0:
        raise RuntimeError(f"decord reports a frame rate of {rate}")
    times = reader.get_frame_timestamp(np.arange(num_source))[:, 0] if num_source else None
    source = Source.from_times(num_source, rate, times)
    idx, used = plan(source)
    chunks = []
    for begin in range(0, len(idx), CHUNK):
        batch = reader.get_batch(idx[begin : begin + CHUNK].tolist()).asnumpy()
        if batch.ndim != 4 or batch.shape[-1] != 3:
            raise RuntimeError(f"decord returned frames of shape {batch.shape}")
        chunks.append(_prepare(batch, views, 0))
    return _joined(chunks, len(views)), source, idx, used, 0


def _packet_times(container, stream) -> tuple[int, np.ndarray | None]:
    """Frames of the stream (packets with data) and their presentation times in seconds
    (``None`` where a packet has no timestamp), from demuxing without decoding."""
    stamps = [p.pts if p.pts is not None else p.dts for p in container.demux(stream) if p.size]
    if not stamps or any(s is None for s in stamps) or stream.time_base is None:
        return len(stamps), None
    return len(stamps), np.asarray(stamps, np.float64) * float(stream.time_base)


def _read_av(path: Path, plan: Plan, views: Sequence[View]):
    container, stream = _open_av(path)
    with container:  # demux once for the count and the timestamps, then decode from a fresh open
        rate = _av_fps(path, stream)
        count, times = _packet_times(container, stream)
        num_source = int(stream.frames) or count
    source = Source.from_times(num_source, rate, times)
    idx, used = plan(source)
    container, stream = _open_av(path)
    picked, buffer, turns = [], [], 0
    with container:
        wanted = iter(idx.tolist())
        target = next(wanted, None)
        for decoded, frame in enumerate(container.decode(stream)):
            if target is None:
                break
            if decoded == 0:
                turns = round((getattr(frame, "rotation", 0) or 0) / 90) % 4
            if decoded == target:
                array = frame.to_ndarray(format="rgb24")
                while target == decoded:  # one source frame may serve several output frames
                    buffer.append(array)
                    target = next(wanted, None)
                if len(buffer) >= CHUNK:
                    picked.append(_prepare(np.stack(buffer), views, turns))
                    buffer = []
    if buffer:
        picked.append(_prepare(np.stack(buffer), views, turns))
    return _joined(picked, len(views)), source, idx, used, turns


def read_video(
    path: str | Path,
    *,
    fps: float | None = None,
    max_frames: int | None = None,
    size: int | None = None,
    start: float = 0.0,
    min_frames: int = 1,
    want_frames: int | None = None,
) -> Clip:
    """Read a video file into a :class:`Clip`.

    Output frame ``k`` is the source frame nearest in time to ``start + k / fps``. decord decodes;
    PyAV takes over where decord refuses the file (AV1 for instance) and for files with a rotation
    tag, whose frames come out upright.

    Args:
        path: the video file (mp4, webm, mkv, avi, mov, gif, ...).
        fps: target frame rate; ``None`` keeps every source frame and the source rate.
        max_frames: keep at most this many output frames.
        size: if given, resize the shorter side to ``size`` and centre-crop to ``size`` x ``size``.
        start: time in seconds of the first output frame.
        min_frames: raise if fewer output frames than this can be read.
        want_frames: with ``fps``, let :func:`sampling_rate` choose the rate: faster than ``fps``
            for a clip that gives fewer than ``want_frames`` frames at ``fps`` (up to every
            source frame), the source's own rate for a source slower than ``fps``. The clip's
            ``fps`` is then the rate used.

    Returns:
        A clip of ``(T, H, W, 3)`` uint8 frames at the rate used (``fps``, the source rate, or
        :func:`sampling_rate`'s), with ``meta = {"path", "source_fps", "source_frames",
        "indices", "decoder", "requested_fps", "variable_rate", "rotation"}`` (``rotation``:
        degrees counter-clockwise that were applied).

    Raises:
        VideoDecodeError: missing, empty or unreadable file, or no video stream; one message
            names the file and both decoders' reasons.
        TooFewFramesError: fewer than ``min_frames`` frames.
    """
    view = (lambda f: f) if size is None else (lambda f: resize_center_crop(f, size))
    return read_views(
        path, [view], fps=fps, max_frames=max_frames, start=start, min_frames=min_frames,
        want_frames=want_frames,
    )[0]


def read_views(
    path: str | Path,
    views: Sequence[View],
    *,
    fps: float | None = None,
    max_frames: int | None = None,
    start: float = 0.0,
    min_frames: int = 1,
    want_frames: int | None = None,
) -> list[Clip]:
    """Read a video file once and make several views of the same frames, one clip per view.

    The frames are sampled as :func:`read_video` samples them (the arguments are its own) and
    turned upright; each view then maps every chunk of :data:`CHUNK` decoded frames
    ``(n, H, W, 3)`` uint8 to ``(n, h, w, 3)`` uint8 (a resize and crop: the model's size, a
    display size), so no view holds the full-resolution frames of the whole clip.

    Returns:
        One :class:`Clip` per view, all at the same rate with the same ``meta``
        (:func:`read_video`'s).

    Raises:
        VideoDecodeError, TooFewFramesError: as :func:`read_video`.
    """
    path = _check_file(path)
    if fps is not None and fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")

    def plan(source: Source) -> tuple[np.ndarray, float | None]:
        rate = fps
        if fps is not None and want_frames is not None:
            rate = sampling_rate(source.frames, source.fps, fps, want_frames, start, max_frames)
        return source.indices(rate, start, max_frames), rate

    readers = [("decord", _read_decord), ("av", _read_av)]
    if _av_rotation(path):
        readers = readers[1:]  # decord garbles rotated frames
    errors = []
    for decoder, reader in readers:
        try:
            frames, source, idx, used, turns = reader(path, plan, views)
            break
        except VideoDecodeError as e:
            raise VideoDecodeError(f"{e} [{'; '.join(errors)}]" if errors else str(e)) from None
        except Exception as e:  # decord raises RuntimeError / DECORDError
            errors.append(f"{'PyAV' if decoder == 'av' else decoder}: {_short(e)}")
    else:
        raise VideoDecodeError(f"{path}: cannot decode the video [{'; '.join(errors)}]")
    count = 0 if frames is None else len(frames[0])
    if count < min_frames:
        raise TooFewFramesError(
            f"{path}: fewer than {min_frames} frames (got {count} from {source.frames} source "
            f"frames at {source.fps:g} fps, start={start:g} s, target fps={used})",
            count, source.frames, source.fps, min_frames,
        )
    meta = {
        "path": str(path),
        "source_fps": source.fps,
        "source_frames": source.frames,
        "indices": idx[:count],
        "decoder": decoder,
        "requested_fps": fps,
        "variable_rate": source.times is not None,
        "rotation": 90 * turns,
    }
    return [Clip(frames=f, fps=used or source.fps, meta=dict(meta)) for f in frames]


def _short(error: Exception) -> str:
    """The last line of an exception message, shortened (decord prints C++ traces)."""
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    text = lines[-1] if lines else type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def resize_center_crop(frames: np.ndarray, size: int, display: bool = False) -> np.ndarray:
    """Resize the shorter side to ``size`` and centre-crop to ``size`` x ``size``.

    The centre square of side ``min(H, W)`` is cut first, then resized with :func:`crop_resize`,
    which is the same image as resizing first and cropping after.

    Args:
        frames: ``(T, H, W, 3)`` uint8 frames.
        size: output side in pixels.
        display: frames only shown, never given to a model (display frames, panels of a
            video): the same antialiased bilinear resize through torch's uint8 kernel, within
            one grey level of :func:`crop_resize`'s float path and ~5× faster on one thread.

    Returns:
        ``(T, size, size, 3)`` uint8 frames.
    """
    if frames.ndim != 4 or frames.dtype != np.uint8:
        raise ValueError(f"expected (T, H, W, C) uint8 frames, got {frames.shape} {frames.dtype}")
    h, w = frames.shape[1:3]
    if min(h, w) == size:
        return np.ascontiguousarray(_center_square(frames, h, w, axis=1))
    if display:  # (T, C, H, W) with channels-last strides: torch's vectorised uint8 kernel
        x = torch.from_numpy(np.ascontiguousarray(_center_square(frames, h, w, axis=1)))
        x = F.interpolate(x.permute(0, 3, 1, 2), size=(size, size), mode="bilinear",
                          antialias=True, align_corners=False)
        return np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy())
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    x = crop_resize(x, size).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    return np.ascontiguousarray(x.numpy())


def crop_resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """The centre square of float images ``(..., C, H, W)``, resized to ``size`` x ``size`` with
    antialiased bilinear interpolation (``torch.nn.functional.interpolate``); returned as is when
    already that size. The one resize of lam-studio: :func:`resize_center_crop` (uint8 frames)
    and :meth:`lam_core.processing.ClipProcessor.fit` (float videos) go through it."""
    h, w = x.shape[-2:]
    x = _center_square(x, h, w, axis=x.ndim - 2)
    if min(h, w) == size:
        return x
    lead = x.shape[:-3]
    flat = x.reshape(-1, *x.shape[-3:])
    flat = F.interpolate(flat, size=(size, size), mode="bilinear", antialias=True,
                         align_corners=False)
    return flat.reshape(*lead, *flat.shape[-3:])


def _center_square(x, h: int, w: int, axis: int):
    """The centre ``min(h, w)`` square of an array or tensor whose rows are axis ``axis`` (and
    columns ``axis + 1``)."""
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    index = [slice(None)] * x.ndim
    index[axis], index[axis + 1] = slice(top, top + side), slice(left, left + side)
    return x[tuple(index)]


def write_video(
    path: str | Path, frames: np.ndarray, fps: float, preset: str | None = None
) -> Path:
    """Write frames as an h264/yuv420p mp4 that browsers play.

    Odd widths or heights are padded by one pixel, replicating the last row or column (yuv420p needs
    even sizes).

    Args:
        path: output file; its parent folders are created.
        frames: ``(T, H, W, 3)`` uint8 RGB frames.
        fps: frame rate.
        preset: libx264's speed preset (``"ultrafast"`` … ``"veryslow"``); None: libx264's own
            default (``medium``).

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
        if preset is not None:
            stream.options = {"preset": preset}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path
