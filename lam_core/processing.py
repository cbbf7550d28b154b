"""The clip processor: the one place where video becomes model input (docs/DESIGN.md#data-flow).

A :class:`ClipProcessor` holds what the encoder expects of its input (frame rate, square image
size, tubelet; :meth:`ClipProcessor.from_config` reads them from an
:class:`~lam_core.config.EncoderConfig`) and turns a file, a :class:`~lam_core.clip.Clip` or an
array of frames into a :class:`ProcessedClip`: frames sampled at the model's rate (the source
frame nearest in time), centre-cropped to a square and resized to the model's size, and their
float tensor. Each of these happens once: a processed clip passes through the processor again
untouched, and so does a clip already at the model's rate and size. The processed clip's ``fps``
is the true rate of the frames it holds (a short upload may be sampled faster than the model's
rate, :func:`lam_core.video.sampling_rate`); the model steps through them one frame at a time
whatever that rate.

The same read can also give display frames: the same frames, the same square crop, at a display
resolution (:meth:`ClipProcessor.display`), for showing results at more than the model's size.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from lam_core.clip import Clip, frames_to_tensor
from lam_core.config import EncoderConfig
from lam_core.video import crop_resize, read_views, resize_center_crop
from lam_core.video_timing import Source

__all__ = ["DISPLAY_SIDE", "ClipProcessor", "ProcessedClip", "VideoLike"]

DISPLAY_SIDE = 512  # the longest side of display frames


@dataclass(frozen=True, eq=False)
class ProcessedClip:
    """A clip as the model takes it.

    Attributes:
        clip: ``(T, S, S, 3)`` uint8 frames, sampled and cropped for the model; ``clip.fps`` is
            their true rate (not necessarily the model's), ``clip.meta`` what reading found.
        video: ``(T, 3, S, S)`` float32 in [0, 1]: the same frames as a tensor.
        display: the same frames at a display resolution (same crop), when they were asked for.
    """

    clip: Clip
    video: torch.Tensor
    display: Clip | None = None

    @property
    def num_frames(self) -> int:
        return self.clip.num_frames

    @property
    def fps(self) -> float:
        return self.clip.fps


VideoLike = Clip | ProcessedClip | np.ndarray | torch.Tensor


@dataclass(frozen=True)
class ClipProcessor:
    """Samples, crops, resizes and tensorises video for an encoder, once.

    Attributes:
        fps: the model's frame rate (``None``: every frame is kept, at its own rate).
        image_size: the model's square frame side (``None``: frames keep their size).
        tubelet: frames per model step (a clip needs two steps).
    """

    fps: float | None = 4.0
    image_size: int | None = 64
    tubelet: int = 1

    @classmethod
    def from_config(cls, cfg: EncoderConfig) -> ClipProcessor:
        """The processor of an encoder: its ``fps``, ``image_size`` and ``tubelet``."""
        return cls(fps=cfg.fps, image_size=cfg.image_size, tubelet=cfg.tubelet)

    @property
    def min_frames(self) -> int:
        """Frames of the shortest clip a model takes: two steps."""
        return 2 * self.tubelet

    # ------------------------------------------------------------------ in
    def read(
        self,
        path: str | Path,
        *,
        max_frames: int | None = None,
        min_frames: int = 1,
        want_frames: int | None = None,
        start: float = 0.0,
        display: int | None = None,
    ) -> ProcessedClip:
        """Decode a video file once into a processed clip (and its display frames).

        Args:
            path: the file.
            max_frames, min_frames, start: as :func:`lam_core.video.read_video`.
            want_frames: let :func:`lam_core.video.sampling_rate` sample a clip too short for
                the model's rate faster, and a source slower than it at its own rate; the
                clip's ``fps`` says the rate used.
            display: also make display frames whose side is at most this (the same decode).

        Raises:
            lam_core.video.VideoDecodeError: unreadable, or fewer than ``min_frames`` frames.
        """
        views = [self._model_view]
        if display is not None:
            views.append(lambda frames: _display_view(frames, display))
        clips = read_views(
            path, views, fps=self.fps, max_frames=max_frames, start=start, min_frames=min_frames,
            want_frames=want_frames,
        )
        return self._tensorised(clips[0], clips[1] if display is not None else None)

    def process(self, video: Clip | ProcessedClip | np.ndarray) -> ProcessedClip:
        """A clip (any rate and size) or ``(T, H, W, 3)`` uint8 frames (taken as frames at the
        model's rate) as the model takes them.

        A clip is sampled at the model's rate unless it is at it already or carries actions
        (action-labeled clips hold one real frame per model step, each repeated ``tubelet``
        times, paper App. A), then cropped and resized unless it is at the model's size. A
        processed clip passes through; at another image size (another model) its frames are
        resized again, its sampling kept.
        """
        if isinstance(video, ProcessedClip):
            if self._at_size(video.clip.frames):
                return video
            clip = replace(video.clip, frames=self._model_view(video.clip.frames))
            return self._tensorised(clip, video.display)
        clip = self._sampled(video)
        return self._tensorised(replace(clip, frames=self._model_view(clip.frames)))

    def to_tensor(self, video: VideoLike, max_frames: int | None = None) -> torch.Tensor:
        """Anything :meth:`process` takes, or a float tensor ``(B, T, 3, S, S)`` / ``(T, 3, S,
        S)`` in [0, 1] (already model input, taken as it is) → ``(B, T, 3, S, S)`` with ``T``
        cut to ``max_frames`` and to a multiple of the tubelet.

        Raises:
            ValueError: fewer than two model steps.
        """
        if isinstance(video, torch.Tensor):
            x = video if video.ndim == 5 else video[None]
        else:
            x = self.process(video).video[None]
        if max_frames is not None:
            x = x[:, :max_frames]
        t = x.shape[1] - x.shape[1] % self.tubelet
        if t < self.min_frames:
            rate = f" at {self.fps:g} fps" if self.fps else ""
            raise ValueError(
                f"a clip needs at least {self.min_frames} frames{rate} (two model steps); this "
                f"one gives {x.shape[1]}"
            )
        return x[:, :t]

    def fit(self, video: torch.Tensor) -> torch.Tensor:
        """Float frames ``(..., 3, H, W)`` (a dataset's video) cropped and resized to the model's
        size; returned as they are when already at it (or when the processor keeps sizes)."""
        if self.image_size is None:
            return video
        return crop_resize(video, self.image_size)

    # ------------------------------------------------------------------ display
    def display(
        self, video: str | Path | Clip | ProcessedClip, long_side: int = DISPLAY_SIDE, **read
    ) -> Clip:
        """The frames the model sees of ``video``, at a display resolution: the same sampling and
        the same centre square, resized to ``min(square side, long_side)`` (never enlarged).

        Args:
            video: a file (decoded once, with the model frames: :meth:`read` with ``display``),
                a clip at its own resolution, or a processed clip read with display frames.
            long_side: the largest side of the display frames.
            read: for a file, the arguments of :meth:`read`.
        """
        if isinstance(video, ProcessedClip):
            if video.display is None:
                raise ValueError("this clip was processed without display frames: read its file "
                                 "with display=… or pass the clip at its own resolution")
            return video.display
        if isinstance(video, Clip):
            clip = self._sampled(video)
            return replace(clip, frames=_display_view(clip.frames, long_side))
        return self.read(video, display=long_side, **read).display

    # ------------------------------------------------------------------ helpers
    def _sampled(self, video: Clip | np.ndarray) -> Clip:
        """A clip at the model's rate: picked frames nearest in time (one sampling), or the clip
        itself when it is at that rate, keeps every frame or carries actions."""
        if not isinstance(video, Clip):
            if self.fps is None:
                raise ValueError("frames without a clip need a processor with an fps")
            return Clip(np.asarray(video), fps=self.fps)
        if video.actions is not None or self.fps is None or abs(video.fps - self.fps) < 1e-9:
            return video
        idx = Source(video.num_frames, video.fps).indices(self.fps, 0.0, None)
        return replace(video, frames=video.frames[idx], fps=self.fps)

    def _at_size(self, frames: np.ndarray) -> bool:
        return self.image_size is None or frames.shape[1:3] == (self.image_size,) * 2

    def _model_view(self, frames: np.ndarray) -> np.ndarray:
        """``(n, H, W, 3)`` uint8 → the model's centre square, resized (unless at size)."""
        if self._at_size(frames):
            return frames
        return resize_center_crop(frames, self.image_size)

    @staticmethod
    def _tensorised(clip: Clip, display: Clip | None = None) -> ProcessedClip:
        return ProcessedClip(clip, frames_to_tensor(clip.frames), display)


def _display_view(frames: np.ndarray, long_side: int) -> np.ndarray:
    """``(n, H, W, 3)`` uint8 → the centre square (the model's crop) at side
    ``min(min(H, W), long_side)`` (the display resize: shown, never given to the model)."""
    return resize_center_crop(frames, min(min(frames.shape[1:3]), long_side), display=True)
