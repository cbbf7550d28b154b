"""Which checkpoints the studio offers, and a small cache of the pipelines it has opened.

The default list comes from scanning ``assets/checkpoints/`` (relative to the repository) for
pipeline folders: a ``config.json`` whose ``"format"`` is ``"lam-studio-pipeline"``. Any other
folder or hub id typed into a checkpoint box is opened with
:meth:`LatentActionPipeline.from_pretrained` and cached by its resolved location.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from pathlib import Path

from lam_core.pipeline import PIPELINE_FORMAT, REPO_ROOT, LatentActionPipeline, resolve_path

CHECKPOINTS_DIR = REPO_ROOT / "assets" / "checkpoints"
CACHE_SIZE = 4


class CheckpointMissing(ValueError):
    """No checkpoint was chosen and none is shipped."""


DEFAULT_NAME = "sparse-high"


def is_pipeline_folder(folder: Path) -> bool:
    """Whether ``folder/config.json`` declares a lam-studio pipeline."""
    try:
        meta = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == PIPELINE_FORMAT


def scan_checkpoints(root: str | Path = CHECKPOINTS_DIR, max_depth: int = 3) -> list[str]:
    """Pipeline folders under ``root`` (sorted), as paths relative to the repository when they
    are inside it (``assets/checkpoints/sparse-low``), else absolute."""
    root = Path(root)
    found: list[Path] = []

    def walk(folder: Path, depth: int) -> None:
        if is_pipeline_folder(folder):
            found.append(folder)
            return  # a pipeline's component folders are not pipelines
        if depth < max_depth:
            for child in sorted(p for p in folder.iterdir() if p.is_dir()):
                walk(child, depth + 1)

    if root.is_dir():
        walk(root, 0)
    return [_display(p) for p in found]


def _display(folder: Path) -> str:
    folder = folder.resolve()
    try:
        return str(folder.relative_to(REPO_ROOT))
    except ValueError:
        return str(folder)


def checkpoint_choices(
    preferred: str | None = None, root: str | Path = CHECKPOINTS_DIR
) -> list[str]:
    """The checkpoint dropdown's choices: ``preferred`` (from ``--checkpoint``; else the shipped
    ``sparse-high``, a latent model with a controller trained on it) first, then the others."""
    choices = scan_checkpoints(root)
    preferred = preferred or next((c for c in choices if c.endswith(DEFAULT_NAME)), None)
    if preferred:
        choices = [preferred, *(c for c in choices if c != preferred)]
    return choices


class PipelineCache:
    """Opened pipelines keyed by resolved folder (or hub id), least recently used dropped first.

    Thread-safe: Gradio runs handlers in worker threads; a pipeline is opened once even when two
    requests ask for it together.
    """

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[str, LatentActionPipeline] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(name: str) -> str:
        folder = resolve_path(name)
        return str(folder.resolve()) if folder is not None else name

    def get(self, name: str | None) -> LatentActionPipeline:
        """The pipeline of ``name`` (a folder or a hub id), opened on first use.

        Raises:
            CheckpointMissing: ``name`` is empty.
            lam_core.CheckpointError: the folder or hub id cannot be opened (the message says why).
        """
        name = (name or "").strip()
        if not name:
            raise CheckpointMissing(
                "no checkpoint chosen: none is shipped in assets/checkpoints/ yet, so type a "
                "pipeline folder or hub id into the checkpoint box (or start the studio with "
                "`python app.py --checkpoint DIR_OR_HUB_ID`)"
            )
        key = self.key(name)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            pipe = LatentActionPipeline.from_pretrained(name)
            self._items[key] = pipe
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            return pipe

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


PIPELINES = PipelineCache()


def describe(pipe: LatentActionPipeline, name: str) -> str:
    """One Markdown line about a loaded pipeline: encoder, latents, decoder, controller."""
    enc, lam = pipe.encoder.cfg, pipe.lam.cfg
    latent = (
        f"{lam.regularizer.kind} latents (D_z = {lam.latent_dim})"
        if lam.kind == "latent"
        else f"a {lam.kind!r} world model"
    )
    controller = (
        f"{pipe.controller.cfg.kind} controller"
        if pipe.controller is not None
        else "**no controller** (Control tab unavailable)"
    )
    decoder = "decoder" if pipe.decoder is not None else "**no decoder** (no videos)"
    return (
        f"`{name}` · {enc.kind} encoder, {enc.image_size}×{enc.image_size} px at {enc.fps:g} "
        f"fps, {enc.tubelet} frames per step · {latent} · {decoder} · {controller}"
    )
