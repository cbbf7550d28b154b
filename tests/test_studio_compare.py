"""The Compare tab's handlers as plain functions, on tiny random checkpoints saved to disk: one
result (video, numbers) per checkpoint, a frame sheet with one labelled row per model, clear
errors for too few or too many checkpoints and for one that cannot transfer (then a valid call
still works), and the shipped choices and defaults."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from lam_core.video import read_video
from studio import compare, glossary, media
from studio.models import checkpoint_choices

from .helpers import tiny_pipeline
from .test_studio_handlers import moving_square

REGULARIZERS = ("sparse", "noisy", "discrete", "none")


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> list[str]:
    """Four tiny latent models, one per regularizer."""
    folder = tmp_path_factory.mktemp("compare")
    out = []
    for i, kind in enumerate(REGULARIZERS):
        tiny_pipeline(regularizer=kind, seed=i).save_pretrained(folder / kind)
        out.append(str(folder / kind))
    return out


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> tuple[str, str]:
    folder = tmp_path_factory.mktemp("clips")
    return (moving_square(folder / "a.mp4", seed=1), moving_square(folder / "b.mp4", seed=2))


@pytest.fixture(scope="module")
def cannot_transfer(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("cannot")
    pipe = tiny_pipeline()
    pipe.decoder = None
    pipe.save_pretrained(folder / "no-decoder")
    tiny_pipeline(kind="action").save_pretrained(folder / "action")
    return {"no decoder": str(folder / "no-decoder"), "action": str(folder / "action")}


def test_one_result_per_checkpoint(ckpts, clips):
    sheet, numbers = compare.compare(*clips, ckpts, context=2, progress=None)
    models = numbers["models"]
    assert [m["checkpoint"] for m in models] == ckpts
    assert [m["name"] for m in models] == list(REGULARIZERS)
    json.dumps(numbers, allow_nan=False)  # what the browser and the API client parse
    for model in models:  # 16 frames at 4 fps, 2 per step: 2 context + 6 predicted steps
        assert model["steps"] == 6 and model["context"] == 2 and model["frames"] == 16
        for key in ("source_error", "target_error", "transfer_shift"):
            assert np.isfinite(model[key])
        assert set(model["camera"]) == {"source", "transfer", "cosine", "magnitude_ratio"}
        video = read_video(model["video"])  # one captioned panel at the display resolution
        assert video.num_frames == 16
        assert video.size == (media.CAPTION_HEIGHT + media.PANEL, media.PANEL)
        line = compare.model_line(model)
        assert model["name"] in line and "transfer shift" in line and "camera motion" in line
    assert compare.compare_videos(numbers) == tuple(m["video"] for m in models)
    assert Path(sheet).suffix == ".png"

    _, numbers = compare.compare(*clips, ckpts[:2], progress=None)
    assert len(numbers["models"]) == 2
    videos = compare.compare_videos(numbers)
    assert len(videos) == compare.MAX_MODELS and videos[2:] == (None, None)
    slots = compare.model_slots(numbers)
    assert [c.visible for c in slots[: compare.MAX_MODELS]] == [True, True, False, False]
    assert slots[compare.MAX_MODELS].startswith("**sparse**") and slots[-1] == ""


def test_frame_sheet_has_one_labelled_row_per_model(ckpts, clips):
    sheet, numbers = compare.compare(*clips, ckpts[:3], context=1, progress=None)
    rows = numbers["sheet"]["rows"]
    assert rows[0].startswith("source · frames 1, 3, ") and rows[1] == "target"
    assert rows[2:] == [f"{name}: target + source's actions" for name in REGULARIZERS[:3]]
    picks = numbers["sheet"]["frames"]
    assert picks == compare.sheet_frames(16, 1 * 2 - 1)  # from the last real frame on
    image = np.asarray(Image.open(sheet).convert("RGB"))
    row = media.CAPTION_HEIGHT + compare.SHEET_SIDE
    gap = 3  # media.filmstrip's
    assert image.shape == (len(rows) * row, len(picks) * (compare.SHEET_SIDE + gap) - gap, 3)
    bars = [image[i * row : i * row + media.CAPTION_HEIGHT] for i in range(len(rows))]
    for bar in bars:  # each row's caption carries its text
        assert (bar != media.BACKGROUND).any(axis=-1).sum() > 100
    assert len({bar.tobytes() for bar in bars}) == len(rows)  # and the labels differ


def test_sheet_frames_and_frame_sheet():
    assert compare.sheet_frames(16, 0) == [0, 3, 6, 9, 12, 15]
    assert compare.sheet_frames(16, 1) == [1, 3, 5, 7, 9, 11, 13, 15]
    assert compare.sheet_frames(1, 0) == [0]
    frames = np.zeros((5, 300, 300, 3), np.uint8)
    image = compare.frame_sheet([("a", frames), ("b", frames)], [0, 2, 4], side=64)
    assert image.shape == (2 * (media.CAPTION_HEIGHT + 64), 3 * 64 + 2 * 3, 3)


@pytest.mark.parametrize("count", [0, 1, 5])
def test_too_few_or_too_many_checkpoints(ckpts, clips, count):
    chosen = [*ckpts, ckpts[0] + "-copy"][:count]  # the fifth need not exist: counted first
    with pytest.raises(gr.Error, match=rf"pick 2 to 4 checkpoints to compare \({count} chosen"):
        compare.compare(*clips, chosen, progress=None)


def test_the_same_checkpoint_twice_counts_once(ckpts, clips):
    with pytest.raises(gr.Error, match=r"\(1 chosen"):
        compare.compare(*clips, [ckpts[0], ckpts[0] + "/"], progress=None)


@pytest.mark.parametrize(("which", "message"), [
    ("no decoder", "no decoder, so its predictions cannot be shown as video"),
    ("action", "'action' world model .*no latent actions"),
])
def test_a_checkpoint_that_cannot_transfer_then_serve(ckpts, clips, cannot_transfer, which,
                                                      message):
    bad = cannot_transfer[which]
    with pytest.raises(gr.Error, match=message) as info:
        compare.compare(*clips, [ckpts[0], bad], progress=None)
    assert bad in str(info.value)
    _, numbers = compare.compare(*clips, ckpts[:2], steps=2, progress=None)  # next call works
    assert [m["steps"] for m in numbers["models"]] == [2, 2]


def test_missing_and_bad_uploads(ckpts, clips, tmp_path):
    with pytest.raises(gr.Error, match=r"sparse: context must be between 1 and 7 steps"):
        compare.compare(*clips, ckpts[:2], context=8, progress=None)  # the model is named
    with pytest.raises(gr.Error, match="upload a target video first"):
        compare.compare(clips[0], None, ckpts[:2], progress=None)
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video\n" * 20)
    with pytest.raises(gr.Error, match=r"source: notes\.mp4"):
        compare.compare(str(fake), clips[1], ckpts[:2], progress=None)


def test_shipped_choices_and_defaults():
    """The flagships are offered and chosen; the controller pipelines, which borrow their world
    models, are not offered."""
    options = compare.comparable(checkpoint_choices())
    names = [Path(c).name for c in options]
    assert {"pixel-noisy", "pixel-grid"} <= set(names)
    assert not any(n.startswith("controller-") for n in names)
    assert [Path(c).name for c in compare.default_models(options)] == ["pixel-noisy", "pixel-grid"]
    assert compare.short_names(["a/x", "b/x", "c/y"]) == ["a/x", "b/x", "y"]


def test_the_tab_and_its_api(ckpts):
    from studio.app import build_app

    demo = build_app(ckpts[0])
    api = {fn.api_name for fn in demo.fns.values()}
    assert {"compare", "compare_videos", "transfer"} <= api
    blocks = list(demo.blocks.values())
    ids = {b.elem_id for b in blocks}
    assert {"compare-models", "compare-run", "compare-sheet", "compare-video-0"} <= ids
    texts = " ".join(str(b.value) for b in blocks if b.get_block_name() == "markdown")
    assert glossary.meaning("camera motion") in texts  # the numbers' names explained


@pytest.fixture(scope="module")
def served(ckpts) -> str:
    """The studio served in this process on a free loopback port; its URL."""
    from studio.app import build_app, launch

    from .helpers import free_port

    demo = build_app(ckpts[0])
    _, url, _ = launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield url
    finally:
        demo.close()


@pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")
def test_compare_endpoint(served, ckpts, clips):
    """The ``compare`` API endpoint (gradio_client): a sheet and the numbers, then the videos
    from ``compare_videos``; too few checkpoints is an error, and the studio keeps serving."""
    pytest.importorskip("gradio_client")
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(served, verbose=False)
    source, target = handle_file(clips[0]), handle_file(clips[1])
    with pytest.raises(AppError, match=r"pick 2 to 4 checkpoints to compare \(1 chosen"):
        client.predict(source, target, ckpts[:1], api_name="/compare")
    sheet, numbers = client.predict(source, target, ckpts[:2], 1, 0, api_name="/compare")
    assert Path(sheet).suffix == ".png"
    assert [m["checkpoint"] for m in numbers["models"]] == ckpts[:2]
    videos = client.predict(numbers, api_name="/compare_videos")
    assert len(videos) == compare.MAX_MODELS and videos[2:] == (None, None)
    first = videos[0]["video"] if isinstance(videos[0], dict) else videos[0]
    assert read_video(first).num_frames == numbers["models"][0]["frames"]
