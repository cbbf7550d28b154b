"""The evaluations (paper §5–§7, App. B) on tiny random pipelines: shapes, properties, LPIPS
honesty, the k-NN two-sample test, the fidelity estimator, and the report CLI."""

import json

import numpy as np
import pytest
import torch

from lam_core.eval import metrics
from lam_core.eval.capacity import capacity, latent_effect
from lam_core.eval.common import heldout_clips
from lam_core.eval.controller import controller_eval
from lam_core.eval.cycle import cycle
from lam_core.eval.fidelity import estimate_motion, transfer_fidelity
from lam_core.eval.leakage import leakage
from lam_core.eval.report import find_pipelines, format_tables, main, world_of
from lam_core.eval.sampling import sampling, two_sample_accuracy

from .helpers import tiny_pipeline


@pytest.fixture(scope="module")
def latent():
    return tiny_pipeline()


@pytest.fixture(scope="module")
def clips():
    return heldout_clips(4)


# ------------------------------------------------------------------------------------ metrics
def test_pixel_metrics_by_hand():
    a = torch.zeros(1, 2, 3, 4, 4)
    b = a.clone()
    b[:, 1] = 0.1
    assert metrics.pixel_l1(a, b) == pytest.approx(np.array([[0.0, 0.1]]))
    assert metrics.psnr(a, b)[0, 1] == pytest.approx(20.0, abs=1e-3)
    assert metrics.psnr(a, b)[0, 0] == pytest.approx(100.0)
    f = torch.ones(2, 3, 5, 6)
    assert metrics.feature_l1(f, f * 0).shape == (2, 3)


def test_lpips_is_unavailable_without_weights_and_tables_say_so(
    tmp_path, monkeypatch, latent, clips
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert metrics.lpips_weights_path().parent == tmp_path / "hub" / "checkpoints"
    assert not metrics.lpips_available()
    x = torch.rand(1, 2, 3, 32, 32)
    assert metrics.lpips_distance(x, x) is None  # never a number from a random backbone
    res = capacity(latent, clips[:2])
    assert res.lpips is None and res.lpips_per_step is None and res.copy_lpips is None
    rep = {
        "lpips": False,
        "pipelines": {
            "sparse-low": {"label": "sparse", "kind": "latent", "capacity": {**vars(res)}}
        },
    }
    assert "n/a (no LPIPS weights)" in format_tables(rep)


# ------------------------------------------------------------------------------------ capacity
def test_capacity_of_an_untrained_model_is_the_copy_baseline(clips):
    """The residual world model starts as copy-last-step, so its rollout error is the baseline."""
    untrained = tiny_pipeline(randomize_zero_init=False)
    res = capacity(untrained, clips, batch_size=3)
    assert res.clips == 4 and res.horizon == 7 and res.feature_l1_per_step.shape == (7,)
    assert res.feature_l1 == pytest.approx(res.copy_feature_l1, rel=1e-5)
    assert res.one_step_l1 > 0 and res.pixel_l1 is not None and res.decoder_pixel_l1 is not None
    # AdaLN-zero at init: another clip's latents change nothing
    assert res.shuffled_one_step_l1 == res.one_step_l1 and latent_effect(res) == 0.0


def test_latent_effect_of_a_model_that_uses_its_latents(latent, clips):
    res = capacity(latent, clips, batch_size=3)  # chunks of 3 and 1: every clip is shuffled
    assert res.shuffled_one_step_l1 is not None and latent_effect(res) != 0.0
    assert latent_effect(res) == pytest.approx(res.shuffled_one_step_l1 / res.one_step_l1 - 1)
    assert latent_effect(capacity(latent, clips[:1])) is None  # nothing to shuffle with


def test_capacity_runs_on_the_deterministic_end(clips):
    res = capacity(tiny_pipeline(kind="deterministic"), clips[:2], context=2)
    assert res.label == "deterministic" and res.horizon == 6
    with pytest.raises(ValueError, match="real actions"):
        capacity(tiny_pipeline(kind="action"), clips[:2])


# ---------------------------------------------------------------------- leakage, cycle, controller
def test_leakage_over_seeded_pairs(latent, clips):
    a = leakage(latent, clips, n_pairs=3, seed=5)
    b = leakage(latent, clips, n_pairs=3, seed=5)
    assert a.pairs == b.pairs and a.ratio == b.ratio
    assert a.errors.shape == a.errors_cut.shape == (3, 7) and a.cut == 4
    # before the cut both clips are identical
    np.testing.assert_allclose(a.errors[:, : a.cut - 1], a.errors_cut[:, : a.cut - 1], rtol=1e-5)
    assert a.ratio == pytest.approx(a.error_cut / a.error_no_cut)


def test_cycle_over_pairs(latent, clips):
    res = cycle(latent, clips, n_pairs=2, seed=1)
    assert res.direct_errors.shape == res.cycled_errors.shape == (2, 7)
    assert res.ratio == pytest.approx(res.cycled_error / res.direct_error)
    assert res.direct_pixel_l1 is not None and res.cycled_lpips is None


def test_controller_eval_shapes(latent):
    res = controller_eval(latent, "reach", n_clips=3, num_steps=4, batch_size=2)
    assert res.clips == 3 and res.horizon == 3
    assert res.idm_per_step.shape == res.controller_per_step.shape == (3,)
    assert res.ratio == pytest.approx(res.controller_error / res.idm_error)


# ------------------------------------------------------------------------------------ sampling
def test_two_sample_accuracy_is_chance_for_one_distribution_and_one_for_two():
    rng = np.random.default_rng(0)
    same = two_sample_accuracy(rng.normal(size=(400, 8)), rng.normal(size=(400, 8)))
    apart = two_sample_accuracy(rng.normal(size=(400, 8)), rng.normal(4.0, 1.0, size=(400, 8)))
    assert abs(same - 0.5) < 0.1
    assert apart > 0.97
    # discrete latents: many exact duplicates of a few codes (ties must not bias it)
    codes = rng.normal(size=(4, 8))
    a, b = codes[rng.integers(0, 4, 300)], codes[rng.integers(0, 4, 300)]
    assert abs(two_sample_accuracy(a, b) - 0.5) < 0.1
    assert abs(two_sample_accuracy(codes[:1].repeat(50, 0), codes[:1].repeat(50, 0)) - 0.5) < 0.1


@pytest.fixture(scope="module")
def sampled(latent):
    """One UMAP fit for the module (it pays numba's JIT the first time)."""
    return sampling(latent, n=60, seed=0, umap=True)


def test_sampling_returns_plain_umap_data(sampled):
    emb = sampled.embedding
    assert sampled.n == 60 and 0 <= sampled.accuracy <= 1
    assert len(emb["x"]) == len(emb["y"]) == len(emb["kind"]) == 120
    assert emb["kind"].count("sampled") == 60 and emb["clip"][:60] == [-1] * 60
    assert min(emb["clip"][60:]) >= 0 and np.isfinite(emb["x"]).all()
    json.dumps(emb)  # plain data for Plotly and report.json


# ------------------------------------------------------------------------------------ fidelity
def _moving_disc(start, velocity, steps=7, size=48, radius=5.0):
    rng = np.random.default_rng(0)
    background = rng.uniform(0, 0.3, (size, size, 3))
    ys, xs = np.mgrid[0:size, 0:size]
    frames = []
    for t in range(steps + 1):
        f = background.copy()
        p = np.asarray(start) + np.asarray(velocity) * t
        f[(xs - p[0]) ** 2 + (ys - p[1]) ** 2 < radius**2] = (1.0, 0.2, 0.1)
        frames.append(f)
    return np.array(frames)


@pytest.mark.parametrize("velocity", [(2.0, -1.0), (-1.5, 0.0), (0.5, 1.5)])
def test_motion_estimator_on_synthetic_frames(velocity):
    est = estimate_motion(_moving_disc((20.0, 22.0), velocity))
    truth = 7 * np.asarray(velocity)
    assert np.linalg.norm(est.start - (20.0, 22.0)) < 1.0
    assert np.linalg.norm(est.displacement - truth) < 0.1 * np.linalg.norm(truth) + 0.5
    still = estimate_motion(_moving_disc((20.0, 22.0), (0.0, 0.0)))
    assert still.change == 0.0


def test_transfer_fidelity_runs_with_calibrations(latent):
    res = transfer_fidelity(latent, n_pairs=2)
    assert len(res.pairs) == 2 and res.image_size == 32
    for what in ("transfer", "self", "real"):
        assert res.per_pair[f"{what}_displacement"].shape == (2, 2)
        assert -1 <= res.metrics[f"{what}_cosine"] <= 1
    assert res.metrics["real_cosine"] > 0.5  # the estimator sees the agent in the real frames


# ------------------------------------------------------------------------------------ report
def test_report_cli_on_two_tiny_pipelines(tmp_path, capsys):
    ck = tmp_path / "checkpoints"
    tiny_pipeline("sparse").save_pretrained(ck / "sparse-low")
    tiny_pipeline(kind="action").save_pretrained(ck / "reach-ac")
    found = find_pipelines(ck)
    assert [n for n, _, _ in found] == ["reach-ac", "sparse-low"]
    assert world_of("reach-ac", {}) == "reach" and world_of("sparse-low", {}) is None
    assert main(["--checkpoints", str(ck), "--out", str(tmp_path / "out"), "--quick"]) == 0
    text = capsys.readouterr().out
    for title in ("Table 1", "Table 2", "Capacity", "Table S1", "Sampling", "Checks"):
        assert title in text
    assert "PASS" in text or "FAIL" in text
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert set(rep["pipelines"]) == {"reach-ac", "sparse-low"}
    sparse = rep["pipelines"]["sparse-low"]
    assert {"capacity", "leakage", "cycle", "sampling", "fidelity", "objects"} <= set(sparse)
    assert rep["pipelines"]["reach-ac"]["planning_reach"]["episodes"] == 2
    assert rep["pipelines"]["reach-ac"]["reach_tracking"]["episodes"] == 2
    assert "Objects (beyond the paper" in text
    assert (tmp_path / "out" / "plots.html").is_file()
    assert main(["--checkpoints", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    with pytest.raises(SystemExit):  # a count below one is refused, named
        main(["--checkpoints", str(ck), "--out", str(tmp_path / "o"), "--drive-episodes", "0"])
    assert "--drive-episodes 0: give a positive number" in capsys.readouterr().err
    # --only: a subset (to split a long report over processes); no match is an error naming them
    assert main(["--checkpoints", str(ck), "--out", str(tmp_path / "o2"), "--quick",
                 "--only", "sparse-*"]) == 0
    assert set(json.loads((tmp_path / "o2" / "report.json").read_text())["pipelines"]) == {
        "sparse-low"
    }
    assert main(["--checkpoints", str(ck), "--out", str(tmp_path / "o3"), "--only", "x*"]) == 2
    assert "reach-ac, sparse-low" in capsys.readouterr().err
    # --merge: the other half run apart, joined into the whole report, checks made anew
    assert main(["--checkpoints", str(ck), "--out", str(tmp_path / "o4"), "--quick",
                 "--only", "reach-*"]) == 0
    capsys.readouterr()
    parts = [str(tmp_path / o / "report.json") for o in ("o2", "o4")]
    assert main(["--merge", *parts, "--out", str(tmp_path / "joined")]) == 0
    assert "Table S1" in capsys.readouterr().out
    joined = json.loads((tmp_path / "joined" / "report.json").read_text())
    assert set(joined["pipelines"]) == {"reach-ac", "sparse-low"}
    assert joined["checks"] and joined["merged_from"] == parts
    with pytest.raises(SystemExit):  # the same pipeline in two parts: refused, named
        main(["--merge", parts[0], parts[0], "--out", str(tmp_path / "bad")])
    assert "sparse-low" in capsys.readouterr().err
    # nothing loads: an error status, not a report of errors
    (ck / "broken").mkdir()
    (ck / "broken" / "config.json").write_text('{"format": "lam-studio-pipeline"}')
    assert main(["--checkpoints", str(ck), "--out", str(tmp_path / "o5"), "--quick",
                 "--only", "broken"]) == 2
    assert "no pipeline could be loaded" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ frames
def test_transfer_sheet_rows_and_png(latent, tmp_path):
    from PIL import Image

    from lam_core.eval.frames import default_pairs, main, sheet, transfer_rows

    (a, b), = default_pairs(1)
    rows = transfer_rows(latent, a, b, gain=4.0)
    labels = [name for name, _ in rows]
    assert labels[2] == "B (target)" and labels[4] == "B + A's actions" and len(rows) == 6
    steps = {f.shape for _, f in rows}
    assert len(steps) == 1 and next(iter(steps))[1:] == (32, 32, 3)
    assert rows[5][1][1:].any()  # A's latents move B (the tiny model's modulation is random)
    # replaying B's own actions on B changes nothing: the |diff| row is black
    same = transfer_rows(latent, b, b)
    assert (same[5][1] == 0).all() and (same[4][1] == same[3][1]).all()
    img = sheet([rows, same], scale=2, title="t")
    assert img.size[1] > 2 * 6 * 64
    latent.save_pretrained(tmp_path / "p")
    out = tmp_path / "sheet.png"
    assert main(["--checkpoint", str(tmp_path / "p"), "--out", str(out), "--pairs", "1"]) == 0
    assert Image.open(out).size[0] > 0
    for bad in (["--checkpoint", str(tmp_path / "p"), "--source", "x.mp4"],  # no --target
                ["--checkpoint", str(tmp_path / "nowhere")],
                ["--checkpoint", str(tmp_path / "p"), "--source", "x.mp4", "--target", "y.mp4"]):
        with pytest.raises(SystemExit):  # argparse's clean error, not a traceback
            main([*bad, "--out", str(out)])


def test_change_frames_uint8_is_the_float_formula_by_hand():
    from lam_core.eval.frames import change_frames

    g = np.random.default_rng(0)
    a, b = (g.integers(0, 256, (3, 5, 7, 3), dtype=np.uint8) for _ in range(2))
    a[0, 0, 0], b[0, 0, 0] = 255, 0  # the largest change saturates
    for gain in (1.0, 4.0, 10.0):
        got = change_frames(a, b, gain)
        want = np.abs(a.astype(np.int32) - b).sum(-1) * (gain / 3)  # gain · mean over RGB
        assert got.shape == a.shape and got.dtype == np.uint8
        assert (got == got[..., :1]).all()  # grey
        assert np.abs(got[..., 0].astype(int) - np.minimum(want, 255).astype(int)).max() <= 1
        assert got[0, 0, 0, 0] == 255
        assert (change_frames(a.astype(np.float32), b.astype(np.float32), gain).astype(int)
                - got).__abs__().max() <= 1  # the float path agrees
    assert (change_frames(a, a) == 0).all()
    with pytest.raises(ValueError, match="shapes"):
        change_frames(a, b[:2])


def test_drive_check_compares_the_plan_with_the_zero_action():
    from lam_core.eval.tables import CTRL_VS_ZERO_DRIVE, checks

    def rep(ate: float) -> dict:
        drive = {"metrics": {"ate": ate, "rpe": 0.1, "zero_ate": 1.0, "zero_rpe": 0.2}}
        return {"pipelines": {"controller-drive": {"kind": "latent", "world": "drive",
                                                   "planning_drive": drive},
                              "action-drive": {"kind": "action", "world": "drive",
                                               "planning_drive": drive}}}

    for ate, status in ((0.4, "PASS"), (1.2, "FAIL")):
        found = [c for c in checks(rep(ate)) if c["check"] == CTRL_VS_ZERO_DRIVE]
        assert [c["status"] for c in found] == [status]  # the action baseline is not judged
        assert found[0]["detail"].startswith(f"controller-drive: ATE {ate:.3f} vs 1.000")


def test_table_s3_rows_name_each_lam_by_its_data_and_group_its_controllers(tmp_path):
    """Table S3: the share of a LAM's clips from the action worlds comes from its training record
    (warm-started runs weighted by their clips); its controllers share one row."""
    from lam_core.eval.report import lam_data, world_shares
    from lam_core.eval.tables import s3_rows

    mixed = {"source": "sources", "sources": [
        {"source": "miniwild", "scene": "pan", "weight": 4}, {"source": "miniwild", "weight": 5},
        {"source": "world", "world": "reach", "weight": 4.5},
        {"source": "world", "world": "drive", "weight": 4.5}]}
    assert world_shares(mixed) == {"reach": 0.25, "drive": 0.25}
    assert world_shares({"source": "miniwild", "mixture": {"pan": 1.0}}) == {}
    assert world_shares({"source": "world", "world": "drive"}) == {"drive": 1.0}
    assert world_shares(None) is None and world_shares({"clips": 3}) is None
    runs = [{"run": "runs/flagship/run1", "clips": 48000, "data": {"source": "miniwild"}},
            {"run": "runs/s3/mixed", "clips": 24000, "data": mixed}]
    (tmp_path / "lam").mkdir()
    (tmp_path / "lam" / "config.json").write_text(json.dumps(
        {"component": "lam", "training": {"steps": 4500, "clips": 72000, "runs": runs}}))
    meta = {"components": {"lam": "../lam"}}
    (tmp_path / "controller-reach").mkdir()
    d = lam_data(tmp_path / "controller-reach", meta)
    assert d["run"] == "runs/s3/mixed" and d["clips"] == 72000 and d["steps"] == 4500
    assert d["world_share"] == pytest.approx({"reach": 1 / 12, "drive": 1 / 12})
    assert d["last_run_world_share"] == {"reach": 0.25, "drive": 0.25}
    assert lam_data(tmp_path / "x", {"components": {"lam": "../missing"}}) is None
    assert lam_data(tmp_path / "x", {}) is None
    reach = {"metrics": {"delta": 1.5, "zero_delta": 2.0}, "episodes": 16}
    drive = {"metrics": {"ate": 3.0, "rpe": 1.0, "zero_ate": 4.0, "zero_rpe": 2.0}, "episodes": 64}
    pipes = {
        "mixed_controller_reach": {"kind": "latent", "world": "reach", "lam_data": d,
                                   "planning_reach": reach},
        "mixed_controller_drive": {"kind": "latent", "world": "drive", "lam_data": d,
                                   "planning_drive": drive},
        "action-drive": {"kind": "action", "world": "drive", "lam_data": d},  # not a LAM's row
    }
    (row,) = s3_rows(pipes)
    assert row[:4] == ["runs/s3/mixed", "72,000", "drive 8 %, reach 8 %", "drive 25 %, reach 25 %"]
    assert row[5] == "1.500 vs 2.000 (16 ep.)" and row[7] == "3.00 / 1.00 vs 4.00 / 2.00 (64 ep.)"
