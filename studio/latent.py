"""Handlers of the Latent space tab: inferred vs sampled latents (paper App. B, Fig. S1).

For each chosen checkpoint, :func:`lam_core.eval.sampling.sampling` infers latents with the IDM
on clips (held-out MiniWild or uploads), samples as many without a video, embeds both together
with UMAP and scores how separable they are (held-out k-NN accuracy: 0.5 = indistinguishable).
Latent spaces of different checkpoints are not aligned, so each gets its own panel, as in the
paper's figure. For a point the tab shows its frame pair: for an inferred latent the two frames
it was inferred from, for a sampled one the first clip's first frame and the world model's
prediction under that latent.

UMAP compiles with numba on its first fit (15–37 s per process): the studio warms it
once in a background thread at start-up (:func:`warm_umap_in_background`).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go
import torch

from lam_core.clip import Clip
from lam_core.eval.common import heldout_clips
from lam_core.eval.sampling import joint_umap, sampling
from lam_core.processing import ClipProcessor, ProcessedClip
from studio import plots
from studio.handlers import (
    PROGRESS,
    Progress,
    as_callback,
    bad_input,
    model_frames,
    user_errors,
)
from studio.media import Panel, read_upload, side_by_side
from studio.models import PIPELINES

log = logging.getLogger(__name__)
SOURCES = ("held-out MiniWild", "uploaded clips")
MAX_UPLOADS = 32
MAX_LATENTS = 512  # per sample and checkpoint
SEED = 0
_WARM = threading.Event()


def warm_umap() -> float:
    """Compile UMAP's numba code with one small seeded fit; returns the seconds it took."""
    t0 = time.perf_counter()
    joint_umap(np.random.default_rng(SEED).normal(size=(200, 16)), seed=SEED)
    _WARM.set()
    return time.perf_counter() - t0


def warm_umap_in_background() -> threading.Thread:
    """Start :func:`warm_umap` in a daemon thread (the studio serves meanwhile)."""

    def run() -> None:
        try:
            log.info("UMAP warmed up in %.1f s", warm_umap())
        except Exception:  # the tab says what is wrong when it is used
            log.exception("UMAP warm-up failed")

    thread = threading.Thread(target=run, name="umap-warmup", daemon=True)
    thread.start()
    return thread


@dataclass
class Embedding:
    """What the tab keeps per session to answer "show point i".

    Attributes:
        panels: per checkpoint ``{"title", "x", "y", "kind", "index", "hover"}`` (see
            :func:`studio.plots.umap_figure`).
        points: per studio-wide point index ``(checkpoint, kind, clip, step, sample)``; ``sample``
            is the point's row among the checkpoint's sampled latents (-1 for inferred ones).
        sizes: latents per sample of each checkpoint (to draw the same sampled latents again).
        clips: the clips the latents were inferred from.
    """

    panels: list[dict] = field(default_factory=list)
    points: list[tuple[str, str, int, int, int]] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    clips: list[Clip | ProcessedClip] = field(default_factory=list)

    def figure(self, highlight: int | None = None) -> go.Figure:
        return plots.umap_figure(self.panels, highlight)

    def add(self, name: str, embedding: dict, accuracy: float, n: int) -> None:
        """Append one checkpoint's :class:`~lam_core.eval.sampling.SamplingResult` embedding."""
        start = len(self.points)
        kinds, clips, steps = embedding["kind"], embedding["clip"], embedding["step"]
        hover = []
        for j, (kind, c, s) in enumerate(zip(kinds, clips, steps)):
            where = f" · clip {c} · step {s}→{s + 1}" if kind == "inferred" else ""
            hover.append(f"point {start + j} · {kind}{where}")
            self.points.append((name, kind, int(c), int(s), j if kind == "sampled" else -1))
        self.sizes[name] = n
        self.panels.append({
            "title": f"{name}<br>k-NN separability {accuracy:.2f}",
            "x": embedding["x"], "y": embedding["y"], "kind": kinds,
            "index": list(range(start, len(self.points))), "hover": hover,
        })


def _clips(
    source: str, files: list | None, count: int, processor: ClipProcessor
) -> list[Clip | ProcessedClip]:
    if source == SOURCES[1]:
        paths = [getattr(f, "name", f) for f in files or []]
        if not paths:
            raise bad_input("upload one or more clips, or choose 'held-out MiniWild'")
        return [
            read_upload(p, processor, f"clip {i + 1}", min_frames=4).processed
            for i, p in enumerate(paths[:MAX_UPLOADS])
        ]
    return heldout_clips(int(count), num_frames=16, size=processor.image_size, seed_offset=SEED)


def latent_space(
    checkpoints: list[str] | str | None,
    source: str = SOURCES[0],
    files: list | None = None,
    count: float = 16,
    progress: Progress | None = PROGRESS,
) -> tuple[go.Figure, str, Embedding]:
    """Inferred vs sampled latents of each chosen checkpoint, embedded with UMAP.

    Args:
        checkpoints: one or more pipeline folders or hub ids.
        source: one of :data:`SOURCES`.
        files: uploaded videos (for ``"uploaded clips"``).
        count: held-out MiniWild clips (16 frames each).

    Returns:
        ``(figure, summary Markdown, embedding state)``.
    """
    with user_errors("latent space"):
        names = [checkpoints] if isinstance(checkpoints, str) else list(checkpoints or [])
        if not names:
            raise bad_input("choose at least one checkpoint")
        report = as_callback(progress)
        emb, lines = Embedding(), []
        for i, name in enumerate(names):
            pipe = PIPELINES.get(name)
            if not emb.clips:
                emb.clips = _clips(source, files, int(count), pipe.processor)
            first = "" if _WARM.is_set() else " (UMAP compiles on its first fit: ~20 s)"
            report(i / len(names), f"{name}: inferring, sampling, UMAP{first}")
            result = sampling(pipe, emb.clips, n=MAX_LATENTS, seed=SEED, umap=True)
            _WARM.set()
            emb.add(name, result.embedding, result.accuracy, result.n)
            lines.append(
                f"- `{name}`: separability **{result.accuracy:.2f}** ({result.n} + {result.n} "
                f"latents; mean ‖z‖ sampled {result.sampled_norm:.2f}, inferred "
                f"{result.inferred_norm:.2f})"
            )
        summary = (
            "**k-NN separability**: held-out accuracy of a 5-NN classifier told to separate "
            "sampled from inferred latents (0.5 = indistinguishable, 1 = fully separable).\n"
            + "\n".join(lines)
            + f"\n\n{len(emb.clips)} clips ({source}). Hover a point to read its index."
        )
        return emb.figure(), summary, emb


def point_pair(
    emb: Embedding | None, index: float | None
) -> tuple[np.ndarray | None, str, go.Figure]:
    """The frame pair behind point ``index`` and the figure with that point ringed."""
    with user_errors("point"):
        if emb is None or not emb.points:
            raise bad_input("embed some latents first (the Embed button)")
        i = int(index or 0)
        if not 0 <= i < len(emb.points):
            raise bad_input(f"point index must be between 0 and {len(emb.points) - 1}, got {i}")
        name, kind, c, s, j = emb.points[i]
        pipe = PIPELINES.get(name)
        t = pipe.tubelet
        if kind == "inferred":
            frames = model_frames(pipe, emb.clips[c])
            pair = (frames[(s + 1) * t - 1], frames[(s + 2) * t - 1])
            titles = (f"clip {c} · step {s}", f"step {s + 1}")
            text = f"**point {i}**: inferred by `{name}` from clip {c}, step {s} → {s + 1}"
        else:
            if pipe.decoder is None:
                raise bad_input(f"{name} has no decoder: a sampled latent cannot be shown")
            z = pipe.sample_latents(emb.sizes[name], seed=SEED)[j][None, None]
            start = pipe.encode(emb.clips[0])[:, :1]
            frames = pipe.to_clip(pipe.decode(torch.cat([start, pipe.rollout(start, z)], 1)))
            pair = (frames.frames[t - 1], frames.frames[-1])
            titles = ("clip 0 · step 0", "predicted under z")
            text = (
                f"**point {i}**: sampled by `{name}` (sample {j}), applied by the world model "
                "to the first clip's first step"
            )
        image = side_by_side([Panel(titles[0], pair[0][None]), Panel(titles[1], pair[1][None])])
        return image[0], text, emb.figure(highlight=i)
