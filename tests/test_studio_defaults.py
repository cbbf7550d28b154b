"""What the studio opens on, chosen by what each checkpoint folder is, never by its name.

Tiny pixel pipelines saved to ``tmp_path`` stand in for ``assets/checkpoints``: the default is the
flagship (``pixel-noisy``) or else the first latent model with a decoder; the Control tab opens on
a pipeline whose config names a controller; the Transfer tab's "trained on" line comes from the
training record (or, without one, from the encoder); the Training tab lists a shipped folder's
``metrics.jsonl``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import gradio as gr
import pytest

from lam_core import LatentActionPipeline, get_preset
from studio import control, training
from studio.models import (
    DEFAULT_NAME,
    checkpoint_choices,
    default_checkpoint,
    has_controller,
    scan_checkpoints,
    trained_on,
    trained_on_line,
)

MIXTURE = {"pan": 4 / 9, "movers": 4 / 9, "wild": 1 / 9}  # in the order the recipe names them
RECORD = {
    "steps": 4200,
    "clips": 67200,
    "runs": [
        {
            "run": "runs/flagship",
            "steps": 4200,
            "clips": 67200,
            "data": {"source": "miniwild", "mixture": MIXTURE, "num_frames": 8, "clips": 10**6},
        }
    ],
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    """One tiny pixel pipeline saved three ways: with a controller, without, without a decoder."""
    root = tmp_path_factory.mktemp("saved")
    pipe = LatentActionPipeline.from_config(get_preset("tiny-pixel"))
    pipe.save_pretrained(root / "driven")
    pipe.controller = None
    pipe.save_pretrained(root / "plain")
    pipe.decoder = None
    pipe.save_pretrained(root / "no-decoder")
    return {p.name: p for p in root.iterdir()}


def shelf(root: Path, saved: dict[str, Path], **folders: str) -> Path:
    """``root`` holding copies of the saved pipelines under new names (``name=kind``)."""
    for name, kind in folders.items():
        shutil.copytree(saved[kind], root / name.replace("_", "-"))
    return root


def name(choice: str | None) -> str | None:
    return None if choice is None else Path(choice).name


# ---------------------------------------------------------------------------------- defaults
def test_default_is_the_flagship_else_the_first_latent_model_with_a_decoder(saved, tmp_path):
    root = shelf(tmp_path / "a", saved, a_blind="no-decoder", b_driven="driven", c_plain="plain")
    # a has no decoder; b borrows a world model for its controller; c is a plain latent model
    assert name(default_checkpoint(scan_checkpoints(root))) == "c-plain"
    assert name(checkpoint_choices(None, root)[0]) == "c-plain"
    assert sorted(map(name, checkpoint_choices(None, root))) == ["a-blind", "b-driven", "c-plain"]

    shutil.copytree(saved["no-decoder"], root / DEFAULT_NAME)  # the flagship wins by its name
    assert name(checkpoint_choices(None, root)[0]) == DEFAULT_NAME
    assert checkpoint_choices("my/hub-id", root)[0] == "my/hub-id"  # --checkpoint wins over all

    only_controllers = shelf(tmp_path / "b", saved, x="driven", y="driven")
    assert name(default_checkpoint(scan_checkpoints(only_controllers))) == "x"
    assert default_checkpoint([]) is None


def test_control_tab_opens_on_a_checkpoint_that_has_a_controller(saved, tmp_path):
    # names say the opposite of what the folders are: the content decides
    root = shelf(tmp_path / "a", saved, controller_reach="plain", pixel_noisy="plain", zz="driven")
    choices = scan_checkpoints(root)
    assert [name(c) for c in choices if has_controller(c)] == ["zz"]
    assert name(control.control_checkpoint(choices)) == "zz"
    plain = next(c for c in choices if name(c) == "pixel-noisy")
    assert name(control.control_checkpoint(choices, plain)) == "zz"  # no controller: not kept
    driven = str(saved["driven"])
    assert control.control_checkpoint(choices, driven) == driven  # --checkpoint with one: kept

    # a controller whose record says it was trained in the drive world opens the drive world
    shelf(root, saved, aa="driven")
    config = root / "aa" / "controller" / "config.json"
    meta = json.loads(config.read_text())
    meta["training"] = {"steps": 5, "clips": 5, "runs": [{"data": {"world": "drive"}}]}
    config.write_text(json.dumps(meta))
    choices = scan_checkpoints(root)
    assert control.controller_world(str(root / "aa")) == "drive"
    assert name(control.control_checkpoint(choices)) == "zz"  # the default world (reach) first
    assert control.start_world(str(root / "aa")) == "drive"
    assert control.control_switch(str(root / "aa"), "reach", 0)[0] == "drive"

    # the shipped grid controller first among those of the default world
    shelf(root, saved, controller_reach_grid="driven")
    assert name(control.control_checkpoint(scan_checkpoints(root))) == control.CONTROL_NAME


def test_control_tab_says_so_when_no_checkpoint_has_a_controller(saved, tmp_path):
    root = shelf(tmp_path, saved, a="plain", b="no-decoder")
    assert control.control_checkpoint(scan_checkpoints(root)) is None
    state, pair, _, status = control.control_start(None, "reach", 0)
    assert state is None and pair is None and "no shipped checkpoint has a controller" in status
    assert control.follow_checkpoint(str(root / "a")) == gr.skip()  # the tab keeps its own
    assert control.follow_checkpoint(str(saved["driven"])) == str(saved["driven"])


# ---------------------------------------------------------------------------------- trained on
def test_trained_on_line_from_a_record():
    line = trained_on_line(RECORD, {"kind": "patch", "patch_size": 8})
    assert line == (
        "Trained on MiniWild: camera pans over photographs 44 %, still-camera movers 44 %, "
        "wild scenes 11 % — 4,200 steps, 67 k clips (8 frames each)."
    )
    # two runs, one of them from before records held their data: shares of all clips, sum ~100
    earlier = {"run": "runs/probe", "steps": 300, "clips": 4800}
    record = {"steps": 4500, "clips": 72000, "runs": [earlier, *RECORD["runs"]]}
    line = trained_on_line(record, {"kind": "patch"})
    shares = [int(p) for p in re.findall(r"(\d+) %", line)]
    assert "unrecorded footage 7 %" in line and abs(sum(shares) - 100) <= 2
    assert "4,500 steps, 72 k clips." in line  # clip length unknown for the earlier run
    # no run says what it saw: say so, with the counts
    assert trained_on_line({"steps": 300, "clips": 4800, "runs": [earlier]}) == (
        "Trained for 300 steps, 4.8 k clips; the footage was not recorded."
    )
    # a data.sources run (the shipped flagship's continuation) adds to the same parts
    lines = [{"source": "miniwild", "scene": "pan", "weight": 4.0},
             {"source": "miniwild", "scene": "movers", "weight": 4.0},
             {"source": "miniwild", "scene": "wild", "weight": 1.0}]
    more = {"run": "runs/s3/wild", "steps": 1500, "clips": 24000,
            "data": {"source": "sources", "num_frames": 8, "sources": lines}}
    line = trained_on_line({"steps": 5700, "clips": 91200, "runs": [*RECORD["runs"], more]})
    assert line.startswith("Trained on MiniWild: camera pans over photographs 44 %, still-camera "
                           "movers 44 %, wild scenes 11 % — 5,700 steps")
    mixed = [*lines, {"source": "world", "world": "reach", "weight": 9.0}]
    line = trained_on_line({"runs": [{"clips": 10, "data": {"source": "sources",
                                                             "sources": mixed}}]})
    assert "the reach world 50 %" in line and "MiniWild camera pans over photographs 22 %" in line
    reach = {"source": "world", "world": "reach"}
    world = {"steps": 10, "clips": 160, "runs": [{"clips": 160, "data": reach}]}
    assert trained_on_line(world).startswith("Trained on the reach world — 10 steps, 160 clips")


@pytest.mark.parametrize(
    ("encoder", "words"),
    [
        ({"kind": "patch", "patch_size": 8}, ("8×8 pixel patches", "training record not shipped")),
        ({"kind": "tiny"}, ("MiniWild (procedural scenes) only", "coloured blocks")),
        ({"kind": "vjepa2", "hub_id": "facebook/vjepa2"}, ("facebook/vjepa2", "not shipped")),
        (None, ("unknown",)),
    ],
)
def test_trained_on_line_without_a_record(encoder, words):
    line = trained_on_line({}, encoder)
    assert all(w in line for w in words) and "\n" not in line


def test_trained_on_reads_the_world_models_record_through_the_pipeline(saved, tmp_path):
    root = shelf(tmp_path, saved, flagship="plain", other="plain")
    assert "8×8 pixel patches" in trained_on(str(root / "flagship"))  # no record yet
    lam_config = root / "flagship" / "lam" / "config.json"
    meta = json.loads(lam_config.read_text())
    lam_config.write_text(json.dumps({**meta, "training": RECORD}))
    assert trained_on(str(root / "flagship")).startswith("Trained on MiniWild: camera pans")
    # a controller pipeline whose lam is ../flagship/lam says what that lam saw
    (root / "other" / "config.json").write_text(json.dumps({
        "format": "lam-studio-pipeline", "format_version": 1,
        "components": {"encoder": "encoder", "lam": "../flagship/lam", "decoder": "decoder"},
    }))
    assert trained_on(str(root / "other")) == trained_on(str(root / "flagship"))
    assert "not a local pipeline folder" in trained_on("someone/model")
    assert trained_on(None) == ""


# ---------------------------------------------------------------------------------- training tab
def test_training_tab_lists_shipped_curves_without_any_run(saved, tmp_path):
    root = shelf(tmp_path / "checkpoints", saved, flagship="plain", bare="driven")
    lines = [json.dumps({"step": 0, "val_copy_last_l1": 0.03})]
    lines += [json.dumps({"step": s, "loss": 1.0 / s, "val_l1": 0.5 / s}) for s in (10, 20, 30)]
    (root / "flagship" / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    rows, picker, keys, status = training.list_runs(str(tmp_path / "no-runs"), root)
    assert [r[0] for r in rows] == ["shipped: flagship"]  # bare has no metrics.jsonl
    assert rows[0][1:4] == [4, 30, round(1 / 30, 5)]
    assert picker.value == ["shipped: flagship"] and keys.value == "loss"
    assert "no runs" in status and "1 shipped model" in status
    fig = training.curves(str(tmp_path / "no-runs"), ["shipped: flagship"], "loss", root)
    assert list(fig.data[0].x) == [10, 20, 30]

    run = tmp_path / "runs" / "mine"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 2.0}) + "\n")
    rows, picker, _, status = training.list_runs(str(tmp_path / "runs"), root)
    assert [r[0] for r in rows] == ["shipped: flagship", "mine"] and "1 run(s)" in status
    # the shipped folder itself as the runs folder: listed once
    assert len(training.list_runs(str(root), root)[0]) == 1


def test_launcher_defaults_to_the_cpu_recipe():
    recipes = training.recipes()
    assert training.default_recipe(recipes) == training.DEFAULT_RECIPE in recipes
    assert training.DEFAULT_RECIPE != "train/configs/paper_lam.yaml"
    assert training.default_recipe(["b.yaml", "a.yaml"]) == "b.yaml"
    assert training.default_recipe([]) is None
    command = training.launch_command(training.DEFAULT_RECIPE, training.MODES[0])
    assert command.startswith("accelerate launch --num_processes 1 --cpu train/lam.py")
