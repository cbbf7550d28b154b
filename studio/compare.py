"""Handlers of the Compare tab: one transfer through several checkpoints side by side (paper
Fig. S4: how models with different latents move the same target).

:func:`compare` replays the source's latent actions on the target with each of 2 to 4 checkpoints,
as the Transfer tab does (:func:`studio.handlers.run_transfer`: the uploads read once per clip
processor, at the model's resolution and at the display one), and returns a frame sheet (one
labelled row for the source, the target and each model, :func:`frame_sheet`) and the numbers:
per model, the Transfer tab's errors and the camera motion of the source and of the transfer
(:func:`camera_motion`), and its video: the transfer at the display resolution, one panel
captioned with the model's name. These are the API endpoint ``compare``; ``compare_videos`` turns
the numbers into the videos. Bad input raises ``gr.Error`` (:func:`studio.handlers.user_errors`).
"""

from __future__ import annotations

import math
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from lam_core import LatentActionPipeline
from lam_core.eval.motion import direction_agreement, step_shifts
from studio.glossary import term
from studio.handlers import (
    PROGRESS,
    TRANSFER_ROWS,
    Progress,
    as_callback,
    bad_input,
    finite,
    load_pair,
    needs_decoder,
    run_transfer,
    user_errors,
)
from studio.media import (
    DISPLAY,
    OUTPUTS,
    Panel,
    filmstrip,
    fit_panel,
    panel_side,
    save_video,
    side_by_side,
)
from studio.models import (
    PIPELINES,
    PipelineCache,
    has_controller,
    is_latent_with_decoder,
    latent_words,
    pipeline_components,
)

MIN_MODELS, MAX_MODELS = 2, 4
DEFAULT_MODELS = ("pixel-noisy", "pixel-grid")  # the shipped one-latent and grid flagships
SHEET_COLUMNS = 8  # frames per row of the frame sheet, from the last real one to the end
SHEET_SIDE = 128  # their side in pixels


# ---------------------------------------------------------------------------------- choices
def comparable(choices: list[str]) -> list[str]:
    """The checkpoints the Compare tab offers among ``choices``: latent models with a decoder,
    one per world model (a controller pipeline that borrows another's world model, e.g.
    ``controller-reach`` → ``pixel-noisy/lam``, is left out for the one without a controller)."""
    playable = [c for c in choices if is_latent_with_decoder(c)]
    first: dict[object, str] = {}
    for c in sorted(playable, key=has_controller):  # stable: those without a controller first
        first.setdefault(pipeline_components(c).get("lam"), c)
    kept = set(first.values())
    return [c for c in playable if c in kept]


def default_models(options: list[str]) -> list[str]:
    """The Compare tab's first selection: the shipped :data:`DEFAULT_MODELS` found among
    ``options``, topped up to :data:`MIN_MODELS` with the first others."""
    picked = [c for name in DEFAULT_MODELS for c in options if Path(c).name == name][:MAX_MODELS]
    return picked + [c for c in options if c not in picked][: max(MIN_MODELS - len(picked), 0)]


def short_names(checkpoints: list[str]) -> list[str]:
    """What the captions call each checkpoint: its folder's name (``pixel-noisy``), or the whole
    name where two folders share one."""
    names = [Path(c.rstrip("/")).name or c for c in checkpoints]
    return [n if names.count(n) == 1 else c for n, c in zip(names, checkpoints)]


def _chosen(checkpoints: list[str] | str | None) -> list[str]:
    """The distinct checkpoints chosen (a folder picked twice, under two spellings, counts once);
    fewer than :data:`MIN_MODELS` or more than :data:`MAX_MODELS` are refused."""
    if isinstance(checkpoints, str):
        checkpoints = [checkpoints]
    chosen: dict[str, str] = {}
    for c in checkpoints or []:
        c = str(c).strip()
        if c:
            chosen.setdefault(PipelineCache.key(c), c)
    n = len(chosen)
    if not MIN_MODELS <= n <= MAX_MODELS:
        raise bad_input(
            f"pick {MIN_MODELS} to {MAX_MODELS} checkpoints to compare ({n} chosen"
            f"{': pick another one' if n < MIN_MODELS else ': remove some'})",
            title=f"{'too few' if n < MIN_MODELS else 'too many'} checkpoints",
        )
    return list(chosen.values())


def _open(checkpoint: str) -> LatentActionPipeline:
    """The pipeline of ``checkpoint``, refused (with why) when it cannot transfer: no decoder, or
    a world model without latent actions."""
    pipe = PIPELINES.get(checkpoint)
    kind = pipe.lam.cfg.kind
    if kind != "latent":
        takes = "real actions" if kind == "action" else "no action at all"
        raise bad_input(
            f"{checkpoint} is a {kind!r} world model (it takes {takes}): it infers no latent "
            "actions from a video, so it has none to transfer; pick a latent action model"
        )
    needs_decoder(pipe, checkpoint)
    return pipe


# ---------------------------------------------------------------------------------- numbers
def camera_motion(source: np.ndarray, transferred: np.ndarray, first: int) -> dict:
    """How the whole picture moves in the source and in the transfer from frame ``first`` (the
    last real one) on: ``{"source", "transfer"}`` (mean shift per frame, px, phase correlation:
    :func:`lam_core.eval.motion.step_shifts`), ``"cosine"`` and ``"magnitude_ratio"``
    (:func:`~lam_core.eval.motion.direction_agreement` of the transfer's shifts with the
    source's; ``None`` where the source does not move)."""
    true, pred = step_shifts(source[first:]), step_shifts(transferred[first:])
    n = min(len(true), len(pred))
    agree = direction_agreement(pred[:n], true[:n])
    return {
        "source": finite(float(np.linalg.norm(true[:n], axis=1).mean())) if n else None,
        "transfer": finite(float(np.linalg.norm(pred[:n], axis=1).mean())) if n else None,
        "cosine": finite(agree["cosine"]),
        "magnitude_ratio": finite(agree["magnitude_ratio"]),
    }


def _value(x: float | None, fmt: str = ".4f", prefix: str = "") -> str:
    return "—" if x is None else f"{prefix}{x:{fmt}}"


def model_line(model: dict) -> str:
    """Markdown about one model's transfer: its name and latents, then the Transfer tab's
    errors and the camera motion of the source and of the transfer."""
    errors = " · ".join(
        f"{term(label)} {_value(model.get(key))}" for key, label, _ in TRANSFER_ROWS
    )
    cam = model.get("camera") or {}
    camera = (
        f"{term('camera motion')}: source {_value(cam.get('source'), '.2f')} px/frame, transfer "
        f"{_value(cam.get('transfer'), '.2f')} (cos {_value(cam.get('cosine'), '.2f')}, "
        f"{_value(cam.get('magnitude_ratio'), '.2f', '×')})"
    )
    return f"**{model['name']}** · {model['latent']}  \n{errors}  \n{camera}"


# ---------------------------------------------------------------------------------- pictures
def sheet_frames(length: int, first: int, columns: int = SHEET_COLUMNS) -> list[int]:
    """The frame indices a frame sheet shows of sequences of ``length`` frames: up to ``columns``
    from ``first`` (the last real frame) on, a whole number of frames apart, the fewest that
    reach the end (16 frames from 0 in 8 columns: 0, 3, …, 15)."""
    first = min(max(first, 0), length - 1)
    step = max(math.ceil((length - 1 - first) / max(columns - 1, 1)), 1)
    return list(range(first, length, step))[:columns]


def frame_sheet(
    rows: list[tuple[str, np.ndarray]], picks: list[int], side: int = SHEET_SIDE
) -> np.ndarray:
    """One labelled row per sequence (``(T, H, W, 3)`` frames) showing its frames ``picks``
    (:func:`sheet_frames`), ``side`` px each (display frames resized with antialiasing,
    :func:`studio.media.fit_panel`): :func:`studio.media.filmstrip`."""
    return filmstrip(
        [(title, fit_panel(frames[picks], side)) for title, frames in rows],
        max_columns=len(picks),
        side=side,
    )


def _save_image(image: np.ndarray, stem: str) -> str:
    path = OUTPUTS.new_path(stem, ".png")
    Image.fromarray(image).save(path)
    return str(path)


# ---------------------------------------------------------------------------------- compare
def _part(progress: Progress | None, i: int, n: int, name: str) -> Progress | None:
    """Model ``i`` of ``n``'s share of the progress bar (the first 90 %)."""
    if progress is None:
        return None
    return lambda fraction, desc="": progress(
        0.9 * (i + float(fraction)) / n, desc=f"{name} ({i + 1}/{n}): {desc}"
    )


def compare(
    source: str | None,
    target: str | None,
    checkpoints: list[str] | str | None,
    context: float = 1,
    steps: float = 0,
    progress: Progress | None = PROGRESS,
) -> tuple[str, dict]:
    """Replay the source's latent actions on the target with each of 2 to 4 checkpoints.

    Args:
        source, target: video files.
        checkpoints: pipeline folders or hub ids: latent action models with a decoder.
        context: real target steps kept before the source's actions take over.
        steps: predicted steps; 0 = as many as both clips allow.

    Returns:
        ``(sheet, numbers)``: a PNG with one labelled row of frames for the source, the target
        and each model's transfer (the same frames of each), and ``{"models": [{"checkpoint",
        "name", "latent", "source_error", "target_error", "transfer_shift", "camera": {"source",
        "transfer", "cosine", "magnitude_ratio"}, "context", "steps", "frames", "fps",
        "rendering", "video", "notes"}, ...], "sheet": {"rows", "frames"}, "notes"}`` (``video``:
        the transfer at the display resolution, one panel, :func:`compare_videos`; ``camera``:
        :func:`camera_motion`; ``None`` where undefined).
    """
    with user_errors("compare"):
        chosen = _chosen(checkpoints)
        for path, name in ((source, "source"), (target, "target")):
            if not path:
                raise bad_input(
                    f"upload a {name} video first (or pick an example)", title="missing input"
                )
        pipes = [_open(c) for c in chosen]
        names = short_names(chosen)
        reads: dict = {}  # the uploads, read once per clip processor
        notes: list[str] = []
        runs = []
        for i, (pipe, name) in enumerate(zip(pipes, names)):
            if pipe.processor not in reads:
                src, tgt, read = load_pair(
                    pipe, source, target, ("source", "target"), display=DISPLAY
                )
                reads[pipe.processor] = src, tgt
                notes += [n for n in read if n not in notes]
            try:
                result, more = run_transfer(pipe, *reads[pipe.processor], context, steps,
                                            _part(progress, i, len(pipes), name))
            except ValueError as e:  # e.g. more context than this model's steps: say which
                raise ValueError(f"{name}: {e}") from None
            runs.append((pipe, result, [f"{name}: {n}" for n in more]))
        rates = sorted({float(src.fps) for src, _ in reads.values()})
        if len(rates) > 1:
            notes.append(f"the models read the uploads at different rates ("
                         f"{', '.join(f'{r:.3g}' for r in rates)} fps): the sheet's rows are "
                         "aligned by frame index, not by time")
        as_callback(progress)(0.92, "writing the videos and the frame sheet")
        side = panel_side(*(r.transferred_display.frames for _, r, _ in runs))
        models = []
        for i, ((pipe, result, more), checkpoint, name) in enumerate(zip(runs, chosen, names)):
            ctx_frames = result.context * pipe.tubelet
            shown = side_by_side([Panel(name, fit_panel(result.transferred_display.frames, side),
                                        ctx_frames)], side)
            models.append({
                "checkpoint": checkpoint,
                "name": name,
                "latent": latent_words(pipe),
                **{key: finite(getattr(result, key)) for key, _, _ in TRANSFER_ROWS},
                "camera": camera_motion(result.source.frames, result.transferred.frames,
                                        ctx_frames - 1),
                "context": result.context,
                "steps": int(result.latents.shape[0]),
                "frames": int(shown.shape[0]),
                "fps": pipe.fps,
                "rendering": result.display_rendering,
                "video": save_video(shown, pipe.fps, f"compare-{i}"),
                "notes": more,
            })
        result = runs[0][1]  # the uploads' display frames, as the first model read them
        rows = [
            ("source", result.source_display.frames),
            ("target", result.target_display.frames),
            *((f"{name}: target + source's actions", r.transferred_display.frames)
              for name, (_, r, _) in zip(names, runs)),
        ]
        first = min(r.context * p.tubelet for p, r, _ in runs) - 1
        picks = sheet_frames(min(len(frames) for _, frames in rows), first)
        rows[0] = (f"source · frames {', '.join(map(str, picks))} (frame {picks[0]}: the last "
                   "real one, then predicted)", rows[0][1])
        image = frame_sheet(rows, picks)
        numbers = {
            "models": models,
            "sheet": {"rows": [title for title, _ in rows], "frames": picks},
            "notes": notes + [n for m in models for n in m["notes"]],
        }
        return _save_image(image, "compare-sheet"), numbers


def compare_videos(numbers: dict | None) -> tuple[str | None, ...]:
    """The models' videos of a :func:`compare` result, :data:`MAX_MODELS` of them (``None``
    for the slots no model fills)."""
    videos = [m.get("video") for m in (numbers or {}).get("models") or []]
    return tuple(videos[:MAX_MODELS] + [None] * (MAX_MODELS - len(videos[:MAX_MODELS])))


def model_slots(numbers: dict | None) -> list:
    """The tab's per-model columns: shown for the models of a :func:`compare` result, each with
    its :func:`model_line` (the others hidden)."""
    models = ((numbers or {}).get("models") or [])[:MAX_MODELS]
    columns = [gr.Column(visible=i < len(models)) for i in range(MAX_MODELS)]
    lines = [model_line(m) for m in models] + [""] * (MAX_MODELS - len(models))
    return columns + lines
