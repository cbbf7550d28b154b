"""Handlers of the Transfer (with its Cycle section) and Leakage tabs: plain functions.

Each takes file paths and numbers, calls :class:`lam_core.LatentActionPipeline` (``transfer``,
``cycle``, ``leakage``), and returns a video path plus a JSON-able dict of numbers: what the
Gradio API endpoints ``transfer`` and ``cycle`` return. The figures and tables shown beside them
are rebuilt from that dict by the ``*_details`` functions. Bad input raises ``gr.Error`` with a
message that names the input and what is wrong (:func:`user_errors`).

Transfer and cycle read each upload once at the model's resolution and at a display resolution
(long side ≤ :data:`studio.media.DISPLAY`, the same crop) and show the results at the display
resolution (docs/DESIGN.md#display-rendering); the same panels at the model's resolution are
written next to it, ``numbers["model_video"]`` (:func:`model_video`).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import plotly.graph_objects as go

from lam_core import CheckpointError, Clip, LatentActionPipeline, TransferResult
from lam_core.eval.common import VIDEO_SUFFIXES, heldout_clips
from lam_core.eval.frames import change_frames
from lam_core.pipeline import REPO_ROOT
from lam_core.processing import ProcessedClip
from lam_core.video import VideoDecodeError
from studio import plots
from studio.media import (
    CAPTION_HEIGHT,
    DISPLAY,
    Panel,
    fit_panel,
    panel_side,
    read_upload,
    save_video,
    side_by_side,
)
from studio.models import PIPELINES, CheckpointMissing

log = logging.getLogger(__name__)
Progress = Callable[..., Any]
EXAMPLES_DIR = REPO_ROOT / "assets" / "clips"
CHANGE_GAIN = 4.0  # amplification of the transfer's change panel
PROGRESS = gr.Progress()  # Gradio fills it in for a parameter whose default is a gr.Progress

TRANSFER_ROWS = (
    ("source_error", "source error", "feature L1 of the source rolled out with its own latents"),
    ("target_error", "target error", "feature L1 of the target rolled out with its own latents"),
    ("transfer_shift", "transfer shift",
     "feature L1 between the target driven by the source's actions and by its own"),
)
CYCLE_ROWS = (
    ("direct_error", "direct error", "A rolled out with its own latents vs A (feature L1)"),
    ("cycled_error", "cycled error", "A rolled out with latents re-inferred from B' vs A"),
    ("ratio", "ratio", "cycled / direct (paper Table 2: ×1.03–×1.34)"),
)


# ---------------------------------------------------------------------------------- plumbing
def bad_input(message: str, title: str = "bad input") -> gr.Error:
    """A ``gr.Error`` for a user mistake: shown in the UI and to API clients, no traceback."""
    return gr.Error(message, title=title, print_exception=False)


@contextlib.contextmanager
def user_errors(action: str) -> Iterator[None]:
    """Turn what can go wrong with user input into ``gr.Error`` with a readable message."""
    try:
        yield
    except gr.Error:
        raise
    except (VideoDecodeError, CheckpointError, CheckpointMissing) as e:
        raise bad_input(str(e), f"{action}: bad input") from None
    except (ValueError, ImportError) as e:
        raise bad_input(str(e), f"{action} failed") from None
    except Exception as e:  # keep serving; the log has the traceback
        log.exception("%s failed", action)
        raise gr.Error(f"{type(e).__name__}: {e}", title=f"{action} failed unexpectedly") from None


def as_callback(progress: Progress | None) -> Callable[[float, str], None]:
    """The pipeline's ``progress(fraction, message)`` on top of a ``gr.Progress``."""
    if progress is None:
        return lambda fraction, message: None
    return lambda fraction, message: progress(float(fraction), desc=message)


def finite(x: float) -> float | None:
    """JSON has no NaN: ``None`` for NaN/inf (browsers cannot parse NaN)."""
    return float(x) if x is not None and math.isfinite(x) else None


def load_pair(
    pipe: LatentActionPipeline,
    first: str | None,
    second: str | None,
    names: tuple[str, str],
    display: int | None = None,
) -> tuple[ProcessedClip, ProcessedClip, list[str]]:
    """Decode two uploads with ``pipe.processor`` (capped); returns both processed clips (what
    the model takes: sampled, resized and tensorised once; with ``display``, also their display
    frames, side ≤ ``display``, from the same decode) and the cap notes.

    The two files are decoded side by side, one thread each (the decoders release the GIL), so
    one request uses both cores while it decodes (docs/PERFORMANCE.md)."""
    for path, name in zip((first, second), names):
        if not path:
            raise bad_input(
                f"upload a {name} video first (or pick an example)", title="missing input"
            )
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(read_upload, path, pipe.processor, name, display=display)
            for path, name in zip((first, second), names)
        ]
        uploads = [f.result() for f in futures]  # the first input's error first, as before
    notes = [u.note for u in uploads if u.note]
    for note in notes:
        gr.Warning(note)
    return uploads[0].processed, uploads[1].processed, notes


def needs_decoder(pipe: LatentActionPipeline, checkpoint: str) -> None:
    """Refuse a pipeline without a decoder: its predictions cannot be shown as video."""
    if pipe.decoder is None:
        raise bad_input(f"{checkpoint} has no decoder, so its predictions cannot be shown as video")


def model_frames(pipe: LatentActionPipeline, clip: Clip | ProcessedClip) -> np.ndarray:
    """The frames the model sees of ``clip`` (sampled, cropped, cut to whole steps); those of a
    processed clip as they are."""
    frames = pipe.processor.process(clip).clip.frames
    return frames[: len(frames) - len(frames) % pipe.tubelet]


def _steps(clip: ProcessedClip, pipe: LatentActionPipeline) -> int:
    return clip.num_frames // pipe.tubelet


def run_transfer(
    pipe: LatentActionPipeline,
    src: ProcessedClip,
    tgt: ProcessedClip,
    context: float = 1,
    steps: float = 0,
    progress: Progress | None = None,
) -> tuple[TransferResult, list[str]]:
    """The transfer of two uploads read with ``display`` (:func:`load_pair`), as the Transfer
    tab runs it: ``context`` real target steps, then ``steps`` predicted ones (0 = as many as both
    clips allow), rendered at the display resolution. Returns the result and the notes on it
    (the rendering's fallback; a target shorter than the prediction)."""
    context = int(context)
    both = min(_steps(src, pipe), _steps(tgt, pipe)) - context
    steps = int(steps) if steps and int(steps) > 0 else max(both, 1)
    result = pipe.transfer(
        src, tgt, context=context, steps=steps, progress=as_callback(progress),
        display=tgt, source_display=src,
    )
    notes = [result.display_note] if result.display_note else []
    if result.target.num_frames < result.transferred.num_frames:
        notes.append(
            "the target is shorter than the prediction: its last frame is held and "
            "target error / transfer shift are undefined (null)"
        )
    return result, notes


def _videos(
    pipe: LatentActionPipeline, shown: list[Panel], model: list[Panel], stem: str
) -> tuple[str, str, np.ndarray]:
    """The side-by-side video of display-resolution panels and, next to it, the same panels at
    the model's resolution (``<stem>-model``); returns both paths and the display frames."""
    side = panel_side(*(p.frames for p in shown))
    for p in shown:
        p.frames = fit_panel(p.frames, side)
    frames = side_by_side(shown, side)
    video = save_video(frames, pipe.fps, stem)
    return video, save_video(side_by_side(model), pipe.fps, f"{stem}-model"), frames


def _display_numbers(frames: np.ndarray, rendering: str | None) -> dict:
    """What the numbers say of the shown video: its panel side, its size and how the
    predictions were rendered (``"flow"`` or ``"upsampled"``)."""
    return {"panel": int(frames.shape[1] - CAPTION_HEIGHT), "width": int(frames.shape[2]),
            "height": int(frames.shape[1]), "rendering": rendering}


def model_video(numbers: dict | None) -> str | None:
    """The model-resolution video of a transfer or cycle result (``numbers["model_video"]``),
    for a second video output (the main one is at the display resolution)."""
    return (numbers or {}).get("model_video")


# ---------------------------------------------------------------------------------- transfer
def transfer(
    source: str | None,
    target: str | None,
    checkpoint: str | None,
    context: float = 1,
    steps: float = 0,
    progress: Progress | None = PROGRESS,
) -> tuple[str, dict]:
    """Replay the source's latent actions on the target.

    Args:
        source, target: video files.
        checkpoint: pipeline folder or hub id.
        context: real target steps kept before the source's actions take over.
        steps: predicted steps; 0 = as many as both clips allow.

    Returns:
        ``(video, numbers)``: an mp4 of source | target | target with the source's actions |
        target with its own actions | their difference ×``CHANGE_GAIN`` (the last two when the
        target is as long as the prediction) at the uploads' display resolution (long side ≤
        :data:`~studio.media.DISPLAY`), and
        ``{"source_error", "target_error", "transfer_shift", "context", "steps", "frames", "fps",
        "latents", "display", "model_video", "checkpoint", "notes"}`` (errors ``None`` where not
        defined; ``display``: the shown video's panel side, width, height and ``rendering``,
        ``"flow"`` or ``"upsampled"``; ``model_video``: the same panels at the model's
        resolution, a file next to ``video``).
    """
    with user_errors("transfer"):
        pipe = PIPELINES.get(checkpoint)
        needs_decoder(pipe, checkpoint)
        src, tgt, notes = load_pair(pipe, source, target, ("source", "target"), display=DISPLAY)
        result, more = run_transfer(pipe, src, tgt, context, steps, progress)
        ctx_frames = result.context * pipe.tubelet

        def panels(source, target, transferred, own) -> list[Panel]:
            out = [
                Panel("source", source),
                Panel("target", target),
                Panel("target + source's actions", transferred, ctx_frames),
            ]
            if own is not None:  # what the source's actions changed, amplified
                out += [
                    Panel("target + own actions", own, ctx_frames),
                    Panel(f"change x{CHANGE_GAIN:g}", change_frames(transferred, own, CHANGE_GAIN)),
                ]
            return out

        def frames_of(clip):
            return None if clip is None else clip.frames

        video, small, frames = _videos(
            pipe,
            panels(result.source_display.frames, result.target_display.frames,
                   result.transferred_display.frames, frames_of(result.target_own_display)),
            panels(result.source.frames, result.target.frames, result.transferred.frames,
                   frames_of(result.target_own)),
            "transfer",
        )
        notes += more
        numbers = {
            "checkpoint": checkpoint,
            **{key: finite(getattr(result, key)) for key, _, _ in TRANSFER_ROWS},
            "context": result.context,
            "steps": int(result.latents.shape[0]),
            "frames": int(frames.shape[0]),
            "fps": pipe.fps,
            "latents": np.round(result.latents.astype(float), 5).tolist(),
            "display": _display_numbers(frames, result.display_rendering),
            "model_video": small,
            "notes": notes,
        }
        return video, numbers


def result_notes(numbers: dict | None) -> str:
    """The notes of a result (how an upload was sampled or cut, what is undefined) as Markdown
    shown under its video: one bullet each, empty when there are none."""
    return "\n".join(f"- {note}" for note in (numbers or {}).get("notes") or [])


def metrics_table(numbers: dict, rows: tuple[tuple[str, str, str], ...]) -> list[list[str]]:
    """``[[metric, value, meaning], ...]`` for a ``gr.Dataframe``."""
    table = []
    for key, label, meaning in rows:
        value = numbers.get(key)
        shown = "—" if value is None else (f"×{value:.3f}" if key == "ratio" else f"{value:.4f}")
        table.append([label, shown, meaning])
    return table


def transfer_details(numbers: dict | None) -> tuple[list[list[str]], go.Figure]:
    """The table of errors and the latents figure of a :func:`transfer` result."""
    if not numbers:
        return [], plots.empty_figure("run a transfer to see the latent actions")
    latents = np.asarray(numbers["latents"], dtype=np.float32)
    first = int(numbers["context"]) - 1
    return metrics_table(numbers, TRANSFER_ROWS), plots.latents_figure(latents, first)


# ---------------------------------------------------------------------------------- cycle
def cycle(
    source: str | None,
    target: str | None,
    checkpoint: str | None,
    context: float = 1,
    progress: Progress | None = PROGRESS,
) -> tuple[str, dict]:
    """Cycle A → B → A (paper Table 2) on a pair of videos.

    Returns:
        ``(video, numbers)``: an mp4 of A | A direct | B with A's actions | A cycled at the
        uploads' display resolution, and ``{"direct_error", "cycled_error", "ratio",
        "direct_errors", "cycled_errors", "context", "frames", "fps", "display", "model_video",
        "checkpoint", "notes"}`` (``display`` and ``model_video`` as :func:`transfer`'s).
    """
    with user_errors("cycle"):
        pipe = PIPELINES.get(checkpoint)
        needs_decoder(pipe, checkpoint)
        a, b, notes = load_pair(
            pipe, source, target, ("clip A (source)", "clip B (target)"), display=DISPLAY
        )
        context = int(context)
        result = pipe.cycle(a, b, context=context, progress=as_callback(progress), display=b,
                            source_display=a)
        ctx_frames = context * pipe.tubelet

        def panels(real, direct, transferred, cycled) -> list[Panel]:
            return [
                Panel("A (real)", real),
                Panel("A direct", direct, ctx_frames),
                Panel("B with A's actions", transferred, ctx_frames),
                Panel("A cycled", cycled, ctx_frames),
            ]

        video, small, frames = _videos(
            pipe,
            panels(result.source_display.frames, result.direct_display.frames,
                   result.transferred_display.frames, result.cycled_display.frames),
            panels(model_frames(pipe, a)[: result.direct.num_frames], result.direct.frames,
                   result.transferred.frames, result.cycled.frames),
            "cycle",
        )
        if result.display_note:
            notes.append(result.display_note)
        numbers = {
            "checkpoint": checkpoint,
            **{key: finite(getattr(result, key)) for key, _, _ in CYCLE_ROWS},
            "direct_errors": np.asarray(result.direct_errors, float).round(6).tolist(),
            "cycled_errors": np.asarray(result.cycled_errors, float).round(6).tolist(),
            "context": context,
            "frames": int(frames.shape[0]),
            "fps": pipe.fps,
            "display": _display_numbers(frames, result.display_rendering),
            "model_video": small,
            "notes": notes,
        }
        return video, numbers


def cycle_details(numbers: dict | None) -> tuple[list[list[str]], go.Figure]:
    """The table and per-step error curves of a :func:`cycle` result."""
    if not numbers:
        return [], plots.empty_figure("run a cycle to see its per-step errors")
    fig = plots.step_errors_figure(
        {"direct": numbers["direct_errors"], "cycled": numbers["cycled_errors"]},
        "cycle A → B → A: error of A's rollout per predicted step",
        first_step=int(numbers["context"]),
    )
    return metrics_table(numbers, CYCLE_ROWS), fig


# ---------------------------------------------------------------------------------- leakage
def leakage(
    clip_a: str | None,
    clip_b: str | None,
    checkpoint: str | None,
    cut: float = 0,
    baseline: str | None = None,
    progress: Progress | None = PROGRESS,
) -> tuple[str, go.Figure, str, dict]:
    """Future leakage (paper Table 1): A's end replaced by B's from step ``cut`` on.

    Args:
        clip_a, clip_b: video files.
        checkpoint: pipeline folder or hub id.
        cut: first step taken from B (0 = the middle).
        baseline: another checkpoint measured on the same clips and cut (the paper sets the
            latent models against a deterministic one: without a latent nothing can leak);
            None or "" for none.

    Returns:
        ``(video, figure, summary, numbers)``: the stitched clip, one-step errors with and
        without the cut (and the baseline's), a Markdown sentence with the ratio(s), and the
        numbers (the baseline's under ``"baseline"``).
    """
    with user_errors("leakage"):
        pipe = PIPELINES.get(checkpoint)
        a, b, notes = load_pair(pipe, clip_a, clip_b, ("clip A", "clip B"))
        report = as_callback(progress)
        report(0.1, "encoding both clips and the stitched one")
        result = pipe.leakage(a, b, cut=int(cut) if cut and int(cut) > 0 else None)
        base = None
        if baseline and baseline != checkpoint:
            report(0.5, f"the baseline: {Path(baseline).name}")
            other = PIPELINES.get(baseline)  # the same decoded clips (its processor adapts them)
            base = other.leakage(a, b, cut=result.cut)
        report(0.9, "drawing")
        cut_frame = result.cut * pipe.tubelet
        stitched = result.stitched.frames
        frames = side_by_side([
            Panel("A | B stitched", stitched),
            Panel("A (no cut)", model_frames(pipe, a)[: len(stitched)]),
        ])
        marks = np.arange(len(frames)) >= cut_frame
        frames[marks, :3] = (245, 170, 60)  # an orange line on top once B has taken over
        video = save_video(frames, pipe.fps, "leakage")
        curves = {"no cut (A)": result.errors, "with cut (A then B)": result.errors_cut}
        if base is not None:
            curves |= {"baseline, no cut": base.errors, "baseline, with cut": base.errors_cut}
        fig = plots.step_errors_figure(
            curves,
            "one-step error per transition (teacher forcing, IDM latents)",
            first_step=1,
            cut=result.cut,
        )
        numbers = {
            "checkpoint": checkpoint,
            **_leakage_numbers(result),
            "baseline": None if base is None else {"checkpoint": baseline,
                                                   **_leakage_numbers(base)},
            "notes": notes,
        }
        summary = (
            f"### Error at the cut ×{result.ratio:.2f} the error without it\n"
            f"Transition {result.cut} (step {result.cut - 1} → {result.cut}) is where B replaces "
            f"A. A ratio well above 1 means the latent action cannot carry the whole next frame "
            f"(little future leakage); the paper reports ×2.0–×2.5 (Table 1)."
        )
        if base is not None:
            summary += (
                f"\n\nThe baseline **{Path(baseline).name}** ({other.lam.cfg.kind}) on the "
                f"same cut: **×{base.ratio:.2f}**. A latent model whose ratio is near or above its "
                f"deterministic baseline's predicts the cut no better than a model that sees no "
                f"latent: what its latent carries is the action, not the next frame."
            )
        if notes:
            summary += "\n\n" + result_notes(numbers)
        return video, fig, summary, numbers


def _leakage_numbers(result) -> dict:
    return {"cut": result.cut, "ratio": finite(result.ratio),
            "errors": np.asarray(result.errors, float).round(6).tolist(),
            "errors_cut": np.asarray(result.errors_cut, float).round(6).tolist()}


# ---------------------------------------------------------------------------------- examples
def example_pairs(folder: str | Path = EXAMPLES_DIR) -> list[tuple[str, str]]:
    """Pairs of shipped example videos (``assets/clips/<kind>-<i>.mp4``): consecutive clips of the
    same kind (``miniwild-0`` → ``miniwild-1``, ``reach-0`` → ``reach-1``, ...)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    kinds: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in VIDEO_SUFFIXES:
            kinds.setdefault(path.stem.rsplit("-", 1)[0], []).append(path)
    return [
        (str(clips[i]), str(clips[i + 1]))
        for clips in kinds.values()
        for i in range(0, len(clips) - 1, 2)
    ]


def miniwild_pair(seed: float = 0) -> tuple[str, str]:
    """Two MiniWild validation clips (seeds ``seed`` and ``seed + 1``) written as mp4: examples
    that need nothing shipped."""
    with user_errors("MiniWild example"):
        clips = heldout_clips(2, num_frames=16, seed_offset=int(seed))
        return tuple(
            save_video(c.frames, c.fps, f"miniwild-{int(seed) + i}") for i, c in enumerate(clips)
        )  # type: ignore[return-value]
