"""The studio's one-pass compositor and fast mp4 writer give the same video as the plain ones."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from studio import media


def reference_side_by_side(panels, side=media.PANEL, gap=4):
    """The compositor as first written: per-panel arrays, then concatenations."""
    length = max(len(p.frames) for p in panels)
    columns = []
    for p in panels:
        frames = p.frames[:length]
        if len(frames) < length:
            frames = np.concatenate([frames, np.repeat(frames[-1:], length - len(frames), 0)])
        frames = media.fit(frames, side)
        bars = {tag: media.caption_bar(side, p.title, tag) for tag in {p.tag(t) for t in
                                                                       range(length)}}
        header = np.stack([bars[p.tag(t)] for t in range(length)])
        columns.append(np.concatenate([header, frames], axis=1))
    spacer = np.full((length, columns[0].shape[1], gap, 3), media.BACKGROUND, np.uint8)
    joined = list(itertools.chain.from_iterable((c, spacer) for c in columns))[:-1]
    return np.concatenate(joined, axis=2)


@pytest.mark.parametrize("size", [64, 48])  # a whole-number zoom and one that is not
def test_one_pass_side_by_side_equals_the_reference(size):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8) for n in (6, 4, 6, 1)]
    panels = [media.Panel("source", frames[0]), media.Panel("a long title that is cut", frames[1],
                                                            2),
              media.Panel("c", frames[2], 0), media.Panel("d", frames[3])]
    assert np.array_equal(media.side_by_side(panels), reference_side_by_side(panels))
    assert np.array_equal(media.side_by_side(panels, side=96, gap=3),
                          reference_side_by_side(panels, side=96, gap=3))


def test_fast_mp4_plays_back_like_the_default_writer(tmp_path):
    from lam_core.pipeline import REPO_ROOT
    from lam_core.video import read_video, write_video

    clip = read_video(REPO_ROOT / "assets" / "clips" / "miniwild-0.mp4", size=64, max_frames=8)
    frames = media.fit(clip.frames, 256)  # what the studio writes: ×4 nearest neighbour
    fast = read_video(write_video(tmp_path / "fast.mp4", frames, 4.0, preset="ultrafast")).frames
    slow = read_video(write_video(tmp_path / "slow.mp4", frames, 4.0)).frames
    assert fast.shape == slow.shape == frames.shape
    psnr = [10 * np.log10(255**2 / ((x.astype(float) - frames) ** 2).mean()) for x in (fast, slow)]
    assert psnr[0] > psnr[1] - 1.0, psnr
