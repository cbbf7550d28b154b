"""Bad checkpoints and configs fail with a message naming the file or key, in the library
(``LatentActionPipeline.from_pretrained``, ``load_component``) and in the command lines that open
checkpoints (``train/lam.py --init-from``, ``encoder_path=`` / ``lam_path=`` in a recipe,
``python -m lam_core.eval.report``, ``python -m lam_core.eval.frames``); a NaN or inf loss stops a
run naming the step and leaves the last good checkpoint intact. docs/RELIABILITY.md lists the
cases and their messages. The command lines run as subprocesses (a few seconds each: marked slow).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from lam_core import CheckpointError, LatentActionPipeline
from lam_core.checkpoint import load_component, save_component
from lam_core.config import EncoderConfig
from train import common, lam
from train.config import load_job_config

from .helpers import tiny_pipeline

ROOT = Path(__file__).resolve().parents[1]
TINY_LAM = ROOT / "train" / "configs" / "tiny_lam.yaml"
TINY_CONTROLLER = ROOT / "train" / "configs" / "tiny_controller.yaml"


# ---------------------------------------------------------------- the broken folders
def _edit_json(path: Path, edit: Callable[[dict], None]) -> None:
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _pickle_in_place(path: Path) -> None:
    state = {k: v.clone() for k, v in load_file(path).items()}  # not mmapped: path is rewritten
    torch.save(state, path)


def _wrong_shape(path: Path) -> None:
    state = {k: v.clone() for k, v in load_file(path).items()}
    state["world_model.proj_in.weight"] = torch.zeros(3, 3)
    save_file(state, path)


@dataclass(frozen=True)
class Case:
    """A way to break a pipeline folder (``c``: the component it breaks) and the message the
    library gives (a regex; ``cli``: the one the training scripts give, when it differs)."""

    mutate: Callable[[Path, str], None]
    message: str
    cli: str | None = None


CASES = {
    "no-pipeline-config": Case(
        lambda d, c: (d / "config.json").unlink(),
        r"/config\.json: missing \(not a lam-studio pipeline folder\)",
        cli=r"/config\.json: missing \(expected the lam component or a pipeline folder\)"),
    "no-component-config": Case(
        lambda d, c: (d / c / "config.json").unlink(),
        r"/{c}/config\.json: missing \(a component folder needs config\.json \+ "
        r"model\.safetensors\)"),
    "no-weights": Case(
        lambda d, c: (d / c / "model.safetensors").unlink(),
        r"/{c}/model\.safetensors: missing weights file$"),
    "no-component-folder": Case(
        lambda d, c: shutil.rmtree(d / c),
        r"/config\.json: components\.{c} names the folder '{c}', but \S+/{c} does not exist",
        cli=r"/{c}: no such folder; expected a component folder"),
    "truncated": Case(
        lambda d, c: _truncate(d / c / "model.safetensors"),
        r"/{c}/model\.safetensors: cannot read safetensors: truncated: \d+ bytes, its header "
        r"describes \d+"),
    "renamed-bin": Case(
        lambda d, c: (d / c / "model.safetensors").rename(d / c / "model.bin"),
        r"/{c}/model\.safetensors: missing weights file; found model\.bin instead: lam-studio "
        r"reads weights only from model\.safetensors and never unpickles"),
    "random-bytes": Case(
        lambda d, c: (d / c / "model.safetensors").write_bytes(os.urandom(4096)),
        r"/{c}/model\.safetensors: cannot read safetensors: not a safetensors file"),
    "pickle-as-safetensors": Case(
        lambda d, c: _pickle_in_place(d / c / "model.safetensors"),
        r"/{c}/model\.safetensors: cannot read safetensors: a zip archive \(torch\.save\?\), not "
        r"safetensors: lam-studio never unpickles weights"),
    "shape-mismatch": Case(
        lambda d, c: _wrong_shape(d / c / "model.safetensors"),
        r"/{c}/model\.safetensors: does not match its config: world_model\.proj_in\.weight: "
        r"shape \(3, 3\) in file, \(48, 48\) expected by config\.json"),
    "newer-component-format": Case(
        lambda d, c: _edit_json(d / c / "config.json", lambda m: m.update(format_version=2)),
        r"/{c}/config\.json: format_version 2 is newer than the format_version 1 this "
        r"lam-studio \([\w.]+\) reads: this lam-studio is too old"),
    "newer-pipeline-format": Case(
        lambda d, c: _edit_json(d / "config.json", lambda m: m.update(format_version=2)),
        r"\d/config\.json: format_version 2 is newer than the format_version 1 this "
        r"lam-studio \([\w.]+\) reads: this lam-studio is too old"),
    "unknown-config-key": Case(
        lambda d, c: _edit_json(d / c / "config.json", lambda m: m["config"].update(widht=3)),
        r"/{c}/config\.json: config: unknown key\(s\) widht; valid keys: "),
    "unknown-top-level-key": Case(
        lambda d, c: _edit_json(d / "config.json", lambda m: m.update(colour="red")),
        r"\d/config\.json: unknown key\(s\) colour; valid keys: format, format_version, "
        r"components, world"),
}
# where the component is named in the message, the case breaks it (the pipeline's own
# config.json otherwise)
COMPONENT_CASES = [n for n, c in CASES.items() if "{c}" in c.message]


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """One tiny pipeline folder, copied by each case."""
    folder = tmp_path_factory.mktemp("saved") / "pipeline"
    tiny_pipeline().save_pretrained(folder)
    return folder


def broken(saved: Path, where: Path, name: str, component: str = "lam") -> Path:
    """A copy of ``saved`` in ``where/<n>`` broken as case ``name`` describes."""
    folder = where / f"{len(list(where.iterdir()))}"  # the messages match a digit before /config
    shutil.copytree(saved, folder)
    CASES[name].mutate(folder, component)
    return folder


def pattern(name: str, component: str = "lam", cli: bool = False) -> str:
    case = CASES[name]
    text = case.cli if cli and case.cli else case.message
    return text.replace("{c}", component)


# ---------------------------------------------------------------- library
@pytest.mark.parametrize("name", list(CASES))
def test_from_pretrained_names_the_file(saved, tmp_path, name):
    folder = broken(saved, tmp_path, name)
    with pytest.raises(CheckpointError) as e:
        LatentActionPipeline.from_pretrained(folder)
    message = str(e.value)
    assert re.search(pattern(name), message), message
    assert str(folder) in message and "\n" not in message


@pytest.mark.parametrize("name", [n for n in COMPONENT_CASES if n != "no-component-folder"])
def test_load_component_names_the_file(saved, tmp_path, name):
    folder = broken(saved, tmp_path, name)
    with pytest.raises(CheckpointError) as e:
        load_component(folder / "lam", expected="lam")
    assert re.search(pattern(name), str(e.value)), str(e.value)


def test_load_component_of_a_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match=r"/nope: no such folder; expected a component"):
        load_component(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match=r"/file: is a file, not a component folder"):
        load_component(tmp_path / "file")


def test_a_file_or_an_unknown_hub_id_offline(saved, monkeypatch):
    with pytest.raises(CheckpointError, match=r"model\.safetensors: is a file; from_pretrained "
                                              r"takes the pipeline folder"):
        LatentActionPipeline.from_pretrained(saved / "lam" / "model.safetensors")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # conftest sets it already; say so here too
    with pytest.raises(CheckpointError) as e:
        LatentActionPipeline.from_pretrained("no-such-owner/no-such-model")
    message = str(e.value)
    assert message.startswith("no-such-owner/no-such-model: could not download from the hub: it "
                              "is offline (HF_HUB_OFFLINE=1)")
    assert "pass a local folder instead" in message


def test_vjepa2_encoder_offline_names_the_hub_id(tmp_path):
    class Stub(torch.nn.Module):  # save_component only needs .cfg (V-JEPA 2 has no weights here)
        cfg = EncoderConfig(kind="vjepa2", hub_id="no-such-owner/no-such-vjepa2")

    save_component(Stub(), tmp_path / "encoder")
    with pytest.raises(CheckpointError) as e:
        load_component(tmp_path / "encoder")
    message = str(e.value)
    assert re.search(r"encoder/config\.json: config\.hub_id 'no-such-owner/no-such-vjepa2': "
                     r"cannot load the V-JEPA 2 weights", message), message
    assert "offline (HF_HUB_OFFLINE=1)" in message and "local folder" in message


# ---------------------------------------------------------------- command lines
def run_cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
           "TMPDIR": str(cwd)}
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def assert_refused(proc: subprocess.CompletedProcess, regex: str, run_dir: Path | None) -> None:
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert re.search(regex, proc.stderr, re.MULTILINE), proc.stderr[-3000:]
    if run_dir is not None:  # nothing was trained
        assert not (run_dir / "checkpoints").exists() and not (run_dir / "final").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_train_init_from_names_the_file(saved, tmp_path, name):
    (tmp_path / "ckpt").mkdir()
    folder = broken(saved, tmp_path / "ckpt", name)
    run = tmp_path / "run"
    proc = run_cli(ROOT / "train" / "lam.py", "--config", TINY_LAM, f"train.output_dir={run}",
                   "train.eval_every=0", "--init-from", folder, cwd=tmp_path)
    assert_refused(proc, pattern(name, cli=True), run)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["truncated", "newer-component-format", "unknown-config-key"])
def test_train_encoder_path_names_the_file(saved, tmp_path, name):
    (tmp_path / "ckpt").mkdir()
    folder = broken(saved, tmp_path / "ckpt", name, "encoder")
    run = tmp_path / "run"
    proc = run_cli(ROOT / "train" / "lam.py", "--config", TINY_LAM, f"train.output_dir={run}",
                   "train.eval_every=0", f"encoder_path={folder / 'encoder'}", cwd=tmp_path)
    assert_refused(proc, pattern(name, "encoder", cli=True), run)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["newer-pipeline-format", "shape-mismatch"])
def test_train_lam_path_names_the_file(saved, tmp_path, name):
    (tmp_path / "ckpt").mkdir()
    folder = broken(saved, tmp_path / "ckpt", name)
    run = tmp_path / "run"
    proc = run_cli(ROOT / "train" / "controller.py", "--config", TINY_CONTROLLER,
                   f"train.output_dir={run}", "train.eval_every=0", f"lam_path={folder}",
                   cwd=tmp_path)
    assert_refused(proc, pattern(name, cli=True), run)


@pytest.mark.slow
def test_report_names_every_broken_pipeline(saved, tmp_path):
    """One report over a folder holding every case that still declares a pipeline and one
    healthy pipeline: each broken one is named with its message, the report goes on with the
    healthy one (exit 0) and records the errors; with no healthy one it exits 2."""
    root = tmp_path / "checkpoints"
    root.mkdir()
    names = [n for n in CASES if n != "no-pipeline-config"]  # not a pipeline folder at all
    folders = {n: broken(saved, root, n) for n in names}
    args = ("--quick", "--no-umap", "--only", *(f.name for f in folders.values()))
    proc = run_cli("-m", "lam_core.eval.report", "--checkpoints", root, "--out",
                   tmp_path / "none", *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "no pipeline could be loaded" in proc.stderr
    shutil.copytree(saved, root / "healthy")
    proc = run_cli("-m", "lam_core.eval.report", "--checkpoints", root, "--out", tmp_path / "out",
                   "--quick", "--no-umap", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "error" not in json.loads((tmp_path / "out" / "report.json").read_text())[
        "pipelines"]["healthy"]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    for name, folder in folders.items():
        error = report["pipelines"][folder.name]["error"]
        assert re.search(pattern(name), error), (name, error)
        assert f"{folder.name}: could not load ({folder}" in proc.stderr
    proc = run_cli("-m", "lam_core.eval.report", "--checkpoints", tmp_path / "nope", "--out",
                   tmp_path / "out2", "--quick", cwd=tmp_path)
    assert proc.returncode == 2 and "nope: no pipeline folders" in proc.stderr


@pytest.mark.slow
def test_frames_cli_with_an_unknown_hub_id_offline(tmp_path):
    proc = run_cli("-m", "lam_core.eval.frames", "--checkpoint", "no-such-owner/no-such-model",
                   "--out", tmp_path / "sheet.png", cwd=tmp_path)
    assert_refused(proc, r"error: no-such-owner/no-such-model: could not download from the hub: "
                         r"it is offline \(HF_HUB_OFFLINE=1\).*pass a local folder instead", None)


# ---------------------------------------------------------------- non-finite losses
@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, bad,
                                                                  fresh_accelerate_state):
    original = common.Trainer.fit

    def fit(self, model, dataset, step_fn, *args, **kwargs):
        def poisoned(m, batch):
            loss, stats = step_fn(m, batch)
            return (loss * float(bad) if self.step == 7 else loss), stats

        return original(self, model, dataset, poisoned, *args, **kwargs)

    monkeypatch.setattr(common.Trainer, "fit", fit)
    run = tmp_path / "run"
    job = load_job_config(TINY_LAM, [f"train.output_dir={run}", "train.steps=12",
                                     "train.save_every=3", "train.eval_every=0"])
    with pytest.raises(FloatingPointError) as e:
        lam.train(job)
    checkpoint = run / "checkpoints" / "6"
    assert str(e.value) == f"step 7: loss is {bad}; the last good checkpoint is {checkpoint}"
    assert (run / "checkpoints" / "last").read_text().strip() == "6"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["3", "6", "last"]
    state = load_file(checkpoint / "model.safetensors")
    assert all(torch.isfinite(v).all() for v in state.values())
    logged = [json.loads(ln)["step"] for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(logged) == 6 and not (run / "final").exists()  # step 7 was never logged


def test_non_finite_weights_are_never_saved(tmp_path, monkeypatch, fresh_accelerate_state):
    """A weight broken after step 6's optimiser step (its loss was finite) stops the run at the
    checkpoint of step 6, which is not written."""
    models = []
    original = common.Trainer.fit

    def fit(self, model, *args, **kwargs):
        models.append(model)  # one CPU process: prepare() hands back the same module
        return original(self, model, *args, **kwargs)

    def break_a_weight(step, logged):
        if step == 6:
            with torch.no_grad():
                models[0].world_model.proj_in.weight[0, 0] = float("nan")

    monkeypatch.setattr(common.Trainer, "fit", fit)
    run = tmp_path / "run"
    job = load_job_config(TINY_LAM, [f"train.output_dir={run}", "train.steps=12",
                                     "train.save_every=3", "train.eval_every=0"])
    with pytest.raises(FloatingPointError) as e:
        lam.train(job, on_step=break_a_weight)
    good = run / "checkpoints" / "3"
    assert str(e.value) == ("step 6: weight world_model.proj_in.weight is not finite after the "
                            f"optimiser step; the last good checkpoint is {good}")
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["3", "last"]
