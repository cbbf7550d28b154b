"""The studio's Transfer and Cycle end to end, through the handlers of ``studio/handlers.py``
(decode two uploads at the model's and the display resolution, run the model, render the
predictions at the display resolution, compose the side-by-side frames, write the two mp4s:
display and model resolution), warm.

Uploads: two 10-s videos made of the shipped clips (``assets/clips/miniwild-{0,2}`` and
``miniwild-{1,3}`` joined, 12 s each, so the studio's 10-s cap applies: 40 frames at 4 fps; 64 px,
so the display resolution is the model's), written to a temporary folder; and, where
``/work/shared/videos`` (or ``$LAM_BENCH_VIDEOS``) has them, two real videos read in place and
two 10-s real uploads at their own resolution (``apple.mp4``, 1296×720, and ``bear.mp4``,
854×480, played forwards and backwards past 10 s: display frames 512² and 480²). Requests run
with one torch thread, the studio's default (``app.py --threads 1``), and the floor is at the
one-thread peak; the ratio is the same request at the run's thread count over one thread (the
thread budget). The breakdown (decode, model, display rendering, video) is timed piece by piece
in the same run.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from harness import Context, Row, count_flops, timeit

REPO = Path(__file__).resolve().parent.parent
CHECKPOINT = "assets/checkpoints/pixel-noisy"
REAL = Path(os.environ.get("LAM_BENCH_VIDEOS", "/work/shared/videos"))
REAL_PAIR = ("pillow.mp4", "teddy.mp4")  # the longest two (7 s), 368×480
LOOPED_PAIR = ("apple.mp4", "bear.mp4")  # 1296×720 (5 s) and 854×480 (2.7 s), looped past 10 s


def ten_second_pair(folder: Path) -> tuple[str, str]:
    """Two 12-s uploads made of the shipped clips (the studio keeps their first 10 s)."""
    from lam_core.video import read_video, write_video

    clips = REPO / "assets" / "clips"
    paths = []
    for name, (a, b) in (("source", (0, 2)), ("target", (1, 3))):
        x, y = (read_video(clips / f"miniwild-{i}.mp4") for i in (a, b))
        frames = np.concatenate([x.frames, y.frames])
        paths.append(str(write_video(folder / f"{name}.mp4", frames, x.fps)))
    return paths[0], paths[1]


def looped_pair(folder: Path) -> tuple[str, str]:
    """Two uploads past 10 s at the real footage's own resolution (:data:`LOOPED_PAIR`, each
    played forwards and backwards until it lasts 10 s)."""
    from lam_core.video import read_video, write_video

    paths = []
    for name in LOOPED_PAIR:
        clip = read_video(REAL / name, fps=None)
        there_and_back = np.concatenate([clip.frames, clip.frames[::-1]])
        loops = int(np.ceil(10.5 * clip.fps / len(there_and_back)))
        frames = np.concatenate([there_and_back] * loops)
        paths.append(str(write_video(folder / f"looped-{name}", frames, clip.fps)))
    return paths[0], paths[1]


def breakdown(pipe, source: str, target: str, checkpoint: str) -> dict:
    """Seconds of the transfer request's pieces: decoding (model and display frames), the model,
    rendering at the display resolution, the rest (compose + the two mp4s)."""
    from studio import handlers
    from studio.media import DISPLAY

    t = time.perf_counter()
    src, tgt, _ = handlers.load_pair(pipe, source, target, ("source", "target"), display=DISPLAY)
    read = time.perf_counter() - t
    model = timeit(lambda: pipe.transfer(src, tgt), repeat=2, warmup=0)
    shown = timeit(lambda: pipe.transfer(src, tgt, display=tgt, source_display=src), repeat=2,
                   warmup=0)
    total = timeit(lambda: handlers.transfer(source, target, checkpoint, progress=None),
                   repeat=2, warmup=0)
    return {"decode_s": read, "model_s": model, "render_s": max(shown - model, 0.0),
            "video_s": max(total - read - shown, 0.0)}


def run(ctx: Context) -> list[Row]:
    with warnings.catch_warnings():  # the 12-s uploads are capped on purpose: no notes printed
        warnings.filterwarnings("ignore", message=".*the studio caps uploads", category=UserWarning)
        return _run(ctx)


def _run(ctx: Context) -> list[Row]:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from studio import handlers
    from studio.models import PIPELINES

    checkpoint = str(REPO / CHECKPOINT)
    pipe = PIPELINES.get(checkpoint)
    repeat = 2 if ctx.quick else 3
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        pairs = [("10-s uploads (shipped clips)", *ten_second_pair(Path(tmp)))]
        if all((REAL / name).is_file() for name in REAL_PAIR) and not ctx.quick:
            pairs.append((f"real footage ({', '.join(REAL_PAIR)}, 7 s)",
                          *(str(REAL / n) for n in REAL_PAIR)))
        if all((REAL / name).is_file() for name in LOOPED_PAIR):
            pairs.append((f"10-s real uploads ({' → '.join(LOOPED_PAIR)} looped, 720p/480p)",
                          *looped_pair(Path(tmp))))
        for label, source, target in pairs:
            for name, fn in (("transfer", handlers.transfer), ("cycle", handlers.cycle)):
                def request(fn=fn, source=source, target=target):
                    return fn(source, target, checkpoint, progress=None)

                torch.set_num_threads(1)
                first = request()[1]
                seconds = timeit(request, repeat=repeat)
                extra = breakdown(pipe, source, target, checkpoint) if name == "transfer" else {}
                torch.set_num_threads(ctx.threads)
                more = timeit(request, repeat=repeat) if ctx.threads > 1 else None
                flops = count_flops(request)
                extra["frames"] = first["frames"]
                target_s = 2.0 if label.startswith("10-s") else None
                extra["display"] = first["display"]
                rows.append(Row(
                    name=f"studio {name}, {label}, 1 thread", value=seconds, unit="s",
                    ratio=None if more is None else more / seconds,
                    ratio_of=f"{ctx.threads} threads / 1 thread" if more is not None else "",
                    flops=flops, floor_s=ctx.floor(flops, threads=1),
                    target="≤ 2 s warm" if target_s else "",
                    met=None if target_s is None else seconds <= target_s,
                    note=", ".join(f"{k} {v:.3f}" for k, v in extra.items()
                                   if k not in ("frames", "display")),
                    extra=extra,
                ))
    return rows
