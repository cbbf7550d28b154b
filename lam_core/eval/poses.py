"""The drive world's pose, read back from frames (beyond the paper).

The drive world is an egocentric camera over a map (:class:`~lam_core.data.worlds.DriveWorld`):
nothing in its frames is an object to track, but a frame *is* a pose: the view of the map from
``(x, y, heading)``. :func:`track_poses` recovers, frame by frame, the pose whose view of the
episode's map is nearest to the frame (mean squared error over the pixels), searching around the
previous frame's pose from coarse to fine. Applied to a world model's rollout driven by real
actions, it says where the world model thinks the camera went, in map pixels and degrees, against
where it went (:func:`lam_core.eval.agents.drive_tracking`); applied to the real frames it must
return the true poses (the tracker's calibration row).

Views are rendered with ``grid_sample`` over a patch of the map around the start pose (the same
bilinear sampling as :meth:`DriveWorld.render`, in float), every candidate of a search level in
one batch.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["LEVELS", "pose_errors", "track_poses"]

# (heading step in radians, position step in map px, steps on each side of the centre, coarse
# comparison): the first level covers ±0.6 rad (two full turns of the world) and ±10 px (two
# full forward steps), the next ones refine; all but the last compare a 32 × 32 sample of the
# view's pixels (every other pixel at 64 px), the last every pixel
LEVELS = ((0.1, 2.0, 6, 5, True), (0.025, 0.5, 4, 4, True), (0.00625, 0.125, 4, 4, True),
          (0.003, 0.06, 2, 2, False))
SAMPLE = 32  # side of the coarse levels' sample of the view
PATCH = 128  # half side of the map patch around the start pose, map px


class _Views:
    """Views ``(P, 3, S / stride, S / stride)`` of one world's map at many poses (every
    ``stride``-th pixel of the view), in float [0, 255]."""

    def __init__(self, world, start: np.ndarray, size: int, stride: int = 1) -> None:
        h, w = world.map.shape[:2]
        self.left = int(np.floor(start[0])) - PATCH
        self.top = int(np.floor(start[1])) - PATCH
        rows = np.arange(self.top, self.top + 2 * PATCH) % h  # the map wraps around (mirrored)
        cols = np.arange(self.left, self.left + 2 * PATCH) % w
        patch = world.map[rows][:, cols]
        self.patch = torch.from_numpy(np.ascontiguousarray(patch)).permute(2, 0, 1)[None].float()
        offsets = (torch.arange(size, dtype=torch.float64) - (size - 1) / 2)[::stride]
        n = len(offsets)
        self.forward = (-offsets[:, None]).expand(n, n)  # row 0 is ahead
        self.right = offsets[None, :].expand(n, n)

    def __call__(self, poses: torch.Tensor) -> torch.Tensor:
        x, y, heading = (poses[:, i, None, None] for i in range(3))
        c, s = torch.cos(heading), torch.sin(heading)
        mx = x + self.forward * c - self.right * s - self.left  # patch pixels
        my = y + self.forward * s + self.right * c - self.top
        side = 2 * PATCH - 1  # align_corners=True: pixel k ↔ 2k / (side) − 1
        grid = torch.stack([2 * mx / side - 1, 2 * my / side - 1], dim=-1).float()
        patch = self.patch.expand(len(poses), -1, -1, -1)
        return F.grid_sample(patch, grid, mode="bilinear", padding_mode="border",
                             align_corners=True)


def _candidates(centre: torch.Tensor, turn: float, move: float, n_turn: int, n_move: int):
    dt = torch.arange(-n_turn, n_turn + 1, dtype=torch.float64) * turn
    dxy = torch.arange(-n_move, n_move + 1, dtype=torch.float64) * move
    t, x, y = torch.meshgrid(dt, dxy, dxy, indexing="ij")
    return centre + torch.stack([x.flatten(), y.flatten(), t.flatten()], dim=1)


@torch.no_grad()
def track_poses(world, frames: np.ndarray, start: np.ndarray, keep: int = 3,
                chunk: int = 512) -> np.ndarray:
    """The pose of each frame: ``(T, H, W, 3)`` uint8 views of ``world``'s map → ``(T, 3)``
    ``(x, y, heading)``, searched around the previous frame's pose (the first frame's around
    ``start``, the episode's known start pose) over :data:`LEVELS`, coarse to fine. The ``keep``
    best poses of the first level are each refined and the best refined one is kept (a map with
    a repeating texture, a brick wall, has near-twins one period apart that a single coarse guess
    can fall into).

    A frame that shows no view of the map (a blurred or broken prediction) still gets the nearest
    pose: its error against the truth says how far off the prediction is.
    """
    frames = np.asarray(frames)
    size = frames.shape[1]
    if frames.ndim != 4 or frames.shape[2] != size or size != world.size:
        raise ValueError(f"expected (T, {world.size}, {world.size}, 3) frames of the world, got "
                         f"{frames.shape}")
    start = np.asarray(start, np.float64)
    coarse = max(1, size // SAMPLE)
    views = {k: _Views(world, start, size, k) for k in {coarse, 1}}

    def search(frame: np.ndarray, centre: torch.Tensor, level) -> tuple[torch.Tensor, torch.Tensor]:
        *steps, sampled = level
        stride = coarse if sampled else 1
        target = torch.from_numpy(np.ascontiguousarray(frame[::stride, ::stride]))
        target = target.permute(2, 0, 1)[None].float()
        poses = _candidates(centre, *steps)
        errors = torch.cat([((views[stride](part) - target) ** 2).mean(dim=(1, 2, 3))
                            for part in poses.split(chunk)])
        return poses, errors

    pose = torch.as_tensor(start)
    out = []
    for k, frame in enumerate(frames):
        if k and np.array_equal(frame, frames[k - 1]):  # the same view: the same pose
            out.append(out[-1])
            continue
        poses, errors = search(frame, pose, LEVELS[0])
        best = []
        for guess in poses[errors.argsort()[:keep]]:
            for level in LEVELS[1:]:
                candidates, errs = search(frame, guess, level)
                i = int(errs.argmin())
                guess, error = candidates[i], float(errs[i])
            best.append((error, guess))
        pose = min(best, key=lambda b: b[0])[1]
        out.append(pose.numpy().copy())
    poses = np.stack(out)
    poses[:, 2] = (poses[:, 2] + np.pi) % (2 * np.pi) - np.pi
    return poses


def pose_errors(poses: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the position error (map px) and the heading error (degrees, wrapped) of
    ``poses`` against ``truth`` (both ``(T, 3)``)."""
    position = np.linalg.norm(poses[:, :2] - truth[:, :2], axis=1)
    turn = (poses[:, 2] - truth[:, 2] + np.pi) % (2 * np.pi) - np.pi
    return position, np.degrees(np.abs(turn))
