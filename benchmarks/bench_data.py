"""Data speed: MiniWild clips per second on one core (CPU time of this process)."""

from __future__ import annotations

from lam_core.data import benchmark


def run(quick: bool = False) -> dict:
    n = 100 if quick else 400
    return {"miniwild_clips_per_s_16x64x64": benchmark(n)}
