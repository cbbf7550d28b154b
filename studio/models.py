"""Which checkpoints the studio offers, what each one is, and a small cache of the pipelines it
has opened.

The default list comes from scanning ``assets/checkpoints/`` (relative to the repository) for
pipeline folders: a ``config.json`` whose ``"format"`` is ``"lam-studio-pipeline"``. What a folder
is (its components, its LAM kind, its training record) is read from the config files alone, no
weights loaded, so that defaults are chosen by content rather than by name. Any other folder or
hub id typed into a checkpoint box is opened with :meth:`LatentActionPipeline.from_pretrained`
and cached by its resolved location.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from pathlib import Path

from lam_core.checkpoint import CheckpointError, read_training_record, record_sources
from lam_core.pipeline import PIPELINE_FORMAT, REPO_ROOT, LatentActionPipeline, resolve_path

CHECKPOINTS_DIR = REPO_ROOT / "assets" / "checkpoints"
CACHE_SIZE = 4


class CheckpointMissing(ValueError):
    """No checkpoint was chosen and none is shipped."""


DEFAULT_NAME = "pixel-noisy"  # the flagship (docs/DESIGN.md#presets); absent → default_checkpoint


def _read_json(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def is_pipeline_folder(folder: Path) -> bool:
    """Whether ``folder/config.json`` declares a lam-studio pipeline."""
    return _read_json(folder / "config.json").get("format") == PIPELINE_FORMAT


def pipeline_components(name: str | Path | None) -> dict[str, Path]:
    """``{component: folder}`` a local pipeline folder names (``../pixel-noisy/lam`` resolved
    against the folder); ``{}`` for a hub id, a missing folder or one that is not a pipeline."""
    folder = resolve_path(name) if name else None
    meta = _read_json(folder / "config.json") if folder is not None else {}
    comps = meta.get("components") if meta.get("format") == PIPELINE_FORMAT else None
    if not isinstance(comps, dict):
        return {}
    return {k: (folder / v).resolve() for k, v in comps.items() if isinstance(v, str) and v}


def component_config(folder: Path | None) -> dict:
    """The ``"config"`` of a component folder's config.json (``{}`` when unreadable)."""
    config = _read_json(folder / "config.json").get("config") if folder is not None else None
    return config if isinstance(config, dict) else {}


def has_controller(name: str | Path | None) -> bool:
    """Whether the pipeline folder's config names a controller component that is there."""
    controller = pipeline_components(name).get("controller")
    return controller is not None and (controller / "config.json").is_file()


def is_latent_with_decoder(name: str | Path | None) -> bool:
    """Whether the pipeline folder holds a latent action model (not a deterministic or an
    action-conditioned one) and a decoder, i.e. one whose transfers can be watched."""
    comps = pipeline_components(name)
    return "decoder" in comps and component_config(comps.get("lam")).get("kind") == "latent"


def is_deterministic(name: str | Path | None) -> bool:
    """Whether the pipeline folder holds a deterministic world model (no latent: the leakage
    baseline, paper Table 1)."""
    return component_config(pipeline_components(name).get("lam")).get("kind") == "deterministic"


def default_baseline(choices: list[str]) -> str | None:
    """The Leakage tab's first baseline: the first deterministic model among ``choices``."""
    return next((c for c in choices if is_deterministic(c)), None)


def scan_pipeline_folders(root: str | Path = CHECKPOINTS_DIR, max_depth: int = 3) -> list[Path]:
    """Pipeline folders under ``root``, sorted (a pipeline's component folders are not
    searched)."""
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
    return found


def scan_checkpoints(root: str | Path = CHECKPOINTS_DIR, max_depth: int = 3) -> list[str]:
    """Pipeline folders under ``root`` (sorted), as paths relative to the repository when they
    are inside it (``assets/checkpoints/pixel-noisy``), else absolute."""
    return [_display(p) for p in scan_pipeline_folders(root, max_depth)]


def _display(folder: Path) -> str:
    folder = folder.resolve()
    try:
        return str(folder.relative_to(REPO_ROOT))
    except ValueError:
        return str(folder)


def default_checkpoint(choices: list[str]) -> str | None:
    """The studio's default among ``choices``: the flagship (a folder named
    :data:`DEFAULT_NAME`), else the first latent model with a decoder (one without a controller
    before one with: a controller pipeline borrows another's world model), else the first."""
    flagship = next((c for c in choices if Path(c).name == DEFAULT_NAME), None)
    if flagship:
        return flagship
    playable = [c for c in choices if is_latent_with_decoder(c)]
    return min(playable, key=has_controller, default=None) or next(iter(choices), None)


def checkpoint_choices(
    preferred: str | None = None, root: str | Path = CHECKPOINTS_DIR
) -> list[str]:
    """The checkpoint dropdown's choices: ``preferred`` (from ``--checkpoint``; else
    :func:`default_checkpoint`) first, then the others."""
    choices = scan_checkpoints(root)
    preferred = preferred or default_checkpoint(choices)
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
    """One Markdown line about a loaded pipeline: encoder, latents, decoder, controller (the
    latent size as HTML, D<sub>z</sub>: an underscore renders as a broken glyph in the theme's
    font)."""
    enc = pipe.encoder.cfg
    latent = latent_words(pipe)
    controller = (
        f"{pipe.controller.cfg.kind} controller" if pipe.controller is not None else "no controller"
    )
    decoder = "decoder" if pipe.decoder is not None else "**no decoder** (no videos)"
    return (
        f"`{name}` · {enc.kind} encoder, {enc.image_size}×{enc.image_size} px at {enc.fps:g} "
        f"fps, {plural(enc.tubelet, 'frame')} per step · {latent} · {decoder} · {controller}"
    )


def latent_words(pipe: LatentActionPipeline) -> str:
    """What a pipeline's latent action is, as Markdown: ``noisy latents (D<sub>z</sub> = 272
    dimensions: a 4 × 4 grid of 16 and a global latent of 16)``, or ``a 'deterministic' world
    model`` for one without latents."""
    lam = pipe.lam.cfg
    d = lam.regularizer.latent_dim
    shape = ("" if lam.latent_grid == 1 else f": a {lam.latent_grid} × {lam.latent_grid} grid of "
             f"{d}{' and a global latent of ' + str(d) if lam.global_latent else ''}")
    if lam.kind != "latent":
        return f"a {lam.kind!r} world model"
    return f"{lam.regularizer.kind} latents (D<sub>z</sub> = {lam.latent_dim} dimensions{shape})"


def plural(n: int, word: str) -> str:
    """``1 frame``, ``2 frames``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# ---------------------------------------------------------------------------------- trained on
SCENE_NAMES = {  # lam_core.data.miniwild.SCENES, as the Transfer tab words them
    "pan": "camera pans over photographs",
    "movers": "still-camera movers",
    "wild": "wild scenes",
    "layers": "layered scenes (cut-outs over moving photos)",
}
TINY_CAVEAT = "real uploads decode as coloured blocks"


def _count(n: float) -> str:
    """``67_200`` → ``67 k``, ``4_800`` → ``4.8 k``, ``1_250_000`` → ``1.2 M``."""
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if n >= size:
            v = n / size
            text = f"{round(v)}" if v >= 10 else f"{v:.1f}".removesuffix(".0")
            return f"{text} {unit}"
    return f"{int(n)}"


def _parts(data: dict | None) -> list[tuple[tuple[str, str], float]]:
    """``((source, part), share)`` of one run's data description (``train.data``)."""
    source = (data or {}).get("source")
    if source == "miniwild":
        mixture = data.get("mixture") or {"wild": 1.0}
        return [(("MiniWild", SCENE_NAMES.get(k, k)), float(p)) for k, p in mixture.items()]
    if source == "world":
        return [((f"the {data.get('world', 'action')} world", ""), 1.0)]
    if source == "folder":
        return [((f"videos from {Path(str(data.get('folder', '?'))).name}/", ""), 1.0)]
    if source == "shards":
        return [(("WebDataset shards", ""), 1.0)]
    if source == "sources":  # data.sources: each line's parts, scaled by its share
        out = []
        for line, share in record_sources(data) or []:
            line = {**line, "mixture": {line.get("scene") or "wild": 1.0}}  # MiniWild: one scene
            out += [(key, p * share) for key, p in _parts(line)]
        return out or [((UNRECORDED, ""), 1.0)]
    return [((str(source) if source else UNRECORDED, ""), 1.0)]


UNRECORDED = "unrecorded footage"


def _footage(runs: list[dict]) -> str:
    """The runs' footage with each part's share of their clips, largest first: ``MiniWild: camera
    pans over photographs 44 %, ...``; empty when no run recorded its data."""
    shares: dict[tuple[str, str], float] = {}
    for run in runs:
        weight = float(run.get("clips") or run.get("steps") or 1)
        data = run.get("data")
        for key, p in _parts(data if isinstance(data, dict) else None):
            shares[key] = shares.get(key, 0.0) + p * weight
    if not shares or set(shares) == {(UNRECORDED, "")}:
        return ""
    total = sum(shares.values())
    items = sorted(shares.items(), key=lambda kv: -kv[1])  # stable: recorded order on ties
    sources = {source for (source, _), _ in items if source != UNRECORDED}
    one_source = len(sources) == 1 and all(part or s == UNRECORDED for (s, part), _ in items)
    labels = [part or s if one_source else f"{s} {part}".strip() for (s, part), _ in items]
    if len(items) > 1:
        labels = [f"{label} {round(100 * w / total)} %" for label, (_, w) in zip(labels, items)]
    return (f"{sources.pop()}: " if one_source else "") + ", ".join(labels)


def trained_on_line(record: dict, encoder: dict | None = None) -> str:
    """One line on what footage a model was trained on, for the Transfer tab.

    Args:
        record: the LAM's training record (``lam_core.checkpoint.read_training_record``):
            ``{"steps", "clips", "runs": [{"steps", "clips", "data": {"source", "mixture",
            "num_frames", ...}}]}``; ``{}`` when none was shipped.
        encoder: the encoder's config (``kind``, ``patch_size``, ``hub_id``), to say something
            honest when there is no record.

    Returns:
        e.g. ``Trained on MiniWild: camera pans over photographs 44 %, still-camera movers 44 %,
        wild scenes 11 % — 4,200 steps, 67 k clips (8 frames each).``
    """
    encoder = encoder or {}
    kind = encoder.get("kind")
    caveat = f" Its tiny encoder saw MiniWild only: {TINY_CAVEAT}." if kind == "tiny" else ""
    if not record:
        if kind == "tiny":
            return f"Trained on MiniWild (procedural scenes) only: {TINY_CAVEAT}."
        if kind == "patch":
            p = encoder.get("patch_size", 8)
            return f"Exact {p}×{p} pixel patches; training record not shipped (footage unknown)."
        if kind == "vjepa2":
            hub = encoder.get("hub_id") or "V-JEPA 2"
            return f"{hub} features; training record not shipped (footage unknown)."
        return "Training record not shipped: what footage this model saw is unknown."
    runs = [r for r in record.get("runs") or [] if isinstance(r, dict)]
    # clip length: said only when every run recorded the same one
    frames = {
        r["data"].get("num_frames") if isinstance(r.get("data"), dict) else None for r in runs
    }
    counts = []
    if record.get("steps"):
        counts.append(f"{int(record['steps']):,} steps")
    if record.get("clips"):
        each = f" ({frames.pop()} frames each)" if len(frames) == 1 and None not in frames else ""
        counts.append(f"{_count(record['clips'])} clips{each}")
    footage, counted = _footage(runs), ", ".join(counts)
    if footage:
        return f"Trained on {footage}" + (f" — {counted}." if counted else ".") + caveat
    if counted:
        return f"Trained for {counted}; the footage was not recorded.{caveat}"
    return f"Training record holds no runs: what footage this model saw is unknown.{caveat}"


def trained_on(name: str | None) -> str:
    """:func:`trained_on_line` for a checkpoint box's value (a folder or a hub id)."""
    comps = pipeline_components(name)
    if not comps:
        return (
            "" if not name else f"`{name}`: not a local pipeline folder, no training record read."
        )
    try:
        record = read_training_record(comps["lam"]) if "lam" in comps else {}
    except CheckpointError:
        record = {}
    return trained_on_line(record, component_config(comps.get("encoder")))
