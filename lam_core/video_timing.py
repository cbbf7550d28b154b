"""When frames are sampled (docs/DESIGN.md#video-files): which source frames a clip read at a
target frame rate takes, for constant and variable frame rates, and the rate to sample a clip at
when the asked one serves it badly (a short clip, a slow source). :mod:`lam_core.video` reads
with these; they are re-exported there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Source", "frame_indices", "nearest_frames", "sampling_rate"]


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


def nearest_frames(
    times: np.ndarray, fps: float | None, start: float = 0.0, max_frames: int | None = None
) -> np.ndarray:
    """:func:`frame_indices` for frames at uneven times (a variable-frame-rate file).

    Args:
        times: ``(N,)`` increasing presentation times of the source frames, seconds from the
            first frame.
        fps: target frame rate (``None``: every frame from ``start`` on).
        start: time of the first output frame, in seconds.
        max_frames: at most this many indices.

    Returns:
        ``(K,)`` int64 indices of the frames nearest to ``start + k / fps`` (the later one on a
        tie), for the times up to half a mean frame interval past the last frame.
    """
    times = np.asarray(times, np.float64)
    n = len(times)
    if fps is None:
        idx = np.flatnonzero(times >= start - 1e-9)
        return idx[:max_frames].astype(np.int64)
    half = 0.5 * (times[-1] / (n - 1) if n > 1 else 1.0 / fps)
    count = int(np.floor((times[-1] + half - start) * fps)) + 1 if start <= times[-1] + half else 0
    if max_frames is not None:
        count = min(count, max_frames)
    targets = start + np.arange(max(count, 0)) / fps
    right = np.clip(np.searchsorted(times, targets), 0, n - 1)
    left = np.clip(right - 1, 0, n - 1)
    later = (times[right] - targets) <= (targets - times[left]) + 1e-9
    return np.where(later, right, left).astype(np.int64)


@dataclass
class Source:
    """What the readers know of a file before decoding: its frames, average rate, and the
    frames' times when they are uneven (``None``: constant rate)."""

    frames: int
    fps: float
    times: np.ndarray | None = None

    @classmethod
    def from_times(cls, frames: int, fps: float, raw: np.ndarray | None) -> Source:
        """Keep ``raw`` times (seconds) only if they stray from ``i / fps`` by over half a frame;
        a variable rate's average rate is then ``(N - 1) / (t_last - t_first)``."""
        if raw is None or len(raw) != frames or frames < 2 or not np.all(np.isfinite(raw)):
            return cls(frames, fps)
        times = np.sort(np.asarray(raw, np.float64))
        times -= times[0]
        if np.abs(times - np.arange(frames) / fps).max() <= 0.5 / fps or times[-1] <= 0:
            return cls(frames, fps)
        return cls(frames, (frames - 1) / times[-1], times)

    def indices(self, fps: float | None, start: float, max_frames: int | None) -> np.ndarray:
        if self.times is None:
            return frame_indices(self.frames, self.fps, fps, start, max_frames)
        return nearest_frames(self.times, fps, start, max_frames)


def sampling_rate(
    num_source: int,
    source_fps: float,
    fps: float,
    want_frames: int,
    start: float = 0.0,
    max_frames: int | None = None,
) -> float:
    """The frame rate to sample a clip at when ``fps`` serves it badly.

    * A source slower than ``fps`` (``fps`` would repeat source frames): ``source_fps``, every
      frame once.
    * Fewer than ``want_frames`` frames at ``fps`` (a short clip): the lowest whole rate that
      gives ``want_frames``, at most ``source_fps`` (then every frame is used).
    * Otherwise ``fps``.

    Args:
        num_source: frames in the source.
        source_fps: its (average) frame rate.
        fps: the rate asked for.
        want_frames: frames a clip should give at least, if it has them.
        start: time of the first frame, seconds.
        max_frames: the cap the frames will be read with.
    """
    at = frame_indices(num_source, source_fps, fps, start, max_frames)
    if len(at) > 1 and np.any(np.diff(at) == 0):
        return float(source_fps)
    if len(at) >= want_frames or fps >= source_fps:
        return float(fps)
    left = num_source - start * source_fps  # source frames from start on
    rate = max(float(fps), float(math.ceil(want_frames * source_fps / max(left, 1e-9))))
    count = lambda r: frame_indices(num_source, source_fps, r, start).size  # noqa: E731
    while rate < source_fps and count(rate) < want_frames:
        rate += 1.0
    return float(min(rate, source_fps))
