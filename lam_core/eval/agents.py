"""Does the world model move the agent when it is driven by real actions? (Beyond the paper.)

The planning numbers of the paper's Tables S1–S2 only mean something if a rollout driven by real
actions moves the agent as the real world does. Here the reach world's effector (a magenta cross)
is tracked in the world model's rollout, step by step, against the real world driven by the same
actions: by its colour (a weighted centroid of the pixels near ``EFFECTOR_COLOR``, which no other
object of the reach world has). Rows: ``truth`` (the tracker on the real frames: its calibration),
``copy`` (the first frame repeated: the cross stays; its error is how far the real one went),
``model`` (the rollout of the pipeline: through its controller for a latent model, the actions as
they are for an action-conditioned one). Moving the whole frame with the cross also puts the cross
in the right place, so each row also has ``background``: the mean change (0–255) of the pixels
≥ 8 px from every position the effector has held so far, against the real frame (the reach world's
camera and scene are still: only the cross moves).

The drive world has no object to track: its frames are views of a map from the camera's pose, so
the pose itself is read back from each frame (:func:`lam_core.eval.poses.track_poses`) and
compared with the real one (:func:`drive_tracking`: position in map pixels, heading in degrees,
and the ATE of the whole path).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lam_core.eval.common import Progress, no_progress


@dataclass
class AgentTrackingResult:
    """``rows``: row → ``{"final_px": median error after the last step, "final_mean_px",
    "step_px": mean error over steps}`` and, for reach, ``"lost"`` (share of frames where the
    cross was not found) and ``"background"`` (mean change of the pixels away from the cross,
    0–255), for drive ``"final_deg"`` (heading) and ``"ate"``;
    ``errors``: row → ``(episodes, steps)`` tracking errors in pixels (NaN: not found)."""

    rows: dict[str, dict[str, float]]
    errors: dict[str, np.ndarray]
    steps: int
    episodes: int


def track_effector(frames: np.ndarray, tolerance: float = 60.0) -> np.ndarray:
    """The reach effector's centre in each frame: ``(T, H, W, 3)`` uint8 → ``(T, 2)`` xy.

    Pixels whose colour is within ``tolerance`` (Euclidean, 0–255) of the effector's magenta weigh
    ``1 − distance / tolerance`` (a blurred or half-covered cross still counts); NaN where no pixel
    qualifies. The reach world's objects have channels ≤ 200, at least 78 away from magenta.
    """
    from lam_core.data.worlds import EFFECTOR_COLOR

    x = frames.astype(np.float32)
    dist = np.linalg.norm(x - EFFECTOR_COLOR.astype(np.float32), axis=-1)  # T, H, W
    w = np.clip(1.0 - dist / tolerance, 0.0, None)
    h, width = frames.shape[1:3]
    ys, xs = np.mgrid[0:h, 0:width].astype(np.float32)
    total = w.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = (w * xs).sum(axis=(1, 2)) / total
        cy = (w * ys).sum(axis=(1, 2)) / total
    out = np.stack([cx, cy], axis=1)
    out[total < 1.0] = np.nan
    return out


def background_change(frames: np.ndarray, real: np.ndarray, path: np.ndarray,
                      margin: float = 8.0) -> float:
    """Mean ``|frames − real|`` (0–255) over the pixels ≥ ``margin`` px from every position of
    ``path`` ``(K, 2)`` up to each frame's step (frame i is step i + 1)."""
    h, w = frames.shape[1:3]
    ys, xs = np.mgrid[0:h, 0:w]
    dist = np.hypot(xs[None] - path[:, 0, None, None], ys[None] - path[:, 1, None, None])
    near = np.minimum.accumulate(dist, axis=0)[1:] < margin  # K - 1, H, W: up to each step
    diff = np.abs(frames.astype(np.float32) - real.astype(np.float32)).mean(-1)
    return float(diff[~near[: len(frames)]].mean())


@torch.no_grad()
def reach_tracking(pipeline, episodes: int = 64, steps: int = 8, seed: int = 0,
                   progress: Progress | None = None) -> AgentTrackingResult:
    """The reach effector in rollouts driven by random real actions, against the real world.

    Args:
        pipeline: an ``"action"`` model, or a latent model with a reach controller; it needs a
            decoder.
        episodes: held-out reach scenes (validation seeds).
        steps: actions per episode.
        seed: selects the scenes.
        progress: ``progress(fraction, message)``.
    """
    from lam_core.data.miniwild import split_seeds
    from lam_core.data.worlds import make_reach_clip

    report = progress or no_progress
    tubelet = pipeline.tubelet
    errors: dict[str, list] = {"truth": [], "copy": [], "model": []}
    background: dict[str, list] = {row: [] for row in errors}
    for i, s in enumerate(split_seeds(episodes, "val", 500_000 + 1000 * seed)):
        clip = make_reach_clip(s, num_steps=steps + 1, tubelet=tubelet, size=pipeline.image_size)
        true = np.floor(clip.meta["effector"] + 0.5)  # drawn at the nearest pixel, (K, 2)
        real = clip.frames[::tubelet]  # one frame per model step
        context = pipeline.encode(clip)[:, :1]  # (1, 1, N, D): the first real step
        actions = torch.as_tensor(clip.actions[None, :steps], dtype=torch.float32)
        pred = pipeline.rollout_with_actions(context, actions)
        frames = pipeline.to_clip(pipeline.decode(pred)).frames[::tubelet]  # (steps, H, W, 3)
        for row, seen in (("truth", real[1:]), ("copy", np.repeat(real[:1], steps, axis=0)),
                          ("model", frames)):
            errors[row].append(np.linalg.norm(track_effector(seen) - true[1:], axis=1))
            background[row].append(background_change(seen, real[1:], true))
        report((i + 1) / episodes, f"reach tracking: episode {i + 1}/{episodes}")
    rows, arrays = _summaries(errors)
    for row in rows:
        rows[row]["lost"] = float(np.isnan(arrays[row]).mean())
        rows[row]["background"] = float(np.mean(background[row]))
    return AgentTrackingResult(rows, arrays, steps, episodes)


def _summaries(errors: dict[str, list]) -> tuple[dict[str, dict], dict[str, np.ndarray]]:
    """Per row, the ``(episodes, steps)`` errors and their summary: the final step's median and
    mean, the mean over steps."""
    rows, arrays = {}, {}
    for row, values in errors.items():
        e = np.array(values)  # episodes, steps
        rows[row] = {"final_px": float(np.nanmedian(e[:, -1])),
                     "final_mean_px": float(np.nanmean(e[:, -1])), "step_px": float(np.nanmean(e))}
        arrays[row] = e
    return rows, arrays


@torch.no_grad()
def drive_tracking(pipeline, episodes: int = 64, steps: int = 8, seed: int = 0,
                   progress: Progress | None = None) -> AgentTrackingResult:
    """The drive camera's pose in rollouts driven by real actions, against the real world.

    Rows as :func:`reach_tracking`'s (``truth``: the pose tracker on the real frames, its
    calibration; ``copy``: the start frame held; ``model``), each with the position error in map
    pixels (``final_px``, ``final_mean_px``, ``step_px``; one full forward step is 5 px), the
    heading error after the last step (``final_deg``, median) and the ATE of the tracked path
    (``ate``, mean; :func:`~lam_core.eval.planning_protocols.trajectory_errors`).

    Args: as :func:`reach_tracking`'s (``pipeline``: an ``"action"`` model or a latent model with
        a drive controller).
    """
    from lam_core.data.miniwild import split_seeds
    from lam_core.data.worlds import DriveWorld, make_drive_clip
    from lam_core.eval.planning_protocols import trajectory_errors
    from lam_core.eval.poses import pose_errors, track_poses

    report = progress or no_progress
    tubelet = pipeline.tubelet
    errors: dict[str, list] = {"truth": [], "copy": [], "model": []}
    turns: dict[str, list] = {row: [] for row in errors}
    ate: dict[str, list] = {row: [] for row in errors}
    for i, s in enumerate(split_seeds(episodes, "val", 600_000 + 1000 * seed)):
        clip = make_drive_clip(s, num_steps=steps + 1, tubelet=tubelet, size=pipeline.image_size)
        world, truth = DriveWorld(s, size=pipeline.image_size), clip.meta["poses"]
        real = clip.frames[::tubelet]
        context = pipeline.encode(clip)[:, :1]
        actions = torch.as_tensor(clip.actions[None, :steps], dtype=torch.float32)
        pred = pipeline.rollout_with_actions(context, actions)
        frames = pipeline.to_clip(pipeline.decode(pred)).frames[::tubelet]
        for row, seen in (("truth", real[1:]), ("copy", np.repeat(real[:1], steps, axis=0)),
                          ("model", frames)):
            poses = np.concatenate([truth[:1], track_poses(world, seen, truth[0])])
            position, turn = pose_errors(poses[1:], truth[1:])
            errors[row].append(position)
            turns[row].append(turn[-1])
            ate[row].append(trajectory_errors(poses, truth)[0])
        report((i + 1) / episodes, f"drive tracking: episode {i + 1}/{episodes}")
    rows, arrays = _summaries(errors)
    for row in rows:
        rows[row]["final_deg"] = float(np.median(turns[row]))
        rows[row]["ate"] = float(np.mean(ate[row]))
    return AgentTrackingResult(rows, arrays, steps, episodes)


# per kind of result: its title, then (column, key, format) after the three error columns
TRACKING_TABLES = {
    "drive": ("Drive camera pose tracked over {steps} steps, {episodes} episodes (error against "
              "the real world; map px, one full step is 5 px)",
              (("final heading error, median (°)", "final_deg", ".1f"), ("ATE", "ate", ".2f"))),
    "reach": ("Reach effector tracked over {steps} steps, {episodes} episodes (error against the "
              "real world, px at 64 px)",
              (("not found", "lost", ".0%"), ("background change (/255)", "background", ".2f"))),
}


def format_tracking(result: AgentTrackingResult) -> str:
    """A markdown table of :class:`AgentTrackingResult` (:func:`reach_tracking`'s or
    :func:`drive_tracking`'s)."""
    title, extra = TRACKING_TABLES["drive" if "ate" in next(iter(result.rows.values()))
                                   else "reach"]
    head = ["row", "final error, median", "final, mean", "mean over steps",
            *(column for column, _, _ in extra)]
    lines = [title.format(steps=result.steps, episodes=result.episodes), "",
             "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for row, m in result.rows.items():
        cells = [row, *(f"{m[k]:.2f}" for k in ("final_px", "final_mean_px", "step_px")),
                 *(f"{m[k]:{fmt}}" for _, k, fmt in extra)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
