"""Transfers shown at the footage's own resolution (docs/DESIGN.md#display-rendering): how much
of the target's detail the displayed transfer keeps, and what rendering it costs.

Pair: ``apple.mp4`` → ``bear.mp4`` of ``/work/shared/videos`` (or ``$LAM_BENCH_VIDEOS``; the
rows are skipped without them), through each shipped flagship (``assets/checkpoints/pixel-noisy``
and ``pixel-grid``), both read as the studio reads them (``studio.media.read_upload`` with
display frames, long side ≤ 512). Detail is the
high-frequency energy of a frame: the variance of the Laplacian of its grey image, averaged over
the predicted frames, as a share of the same for the target's real display frames at the same
times and resolution. Two ways to show the prediction at the display size: (i) the composed flow
warping the target's display frame (``lam_core.rendering.render_at``, what the studio shows), and
(ii) the 64-px prediction upscaled bilinearly (what a 64-px model shows at best without it).
The rendering's own cost is timed at one thread.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from harness import Context, Row, timeit

REPO = Path(__file__).resolve().parent.parent
CHECKPOINTS = ("assets/checkpoints/pixel-noisy", "assets/checkpoints/pixel-grid")
REAL = Path(os.environ.get("LAM_BENCH_VIDEOS", "/work/shared/videos"))
PAIR = ("apple.mp4", "bear.mp4")  # 1296×720 → 854×480: display 512 and 480


def laplacian_energy(frames: np.ndarray) -> float:
    """Mean over frames of the variance of the Laplacian (4-neighbour, interior pixels) of the
    grey image of ``(T, H, W, 3)`` uint8 frames."""
    grey = frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    lap = (grey[:, :-2, 1:-1] + grey[:, 2:, 1:-1] + grey[:, 1:-1, :-2] + grey[:, 1:-1, 2:]
           - 4 * grey[:, 1:-1, 1:-1])
    return float(lap.reshape(len(frames), -1).var(axis=1).mean())


def measure(source: str | Path, target: str | Path, checkpoint: str | Path) -> dict:
    """Sharpness shares and sizes of one studio transfer (context 1, every step)."""
    from lam_core import LatentActionPipeline
    from lam_core.rendering import upsample_frames
    from studio.media import DISPLAY, read_upload

    pipe = LatentActionPipeline.from_pretrained(checkpoint)
    src, tgt = (read_upload(p, pipe.processor, n, display=DISPLAY).processed
                for p, n in ((source, "source"), (target, "target")))
    result = pipe.transfer(src, tgt, display=tgt, source_display=src)
    c = result.context * pipe.tubelet
    n = min(len(result.transferred_display.frames), len(result.target_display.frames))
    shown = result.transferred_display.frames[c:n]
    real = result.target_display.frames[c:n]
    size = shown.shape[1:3]
    upscaled = upsample_frames(result.transferred.frames[c:n], *size)
    reference = laplacian_energy(real)
    anchor = laplacian_energy(result.target_display.frames[c - 1 : c])
    return {
        "rendering": result.display_rendering,
        "display": list(size),
        "predicted_frames": len(shown),
        "share_flow_render": laplacian_energy(shown) / reference,
        "share_upscaled_64px": laplacian_energy(upscaled) / reference,
        "share_flow_render_vs_anchor": laplacian_energy(shown) / anchor,
        "target_energy": reference,
        "render": lambda: pipe.transfer(src, tgt, display=tgt, source_display=src),
        "plain": lambda: pipe.transfer(src, tgt),
    }


def run(ctx: Context) -> list[Row]:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if not all((REAL / name).is_file() for name in PAIR):
        print(f"bench_display: skipped, {REAL} lacks {PAIR}")
        return []
    rows = []
    for checkpoint in CHECKPOINTS:
        if (REPO / checkpoint).is_dir():
            rows += _rows(ctx, checkpoint)
    return rows


def _rows(ctx: Context, checkpoint: str) -> list[Row]:
    torch.set_num_threads(1)
    m = measure(*(REAL / name for name in PAIR), REPO / checkpoint)
    repeat = 2 if ctx.quick else 3
    rendered, plain = timeit(m.pop("render"), repeat=repeat), timeit(m.pop("plain"), repeat=repeat)
    torch.set_num_threads(ctx.threads)
    size = "×".join(str(n) for n in m["display"])
    label = f"{Path(checkpoint).name}, {PAIR[0]} → {PAIR[1]}, display {size}"
    note = f"{m['predicted_frames']} predicted frames; rendering: {m['rendering']}"
    return [
        Row(name=f"display detail kept, flow rendering, {label}",
            value=100 * m["share_flow_render"], unit="% of the target's",
            ratio=m["share_flow_render"] / max(m["share_upscaled_64px"], 1e-12),
            ratio_of="flow rendering / 64-px upscaled", target="≥ 80 %",
            met=m["share_flow_render"] >= 0.8, note=note, extra=m),
        Row(name=f"display detail kept, 64-px prediction upscaled, {label}",
            value=100 * m["share_upscaled_64px"], unit="% of the target's", note=note),
        Row(name=f"transfer with display rendering, {label}, 1 thread", value=rendered,
            unit="s", ratio=rendered / plain, ratio_of="with / without display rendering",
            note=f"without: {plain:.3f} s"),
    ]
