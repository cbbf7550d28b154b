"""Video in and out for the studio: capped uploads, captioned side-by-side frames, h264 outputs.

Uploads are read by the model's :class:`lam_core.processing.ClipProcessor` (one decode: sampled
at the model's frame rate, faster for a clip too short for it, cropped, resized and tensorised
once; with ``display``, the same frames and crop at a display resolution from the same decode)
and capped on the server (:data:`MAX_SECONDS`, :data:`MAX_FRAMES`). Results are drawn as panels
(model frames upscaled ×:data:`UPSCALE` with nearest neighbour so that 64×64 frames are visible;
display frames at their own resolution, :func:`panel_side`, :func:`fit_panel`) with a caption
bar per panel, and written as h264/yuv420p mp4 with
:func:`lam_core.video.write_video` into one temporary folder per process that is pruned as it
goes (by age and count) and removed at exit.
"""

from __future__ import annotations

import atexit
import functools
import itertools
import logging
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from lam_core.clip import Clip
from lam_core.processing import DISPLAY_SIDE, ClipProcessor, ProcessedClip
from lam_core.video import TooFewFramesError, VideoDecodeError, resize_center_crop, write_video

log = logging.getLogger(__name__)

MAX_SECONDS = 10.0  # of an upload, read at the model's fps
MAX_FRAMES = 64  # frames of an upload, whatever the fps
DENSE_STEPS = 8  # a clip shorter than this many model steps at the model's rate is sampled faster
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
UPSCALE = 4  # nearest-neighbour zoom of 64×64 model frames
PANEL = 64 * UPSCALE  # side of one panel of a side-by-side video, whatever the model's size
DISPLAY = DISPLAY_SIDE  # longest side of the display frames read with an upload (transfer, cycle)
OUTPUT_MAX_AGE = 3600.0  # seconds an output file is kept
OUTPUT_MAX_FILES = 256  # and at most this many output files
X264_PRESET = "ultrafast"  # libx264 speed preset of the outputs (see save_video)
CAPTION_HEIGHT = 22
BACKGROUND = (24, 26, 33)
TEXT = (236, 238, 242)
ACCENT = {"context": (90, 200, 120), "predicted": (245, 170, 60), "": TEXT}


@dataclass
class Upload:
    """A decoded upload and what reading it did.

    Attributes:
        processed: the frames the model takes (at most ``MAX_FRAMES``, centre-cropped to the
            model size) and their tensor. A short clip is sampled faster than the model's rate
            and a slow one at its own rate; ``processed.fps`` is the rate used, and the model
            steps through the frames one at a time whatever it is.
        note: a sentence for the user when the video was sampled at another rate or cut, else
            ``""``.
    """

    processed: ProcessedClip
    note: str

    @property
    def clip(self) -> Clip:
        """The processed frames as a clip (at the rate they were sampled at)."""
        return self.processed.clip


def read_upload(
    path: str | Path,
    processor: ClipProcessor,
    name: str,
    min_frames: int | None = None,
    display: int | None = None,
) -> Upload:
    """Decode an uploaded video for a model, capped to ≤ 10 s and ≤ 64 frames.

    A clip that gives fewer than :data:`DENSE_STEPS` model steps at the model's rate is sampled
    faster (up to every frame it has), and a video with fewer frames per second than the model's
    rate is read frame by frame (no frame repeated); the note says so. Only a file with fewer
    frames than ``min_frames`` in all is refused.

    Args:
        path: the uploaded file.
        processor: the model's clip processor (``pipe.processor``): its rate, size and tubelet.
        name: what the user calls this input ("source", "clip A", ...), for messages.
        min_frames: fewer frames than this raise (default: two model steps).
        display: also read display frames (``processed.display``: the same frames and crop,
            side ≤ ``display``), from the same decode.

    Raises:
        lam_core.video.VideoDecodeError: unreadable, empty or too short; the message starts with
            ``name`` and the file's name and says why (and, for too short a file, how many frames
            the model needs).
    """
    fps = processor.fps
    min_frames = processor.min_frames if min_frames is None else min_frames
    max_frames = min(MAX_FRAMES, int(MAX_SECONDS * fps))
    want = min(max_frames, DENSE_STEPS * min_frames // 2)
    file = Path(path).name
    try:
        processed = processor.read(
            path, max_frames=max_frames, min_frames=min_frames, want_frames=want, display=display
        )
    except TooFewFramesError as e:
        raise VideoDecodeError(f"{name}: {file}: {_too_short(e, file)}") from None
    except VideoDecodeError as e:
        log.info("%s: %s", name, e)  # with decord's own words, for the server's log
        message = _without_folder(str(e), path)
        if "cannot decode the video" not in message:  # PyAV's reason says it: drop decord's trace
            message = re.sub(r" \[decord: .*\]$", "", message, flags=re.S)
        raise VideoDecodeError(f"{name}: {message}") from None
    clip = processed.clip
    used, source_fps = clip.fps, clip.meta["source_fps"]
    duration = clip.meta["source_frames"] / source_fps
    notes = []
    if abs(used - fps) > 1e-6:
        why = (
            f"the clip is {_seconds(duration)} s long"
            if used > fps
            else f"the video runs at only {source_fps:.3g} fps"
        )
        notes.append(f"{name}: sampled at {used:.3g} fps instead of {fps:g}: {why}")
    if clip.num_frames >= max_frames and duration > (clip.num_frames + 1) / used:
        notes.append(
            f"{name}: used the first {clip.num_frames / used:g} s ({clip.num_frames} frames at "
            f"{used:.3g} fps) of {duration:.1f} s; the studio caps uploads at {MAX_SECONDS:g} s / "
            f"{MAX_FRAMES} frames"
        )
    return Upload(processed, "; ".join(notes))


def _too_short(error: TooFewFramesError, file: str) -> str:
    """Why a readable file is too short, and what the model needs."""
    n, total = error.frames, error.source_frames
    if total == 1 and Path(file).suffix.lower() in IMAGE_SUFFIXES:
        holds = "a still image (1 frame), not a video"
    elif n == total:
        holds = f"the video holds {n} frame{'s' if n != 1 else ''}"
    else:
        holds = f"{n} of the video's {total} frames could be decoded"
    need = error.min_frames
    return (
        f"fewer than {need} frames: {holds}, and the model needs at least {need} (two model steps)"
    )


def _seconds(x: float) -> str:
    return f"{x:.1f}" if x >= 1 else f"{x:.2g}"


def _without_folder(message: str, path: str | Path) -> str:
    """Gradio's upload folders are long random paths: show the file name only."""
    return message.replace(str(path), Path(path).name)


# ---------------------------------------------------------------------------------- drawing
@functools.cache
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: a fixed bitmap font
        return ImageFont.load_default()


def fit(frames: np.ndarray, side: int) -> np.ndarray:
    """Resize ``(T, H, W, 3)`` frames to ``side`` × ``side`` with nearest neighbour (whole-pixel
    blocks when ``side`` is a multiple of ``H``: 64 → 256 is ×4)."""
    h, w = frames.shape[1:3]
    if (h, w) == (side, side):
        return frames
    rows = np.arange(side) * h // side
    cols = np.arange(side) * w // side
    return frames[:, rows][:, :, cols]


def caption_bar(width: int, title: str, tag: str = "", height: int = CAPTION_HEIGHT) -> np.ndarray:
    """A ``(height, width, 3)`` bar with ``title`` on the left and, for a ``tag`` (``"context"``
    green, ``"predicted"`` orange), the tag on the right (when it fits) and a line of its colour
    along the bottom."""
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = _font(13)
    draw.text((6, 3), title, fill=TEXT, font=font)
    if tag:
        color = ACCENT.get(tag, TEXT)
        right = draw.textlength(tag, font=font)
        if draw.textlength(title, font=font) + right + 18 <= width:
            draw.text((width - right - 6, 3), tag, fill=color, font=font)
        draw.rectangle((0, height - 3, width, height), fill=color)
    return np.asarray(image)


@dataclass
class Panel:
    """One column of a side-by-side video.

    Attributes:
        title: caption drawn above the frames.
        frames: ``(T, H, W, 3)`` uint8.
        context_frames: the first frames are real context (tagged "context"), the rest
            "predicted"; ``None`` tags nothing.
    """

    title: str
    frames: np.ndarray
    context_frames: int | None = None

    def tag(self, t: int) -> str:
        if self.context_frames is None:
            return ""
        return "context" if t < self.context_frames else "predicted"


def side_by_side(panels: list[Panel], side: int | None = None, gap: int = 4) -> np.ndarray:
    """Compose panels into one video: ``(T, CAPTION_HEIGHT + side, n·side + gaps, 3)`` uint8.

    Shorter panels hold their last frame. Each frame carries its panel's caption and, for panels
    with ``context_frames``, whether the frame is real context or a prediction. The video is
    written once into one array (each panel upscaled straight into its place).

    Args:
        panels: the columns, left to right.
        side: panel side in pixels (default :data:`PANEL`: 64×64 model frames ×:data:`UPSCALE`,
            nearest neighbour).
    """
    if not panels:
        raise ValueError("side_by_side needs at least one panel")
    side = side or PANEL
    length = max(len(p.frames) for p in panels)
    width = len(panels) * side + (len(panels) - 1) * gap
    out = np.empty((length, CAPTION_HEIGHT + side, width, 3), np.uint8)
    for i, p in enumerate(panels):
        left = i * (side + gap)
        out[:, :, left - gap : left] = BACKGROUND  # the spacer before the panel (none at 0)
        column = out[:, :, left : left + side]
        tags = [p.tag(t) for t in range(length)]
        for tag in set(tags):
            rows = [t for t in range(length) if tags[t] == tag]
            column[rows, :CAPTION_HEIGHT] = caption_bar(side, p.title, tag)
        frames = p.frames[: min(len(p.frames), length)]
        _fit_into(column[: len(frames), CAPTION_HEIGHT:], frames)
        if len(frames) < length:  # hold the last frame
            column[len(frames) :, CAPTION_HEIGHT:] = column[len(frames) - 1, CAPTION_HEIGHT:]
    return out


def panel_side(*frames: np.ndarray | None) -> int:
    """The panel side of a video of display frames: the side most of them have (the larger on a
    tie), so that only the others are resized; at least :data:`PANEL` and rounded up to an even
    number (h264/yuv420p wants even sizes; with the 4-px gaps and the caption bar the whole video
    is then even)."""
    sides = [max(f.shape[1:3]) for f in frames if f is not None]
    side = max(sides, key=lambda s: (sides.count(s), s)) if sides else PANEL
    side = max(side, PANEL)
    return side + side % 2


def fit_panel(frames: np.ndarray, side: int) -> np.ndarray:
    """Display frames ``(T, h, w, 3)`` made ready for a panel of ``side``: as they are when
    :func:`side_by_side` zooms them exactly (their side, or a whole multiple of it: nearest
    neighbour, e.g. 64-px model frames), otherwise resized (antialiased bilinear,
    :func:`lam_core.video.resize_center_crop` with ``display=True``)."""
    h, w = frames.shape[1:3]
    if h == w and side % h == 0:
        return frames
    return resize_center_crop(frames, side, display=True)


def _fit_into(dest: np.ndarray, frames: np.ndarray) -> None:
    """Write :func:`fit` of ``frames`` into ``dest`` ``(T, side, side, 3)``; a whole-number
    zoom is one broadcast copy, other sizes go through :func:`fit`."""
    side, (h, w) = dest.shape[1], frames.shape[1:3]
    if (h, w) == (side, side):
        dest[...] = frames
    elif h == w and side % h == 0:  # repeat along rows, then copy each row k times (memcpy-sized)
        k = side // h
        rows = np.repeat(frames, k, axis=2)  # T, h, side, 3
        dest.reshape(len(frames), h, k, side, 3)[...] = rows[:, :, None]
    else:
        dest[...] = fit(frames, side)


def filmstrip(
    rows: list[tuple[str, np.ndarray]], max_columns: int = 8, side: int = 96, gap: int = 3
) -> np.ndarray:
    """An image of the last ``max_columns`` frames of each row (``(T, H, W, 3)``), one labelled row
    per sequence; columns are separated by ``gap`` pixels."""
    columns = min(max_columns, max(len(frames) for _, frames in rows))
    width = columns * side + (columns - 1) * gap
    out = []
    for title, frames in rows:
        frames = list(fit(frames[-columns:], side))
        frames += [np.full((side, side, 3), BACKGROUND, np.uint8)] * (columns - len(frames))
        spacer = np.full((side, gap, 3), BACKGROUND, np.uint8)
        cells = list(itertools.chain.from_iterable((f, spacer) for f in frames))[:-1]
        out += [caption_bar(width, title), np.concatenate(cells, axis=1)]
    return np.ascontiguousarray(np.concatenate(out, axis=0))


# ---------------------------------------------------------------------------------- outputs
class OutputDir:
    """One temporary folder per process for the studio's output files.

    Whenever a new file is made, files older than ``max_age`` seconds are removed, and the oldest
    beyond the newest ``max_files`` (so the folder stays bounded however many requests come in);
    the folder is removed at interpreter exit. A returned file is needed only until Gradio has
    copied it into its own cache, which the Blocks' ``delete_cache`` cleans; ``max_files`` leaves
    a Python caller of the handlers the last few hundred.
    """

    def __init__(self, max_age: float = OUTPUT_MAX_AGE, max_files: int = OUTPUT_MAX_FILES) -> None:
        self.max_age = max_age
        self.max_files = max_files
        self._root: Path | None = None
        self._lock = threading.Lock()
        self._count = itertools.count()

    @property
    def root(self) -> Path:
        with self._lock:
            if self._root is None or not self._root.is_dir():
                self._root = Path(tempfile.mkdtemp(prefix="lam-studio-"))
                atexit.register(shutil.rmtree, self._root, ignore_errors=True)
            return self._root

    def new_path(self, stem: str, suffix: str = ".mp4") -> Path:
        """A fresh, empty file ``<stem>-<n><suffix>`` in the folder (after pruning, which leaves
        room for it), created at once so that it counts against ``max_files``."""
        root = self.root
        with self._lock:  # prune and claim the name together: concurrent requests stay in bound
            self.prune(keep=self.max_files - 1)
            path = root / f"{stem}-{time.time_ns()}-{next(self._count)}{suffix}"
            path.touch(exist_ok=False)
        return path

    def prune(self, keep: int | None = None) -> int:
        """Remove files older than ``max_age`` and all but the newest ``keep`` (default
        ``max_files``); returns how many were removed."""
        if self._root is None or not self._root.is_dir():
            return 0
        keep = self.max_files if keep is None else keep
        cutoff, removed, files = time.time() - self.max_age, 0, []
        for path in self._root.iterdir():
            try:
                files.append((path.stat().st_mtime, path))
            except FileNotFoundError:
                continue
        files.sort(reverse=True)  # newest first
        for rank, (mtime, path) in enumerate(files):
            if mtime < cutoff or rank >= max(keep, 0):
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def files(self) -> list[Path]:
        """The files in the folder now."""
        return sorted(self._root.iterdir()) if self._root and self._root.is_dir() else []


OUTPUTS = OutputDir()


def save_video(frames: np.ndarray, fps: float, stem: str, preset: str = X264_PRESET) -> str:
    """Write ``(T, H, W, 3)`` uint8 frames as an h264/yuv420p mp4 in :data:`OUTPUTS`.

    Args:
        preset: libx264's speed preset. ``ultrafast`` (the default here) encodes a transfer
            video ~4× faster than libx264's own default (``medium``, what
            :func:`lam_core.video.write_video` uses unless told) at the same quality (PSNR within
            0.3 dB, measured on transfer videos) in a file about twice as large
            (``benchmarks/bench_studio.py``; docs/PERFORMANCE.md).
    """
    return str(write_video(OUTPUTS.new_path(stem), frames, fps, preset=preset))
