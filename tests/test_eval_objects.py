"""Object motion in pixels (lam_core.eval.objects): the clips, the tracker's calibration on true
frames, the controls, perfect and cheating fakes, and a run on a tiny random model."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lam_core import LatentActionPipeline, get_preset
from lam_core.clip import Clip
from lam_core.data.miniwild import load_photos
from lam_core.eval import objects
from lam_core.eval.objects import (
    ROWS,
    format_table,
    near_mask,
    object_clips,
    object_motion,
    partner,
    path_metrics,
    real_backdrops,
    real_camera_motion,
    render,
    track,
)

VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "videos"
ALL = ("plain", "gradient", "noise", "real")


@pytest.fixture(scope="module")
def photos():
    """Real images (scikit-image's photos) for the ``real`` backdrop."""
    return list(load_photos()[:6])


def _steps(path: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.diff(path, axis=0), axis=1)


def test_clips_are_deterministic_in_view_and_carry_their_truth(photos):
    a = object_clips(8, seed=3, motion="random", backgrounds=ALL, backdrops=photos)
    b = object_clips(8, seed=3, motion="random", backgrounds=ALL, backdrops=photos)
    assert all(np.array_equal(x.frames, y.frames) for x, y in zip(a, b))
    assert [c.meta["background_kind"] for c in a[:4]] == list(ALL)
    for clip in a + object_clips(8, seed=1, motion="smooth", speed=(2.0, 3.0)):
        pos, r = clip.meta["positions"][0], clip.meta["radius"][0]
        assert clip.frames.shape == (8, 64, 64, 3) and clip.meta["near"].shape == (8, 64, 64)
        assert 4 <= r <= 12 and (pos >= r).all() and (pos <= 63 - r).all()  # whole object in view
        assert np.array_equal(render(clip.meta), clip.frames)
        assert clip.meta["near"][0][tuple(np.round(pos[0, ::-1]).astype(int))]
        if clip.meta["motion"] == "smooth":  # constant speed, except where it reflects
            assert np.median(_steps(pos)) == pytest.approx(_steps(pos).max(), rel=1e-6)
    small = object_clips(4, seed=0, size=32, fps=2.0, objects=2)
    assert small[0].frames.shape == (8, 32, 32, 3) and small[0].fps == 2.0
    assert small[0].meta["positions"].shape == (2, 8, 2) and (small[0].meta["radius"] <= 4).all()
    with pytest.raises(ValueError, match="smooth or random"):
        object_clips(1, motion="zigzag")


def test_partners_start_where_a_starts_and_differ(photos):
    for i, a in enumerate(object_clips(12, seed=5, backgrounds=ALL, backdrops=photos)):
        b, loc = partner(a, [0, i], False, photos), partner(a, [1, i], True, photos)
        for x in (b, loc):
            assert np.allclose(x.meta["positions"][0, 0], a.meta["positions"][0, 0])
            assert x.meta["objects"][0]["kind"] != a.meta["objects"][0]["kind"]
            assert x.meta["background_kind"] != a.meta["background_kind"]
        far = loc.meta["positions"][1, 0]
        assert np.linalg.norm(far - a.meta["positions"][0, 0]) >= 24


def test_tracker_reads_true_frames_to_half_a_pixel(photos):
    """The calibration the metrics rest on: 100 clips, every background, shape and speed."""
    clips = [c for m in ("smooth", "random")
             for c in object_clips(50, seed=11, motion=m, backgrounds=ALL, backdrops=photos)]
    epe, ratio, disc_epe = [], [], []
    for clip in clips:
        true, obj = clip.meta["positions"][0], clip.meta["objects"][0]
        m = path_metrics(track(clip.frames, true[0], obj["radius"], shape=obj), true)
        epe.append(m["epe_px"])
        ratio.append(m["path_ratio"])
        if obj["kind"] != "ring":  # the default template: the disc of the radius
            disc = track(clip.frames, true[0], obj["radius"])
            disc_epe.append(np.linalg.norm(disc[-1] - true[-1]))
    epe, ratio = np.array(epe), np.array(ratio)
    assert np.median(epe) <= 0.5 and np.median(disc_epe) <= 0.5
    assert np.mean(epe <= 0.5) >= 0.95 and epe.max() < 2
    assert 0.9 <= np.median(ratio) <= 1.1 and np.mean((ratio > 0.9) & (ratio < 1.1)) >= 0.95


def test_copy_control_and_still_blur_read_no_motion():
    for clip in object_clips(6, seed=2, motion="random", speed=(2.0, 6.0)):
        true, obj = clip.meta["positions"][0], clip.meta["objects"][0]
        copy = np.repeat(clip.frames[:1], 8, axis=0)
        m = path_metrics(track(copy, true[0], obj["radius"], shape=obj), true)
        assert m["path_ratio"] == 0 and m["cosine"] == 0 and (m["net_ratio"] == 0 or
                                                              np.isnan(m["net_ratio"]))
        assert m["epe_px"] == pytest.approx(np.linalg.norm(true[-1] - true[0]))
        blurred = np.stack([_blur(clip.frames[0], t) for t in range(8)])  # still, ever blurrier
        m = path_metrics(track(blurred, true[0], obj["radius"], shape=obj), true)
        assert m["path_ratio"] < 0.1


def _blur(frame: np.ndarray, k: int) -> np.ndarray:
    """A (2k+1)-px box blur (edges repeated)."""
    x = np.pad(frame.astype(np.float64), ((k, k), (k, k), (0, 0)), mode="edge")
    for axis in (0, 1):
        x = np.mean([np.roll(x, s, axis) for s in range(-k, k + 1)], axis=0)
    return np.round(x[k : x.shape[0] - k, k : x.shape[1] - k]).astype(np.uint8)


class _Fake:
    """A pipeline stand-in: ``transfer(a, b)`` returns ``make(a, b)`` as ``.transferred``."""

    image_size, fps = 64, 4.0

    def __init__(self, make):
        self.make = make

    def transfer(self, a: Clip, b: Clip, context: int = 1):
        return SimpleNamespace(transferred=Clip(self.make(a, b), fps=self.fps))


def _oracle(a: Clip, b: Clip) -> np.ndarray:
    """B's objects as they should move under A's actions: the first along A's path, others still."""
    still = [np.repeat(p[:1], 8, axis=0) for p in b.meta["positions"][1:]]
    return render(b.meta, [a.meta["positions"][0], *still])


def _shift(a: Clip, b: Clip) -> np.ndarray:
    """Cheats: slides B's whole first frame 2 px a step to the right."""
    return np.stack([np.roll(b.frames[0], 2 * t, axis=1) for t in range(8)])


def test_an_oracle_reads_one_and_a_frame_shift_reads_background_change():
    good = object_motion(_Fake(_oracle), n_clips=4, seed=1)
    for row in ("truth", "own", "transfer", "locality"):
        m = good.rows[row]
        assert 0.9 < m["path_ratio_median"] < 1.1 and m["cosine_median"] > 0.95, row
        assert m["epe_px_median"] < 0.5 and m["background_change_mean"] < 0.5, row
    assert good.rows["locality"]["far_speed_median"] <= 0.3
    copy = good.rows["copy"]
    assert copy["path_ratio_mean"] == 0 and copy["epe_px_median"] > 1
    assert good.per_clip["transfer"]["epe_px"].shape == (8,)
    assert set(good.groups) == {"motion=smooth", "motion=random", "background=plain",
                                "background=gradient", "background=noise"}
    shifted = object_motion(_Fake(_shift), n_clips=4, seed=1)
    assert shifted.rows["transfer"]["background_change_mean"] > 5
    assert shifted.rows["locality"]["far_speed_median"] > 1.5  # the far object slid too
    table = format_table(good)
    assert all(f"| {row} |" in table for row in ROWS) and "motion=random (4)" in table


def test_object_motion_runs_on_a_tiny_random_model_at_32_px():
    torch.manual_seed(0)
    pipe = LatentActionPipeline.from_config(get_preset("tiny-pixel"))
    assert pipe.image_size == 32
    seen = []
    result = object_motion(pipe, n_clips=2, progress=lambda f, m: seen.append(f))
    assert seen[-1] == 1.0 and result.size == 32 and len(result.labels["motion"]) == 4
    assert 0.9 < result.rows["truth"]["path_ratio_median"] < 1.1
    assert result.rows["copy"]["path_ratio_mean"] == 0
    assert all(np.isfinite(result.rows[row]["epe_px_mean"]) for row in ROWS)
    assert "Object motion: 4 clips at 32 px" in format_table(result)


def test_near_mask_and_backdrops_without_a_folder(tmp_path):
    clip = object_clips(1, seed=0)[0]
    x, y = clip.meta["positions"][0, 0]
    near = near_mask(clip.meta)
    r = clip.meta["radius"][0]
    assert near[0, round(y), min(63, round(x + r + 7))] and not near[0, round(y), :].all()
    assert real_backdrops(tmp_path / "missing") == [] and real_backdrops(tmp_path) == []


def test_cli_names_a_missing_checkpoint(tmp_path, capsys):
    with pytest.raises(SystemExit):
        objects.main(["--checkpoint", str(tmp_path / "nowhere")])
    assert "nowhere" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        objects.main(["--checkpoint", str(tmp_path), "--clips", str(tmp_path / "novideos")])
    assert "novideos" in capsys.readouterr().err


@pytest.mark.skipif(not VIDEOS.is_dir(), reason=f"no shared real videos at {VIDEOS}")
def test_real_backdrops_and_camera_motion_on_shared_videos():
    images = real_backdrops(VIDEOS, 4, size=32)
    assert len(images) == 4 and images[0].shape == (32, 32, 3) and images[0].dtype == np.uint8
    torch.manual_seed(0)
    pipe = LatentActionPipeline.from_config(get_preset("tiny-pixel"))
    out = real_camera_motion(pipe, VIDEOS, pairs=2)
    assert out["pairs"] == 2 and out["clips"] >= 2
    assert out["still_drift_px_mean"] < 1e-6  # an untrained flow model copies
    assert "transfer_cosine" in format_table(out)
