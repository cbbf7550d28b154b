"""Transfers as a sheet of frames (a PNG), for docs and eyes (paper Fig. 7–8 show transfers the
same way).

One block per pair, one row per clip, one column per model step (the last frame of each tubelet):

- ``A (source)``: the clip whose latent actions are replayed;
- ``A, own latents``: A rolled out from its first step with its own IDM latents (what the model
  reproduces of A at all);
- ``B (target)``: the clip the actions are replayed on;
- ``B, own latents``: B rolled out with its own latents (the reference for the transfer);
- ``B + A's actions``: B rolled out with A's latents (:meth:`LatentActionPipeline.transfer`);
- ``|diff| ×gain``: where the transfer differs from B's own rollout, amplified.

By default A and B are held-out MiniWild clips of one disc on a still background
(``--scene mover``; ``wild``: a single-agent clip onto an ordinary one; ``pan``: camera pans
over stills of real videos), so what should move is known; ``--source`` / ``--target`` take
video files instead.

    python -m lam_core.eval.frames --pairs 3 --out docs/img/transfer-frames.png
    python -m lam_core.eval.frames --scene pan --images DIR_OF_VIDEOS --out pans.png
    python -m lam_core.eval.frames --source bear.mp4 --target cat.mp4 --out real.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from lam_core.clip import Clip
from lam_core.pipeline import LatentActionPipeline

LABEL_WIDTH = 118
ROW_GAP = 2
BLOCK_GAP = 10


def step_frames(clip: Clip, tubelet: int) -> np.ndarray:
    """The last frame of each model step: ``(T // tubelet, H, W, 3)``."""
    return clip.frames[tubelet - 1 :: tubelet]


@torch.no_grad()
def transfer_rows(
    pipeline: LatentActionPipeline, source: Clip, target: Clip, gain: float = 4.0
) -> list[tuple[str, np.ndarray]]:
    """The labelled rows of one pair (see the module docstring), each ``(S, H, W, 3)`` uint8."""
    tub = pipeline.tubelet
    out = pipeline.transfer(source, target)
    if out.target_own is None:
        raise ValueError("the target is shorter than the source: no own rollout to compare with")
    own_a = pipeline.transfer(source, source).transferred
    own_b = out.target_own
    steps = min(len(step_frames(c, tub)) for c in (out.source, out.target, out.transferred, own_b))
    rows = [
        ("A (source)", step_frames(out.source, tub)),
        ("A, own latents", step_frames(own_a, tub)),
        ("B (target)", step_frames(out.target, tub)),
        ("B, own latents", step_frames(own_b, tub)),
        ("B + A's actions", step_frames(out.transferred, tub)),
    ]
    rows = [(name, f[:steps]) for name, f in rows]
    rows.append((f"|diff| x{gain:g}", change_frames(rows[4][1], rows[3][1], gain)))
    return rows


def change_frames(a: np.ndarray, b: np.ndarray, gain: float = 4.0) -> np.ndarray:
    """Grey frames of ``gain · mean_rgb |a − b|`` (uint8 ``(T, H, W, 3)``): where two videos of
    the same shape differ, amplified (a transfer's effect is often a few grey levels)."""
    if a.shape != b.shape:
        raise ValueError(f"cannot compare videos of shapes {a.shape} and {b.shape}")
    if a.dtype == b.dtype == np.uint8:  # |a − b| in uint8, its channels added in uint16 and
        diff = np.maximum(a, b)  # mapped through a table: no float copies (a display-size
        diff -= np.minimum(a, b)  # change panel is 2× faster than a sum over the channel axis)
        total = diff[..., 0].astype(np.uint16)
        total += diff[..., 1]
        total += diff[..., 2]
        table = np.minimum(np.arange(3 * 255 + 1, dtype=np.float32) * np.float32(gain / 3), 255)
        heat = table.astype(np.uint8)[total]
    else:
        diff = np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(-1)
        heat = np.clip(diff * gain, 0, 255).astype(np.uint8)
    out = np.empty((*heat.shape, 3), np.uint8)
    out[...] = heat[..., None]
    return out


def sheet(blocks: list[list[tuple[str, np.ndarray]]], scale: int = 2, title: str = ""):
    """Lay out blocks of labelled rows into one ``PIL.Image`` (frames upscaled ``scale``×)."""
    from PIL import Image, ImageDraw

    first = blocks[0][0][1]
    h, w = first.shape[1] * scale, first.shape[2] * scale
    cols = max(len(f) for block in blocks for _, f in block)
    top = 22 if title else 4
    height = top + sum(len(b) * (h + ROW_GAP) for b in blocks) + BLOCK_GAP * (len(blocks) - 1)
    img = Image.new("RGB", (LABEL_WIDTH + cols * (w + ROW_GAP), height), "white")
    draw = ImageDraw.Draw(img)
    if title:
        draw.text((4, 4), title, fill="black")
    y = top
    for block in blocks:
        for label, frames in block:
            draw.text((4, y + h // 2 - 6), label, fill="black")
            for j, frame in enumerate(frames):
                tile = Image.fromarray(frame).resize((w, h), Image.NEAREST)
                img.paste(tile, (LABEL_WIDTH + j * (w + ROW_GAP), y))
            y += h + ROW_GAP
        y += BLOCK_GAP
    return img


def default_pairs(n: int, seed: int = 0, scene: str = "mover", images: str | None = None,
                  steps: int = 7, fps: float = 4.0) -> list[tuple[Clip, Clip]]:
    """``n`` held-out pairs whose motion is known.

    Args:
        n: pairs.
        seed: selects them.
        scene: ``"mover"`` (a MiniWild disc on a still background onto another), ``"wild"`` (a
            single-agent MiniWild clip onto an ordinary one) or ``"pan"`` (random camera pans
            over stills of the videos in ``images``, as :mod:`lam_core.eval.motion` measures).
        images: a folder of videos (``pan`` only).
        steps: predicted steps (``mover`` and ``pan``).
        fps: the clips' frame rate (the model's).
    """
    if scene == "wild":
        from lam_core.eval.common import heldout_clips
        from lam_core.eval.fidelity import single_agent_sources

        return list(zip(single_agent_sources(n, seed), heldout_clips(n, seed_offset=seed)))
    from lam_core.eval import motion

    if scene == "mover":
        sources = motion.single_mover_clips(n, 700_000 + 1000 * seed, steps, fps=fps)
        return list(zip(sources, motion.single_mover_clips(n, 800_000 + 1000 * seed, steps,
                                                           fps=fps)))
    if scene != "pan" or not images:
        raise ValueError("scene must be mover, wild or pan (pan needs a folder of videos)")
    from lam_core.data.scenes import pan_over

    stills = motion.real_images(images)
    if len(stills) < 2:
        raise ValueError(f"{images}: need two readable videos to pan over")
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        a, b = rng.choice(len(stills), 2, replace=False)
        va, vb = (motion.random_velocities(rng, steps, (1.5, 3.0)) for _ in range(2))
        pairs.append((pan_over(stills[a], va, fps=fps), pan_over(stills[b], vb, fps=fps)))
    return pairs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m lam_core.eval.frames",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    ap.add_argument("--checkpoint", default="assets/checkpoints/pixel-noisy",
                    help="a pipeline folder (kind latent, with a decoder)")
    ap.add_argument("--out", required=True, help="the PNG to write")
    ap.add_argument("--pairs", type=int, default=3, help="pairs (ignored with --source)")
    ap.add_argument("--scene", default="mover", choices=["mover", "wild", "pan"],
                    help="held-out pairs: MiniWild discs, MiniWild agents, or pans over stills "
                         "of the videos in --images")
    ap.add_argument("--images", help="a folder of videos to pan over (--scene pan)")
    ap.add_argument("--seed", type=int, default=0, help="selects the pairs")
    ap.add_argument("--source", help="a video file whose actions are replayed")
    ap.add_argument("--target", help="a video file to replay them on (with --source)")
    ap.add_argument("--seconds", type=float, default=2.0,
                    help="how much of --source / --target to use (the model's fps)")
    ap.add_argument("--scale", type=int, default=2, help="upscaling of the frames")
    ap.add_argument("--gain", type=float, default=4.0, help="amplification of the |diff| row")
    args = ap.parse_args(argv)
    if bool(args.source) != bool(args.target):
        ap.error("--source and --target go together")
    if args.pairs < 1 or args.scale < 1 or args.gain <= 0:
        ap.error("--pairs and --scale must be ≥ 1 and --gain > 0")
    from lam_core.checkpoint import CheckpointError
    from lam_core.video import VideoDecodeError, read_video

    try:
        pipe = LatentActionPipeline.from_pretrained(args.checkpoint)
        if not pipe.lam.uses_latents or pipe.decoder is None:
            ap.error(f"{args.checkpoint} has no latent actions or no decoder: nothing to transfer")
        if args.source:
            frames = max(2, round(args.seconds * pipe.fps))
            pairs = [(read_video(args.source, fps=pipe.fps, max_frames=frames),
                      read_video(args.target, fps=pipe.fps, max_frames=frames))]
        else:
            pairs = default_pairs(args.pairs, args.seed, args.scene, args.images, fps=pipe.fps)
        blocks = [transfer_rows(pipe, a, b, args.gain) for a, b in pairs]
    except (CheckpointError, VideoDecodeError, OSError, ValueError) as e:
        ap.error(str(e))
    title = f"{args.checkpoint}: A's latent actions replayed on B (one column per model step)"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet(blocks, args.scale, title).save(out, optimize=True)
    print(f"wrote {out} ({len(blocks)} pair(s))")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
