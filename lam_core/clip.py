"""The unit of video that flows through lam-studio: a clip of uint8 frames with its frame rate.

Everything that reads video (files, MiniWild, the action worlds) produces a :class:`Clip`;
:func:`frames_to_tensor` turns its frames into the ``(T, 3, H, W)`` float tensors models take.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class Clip:
    """A video clip.

    Attributes:
        frames: ``(T, H, W, 3)`` uint8 RGB frames.
        fps: frames per second of ``frames``.
        actions: optional ``(T_steps - 1, A)`` float32 real actions, one per transition between two
            model steps (a step is one tubelet of frames), for the action-labeled worlds.
        meta: free-form metadata (source file, generator seed, ground truth for evaluation only).
    """

    frames: np.ndarray
    fps: float
    actions: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        f = self.frames
        if not isinstance(f, np.ndarray) or f.ndim != 4 or f.shape[-1] != 3 or f.dtype != np.uint8:
            shape = getattr(f, "shape", None)
            dtype = getattr(f, "dtype", type(f).__name__)
            raise ValueError(f"Clip.frames must be a (T, H, W, 3) uint8 array, got {shape} {dtype}")
        if not self.fps or self.fps <= 0:
            raise ValueError(f"Clip.fps must be positive, got {self.fps}")

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` of the frames."""
        return int(self.frames.shape[1]), int(self.frames.shape[2])

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 frames to a ``(T, 3, H, W)`` float32 tensor in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255)
