"""Action-labeled worlds for the controller and planning (docs/DESIGN.md#action-worlds; paper §7,
App. A).

- ``reach``: a fixed camera over a textured table; an effector (a magenta cross) moves by actions
  ``(dx, dy)`` in [-1, 1] among 2-4 static objects. DROID's role: planning is scored by the
  effector's distance to the goal (Δxy).
- ``drive``: an egocentric camera over a large photograph; actions ``(forward, turn)`` in [-1, 1]
  move the pose ``(x, y, heading)``. RECON's role: planning is scored by ATE/RPE on the poses.

The model turns every 2 frames (one tubelet) into one step, so each world renders K "real" frames
and repeats each ``tubelet`` times: "we duplicate frames in the dataset to obtain a clear one-to-one
mapping between real and latent actions" (App. A). ``actions[k]`` leads from real frame ``k`` to
``k + 1``. Worlds are deterministic given their seed: ``World(seed).reset()`` is always the same
scene, so a planner's actions can be replayed to score them.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from lam_core.clip import Clip, frames_to_tensor
from lam_core.data.common import (
    PHOTOS,
    load_photos,
    procedural_texture,
    split_seeds,
)
from lam_core.data.pusht import record_pusht_clip

__all__ = [
    "EFFECTOR_COLOR",
    "WORLDS",
    "WORLD_FPS",
    "ActionWorldDataset",
    "DriveWorld",
    "ReachWorld",
    "drive_episode",
    "make_drive_clip",
    "make_reach_clip",
    "reach_episode",
    "rollout_clip",
]

WORLD_FPS = 4.0  # real frames per second; a clip's fps is WORLD_FPS * tubelet
EFFECTOR_COLOR = np.array([255, 0, 255], np.uint8)
POLICIES = ("random", "smooth")


def _policy(rng: np.random.Generator, policy: str, n: int) -> np.ndarray:
    """``(n, 2)`` actions in [-1, 1]: i.i.d. uniform (``random``) or a slowly varying walk."""
    if policy == "random":
        return rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    if policy == "smooth":
        steps = rng.normal(0, 0.35, (n, 2))
        steps[0] = rng.uniform(-1, 1, 2)
        return np.clip(np.cumsum(steps, axis=0), -1, 1).astype(np.float32)
    raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")


class ReachWorld:
    """A fixed-camera table with an effector moved by ``(dx, dy)`` actions.

    Args:
        seed: the scene (background, objects, effector start).
        size: frame side in pixels.
        step_px: effector displacement for an action of 1 (at 64 px; scaled with ``size``).
    """

    name, action_dim = "reach", 2

    def __init__(self, seed: int, size: int = 64, step_px: float = 6.0) -> None:
        self.seed, self.size = int(seed), size
        self.step_px = step_px * size / 64
        self.margin = 6 * size / 64
        self.reset()

    def reset(self) -> np.ndarray:
        """Rebuild the scene of ``seed``; returns the first frame ``(H, W, 3)`` uint8."""
        rng = np.random.default_rng(self.seed)
        s = self.size
        if rng.random() < 0.5:
            self.scene = procedural_texture(rng, s, s)
        else:
            photo = load_photos()[rng.integers(len(load_photos()))]
            top, left = rng.integers(0, photo.shape[0] - s), rng.integers(0, photo.shape[1] - s)
            self.scene = photo[top : top + s, left : left + s].copy()
        self.scene = (self.scene * 0.7).astype(np.uint8)  # muted: the effector stands out
        ys, xs = np.mgrid[0:s, 0:s].astype(np.float32)
        self.objects = []
        for _ in range(int(rng.integers(2, 5))):
            kind = str(rng.choice(["disc", "box"]))
            xy = rng.uniform(self.margin, s - 1 - self.margin, 2)
            radius = rng.uniform(3, 7) * s / 64
            color = rng.integers(0, 200, 3).astype(np.uint8)  # red and blue never both 255
            if kind == "disc":
                mask = (xs - xy[0]) ** 2 + (ys - xy[1]) ** 2 < radius**2
            else:
                mask = (np.abs(xs - xy[0]) < radius) & (np.abs(ys - xy[1]) < radius * 0.7)
            self.scene[mask] = color
            self.objects.append({"kind": kind, "position": xy.astype(np.float32),
                                 "radius": float(radius), "color": color})
        # the start is central, so that a few steps rarely push the effector against the border
        self.effector = rng.uniform(s / 4, s * 3 / 4, 2)
        return self.render()

    @property
    def state(self) -> np.ndarray:
        """Effector position ``(2,)`` float32, xy in frame pixels."""
        return self.effector.astype(np.float32)

    def step(self, action) -> np.ndarray:
        """Move the effector by ``clip(action, -1, 1) * step_px`` (kept off the border); returns
        the new frame."""
        action = np.clip(np.asarray(action, np.float64).reshape(2), -1, 1)
        lo, hi = self.margin, self.size - 1 - self.margin
        self.effector = np.clip(self.effector + action * self.step_px, lo, hi)
        return self.render()

    def render(self) -> np.ndarray:
        """The current frame ``(H, W, 3)`` uint8: the scene with the effector drawn at the nearest
        pixel (a cross of arm 4 px and width 3 px inside a dark outline)."""
        frame = self.scene.copy()
        cx, cy = np.floor(self.effector + 0.5).astype(int)
        arm, half = round(4 * self.size / 64), max(1, round(self.size / 64))
        for pad, color in ((1, 0), (0, EFFECTOR_COLOR)):
            frame[max(cy - half - pad, 0) : cy + half + pad + 1,
                  max(cx - arm - pad, 0) : cx + arm + pad + 1] = color
            frame[max(cy - arm - pad, 0) : cy + arm + pad + 1,
                  max(cx - half - pad, 0) : cx + half + pad + 1] = color
        return frame

    def sample_actions(self, rng: np.random.Generator, n: int, policy: str = "random"):
        """``(n, 2)`` float32 actions in [-1, 1]."""
        return _policy(rng, policy, n)


class DriveWorld:
    """An egocentric camera over a large photograph, mirror-tiled so the map has no edge.

    The view is a rotated crop: the pose ``(x, y)`` is at the centre of the view and the heading
    points up. Each step turns by ``turn * turn_rad`` and then moves ``forward * speed_px`` along
    the new heading. Rendering is vectorised bilinear sampling over a precomputed grid.

    Args:
        seed: the map and the start pose.
        size: frame side in pixels.
        speed_px: distance in map pixels for ``forward = 1``.
        turn_rad: rotation in radians for ``turn = 1``.
    """

    name, action_dim = "drive", 2
    MAPS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "brick", "gravel")

    def __init__(self, seed: int, size: int = 64, speed_px: float = 5.0,
                 turn_rad: float = 0.3) -> None:
        self.seed, self.size = int(seed), size
        self.speed_px, self.turn_rad = speed_px, turn_rad
        offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2
        self.forward_grid = -offsets[:, None] * np.ones((1, size))  # row 0 is ahead
        self.right_grid = np.ones((size, 1)) * offsets[None, :]
        self.reset()

    def reset(self) -> np.ndarray:
        """Choose the map and start pose of ``seed``; returns the first frame."""
        rng = np.random.default_rng(self.seed)
        self.map_name = str(rng.choice(self.MAPS))
        self.map = _drive_map(self.map_name)
        h, w = self.map.shape[:2]
        self.pose = np.array([rng.uniform(0, w), rng.uniform(0, h), rng.uniform(-np.pi, np.pi)])
        return self.render()

    @property
    def state(self) -> np.ndarray:
        """Pose ``(3,)`` float32: x, y in map pixels and heading in radians (0 = +x)."""
        return self.pose.astype(np.float32)

    def step(self, action) -> np.ndarray:
        """Apply ``(forward, turn)`` (clipped to [-1, 1]); returns the new frame."""
        forward, turn = np.clip(np.asarray(action, np.float64).reshape(2), -1, 1)
        heading = self.pose[2] + turn * self.turn_rad
        heading = (heading + np.pi) % (2 * np.pi) - np.pi
        x = self.pose[0] + forward * self.speed_px * np.cos(heading)
        y = self.pose[1] + forward * self.speed_px * np.sin(heading)
        self.pose = np.array([x, y, heading])
        return self.render()

    def render(self) -> np.ndarray:
        """The view ``(H, W, 3)`` uint8 at the current pose."""
        x, y, heading = self.pose
        c, s = np.cos(heading), np.sin(heading)
        # ahead is (c, s); right of it, with y pointing down, is (-s, c)
        mx = x + self.forward_grid * c - self.right_grid * s
        my = y + self.forward_grid * s + self.right_grid * c
        h, w = self.map.shape[:2]
        x0, y0 = np.floor(mx), np.floor(my)
        fx, fy = (mx - x0)[..., None], (my - y0)[..., None]
        x0, y0 = x0.astype(np.int64) % w, y0.astype(np.int64) % h
        x1, y1 = (x0 + 1) % w, (y0 + 1) % h
        m = self.map
        top = m[y0, x0] * (1 - fx) + m[y0, x1] * fx  # uint8 gathers, float blend
        bottom = m[y1, x0] * (1 - fx) + m[y1, x1] * fx
        return np.clip(top * (1 - fy) + bottom * fy + 0.5, 0, 255).astype(np.uint8)

    def sample_actions(self, rng: np.random.Generator, n: int, policy: str = "smooth"):
        """``(n, 2)`` float32 ``(forward, turn)``; forward is mostly positive, as a robot drives."""
        actions = _policy(rng, policy, n)
        actions[:, 0] = 0.2 + 0.8 * np.abs(actions[:, 0])
        return actions


@functools.cache
def _drive_map(name: str) -> np.ndarray:
    """A full-resolution photo mirrored into a seamless ``(2H, 2W, 3)`` uint8 tile."""
    photo = load_photos(short_side=512)[PHOTOS.index(name)]
    top = np.concatenate([photo, photo[:, ::-1]], axis=1)
    return np.ascontiguousarray(np.concatenate([top, top[::-1]], axis=0))


def rollout_clip(world, actions: np.ndarray, tubelet: int = 2, state_key: str = "states") -> Clip:
    """Reset ``world``, apply ``actions`` and record the frames as a clip.

    Args:
        world: a :class:`ReachWorld` or :class:`DriveWorld` (anything with ``reset``, ``step`` and
            ``state``).
        actions: ``(K - 1, A)`` actions.
        tubelet: how many times each real frame is repeated.
        state_key: the meta key of the per-frame ground truth states ``(K, S)``.

    Returns:
        ``Clip(frames (K * tubelet, H, W, 3), fps = WORLD_FPS * tubelet, actions (K - 1, A))`` with
        ``meta = {"world", "seed", "tubelet", state_key}``.
    """
    actions = np.asarray(actions, np.float32)
    frames, states = [world.reset()], [world.state]
    for action in actions:
        frames.append(world.step(action))
        states.append(world.state)
    meta = {"world": world.name, "seed": world.seed, "tubelet": tubelet,
            state_key: np.stack(states)}
    return Clip(frames=np.repeat(np.stack(frames), tubelet, axis=0), fps=WORLD_FPS * tubelet,
                actions=actions, meta=meta)


def make_reach_clip(seed: int, num_steps: int = 8, tubelet: int = 2, policy: str = "random",
                    size: int = 64) -> Clip:
    """A reach clip of ``num_steps`` real frames and ``num_steps - 1`` actions ``(dx, dy)``.

    Args:
        seed: the scene and the actions.
        num_steps: real frames K (the model's steps).
        tubelet: frames per model step; each real frame is repeated this many times.
        policy: ``"random"`` (i.i.d. uniform) or ``"smooth"``.
        size: frame side in pixels.

    Returns:
        A clip with ``2K`` frames (for ``tubelet = 2``), ``actions (K - 1, 2)`` and
        ``meta["effector"] (K, 2)`` xy positions plus ``meta["objects"]``.
    """
    world = ReachWorld(seed, size=size)
    rng = np.random.default_rng([seed, 1])  # the actions' stream, apart from the scene's
    clip = rollout_clip(world, world.sample_actions(rng, num_steps - 1, policy), tubelet,
                        state_key="effector")
    clip.meta["objects"] = world.objects
    return clip


def make_drive_clip(seed: int, num_steps: int = 8, tubelet: int = 2, size: int = 64) -> Clip:
    """A drive clip of ``num_steps`` real frames and ``num_steps - 1`` actions ``(forward, turn)``.

    Returns:
        A clip with ``K * tubelet`` frames, ``actions (K - 1, 2)`` and ``meta["poses"] (K, 3)``
        (x, y, heading).
    """
    world = DriveWorld(seed, size=size)
    rng = np.random.default_rng([seed, 1])
    clip = rollout_clip(world, world.sample_actions(rng, num_steps - 1), tubelet, "poses")
    clip.meta["map"] = world.map_name
    return clip


def _episode(world, horizon: int, tubelet: int, policy: str, state_key: str):
    rng = np.random.default_rng([world.seed, 2])
    clip = rollout_clip(world, world.sample_actions(rng, horizon, policy), tubelet, state_key)
    start = Clip(frames=clip.frames[:tubelet].copy(), fps=clip.fps,
                 meta={**clip.meta, "horizon": horizon})
    return start, clip.frames[-1].copy(), clip.actions, clip.meta[state_key]


def reach_episode(seed: int, horizon: int = 3, tubelet: int = 2, policy: str = "random"):
    """A planning problem in the reach world: reach the goal frame in ``horizon`` steps.

    Score a plan by replaying it: ``w = ReachWorld(seed)``, ``w.step(a)`` for each action, then
    ``‖w.state - start.meta["effector"][-1]‖`` (the goal position) is Δxy.

    Returns:
        ``(start, goal, actions)``: ``start`` is a clip of the first frame repeated ``tubelet``
        times whose ``meta["effector"]`` ``(horizon + 1, 2)`` holds the ground-truth path (last row
        = goal position); ``goal`` is the ``(H, W, 3)`` frame after the ground-truth ``actions``
        ``(horizon, 2)``.
    """
    start, goal, actions, _ = _episode(ReachWorld(seed), horizon, tubelet, policy, "effector")
    return start, goal, actions


def drive_episode(seed: int, horizon: int = 8, tubelet: int = 2):
    """A planning problem in the drive world (RECON's role), with poses for ATE/RPE.

    Returns:
        ``(start, goal, actions, poses)``: ``start`` is a clip of the first frame repeated
        ``tubelet`` times, ``goal`` the ``(H, W, 3)`` frame after the ground-truth ``actions``
        ``(horizon, 2)``, ``poses`` ``(horizon + 1, 3)`` the ground-truth poses (also in
        ``start.meta["poses"]``).
    """
    return _episode(DriveWorld(seed), horizon, tubelet, "smooth", "poses")


CLIP_MAKERS = {"reach": make_reach_clip, "drive": make_drive_clip, "pusht": record_pusht_clip}
WORLDS = tuple(CLIP_MAKERS)  # the action worlds, by name (data.world, data.sources, reports)


class ActionWorldDataset(torch.utils.data.Dataset):
    """Clips with real actions: ``{"video": (T, 3, H, W) float32 in [0, 1], "actions": (K-1, A)}``.

    Args:
        world: ``"reach"``, ``"drive"`` or ``"pusht"`` (needs gym-pusht).
        length: number of clips.
        split: ``"train"`` or ``"val"`` (disjoint seeds, as for MiniWild).
        num_steps: real frames K per clip.
        tubelet: frames per model step (T = K * tubelet).
        seed_offset: first seed of the split.
    """

    def __init__(self, world: str = "reach", length: int = 1000, split: str = "train",
                 num_steps: int = 8, tubelet: int = 2, seed_offset: int = 0) -> None:
        if world not in CLIP_MAKERS:
            raise ValueError(f"world must be one of {', '.join(WORLDS)}, got {world!r}")
        self._make = CLIP_MAKERS[world]
        self.world, self.num_steps, self.tubelet = world, num_steps, tubelet
        self.seeds = split_seeds(length, split, seed_offset)

    def __len__(self) -> int:
        return len(self.seeds)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        clip = self._make(self.seeds[i], num_steps=self.num_steps, tubelet=self.tubelet)
        return {"video": frames_to_tensor(clip.frames), "actions": torch.from_numpy(clip.actions)}
