"""Write the shipped example clips into ``assets/clips/`` (h264 mp4 + a JSON of ground truth).

``python train/recipes/example_clips.py [--out assets/clips]``. MiniWild clips come from the
held-out (validation) seeds, so the shipped models never trained on them (the "wild" scene, camera
pans over photographs and still-camera movers); reach and drive clips come with their real
actions, one frame per model step.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from lam_core.data import generate_clip, make_drive_clip, make_reach_clip, split_seeds
from lam_core.data.miniwild import MiniWildConfig
from lam_core.video import write_video

ROOT = Path(__file__).resolve().parents[2]


def _jsonable(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


def _agent_in_view(clip, min_fraction: float = 0.9, min_travel: float = 8.0) -> bool:
    """True when one agent is visible in most frames and travels at least ``min_travel`` px."""
    for agent in clip.meta["agents"]:
        visible = np.asarray(agent["visible"], bool)
        pos = np.asarray(agent["position"], float)
        if visible.mean() >= min_fraction and np.linalg.norm(pos[-1] - pos[0]) >= min_travel:
            return True
    return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "assets" / "clips"))
    ap.add_argument("--miniwild", type=int, default=6, help="number of MiniWild clips")
    ap.add_argument("--pans", type=int, default=4, help="number of camera pans over photographs")
    ap.add_argument("--movers", type=int, default=4, help="number of still-camera mover clips")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = MiniWildConfig(num_frames=24, min_agents=1)
    clips = {}
    for seed in split_seeds(10_000, "val"):  # examples where an agent stays in view and moves
        if len(clips) == args.miniwild:
            break
        clip = generate_clip(seed, cfg)
        if _agent_in_view(clip):
            clips[f"miniwild-{len(clips)}"] = clip
    # what the flagship knows: camera pans over photographs and movers on a still background,
    # motion that changes at random every step (held-out seeds)
    for scene, n in (("pan", args.pans), ("movers", args.movers)):
        scene_cfg = MiniWildConfig(num_frames=16, scene=scene, max_movers=1,
                                   scene_noise_probability=0.0)
        for i, seed in enumerate(split_seeds(n, "val", seed_offset=900_000)):
            clips[f"{scene}-{i}"] = generate_clip(seed, scene_cfg)
    # one real frame per model step (tubelet 1, the pixel preset's)
    clips.update({f"reach-{i}": make_reach_clip(1_000_000 + i, num_steps=12, tubelet=1,
                                                policy="smooth") for i in range(2)})
    drives = (make_drive_clip(1_000_000 + i, num_steps=12, tubelet=1) for i in range(100))
    bright = [c for c in drives if c.frames.mean() > 60][:2]  # skip night-sky maps
    clips.update({f"drive-{i}": c for i, c in enumerate(bright)})
    for name, clip in clips.items():
        write_video(out / f"{name}.mp4", clip.frames, clip.fps)
        meta = {"fps": clip.fps, "frames": clip.num_frames, "meta": _jsonable(clip.meta)}
        if clip.actions is not None:
            meta["actions"] = clip.actions.tolist()
        (out / f"{name}.json").write_text(json.dumps(meta) + "\n")
        print(f"{name}: {clip.num_frames} frames at {clip.fps:g} fps")


if __name__ == "__main__":
    main()
