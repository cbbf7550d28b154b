"""The studio's handlers called as plain functions, on a tiny random checkpoint saved to disk.

Covers the Transfer/Cycle/Leakage handlers, the caps on uploads, bad inputs (a text file renamed
.mp4, an empty file, a one-frame video, a missing checkpoint) followed by a valid call, the
checkpoint scan and cache, the Control tab (manual steps and CEM) and the Training tab.
"""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import pytest

from lam_core.processing import ClipProcessor
from lam_core.video import read_video, write_video
from studio import control, handlers, media, training
from studio.models import PipelineCache, checkpoint_choices, scan_checkpoints

from .helpers import tiny_pipeline


def moving_square(path: Path, frames: int = 16, fps: float = 4.0, size=(40, 54), seed=0) -> str:
    """A small video of a square moving over a gradient (odd sizes on purpose)."""
    rng = np.random.default_rng(seed)
    h, w = size
    base = np.linspace(0, 200, w, dtype=np.float32)[None, :, None] * np.ones((h, 1, 3))
    out = np.empty((frames, h, w, 3), np.uint8)
    y, x = rng.integers(0, h - 10), rng.integers(0, w - 10)
    for t in range(frames):
        frame = base.copy()
        frame[y : y + 10, (x + 2 * t) % (w - 10) : (x + 2 * t) % (w - 10) + 10] = (250, 40, 40)
        out[t] = frame.astype(np.uint8)
    return str(write_video(path, out, fps))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("ckpt") / "tiny"
    tiny_pipeline().save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def no_controller(tmp_path_factory) -> str:
    pipe = tiny_pipeline()
    pipe.controller = None
    folder = tmp_path_factory.mktemp("ckpt") / "no-controller"
    pipe.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> tuple[str, str]:
    folder = tmp_path_factory.mktemp("clips")
    return (moving_square(folder / "a.mp4", seed=1), moving_square(folder / "b.mp4", seed=2))


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("bad")
    (folder / "text.mp4").write_text("this is not a video\n" * 20)
    (folder / "empty.mp4").write_bytes(b"")
    one = moving_square(folder / "one.mp4", frames=1)
    return {"text": str(folder / "text.mp4"), "empty": str(folder / "empty.mp4"), "one": one}


# ---------------------------------------------------------------------------------- transfer
def test_transfer_returns_video_and_numbers(ckpt, clips):
    video, numbers = handlers.transfer(*clips, ckpt, context=2, steps=0, progress=None)
    clip = read_video(video)
    # 16 frames at 4 fps = 8 steps: 2 context + 6 predicted steps, 2 frames each
    assert clip.num_frames == numbers["frames"] == 16
    # source | target | transferred | target's own rollout | change
    assert clip.size == (media.CAPTION_HEIGHT + media.PANEL, 5 * media.PANEL + 4 * 4)
    assert numbers["steps"] == 6 and numbers["context"] == 2
    for key in ("source_error", "target_error", "transfer_shift"):
        assert np.isfinite(numbers[key])
    assert np.asarray(numbers["latents"]).shape == (6, 16)
    json.dumps(numbers, allow_nan=False)  # what the browser and the API client parse
    table, fig = handlers.transfer_details(numbers)
    assert [row[0] for row in table] == ["source error", "target error", "transfer shift"]
    assert isinstance(fig, go.Figure) and fig.data[0].z.shape == (16, 6)


def test_transfer_and_cycle_are_shown_at_the_display_resolution(ckpt, tmp_path):
    """Uploads larger than a panel come back at their display resolution (the same crop,
    side ≤ 512); the model-resolution video is written next to it. The tiny checkpoint's
    feature head has no flow: its predictions are upsampled, and the notes say so."""
    big = [moving_square(tmp_path / f"{i}.mp4", size=(300, 420), seed=i) for i in (1, 2)]
    video, numbers = handlers.transfer(*big, ckpt, progress=None)
    shown = numbers["display"]
    assert shown["panel"] == 300 and shown["rendering"] == "upsampled"
    assert read_video(video).size == (media.CAPTION_HEIGHT + 300, 5 * 300 + 4 * 4)
    assert any("no motion field" in note for note in numbers["notes"])
    small = handlers.model_video(numbers)
    assert read_video(small).size == (media.CAPTION_HEIGHT + media.PANEL, 5 * media.PANEL + 16)
    video, numbers = handlers.cycle(*big, ckpt, progress=None)
    assert read_video(video).size == (media.CAPTION_HEIGHT + 300, 4 * 300 + 3 * 4)
    assert read_video(handlers.model_video(numbers)).num_frames == numbers["frames"]


def test_transfer_steps_and_short_target(ckpt, clips, tmp_path):
    _, numbers = handlers.transfer(*clips, ckpt, context=1, steps=3, progress=None)
    assert numbers["steps"] == 3 and numbers["frames"] == 8
    short = moving_square(tmp_path / "short.mp4", frames=8)
    video, numbers = handlers.transfer(clips[0], short, ckpt, context=1, steps=7, progress=None)
    assert numbers["target_error"] is None and numbers["notes"]  # undefined, said so, no NaN
    assert read_video(video).size[1] == 3 * media.PANEL + 2 * 4  # no own rollout to compare with


def test_cycle_and_leakage(ckpt, clips):
    video, numbers = handlers.cycle(*clips, ckpt, context=1, progress=None)
    assert read_video(video).num_frames == numbers["frames"] == 16
    assert numbers["ratio"] == pytest.approx(numbers["cycled_error"] / numbers["direct_error"])
    assert len(numbers["direct_errors"]) == len(numbers["cycled_errors"]) == 7
    table, fig = handlers.cycle_details(numbers)
    assert table[-1][0] == "ratio" and table[-1][1].startswith("×") and len(fig.data) == 2

    video, fig, summary, numbers = handlers.leakage(*clips, ckpt, cut=3, progress=None)
    assert numbers["cut"] == 3 and np.isfinite(numbers["ratio"])
    assert read_video(video).num_frames == 16 and "×" in summary and len(fig.data) == 2


def test_leakage_sets_the_model_against_its_deterministic_baseline(ckpt, clips, tmp_path):
    from studio.models import default_baseline, is_deterministic

    baseline = tmp_path / "deterministic"
    tiny_pipeline(kind="deterministic").save_pretrained(baseline)
    assert is_deterministic(baseline) and not is_deterministic(ckpt)
    assert default_baseline([ckpt, str(baseline)]) == str(baseline)
    assert default_baseline([ckpt]) is None
    _, fig, summary, numbers = handlers.leakage(*clips, ckpt, cut=3, baseline=str(baseline),
                                                progress=None)
    base = numbers["baseline"]
    assert base["checkpoint"] == str(baseline) and base["cut"] == 3  # the same cut
    assert np.isfinite(base["ratio"]) and len(base["errors"]) == len(numbers["errors"])
    assert len(fig.data) == 4 and "deterministic" in summary
    alone = handlers.leakage(*clips, ckpt, cut=3, baseline="", progress=None)[3]
    assert alone["baseline"] is None and alone["ratio"] == numbers["ratio"]


def test_uploads_are_capped(ckpt, tmp_path):
    long = moving_square(tmp_path / "long.mp4", frames=100, fps=8.0)  # 12.5 s
    processor = ClipProcessor(fps=4.0, image_size=32, tubelet=2)
    upload = media.read_upload(long, processor, name="source")
    assert upload.clip.num_frames == 40 and "first 10 s" in upload.note
    with pytest.warns(UserWarning, match="first 10 s"):  # gr.Warning outside a request
        _, numbers = handlers.transfer(long, long, ckpt, progress=None)
    assert numbers["frames"] == 40 and numbers["notes"]


# ---------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kind", "message"),
    [("text", r"not a (readable )?video"), ("empty", "empty file"), ("one", "fewer than 4 frames")],
)
def test_bad_uploads_raise_clear_errors_then_serve(ckpt, clips, bad_files, kind, message):
    with pytest.raises(gr.Error, match=message) as info:
        handlers.transfer(bad_files[kind], clips[1], ckpt, progress=None)
    assert "source" in str(info.value) and str(Path(bad_files[kind]).parent) not in str(info.value)
    with pytest.raises(gr.Error, match=message):
        handlers.cycle(clips[0], bad_files[kind], ckpt, progress=None)
    video, _ = handlers.transfer(*clips, ckpt, steps=2, progress=None)  # the next call works
    assert read_video(video).num_frames == 6


def test_missing_inputs_and_checkpoints(ckpt, clips, tmp_path):
    with pytest.raises(gr.Error, match="no such checkpoint folder"):
        handlers.transfer(*clips, str(tmp_path / "nowhere"), progress=None)
    with pytest.raises(gr.Error, match=r"config\.json: missing"):
        handlers.transfer(*clips, str(tmp_path), progress=None)
    with pytest.raises(gr.Error, match="no checkpoint chosen"):
        handlers.transfer(*clips, None, progress=None)
    with pytest.raises(gr.Error, match="upload a target"):
        handlers.transfer(clips[0], None, ckpt, progress=None)
    with pytest.raises(gr.Error, match="context must be between"):
        handlers.transfer(*clips, ckpt, context=8, progress=None)
    assert handlers.transfer(*clips, ckpt, progress=None)[1]["frames"] == 16


def test_checkpoint_scan_and_cache(ckpt, tmp_path):
    root = tmp_path / "checkpoints"
    tiny_pipeline().save_pretrained(root / "b-model")
    (root / "notes").mkdir()
    (root / "notes" / "config.json").write_text('{"format": "something else"}')
    (root / "broken").mkdir()
    (root / "broken" / "config.json").write_text("{not json")
    found = scan_checkpoints(root)
    assert found == [str((root / "b-model").resolve())]  # components inside are not listed
    assert checkpoint_choices("my/hub-id", root) == ["my/hub-id", *found]

    cache = PipelineCache(size=1)
    assert cache.get(ckpt) is cache.get(str(Path(ckpt).resolve()) + "/")
    first = cache.get(ckpt)
    cache.get(found[0])
    assert cache.get(ckpt) is not first  # evicted (size 1) and reopened


def test_media_compositing_and_outputs(tmp_path):
    frames = np.zeros((3, 32, 32, 3), np.uint8)
    out = media.side_by_side([media.Panel("a", frames), media.Panel("b", frames[:1], 1)])
    assert out.shape == (3, media.CAPTION_HEIGHT + 256, 2 * 256 + 4, 3)
    assert (out[0, media.CAPTION_HEIGHT - 1, 300] == media.ACCENT["context"]).all()
    assert (out[2, media.CAPTION_HEIGHT - 1, 300] == media.ACCENT["predicted"]).all()
    assert media.filmstrip([("x", frames), ("y", frames[:2])], side=16).shape == (
        2 * (media.CAPTION_HEIGHT + 16),
        3 * 16 + 2 * 3,
        3,
    )
    outputs = media.OutputDir(max_age=0.0)
    path = outputs.new_path("v")
    path.write_bytes(b"x")
    assert outputs.prune() == 1 and not path.exists()


# ---------------------------------------------------------------------------------- control
def test_control_steps_and_plan(ckpt):
    state, pair, strip, status = control.control_reset(ckpt, "reach", 5)
    assert pair.ndim == strip.ndim == 3 and "Step 0" in status
    for button in ("→", "↓"):
        state, pair, _, status = control.control_step(
            state, ckpt, "reach", 5, *control.arrow("reach", button)
        )
    assert len(state.actions) == 2 and len(state.model) == len(state.real) == 3
    assert state.actions[-1] == (0.0, 1.0) and "Step 2" in status
    # a changed world starts over
    state, *_ = control.control_step(state, ckpt, "drive", 5, 1.0, 0.0)
    assert state.key[1] == "drive" and len(state.actions) == 1

    video, _, summary, numbers = control.control_plan(
        ckpt, "reach", 5, samples=20, iterations=2, progress=None
    )
    assert read_video(video).num_frames == 2 * 4  # H + 1 = 4 steps, tubelet 2
    assert len(numbers["best_costs"]) == 2 and np.asarray(numbers["plan"]).shape == (3, 2)
    assert "px from the goal" in summary and numbers["final_px"] >= 0
    _, _, summary, numbers = control.control_plan(ckpt, "drive", 5, 10, 1, progress=None)
    assert np.asarray(numbers["plan"]).shape == (8, 2) and "ATE" in summary


def test_control_without_controller_says_so(no_controller):
    state, pair, _, status = control.control_reset(no_controller, "reach", 0)
    assert "no controller" in status and pair is not None  # the start frame is still shown
    with pytest.raises(gr.Error, match="no controller"):
        control.control_step(state, no_controller, "reach", 0, 1.0, 0.0)
    with pytest.raises(gr.Error, match="no controller"):
        control.control_plan(no_controller, "reach", 0, 20, 1, progress=None)


# ---------------------------------------------------------------------------------- training
def test_runs_and_curves(tmp_path):
    run = tmp_path / "runs" / "tiny"
    run.mkdir(parents=True)
    lines = [json.dumps({"step": s, "time": s * 0.1, "loss": 1.0 / s}) for s in range(1, 6)]
    lines.append(json.dumps({"step": 5, "val_l1": 0.3}))
    (run / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 6, "lo')  # half-written
    assert len(training.read_metrics(run / "metrics.jsonl")) == 6
    shipped = tmp_path / "no-shipped-models"  # the shipped ones: tests/test_studio_defaults.py
    rows, picker, keys, status = training.list_runs(str(tmp_path / "runs"), shipped)
    assert rows[0][:4] == ["tiny", 6, 5, 0.2] and "1 run" in status
    assert picker.value == ["tiny"] and keys.choices[0][0] == "loss"
    fig = training.curves(str(tmp_path / "runs"), ["tiny"], "loss", shipped)
    assert list(fig.data[0].y) == [1.0, 0.5, 1 / 3, 0.25, 0.2]
    assert training.list_runs(str(tmp_path / "nothing"), shipped)[0] == []


def test_launch_commands():
    recipe = "train/configs/tiny_lam.yaml"
    assert training.job_for_recipe(recipe) == "lam"
    assert training.launch_command(recipe, training.MODES[0], 4) == (
        "accelerate launch --num_processes 1 --cpu train/lam.py --config " + recipe
    )
    assert training.launch_command(recipe, training.MODES[1], 2, "train.steps=9") == (
        "ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 --num_machines 1 "
        "--mixed_precision no --dynamo_backend no train/lam.py --config "
        + recipe
        + " train.steps=9"
    )
    assert training.launch_command(recipe, training.MODES[2], 8) == (
        "accelerate launch --multi_gpu --num_processes 8 --mixed_precision bf16 train/lam.py "
        "--config " + recipe
    )
    assert training.launch_command(recipe, training.MODES[2], 1).startswith(
        "accelerate launch --num_processes 1 --mixed_precision bf16 "
    )


# ---------------------------------------------------------------------------------- latent space
@pytest.mark.filterwarnings("ignore:n_jobs value:UserWarning")  # UMAP, seeded
def test_latent_space_and_point_pairs(ckpt, clips):
    from studio import latent

    fig, summary, emb = latent.latent_space([ckpt], "uploaded clips", list(clips), progress=None)
    # 2 clips × 7 transitions inferred + as many sampled, one panel
    assert len(emb.points) == 28 and len(emb.panels) == 1 and "separability" in summary
    assert sorted(i for trace in fig.data for i in trace.customdata) == list(range(28))
    kinds = [p[1] for p in emb.points]
    sampled, inferred = kinds.index("sampled"), kinds.index("inferred")
    image, text, fig = latent.point_pair(emb, inferred)
    assert image.shape[2] == 3 and "inferred" in text and len(fig.data) == 3  # + the ring
    image, text, _ = latent.point_pair(emb, sampled)
    assert "sampled" in text and image.shape == (media.CAPTION_HEIGHT + 256, 2 * 256 + 4, 3)
    with pytest.raises(gr.Error, match="between 0 and 27"):
        latent.point_pair(emb, 28)
    with pytest.raises(gr.Error, match="upload one or more clips"):
        latent.latent_space([ckpt], "uploaded clips", [], progress=None)


def test_background_run_starts_polls_and_stops(tmp_path):
    status, timer = training.start_run(
        "train/configs/tiny_lam.yaml", str(tmp_path), "bg", "train.steps=2"
    )
    assert "train/lam.py" in status and "train.steps=2" in status and timer.active
    with pytest.raises(gr.Error, match="already going"):
        training.start_run("train/configs/tiny_lam.yaml", str(tmp_path), "again")
    _, _, status, timer = training.poll_run()
    assert status.startswith("bg: running") or "finished" in status
    assert training.stop_run().startswith(("stopped", "no run"))
    _, _, status, timer = training.poll_run()
    assert "finished" in status and not timer.active
    assert (tmp_path / "bg" / "studio-launch.log").is_file()


def test_build_app_and_cli(ckpt):
    from studio.app import NO_CHECKPOINT, build_app, checkpoint_info, parse_args

    demo = build_app(None)  # no shipped checkpoint needed to build
    public = {f.api_name for f in demo.fns.values() if f.api_visibility == "public"}
    assert {"transfer", "cycle"} <= public
    assert checkpoint_info(None) == NO_CHECKPOINT
    assert "no such checkpoint folder" in checkpoint_info("/nowhere/at/all")
    assert "adapter controller" in checkpoint_info(ckpt)
    args = parse_args(["--checkpoint", ckpt, "--port", "7999"])
    assert (args.host, args.port, args.share, args.checkpoint) == ("127.0.0.1", 7999, False, ckpt)
