"""Operations that replay latent actions and measure them (paper §6, Tables 1–2): functions of a
:class:`~lam_core.pipeline.LatentActionPipeline` built on its building blocks (``encode``,
``infer_latents``, ``rollout``, ``decode``). ``pipe.transfer``, ``pipe.cycle`` and
``pipe.leakage`` call :func:`transfer`, :func:`cycle` and :func:`leakage`; the evaluations in
:mod:`lam_core.eval` call these and :func:`one_step_errors` (docs/DESIGN.md#data-flow).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import torch

from lam_core.clip import Clip
from lam_core.processing import ProcessedClip, VideoLike
from lam_core.rendering import render_at, upsample_frames
from lam_core.results import CycleResult, LeakageResult, TransferResult

if TYPE_CHECKING:  # the pipeline calls these functions; they only name its type
    from lam_core.pipeline import LatentActionPipeline

__all__ = ["Progress", "cycle", "leakage", "one_step_errors", "transfer"]

Progress = Callable[[float, str], None]
DisplayLike = Clip | ProcessedClip | np.ndarray  # display frames: the model's frames, larger


def _no_progress(fraction: float, message: str) -> None:
    """The default progress callback: does nothing."""


@torch.inference_mode()
def transfer(
    pipe: LatentActionPipeline,
    source: VideoLike,
    target: VideoLike,
    context: int = 1,
    steps: int | None = None,
    progress: Progress | None = None,
    *,
    display: DisplayLike | None = None,
    source_display: DisplayLike | None = None,
) -> TransferResult:
    """Replay the latent actions of ``source`` on ``target``.

    The target's first ``context`` steps are kept (their transitions use the target's own
    latents); the next ``steps`` transitions use the source's latents from the same time on.

    Args:
        pipe: the pipeline.
        source, target: clips (any fps and size: sampled and cropped by ``pipe.processor``),
            processed clips or tensors.
        context: real target steps to start from (≥ 1).
        steps: predicted steps (default: as many as the source allows).
        progress: ``progress(fraction, message)``.
        display: the target's display frames (``pipe.processor.display(...)``, or a processed
            clip read with ``display=…``): the same frames and crop as the model's, larger. The
            result then holds the transfer and the target's own rollout at that resolution
            (``transferred_display``, ``target_own_display``; docs/DESIGN.md#display-rendering).
        source_display: the source's display frames, passed through (``source_display``).
    """
    report = progress or _no_progress
    report(0.0, "encoding")
    x_src, x_tgt = pipe.to_tensor(source), pipe.to_tensor(target)  # processed once
    s_src, s_tgt = pipe.encode(x_src), pipe.encode(x_tgt)
    if context < 1 or context >= s_src.shape[1]:
        raise ValueError(f"context must be between 1 and {s_src.shape[1] - 1} steps, got {context}")
    horizon = s_src.shape[1] - context
    horizon = min(horizon if steps is None else steps, horizon)
    if horizon < 1:
        raise ValueError("steps must be ≥ 1")
    report(0.3, "inferring latent actions")
    c = context
    total = c - 1 + horizon
    z_src, z_tgt = _latents_of(pipe, s_src[:, : total + 1], s_tgt[:, : total + 1])
    cond = torch.cat([z_tgt[:, : c - 1], z_src[:, c - 1 : total]], dim=1)
    report(0.5, "rolling out")
    # the target driven by the source, the source and the target by their own: one batch
    runs = [(s_tgt[:, :c], cond), (s_src[:, :c], z_src[:, :total])]
    if z_tgt.shape[1] >= total:
        runs.append((s_tgt[:, :c], z_tgt[:, :total]))
    (pred, own_src, *own), moves = _rollouts(pipe, runs, displacements=display is not None)
    own_tgt = own[0] if own else None
    tgt_steps = min(s_tgt.shape[1], c + horizon)
    src_err = float(_step_errors(own_src, s_src[:, c : c + horizon]).mean())
    tgt_err = (
        float("nan")
        if own_tgt is None
        else float(_step_errors(own_tgt[:, : tgt_steps - c], s_tgt[:, c:tgt_steps]).mean())
    )
    shift = float("nan") if own_tgt is None else float(_step_errors(pred, own_tgt).mean())
    report(0.8, "decoding")
    frames = (c + horizon) * pipe.tubelet
    transferred = _decode_clip(pipe, torch.cat([s_tgt[:, :c], pred], dim=1))
    target_own = (
        None if own_tgt is None else _decode_clip(pipe, torch.cat([s_tgt[:, :c], own_tgt], dim=1))
    )
    result = TransferResult(
        source=pipe.to_clip(x_src[:, :frames]),
        target=pipe.to_clip(x_tgt[:, :frames]),
        transferred=transferred,
        target_own=target_own,
        latents=z_src[0, c - 1 : total].cpu().numpy(),
        source_error=src_err,
        target_error=tgt_err,
        transfer_shift=shift,
        context=c,
    )
    if source_display is not None:
        result.source_display = _display_clip(pipe, source_display, frames)
    if display is not None:
        report(0.9, "rendering at the display resolution")
        shown = _display_frames(display)
        result.target_display = _display_clip(pipe, shown, frames)
        result.display_rendering, result.display_note = _rendering(pipe, moves)
        jobs = {}
        if transferred is not None:
            jobs["transferred_display"] = (shown, transferred, _run(moves, 0))
        if target_own is not None:
            jobs["target_own_display"] = (shown, target_own, _run(moves, 2))
        for name, clip in _displayed_all(jobs, c * pipe.tubelet).items():
            setattr(result, name, clip)
    report(1.0, "done")
    return result


@torch.inference_mode()
def cycle(
    pipe: LatentActionPipeline,
    source: VideoLike,
    target: VideoLike,
    context: int = 1,
    progress: Progress | None = None,
    decode: bool = True,
    *,
    display: DisplayLike | None = None,
    source_display: DisplayLike | None = None,
) -> CycleResult:
    """Infer on A, roll out on B, re-infer on B's prediction, roll out on A (paper Table 2).

    Args:
        pipe: the pipeline.
        source, target: A and B.
        context: real steps each rollout starts from.
        progress: ``progress(fraction, message)``.
        decode: decode the three videos (False: only the errors; the clips are None).
        display, source_display: B's and A's display frames (as :func:`transfer`'s): B's
            transferred video, and A's direct and cycled ones, at those resolutions
            (``transferred_display``, ``direct_display``, ``cycled_display``).
    """
    report = progress or _no_progress
    report(0.0, "encoding")
    s_a, s_b = pipe.features(source), pipe.features(target)
    c = context
    horizon = min(s_a.shape[1], s_b.shape[1]) - c
    if c < 1 or horizon < 1:
        raise ValueError(f"need more than {c} steps in both clips for a cycle with context {c}")
    total = c - 1 + horizon
    # B's own latents serve only its c - 1 context transitions (none when c = 1)
    z_a, z_b = _latents_of(pipe, s_a[:, : total + 1], s_b[:, :c])
    report(0.3, "A → B")
    shown = decode and (display is not None or source_display is not None)
    (b_pred, direct), moves = _rollouts(pipe, [
        (s_b[:, :c], torch.cat([z_b[:, : c - 1], z_a[:, c - 1 : total]], 1)),
        (s_a[:, :c], z_a[:, :total]),
    ], displacements=shown)
    b_seq = torch.cat([s_b[:, :c], b_pred], dim=1)
    report(0.6, "B → A")
    z_cycled = pipe.infer_latents(b_seq)
    cond = torch.cat([z_a[:, : c - 1], z_cycled[:, c - 1 :]], 1)
    if shown:
        cycled, cycled_moves = pipe.rollout(s_a[:, :c], cond, return_displacements=True)
    else:
        cycled, cycled_moves = pipe.rollout(s_a[:, :c], cond), None
    truth = s_a[:, c : c + horizon]
    e_direct, e_cycled = _step_errors(direct, truth), _step_errors(cycled, truth)
    report(0.9, "decoding")
    ctx = s_a[:, :c]
    clip = (lambda f: _decode_clip(pipe, f)) if decode else (lambda f: None)
    result = CycleResult(
        direct=clip(torch.cat([ctx, direct], 1)),
        transferred=clip(b_seq),
        cycled=clip(torch.cat([ctx, cycled], 1)),
        direct_error=float(e_direct.mean()),
        cycled_error=float(e_cycled.mean()),
        ratio=float(e_cycled.mean() / max(e_direct.mean(), 1e-12)),
        direct_errors=e_direct,
        cycled_errors=e_cycled,
    )
    if shown and result.direct is not None:
        report(0.95, "rendering at the display resolution")
        result.display_rendering, result.display_note = _rendering(pipe, moves)
        jobs = {}
        if source_display is not None:
            a_shown = _display_frames(source_display)
            result.source_display = _display_clip(pipe, a_shown, result.direct.num_frames)
            jobs["direct_display"] = (a_shown, result.direct, _run(moves, 1))
            cycled_run = None if cycled_moves is None else cycled_moves[0]
            jobs["cycled_display"] = (a_shown, result.cycled, cycled_run)
        if display is not None:
            jobs["transferred_display"] = (_display_frames(display), result.transferred,
                                           _run(moves, 0))
        for name, clip in _displayed_all(jobs, c * pipe.tubelet).items():
            setattr(result, name, clip)
    report(1.0, "done")
    return result


@torch.no_grad()
def one_step_errors(
    pipe: LatentActionPipeline,
    features: torch.Tensor,
    actions: torch.Tensor | None = None,
    latents: torch.Tensor | None = None,
) -> np.ndarray:
    """Teacher-forced one-step feature L1 per transition ``(T'-1,)`` with IDM latents (or
    actions / nothing by the model's kind); ``latents`` ``(B, T'-1, D_z)`` replace the IDM's
    (e.g. shuffled across clips, to measure how much the model uses them)."""
    with pipe.autocast():
        if latents is None:
            pred = pipe.lam(features, actions).predictions
        else:
            if not pipe.lam.uses_latents:
                raise ValueError(f"a {pipe.lam.cfg.kind} model takes no latents")
            pred = pipe.lam.world_model(features[:, :-1], latents.to(features.dtype))
    return _step_errors(pred.float(), features[:, 1:])


@torch.no_grad()
def leakage(
    pipe: LatentActionPipeline, a: VideoLike, b: VideoLike, cut: int | None = None
) -> LeakageResult:
    """Replace A's frames from step ``cut`` on by B's (a scene cut) and compare the one-step
    error at the cut with the error at the same position without it (paper Table 1).

    Args:
        pipe: the pipeline.
        a, b: two clips (at least as long as each other after sampling).
        cut: first step taken from B (default: the middle step).
    """
    xa, xb = pipe.to_tensor(a), pipe.to_tensor(b)
    t = min(xa.shape[1], xb.shape[1])
    steps = t // pipe.tubelet
    cut = steps // 2 if cut is None else cut
    if not 1 <= cut < steps:
        raise ValueError(f"cut must be between 1 and {steps - 1}, got {cut}")
    f = cut * pipe.tubelet
    stitched = torch.cat([xa[:, :f], xb[:, f:t]], dim=1)
    errors = one_step_errors(pipe, pipe.features(xa[:, :t]))
    errors_cut = one_step_errors(pipe, pipe.features(stitched))
    ratio = float(errors_cut[cut - 1] / max(errors[cut - 1], 1e-12))
    return LeakageResult(errors, errors_cut, cut, ratio, pipe.to_clip(stitched))


# ---------------------------------------------------------------------------------- helpers
def _latents_of(
    pipe: LatentActionPipeline, a: torch.Tensor, b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """IDM latents of two feature sequences, in one batch when their shapes allow (a latent
    depends only on its own pair of steps, so this equals two calls to float rounding); a
    sequence of one step has none (``(B, 0, D_z)``)."""

    def latents(x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > 1:
            return pipe.infer_latents(x)
        return x.new_zeros(x.shape[0], 0, pipe.lam.cfg.latent_dim)

    if a.shape[0] != b.shape[0] or a.shape[1] != b.shape[1] or a.shape[1] < 2:
        return latents(a), latents(b)
    return pipe.infer_latents(torch.cat([a, b])).split(a.shape[0])


def _rollouts(
    pipe: LatentActionPipeline,
    runs: list[tuple[torch.Tensor, torch.Tensor]],
    displacements: bool = False,
) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
    """Rollouts of several ``(context, cond)`` pairs of equal shapes as one batch (the same
    predictions to float rounding: rows of a batch do not interact), and with
    ``displacements`` each run's composed displacements ``(H, 2, h, w)`` of its first row (None
    without them, or for a head without a flow)."""
    sizes = [len(ctx) for ctx, _ in runs]
    context, cond = torch.cat([ctx for ctx, _ in runs]), torch.cat([z for _, z in runs])
    if not displacements:
        return list(pipe.rollout(context, cond).split(sizes)), None
    out, moves = pipe.rollout(context, cond, return_displacements=True)
    if moves is None:
        return list(out.split(sizes)), None
    return list(out.split(sizes)), [m[0] for m in moves.split(sizes)]


def _step_errors(pred: torch.Tensor, true: torch.Tensor) -> np.ndarray:
    """Feature L1 per step: ``(B, S, N, D)`` × 2 → ``(S,)`` (mean over batch, tokens, width)."""
    return (pred - true).abs().mean(dim=(0, 2, 3)).cpu().numpy()


def _decode_clip(pipe: LatentActionPipeline, features: torch.Tensor) -> Clip | None:
    return None if pipe.decoder is None else pipe.to_clip(pipe.decode(features))


# ---------------------------------------------------------------------------------- display
def _display_frames(display: DisplayLike) -> np.ndarray:
    """``(T, H, W, 3)`` uint8 display frames of a clip, a processed clip read with display
    frames, or an array."""
    if isinstance(display, ProcessedClip):
        if display.display is None:
            raise ValueError("display: this clip was processed without display frames; read "
                             "its file with display=… (pipe.processor.read(path, display=512))")
        display = display.display
    frames = display.frames if isinstance(display, Clip) else np.asarray(display)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"display frames must be (T, H, W, 3) uint8, got {frames.shape} "
                         f"{frames.dtype}")
    return frames


def _display_clip(pipe: LatentActionPipeline, display: DisplayLike, frames: int) -> Clip:
    """The first ``frames`` display frames as a clip at the model's rate."""
    return Clip(_display_frames(display)[:frames], fps=pipe.fps)


def _run(moves: list[torch.Tensor] | None, i: int) -> torch.Tensor | None:
    """Run ``i``'s displacements of :func:`_rollouts` (None without them)."""
    return None if moves is None else moves[i]


def _rendering(pipe: LatentActionPipeline, moves) -> tuple[str, str]:
    """How the display frames are made: ``("flow", "")`` or ``("upsampled", why)``."""
    if moves is not None:
        return "flow", ""
    head, size = pipe.lam.cfg.head, pipe.image_size
    return "upsampled", (
        f"this model's world-model head ({head}) predicts no motion field, so its predictions "
        f"are shown as its {size}-px frames upsampled to the display size (no added detail)"
    )


def _displayed_all(jobs: dict[str, tuple], c: int) -> dict[str, Clip]:
    """:func:`_displayed` of each job ``name → (display, decoded, moves)``, two at a time in
    threads (the kernels release the GIL: a request of the studio, which runs one torch thread,
    renders on both cores, as it decodes its two uploads)."""
    if len(jobs) < 2:
        return {name: _displayed(*job, c) for name, job in jobs.items()}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(_displayed, *job, c) for name, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


def _displayed(display: np.ndarray, decoded: Clip, moves: torch.Tensor | None, c: int) -> Clip:
    """A rollout at the display resolution: the real context's display frames, then each
    predicted frame rendered from ``moves`` (:func:`lam_core.rendering.render_at`, anchored on
    the last context frame, the flow head's anchor) or, without them, the decoded frame
    upsampled.

    Args:
        display: ``(T, H, W, 3)`` display frames of the clip the rollout started from.
        decoded: the decoded rollout (context then predictions) at the model's resolution.
        moves: ``(H, 2, h, w)`` composed displacements (one frame per step), or None.
        c: context frames at the start of ``decoded``.
    """
    if len(display) < c:
        raise ValueError(f"display: {len(display)} frames, fewer than the {c} context frames")
    predicted = decoded.frames[c:]
    height, width = display.shape[1:3]
    if moves is not None and len(moves) == len(predicted):
        rendered = render_at(display[c - 1], moves, predicted)
    else:
        rendered = upsample_frames(predicted, height, width)
    return Clip(np.concatenate([display[:c], rendered]), fps=decoded.fps)
