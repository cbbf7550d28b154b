"""Data speed: decoding a folder of videos with decord vs PyAV (clips/s; each file read at the
model's 4 fps, at most 10 s, like a studio upload or a video-folder training clip, no resizing),
on ``assets/clips`` and, where present, ``/work/shared/videos`` (``$LAM_BENCH_VIDEOS``; read in
place, never copied); and MiniWild clips per second on one core (CPU time of this process).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from harness import Context, Row

REPO = Path(__file__).resolve().parent.parent
FOLDERS = (REPO / "assets" / "clips", Path(os.environ.get("LAM_BENCH_VIDEOS",
                                                          "/work/shared/videos")))
FPS, MAX_FRAMES = 4.0, 40


def decode_folder(files: list[Path], decoder: str, repeat: int) -> float:
    """Clips per second of decoding every file with ``decoder`` (best of ``repeat`` passes)."""
    from lam_core.video import _read_av, _read_decord

    read = _read_decord if decoder == "decord" else _read_av

    def plan(source):  # the frames at FPS from the start, at most MAX_FRAMES (as read_video)
        return source.indices(FPS, 0.0, MAX_FRAMES), FPS

    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for path in files:
            read(path, plan, [lambda frames: frames])  # one view: the frames as decoded
        best = min(best, time.perf_counter() - t)
    return len(files) / best


def run(ctx: Context) -> list[Row]:
    from lam_core.data import benchmark

    rows = []
    for folder in FOLDERS:
        files = sorted(p for p in folder.glob("*.mp4")) if folder.is_dir() else []
        if not files:
            continue
        repeat = 1 if ctx.quick else 3
        speed = {d: decode_folder(files, d, repeat) for d in ("decord", "av")}
        rows.append(Row(
            name=f"decode {folder.name}/ ({len(files)} mp4), decord", value=speed["decord"],
            unit="clips/s", ratio=speed["decord"] / speed["av"], ratio_of="decord / PyAV",
            note=f"PyAV {speed['av']:.1f} clips/s; {FPS:g} fps, ≤ {MAX_FRAMES} frames each",
            extra={"av_clips_per_s": speed["av"], "files": len(files)},
        ))
    n = 100 if ctx.quick else 400
    rows.append(Row(name="MiniWild clips (16 × 64 × 64), one core", value=benchmark(n),
                    unit="clips/s", note="CPU time of this process (other load does not count)"))
    return rows
