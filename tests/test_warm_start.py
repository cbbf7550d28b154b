"""Training that continues across runs: --init-from loads the weights and adds to the record,
a mismatched config is refused by key, the regularizer's delayed warm-up, the time limit, and the
export that ships the metrics of every run (tiny-pixel preset, seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lam_core import ConfigError, LatentActionPipeline
from lam_core.checkpoint import read_training_record
from train import lam
from train.config import RunConfig, load_job_config
from train.export import export

CONFIG = Path(__file__).resolve().parents[1] / "train" / "configs" / "tiny_pixel_lam.yaml"


pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")  # tests/conftest.py


def run(out: Path, *overrides: str, init_from: str | None = None) -> Path:
    job = load_job_config(CONFIG, [f"train.output_dir={out}", "train.eval_every=0", *overrides])
    return lam.train(job, init_from=init_from)


def test_warm_start_continues_the_weights_and_the_record(tmp_path):
    first = run(tmp_path / "a", "train.steps=3")
    record = read_training_record(first / "lam")
    assert record["steps"] == 3 and record["clips"] == 6
    assert record["runs"][0]["data"]["mixture"] == {"wild": 1 / 3, "pan": 1 / 3, "movers": 1 / 3}
    before = LatentActionPipeline.from_pretrained(first).lam.state_dict()

    # zero steps of learning rate: the warm-started model is the first one, exactly
    job = load_job_config(CONFIG, [f"train.output_dir={tmp_path / 'b'}", "train.eval_every=0",
                                   "train.steps=2", "train.lr_muon=0", "train.lr_adamw=0",
                                   "train.weight_decay=0", "train.seed=7"])
    second = lam.train(job, init_from=str(first))
    after = LatentActionPipeline.from_pretrained(second).lam.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    record = read_training_record(second / "lam")
    assert record["steps"] == 5 and record["clips"] == 10 and len(record["runs"]) == 2


def test_warm_start_refuses_another_design_by_key(tmp_path):
    first = run(tmp_path / "a", "train.steps=1")
    with pytest.raises(ConfigError, match=r"lam\.flow_grid"):
        run(tmp_path / "b", "train.steps=1", "lam.flow_grid=4", init_from=str(first))
    with pytest.raises(ConfigError, match="no such folder"):
        run(tmp_path / "c", "train.steps=1", init_from=str(tmp_path / "missing"))


def test_regularizer_waits_then_rises():
    weight = lam.regularizer_schedule(RunConfig(steps=100, reg_warmup_start=0.3,
                                                reg_warmup_fraction=0.2))
    assert [weight(s) for s in (1, 30, 31, 40, 50, 80)] == [0, 0, 0.05, 0.5, 1, 1]
    plain = lam.regularizer_schedule(RunConfig(steps=100))
    assert plain(1) == plain(100) == 1
    ramp = lam.regularizer_schedule(RunConfig(steps=100, reg_warmup_fraction=0.5))
    assert ramp(25) == 0.5 and ramp(60) == 1


def test_time_limit_stops_with_a_final_model(tmp_path):
    final = run(tmp_path / "a", "train.steps=1000", "train.time_limit_minutes=0.0001")
    assert read_training_record(final / "lam")["steps"] == 1
    assert (tmp_path / "a" / "checkpoints" / "1").is_dir()


def test_export_ships_the_curves_of_every_run(tmp_path):
    first = run(tmp_path / "a", "train.steps=3", "train.log_every=1")
    shipped = export(first, tmp_path / "assets" / "m", metrics=tmp_path / "a" / "metrics.jsonl")
    second = run(tmp_path / "b", "train.steps=2", "train.log_every=1", init_from=str(shipped))
    export(second, shipped, metrics=tmp_path / "b" / "metrics.jsonl",
           previous=shipped / "metrics.jsonl")
    steps = [json.loads(x)["step"] for x in (shipped / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5]  # the second run continues after the first
    record = read_training_record(shipped / "lam")
    assert record["steps"] == 5 and len(record["runs"]) == 2


def test_warm_start_may_change_what_only_weighs_the_loss(tmp_path, capsys):
    first = run(tmp_path / "a", "train.steps=1")
    run(tmp_path / "b", "train.steps=1", "lam.regularizer.beta=0.5", "lam.change_weight=3.0",
        init_from=str(first))
    assert "lam.change_weight 1.0 → 3.0 (weighs the loss only)" in capsys.readouterr().out


def test_options_may_come_after_the_overrides():
    """``train/lam.py --config X key=value --init-from DIR``: the order a user types it in."""
    from train.config import parse_cli

    args = parse_cli(["--config", "c.yaml", "train.steps=3", "--init-from", "ckpt", "train.seed=2"])
    assert (args.config, args.init_from) == ("c.yaml", "ckpt")
    assert args.overrides == ["train.steps=3", "train.seed=2"]


def test_a_resumed_warm_start_keeps_the_record(tmp_path):
    """Killed and resumed (``--resume latest --init-from DIR``), a continued run still adds its
    steps to the ones its starting point carries."""
    first = run(tmp_path / "a", "train.steps=3")
    out = tmp_path / "b"
    common = [f"train.output_dir={out}", "train.eval_every=0", "train.steps=4",
              "train.save_every=2", "train.seed=7"]
    lam.train(load_job_config(CONFIG, [*common, "train.stop_at=2"]), init_from=str(first))
    final = lam.train(load_job_config(CONFIG, common), resume="latest", init_from=str(first))
    record = read_training_record(final / "lam")
    assert record["steps"] == 7 and len(record["runs"]) == 2


def test_an_action_conditioned_model_takes_a_latent_models_world_model(tmp_path, capsys):
    """``kind: action`` warm-started from a latent (grid, global) model: its world model is the
    latent one's but for the action embedding's first layer; the IDM and regularizer stay behind."""
    from lam_core.models import LatentActionModel

    first = run(tmp_path / "a", "train.steps=1", "lam.latent_grid=4", "lam.idm_radius=1",
                "lam.cell_modulation=true", "lam.global_latent=true")
    job = load_job_config(CONFIG, [f"train.output_dir={tmp_path / 'b'}", "lam.kind=action",
                                   "data.source=world", "data.world=reach", "data.mixture=null"])
    model = LatentActionModel(job.lam)
    fresh = model.world_model.cond_embed[0].weight.clone()
    lam.warm_start(model, str(first))
    assert "takes the latent model's world model" in capsys.readouterr().out
    theirs = LatentActionPipeline.from_pretrained(first).lam.state_dict()
    for k, v in model.state_dict().items():
        if k == "world_model.cond_embed.0.weight":  # latent width → action width
            assert v.shape != theirs[k].shape
        elif not k.startswith("world_model.cond_embed.0."):
            assert torch.equal(v, theirs[k]), k
    assert torch.equal(model.world_model.cond_embed[0].weight, fresh)
    with pytest.raises(ConfigError, match=r"lam\.flow_grid"):  # the world model must match
        other = load_job_config(CONFIG, [f"train.output_dir={tmp_path / 'c'}", "lam.kind=action",
                                         "data.source=world", "data.mixture=null",
                                         "lam.flow_grid=4"])
        lam.warm_start(LatentActionModel(other.lam), str(first))


def test_a_deterministic_model_starts_as_the_latent_model_at_a_zero_latent(tmp_path, capsys):
    """``kind: deterministic`` warm-started from a latent grid model: its world model is the
    latent one's, its one condition the latent model's embedding of a zero latent, so it predicts
    what the latent model predicts with z = 0."""
    from lam_core.models import LatentActionModel

    first = run(tmp_path / "a", "train.steps=1", "lam.latent_grid=4", "lam.cell_modulation=true",
                "lam.condition_add=true")
    pipe = LatentActionPipeline.from_pretrained(first)
    torch.manual_seed(0)
    with torch.no_grad():  # every path carries signal (AdaLN-zero layers included)
        for param in pipe.lam.world_model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    pipe.save_pretrained(tmp_path / "noisy")
    job = load_job_config(CONFIG, [f"train.output_dir={tmp_path / 'b'}", "lam.kind=deterministic",
                                   "lam.latent_grid=1", "lam.cell_modulation=false",
                                   "lam.condition_add=true"])
    model = LatentActionModel(job.lam).eval()
    lam.warm_start(model, str(tmp_path / "noisy"))
    assert "a deterministic model takes the latent model's world model" in capsys.readouterr().out
    latent = pipe.lam.eval()
    features = torch.randn(2, 3, latent.cfg.grid**2, latent.cfg.feature_dim)
    with torch.no_grad():
        expected = latent.world_model(features[:, :-1], torch.zeros(2, 2, latent.cfg.latent_dim))
        got = model.world_model(features[:, :-1])
        other = latent.world_model(features[:, :-1], torch.ones(2, 2, latent.cfg.latent_dim))
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, other, atol=1e-3)  # the condition matters: not a trivial match
