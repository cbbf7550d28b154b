"""Training scripts (train/): real multi-process runs, exact resume, config errors, feature cache
equivalence, final folders that the pipeline opens, and an ``accelerate launch`` smoke test.
All on the tiny preset and a handful of clips."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from accelerate.state import AcceleratorState, GradientState
from safetensors.torch import load_file, save_file

from lam_core import LatentActionPipeline
from lam_core.checkpoint import load_component
from lam_core.data.cache import FeatureCacheError
from train import common, controller, decoder, lam, optim
from train.config import load_job_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "train" / "configs"


pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")  # tests/conftest.py


def job(recipe: str, out: Path, *overrides: str, defaults: dict | None = None):
    return load_job_config(CONFIGS / recipe, [f"train.output_dir={out}", *overrides], defaults)


def losses(run_dir: Path, key: str = "loss") -> dict[int, float]:
    lines = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {d["step"]: d[key] for d in lines if key in d}


# ---------------------------------------------------------------- (1) two real processes
def _two_process_run(out: str) -> None:
    """Runs in each of the two debug_launcher processes."""
    original = common.Trainer.fit

    def fit(self, *args, **kwargs):
        model = original(self, *args, **kwargs)
        rank = self.accelerator.process_index
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        save_file(state, f"{out}/rank{rank}.safetensors")
        Path(f"{out}/rank{rank}.json").write_text(json.dumps(
            {"num_processes": self.accelerator.num_processes}))
        return model

    common.Trainer.fit = fit
    lam.train(job("tiny_lam.yaml", Path(out) / "run", "train.steps=3", "train.eval_every=0"))


def test_two_cpu_processes_stay_in_sync_and_differ_from_one(tmp_path):
    # debug_launcher forks; forking a process whose OpenMP thread pool already ran (any earlier
    # test) can deadlock the children, so the two processes are forked from a fresh interpreter.
    code = (
        "from accelerate import debug_launcher\n"
        "from tests.test_train import _two_process_run\n"
        f"debug_launcher(_two_process_run, args=({str(tmp_path)!r},), num_processes=2)\n"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=300)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["num_processes"] for r in ranks] == [2, 2]
    a, b = (load_file(tmp_path / f"rank{r}.safetensors") for r in (0, 1))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    single = lam.train(job("tiny_lam.yaml", tmp_path / "single", "train.steps=3",
                           "train.eval_every=0"))
    one = load_file(single / "lam" / "model.safetensors")
    assert any(not torch.equal(one[k], a[k]) for k in a)  # other data per step: other weights


# ---------------------------------------------------------------- (2) kill and resume
class Killed(RuntimeError):
    pass


def test_resume_reproduces_the_uninterrupted_losses(tmp_path):
    # noisy latents: the resumed run must also restore the random state exactly
    args = ("train.steps=24", "train.save_every=4", "train.eval_every=0",
            "lam.regularizer.kind=noisy")
    full = lam.train(job("tiny_lam.yaml", tmp_path / "full", *args)).parent

    def kill_at_6(step, logged):
        if step == 6:
            raise Killed

    with pytest.raises(Killed):
        lam.train(job("tiny_lam.yaml", tmp_path / "cut", *args), on_step=kill_at_6)
    assert (tmp_path / "cut" / "checkpoints" / "last").read_text().strip() == "4"
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    lam.train(job("tiny_lam.yaml", tmp_path / "cut", *args), resume="latest")
    want, got = losses(full), losses(tmp_path / "cut")
    assert sorted(got) == list(range(1, 25))  # the interrupted run's steps 5, 6 were dropped
    for step in range(5, 25):  # the 20 logged losses after the checkpoint
        assert got[step] == pytest.approx(want[step], abs=1e-6, rel=0)
    kept = sorted(p.name for p in (tmp_path / "cut" / "checkpoints").iterdir())
    assert kept == ["20", "24", "last"]  # keep_last: 2


# ---------------------------------------------------------------- (3) config errors
def test_unknown_key_and_wrong_type_fail_before_training(tmp_path):
    recipe = tmp_path / "bad.yaml"
    text = (CONFIGS / "tiny_lam.yaml").read_text()
    assert text.endswith("  regularizer:\n    kind: sparse\n")
    recipe.write_text(text + "    lambda_foo: 3\n")
    out = tmp_path / "run"
    with pytest.raises(SystemExit, match=r"error: lam\.regularizer\.lambda_foo: unknown key"):
        lam.main(["--config", str(recipe), f"train.output_dir={out}"])
    with pytest.raises(SystemExit, match=r"error: lam\.regularizer\.lambda_l1: expected float"):
        lam.main(["--config", str(CONFIGS / "tiny_lam.yaml"), f"train.output_dir={out}",
                  "lam.regularizer.lambda_l1=lots"])
    with pytest.raises(SystemExit, match=r"error: train\.steps: expected int"):
        lam.main(["--config", str(CONFIGS / "tiny_lam.yaml"), f"train.output_dir={out}",
                  "train.steps=[1]"])
    with pytest.raises(SystemExit, match=r"error: lam\.idm_token_merge: must divide the token"):
        lam.main(["--config", str(CONFIGS / "tiny_lam.yaml"), f"train.output_dir={out}",
                  "lam.idm_token_merge=3"])
    with pytest.raises(SystemExit, match=r"error: train\.world_change_from: must be lam, target "
                                         r"or both"):
        controller.main(["--config", str(CONFIGS / "tiny_controller.yaml"),
                         f"train.output_dir={out}", "train.world_change_from=sideways"])
    with pytest.raises(SystemExit, match=r"error: train\.world_loss_weight: must be ≥ 0"):
        controller.main(["--config", str(CONFIGS / "tiny_controller.yaml"),
                         f"train.output_dir={out}", "train.world_loss_weight=-1"])
    assert not out.exists()  # nothing was started: the CLI says "error: <key>: ...", no traceback


# ---------------------------------------------------------------- (4) cache == on the fly
def test_cached_features_give_the_same_losses(tmp_path):
    args = ("train.steps=5", "train.eval_every=0", "data.cache_dtype=float32")
    fly = lam.train(job("tiny_lam.yaml", tmp_path / "fly", *args)).parent
    cache = tmp_path / "cache"
    cached = lam.train(job("tiny_lam.yaml", tmp_path / "cached", *args,
                           f"data.cache_dir={cache}")).parent
    assert (cache / "index.json").is_file()
    want, got = losses(fly), losses(cached)
    assert sorted(got) == sorted(want) == [1, 2, 3, 4, 5]
    for step in want:
        assert got[step] == pytest.approx(want[step], abs=1e-5)
    AcceleratorState._reset_state(True)
    with pytest.raises(FeatureCacheError, match=r"index\.json: holds"):  # other data, same folder
        lam.train(job("tiny_lam.yaml", tmp_path / "other", *args, f"data.cache_dir={cache}",
                      "data.train_clips=8"))


# ---------------------------------------------------------------- (5) final folders
def test_autoencoder_lam_controller_chain_opens_as_a_pipeline(tmp_path):
    short = ("train.steps=2", "train.eval_every=2", "train.save_every=0")
    ae = decoder.train(job("tiny_autoencoder.yaml", tmp_path / "ae", *short,
                           defaults=decoder.DEFAULTS))
    assert load_component(ae / "decoder", "decoder").cfg.feature_dim == 48
    AcceleratorState._reset_state(True)
    pipe_dir = lam.train(job("tiny_lam.yaml", tmp_path / "lam", *short,
                             f"encoder_path={ae / 'encoder'}", f"decoder_path={ae / 'decoder'}"))
    pipe = LatentActionPipeline.from_pretrained(pipe_dir)
    g = torch.Generator().manual_seed(0)
    result = pipe.transfer(torch.rand(1, 8, 3, 32, 32, generator=g),
                           torch.rand(1, 8, 3, 32, 32, generator=g))
    assert result.transferred is not None and result.latents.shape == (3, 16)
    AcceleratorState._reset_state(True)
    ctrl_dir = controller.train(job("tiny_controller.yaml", tmp_path / "ctrl", *short,
                                    f"lam_path={pipe_dir}", defaults=controller.DEFAULTS))
    ctrl = LatentActionPipeline.from_pretrained(ctrl_dir)
    features = ctrl.encode(torch.rand(1, 8, 3, 32, 32, generator=g))
    z = ctrl.latents_from_actions(torch.zeros(1, 3, 2), features[:, :3])
    assert z.shape == (1, 3, 16)
    # the copied components are the frozen ones
    frozen, copied = (load_file(d / "lam" / "model.safetensors") for d in (pipe_dir, ctrl_dir))
    assert all(torch.equal(frozen[k], copied[k]) for k in frozen)
    # train.world_loss_weight: the frozen world model's loss under the controller's latents joins
    # the regression; it is logged beside the IDM's own latents' and the world model stays frozen
    AcceleratorState._reset_state(True)
    world_dir = controller.train(job("tiny_controller.yaml", tmp_path / "world", *short,
                                     f"lam_path={pipe_dir}", "train.world_loss_weight=2",
                                     "train.world_change_from=both",
                                     defaults=controller.DEFAULTS))
    logged = [json.loads(line) for line in
              (tmp_path / "world" / "metrics.jsonl").read_text().splitlines()]
    keys = set().union(*logged)
    assert {"world_l1", "latent_l2", "val_world_l1", "val_idm_world_l1"} <= keys
    step = next(r for r in logged if "world_l1" in r)
    assert step["loss"] == pytest.approx(step["latent_l2"] + 2 * step["world_l1"], rel=1e-4)
    copied = load_file(world_dir / "lam" / "model.safetensors")
    assert all(torch.equal(frozen[k], copied[k]) for k in frozen)


def test_muon_gets_hidden_matrices_only():
    from lam_core import get_preset
    from lam_core.checkpoint import build_component

    model = build_component("lam", get_preset("tiny").lam)
    names = {id(p): n for n, p in model.named_parameters()}
    muon, adamw = optim.split_parameters(model)
    muon_names = {names[id(p)] for p in muon}
    assert "world_model.blocks.0.attn.qkv.weight" in muon_names
    assert "world_model.blocks.0.modulation.1.weight" in muon_names
    for edge in ("world_model.proj_in.weight", "world_model.head.weight", "idm.proj.weight",
                 "idm.head.weight", "world_model.cond_embed.0.weight"):
        assert edge in {names[id(p)] for p in adamw}
    assert all(p.ndim == 2 for p in muon)


# ---------------------------------------------------------------- (6) accelerate launch
@pytest.mark.slow
def test_accelerate_launch_smoke(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--cpu",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           str(ROOT / "train" / "lam.py"), "--config", str(CONFIGS / "tiny_lam.yaml"),
           f"train.output_dir={tmp_path / 'run'}", "train.steps=2"]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(losses(tmp_path / "run")) == [1, 2]
    assert (tmp_path / "run" / "final" / "config.json").is_file()


def test_lpips_only_with_its_backbone_on_disk(tmp_path, monkeypatch):
    torchvision = pytest.importorskip("torchvision")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.warns(UserWarning, match="LPIPS DISABLED"):
        assert decoder.load_lpips("squeeze") is None  # never a random backbone
    # a stand-in backbone file (random weights, the right layout) under the expected name
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(torchvision.models.squeezenet1_1().state_dict(),
               checkpoints / decoder.LPIPS_BACKBONES["squeeze"])
    model = decoder.load_lpips("squeeze")
    assert model is not None and not any(p.requires_grad for p in model.parameters())
    video = torch.rand(1, 2, 3, 32, 32)
    losses = decoder.pixel_losses(video * 0.9, video, model)
    assert set(losses) == {"l1", "lpips"} and losses["lpips"] > 0
