"""Run configuration of the training scripts (docs/DESIGN.md#training): typed dataclasses, YAML
recipes in ``train/configs/`` and dotted ``key=value`` overrides on the command line.

A recipe has the sections ``train`` (:class:`RunConfig`), ``data`` (:class:`DataConfig`), the
model preset (``preset: tiny|small|paper``) with partial overrides of its components
(``encoder``, ``lam``, ``decoder``, ``controller``; see ``lam_core.config``) and the folders of
frozen components (``encoder_path``, ``lam_path``). Everything is checked before training starts:
an unknown key or a wrong type raises :class:`~lam_core.config.ConfigError` naming the dotted key
(``lam.regularizer.lambda_l1``). Values derived from the encoder (feature width, token grid, image
size) are filled in here; setting them to something else is an error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lam_core.checkpoint import check_format_version, check_keys, read_component_config
from lam_core.config import (
    ConfigError,
    ControllerConfig,
    DecoderConfig,
    EncoderConfig,
    LAMConfig,
    config_from_dict,
    config_to_dict,
)
from lam_core.data.scenes import mixture_weights
from lam_core.pipeline import PIPELINE_FORMAT, PIPELINE_KEYS
from lam_core.presets import PRESETS, get_preset
from train.sources import SourceConfig, check_sources


@dataclass
class RunConfig:
    """How a run trains (paper §4 and App. A for the optimiser settings).

    Attributes:
        output_dir: the run folder (config.yaml, metrics.jsonl, tensorboard/, checkpoints/, final/).
        seed: seeds the model initialisation, the data order and every random op.
        steps: optimiser steps.
        batch_size: clips per process and micro-step (global batch = batch_size × processes ×
            grad_accum).
        grad_accum: micro-steps per optimiser step.
        use_muon: Muon for 2-D hidden weights + AdamW for the rest (False: AdamW only, as the
            paper's controller).
        lr_muon, lr_adamw, weight_decay, adamw_betas: optimiser settings (weight decay on both).
        warmup_fraction: linear warm-up over this share of the steps, then cosine to zero.
        max_grad_norm: gradient clipping (0: none).
        mixed_precision: ``"no"``, ``"bf16"`` or ``"auto"`` (bf16 on CUDA and on CPUs with native
            bf16 matmul — AVX-512 BF16 or AMX — else fp32: on CPUs without them bf16 is slower).
        log_every, save_every, eval_every: in optimiser steps (0: never; the last step always
            saves and evaluates).
        keep_last: checkpoints kept.
        num_workers: DataLoader workers per process.
        threads: torch CPU threads per process (0: torch's default).
        stop_at: stop after this step as if interrupted (time-boxed runs; resume later).
        time_limit_minutes: stop (checkpoint, final model) once this much wall time has passed,
            wherever the schedule is (the GPU recipe's guard; None: no limit).
        reg_warmup_fraction: LAM job: the regularizer's weight rises linearly from 0 to 1 over
            this share of the steps (0: constant, as the paper). Short runs need it: the
            regularizer otherwise drives the IDM to a constant latent before the world model
            learns to use it (measured on the embedded recipe).
        reg_warmup_start: LAM job: the regularizer's weight is 0 for this share of the steps,
            then rises over ``reg_warmup_fraction`` (the latent is read before it is squeezed).
        train_encoder: decoder job: train the tiny encoder together with the decoder (autoencoder).
        lpips_weight, lpips_net: decoder job: loss = L1 + lpips_weight · LPIPS(lpips_net).
    """

    output_dir: str = "runs/default"
    seed: int = 0
    steps: int = 100
    batch_size: int = 8
    grad_accum: int = 1
    use_muon: bool = True
    lr_muon: float = 0.02
    lr_adamw: float = 6.25e-4
    weight_decay: float = 0.04
    adamw_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_fraction: float = 0.1
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"
    log_every: int = 10
    save_every: int = 100
    eval_every: int = 100
    keep_last: int = 2
    num_workers: int = 0
    threads: int = 0
    stop_at: int | None = None
    time_limit_minutes: float | None = None
    reg_warmup_fraction: float = 0.0
    reg_warmup_start: float = 0.0
    train_encoder: bool = False
    lpips_weight: float = 1.0
    lpips_net: str = "alex"


@dataclass
class DataConfig:
    """What a run trains on.

    Attributes:
        source: ``"miniwild"`` (procedural in-the-wild video), ``"world"`` (an action-labeled
            world, with real actions), ``"folder"`` (video files) or ``"shards"`` (WebDataset
            shards of ``train/shards.py pack``, streamed; see docs/SCALE.md).
        world: ``reach``, ``drive`` or ``pusht`` (source ``world``).
        folder: root of the video files (source ``folder``).
        train_clips, val_clips: clips of each split (procedural sources: seeds 0…n-1 and 10⁹+…).
        num_frames: frames per clip (``steps × tubelet``).
        miniwild: MiniWild generator settings (fields of ``lam_core.data.MiniWildConfig``), e.g.
            ``{max_rotation: 10, rotation_probability: 0.5}`` for pans that turn more.
        mixture: source ``miniwild``: weights over its scenes, e.g. ``{pan: 2, movers: 1, wild: 1}``
            (each item's scene is drawn from them, see lam_core.data.scenes); None: ``wild`` only.
        cache_dir: train from a feature cache of the training split in this folder (built with
            the frozen encoder on first use; its index.json must match the encoder and the data).
        cache_dtype: ``float16``, ``bfloat16`` or ``float32`` (see lam_core.data.cache).
        cache_shard_size: clips per cache shard.
        shards: source ``shards``: brace pattern of the shard URLs (paths, ``file://``,
            ``pipe:``), e.g. ``/data/wild/shard-{000000..000099}.tar``.
        shard_index: their ``index.json`` (default: beside the shards; needed for ``pipe:``).
        val_shards: source ``shards``: held-out shards for validation (index beside them).
        shard_features: train on the features stored in the shards (``pack --features`` with
            this run's frozen encoder) instead of encoding their frames.
        shuffle_buffer: clips each reader of a shard stream holds to shuffle them.
        sources: weighted sources mixed per sample, one line each, e.g.
            ``- {source: miniwild, scene: pan, weight: 2}`` (see train/sources.py).
    """

    source: str = "miniwild"
    world: str = "reach"
    folder: str | None = None
    train_clips: int = 1024
    val_clips: int = 32
    num_frames: int = 16
    mixture: dict[str, float] | None = None
    miniwild: dict[str, Any] | None = None  # a value, not a section: YAML gives the whole dict
    cache_dir: str | None = None
    cache_dtype: str = "float16"
    cache_shard_size: int = 1024
    shards: str | None = None
    shard_index: str | None = None
    val_shards: str | None = None
    shard_features: bool = False
    shuffle_buffer: int = 1000
    sources: list[SourceConfig] | None = None


@dataclass
class JobConfig:
    """One run: how it trains, on what, and the model (preset + overrides, resolved).

    ``encoder_path``, ``lam_path``, ``decoder_path`` are component folders or pipeline folders
    (then the component of that name inside is meant); a component given by a folder takes its
    config from there. With a pipeline as ``lam_path``, its encoder and decoder are the defaults.
    """

    preset: str = "tiny"
    train: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    lam: LAMConfig = field(default_factory=LAMConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    encoder_path: str | None = None
    lam_path: str | None = None
    decoder_path: str | None = None

    @property
    def run_dir(self) -> Path:
        return Path(self.train.output_dir)

    def to_dict(self) -> dict:
        return config_to_dict(self)


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with YAML 1.2 scalars: ``1e-4`` is a float (YAML 1.1 wants ``1.0e-4``)
    and only ``true``/``false`` are booleans (``mixed_precision: no`` stays the string "no")."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)$|^[-+]?(?:\d+\.\d*|\.\d+)$"
               r"|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"),
    list("-+0123456789."),
)


def parse_value(text: str) -> Any:
    """A command-line value as YAML (``300`` → int, ``0.1``/``1e-4`` → float, ``true``, ``null``,
    ``[0.9, 0.95]``); anything else stays a string."""
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.YAMLError:
        return text


def read_yaml(path: str | Path) -> dict:
    """A recipe file as a dict (safe loading only)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.load(path.read_text(), Loader=_Loader)  # a SafeLoader subclass
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def apply_override(raw: dict, item: str) -> None:
    """Set ``a.b.c=value`` in the nested dict ``raw``."""
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected dotted.key=value")
    key, text = item.split("=", 1)
    parts = key.strip().split(".")
    node = raw
    for i, part in enumerate(parts[:-1]):
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"{'.'.join(parts[: i + 1])}: is a value, not a section")
        node = nxt
    node[parts[-1]] = parse_value(text)


def component_folder(path: str | Path, name: str, required: bool = True) -> Path | None:
    """The folder of component ``name``: ``path`` itself, or the one a pipeline folder names.

    Raises:
        ConfigError: ``path`` is not a folder or holds no readable ``config.json``.
        CheckpointError: a pipeline ``config.json`` of a newer ``format_version`` or with an
            unknown key (``lam_core.checkpoint`` names the file).
    """
    path = Path(path)
    meta_path = path / "config.json"
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "no such folder"
        raise ConfigError(f"{path}: {what} (expected the {name} component or a pipeline folder)")
    if not meta_path.is_file():
        raise ConfigError(f"{meta_path}: missing (expected the {name} component or a pipeline "
                          "folder)")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{meta_path}: not valid JSON ({e})") from e
    if isinstance(meta, dict) and meta.get("format") == PIPELINE_FORMAT:
        check_format_version(meta_path, meta)
        check_keys(meta_path, meta, PIPELINE_KEYS)
        entry = (meta.get("components") or {}).get(name)
        if not entry:
            if required:
                raise ConfigError(f"{meta_path}: the pipeline has no {name}")
            return None
        return path / entry
    return path


def parse_cli(argv: list[str] | None = None, description: str = "") -> argparse.Namespace:
    """``--config recipe.yaml [--resume latest|<step>|<path>] [--init-from DIR] [key=value …]``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", help="YAML recipe (train/configs/*.yaml)")
    parser.add_argument("--resume", help="latest, a step number, or a checkpoint folder")
    parser.add_argument("--init-from", dest="init_from",
                        help="warm start (train/lam.py): the LAM weights of this pipeline or lam "
                             "folder, e.g. assets/checkpoints/<flagship>; its config must match")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides")
    return parser.parse_intermixed_args(argv)  # options may follow overrides


def _merge(base: dict, over: dict, where: str) -> dict:
    """``over`` merged into a copy of ``base``; every key of ``over`` must exist in ``base``."""
    out = dict(base)
    for key, value in over.items():
        name = f"{where}.{key}" if where else str(key)
        if key not in base:
            valid = ", ".join(sorted(map(str, base)))
            raise ConfigError(f"{name}: unknown key (valid keys here: {valid})")
        if isinstance(base[key], dict) and isinstance(value, dict):
            out[key] = _merge(base[key], value, name)
        else:
            out[key] = value
    return out


def _set_derived(section: dict, raw: dict, where: str, values: dict) -> None:
    """Fill keys derived from another component; an explicit different value is an error."""
    for key, value in values.items():
        if key in raw and raw[key] != value:
            raise ConfigError(f"{where}.{key}: is derived ({value!r}) and cannot be set to "
                              f"{raw[key]!r}")
        section[key] = value


def resolve(raw: dict) -> JobConfig:
    """Type-check a raw recipe (YAML + overrides) against the preset it names.

    Raises:
        ConfigError: naming the dotted key that is unknown or has a wrong type.
    """
    preset = raw.get("preset", JobConfig.preset)
    if not isinstance(preset, str) or preset not in PRESETS:
        raise ConfigError(f"preset: expected one of {', '.join(PRESETS)}, got {preset!r}")
    pcfg = get_preset(preset)
    base = {f.name: None for f in dataclasses.fields(JobConfig)}
    base.update(preset=preset, train=config_to_dict(RunConfig()), data=config_to_dict(DataConfig()))
    for name in ("encoder", "lam", "decoder", "controller"):
        base[name] = config_to_dict(getattr(pcfg, name))
    raw = dict(raw)
    lam_source = raw.get("lam_path")
    for name in ("encoder", "lam", "decoder"):
        key = f"{name}_path"
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{key}: expected a folder path, got {value!r}")
        if not value and name != "lam" and isinstance(lam_source, str):
            value = component_folder(lam_source, name, required=False)
        if not value:
            continue
        folder = component_folder(value, name)
        raw[key] = str(folder)
        base[name] = config_to_dict(read_component_config(folder, name))
        for k, v in (raw.get(name) or {}).items():
            if k not in base[name] or base[name][k] != v:
                raise ConfigError(f"{name}.{k}: the {name} comes from {key} ({value}); remove "
                                  f"it from the {name} section")
    merged = _merge(base, raw, "")
    enc, lam, dec, ctrl = (merged[k] for k in ("encoder", "lam", "decoder", "controller"))
    grid = enc["image_size"] // enc["patch_size"]
    pixels = enc.get("kind") == "patch"
    if pixels:  # the patch encoder's features are its pixels
        _set_derived(enc, raw.get("encoder") or {}, "encoder",
                     {"dim": enc["tubelet"] * enc["patch_size"] ** 2 * 3})
    # keys set explicitly (in the recipe, or by a component's own folder) must agree
    fixed = {name: (base[name] if raw.get(f"{name}_path") else raw.get(name) or {})
             for name in ("lam", "decoder")}
    _set_derived(lam, fixed["lam"], "lam", {"feature_dim": enc["dim"], "grid": grid,
                                             "patch_size": enc["patch_size"] if pixels else 0})
    _set_derived(dec, fixed["decoder"], "decoder",
                 {"feature_dim": enc["dim"], "image_size": enc["image_size"],
                  "patch_size": enc["patch_size"], "tubelet": enc["tubelet"]})
    _set_derived(ctrl, raw.get("controller") or {}, "controller",
                 {"feature_dim": enc["dim"], "grid": grid,
                  "latent_dim": lam["regularizer"]["latent_dim"]
                  * lam.get("latent_grid", 1) ** 2,
                  "latent_grid": lam.get("latent_grid", 1)})
    hints = typing.get_type_hints(JobConfig)
    values = {}
    for f in dataclasses.fields(JobConfig):
        value = merged[f.name]
        if dataclasses.is_dataclass(hints[f.name]):
            values[f.name] = config_from_dict(hints[f.name], value, f.name)
        else:
            values[f.name] = value
    job = JobConfig(**values)
    _check(job)
    return job


def _check(job: JobConfig) -> None:
    """Value checks that typing cannot express."""
    t, d = job.train, job.data
    rules = [
        ("train.steps", t.steps >= 1, "must be ≥ 1"),
        ("train.batch_size", t.batch_size >= 1, "must be ≥ 1"),
        ("train.grad_accum", t.grad_accum >= 1, "must be ≥ 1"),
        ("train.mixed_precision", t.mixed_precision in ("no", "bf16", "auto"),
         "must be no, bf16 or auto"),
        ("train.warmup_fraction", 0.0 <= t.warmup_fraction < 1.0, "must be in [0, 1)"),
        ("train.reg_warmup_fraction", 0.0 <= t.reg_warmup_fraction <= 1.0, "must be in [0, 1]"),
        ("train.adamw_betas", len(t.adamw_betas) == 2, "must be two numbers"),
        ("train.keep_last", t.keep_last >= 1, "must be ≥ 1"),
        ("train.lpips_net", t.lpips_net in ("alex", "vgg", "squeeze"),
         "must be alex, vgg or squeeze"),
        ("data.source", d.source in ("miniwild", "world", "folder", "shards"),
         "must be miniwild, world, folder or shards"),
        ("data.folder", d.source != "folder" or bool(d.folder), "is required with source: folder"),
        ("data.num_frames", d.num_frames % job.encoder.tubelet == 0
         and d.num_frames >= 2 * job.encoder.tubelet,
         f"must be a multiple of the tubelet ({job.encoder.tubelet}) covering ≥ 2 steps"),
        ("data.cache_dtype", d.cache_dtype in ("float16", "bfloat16", "float32"),
         "must be float16, bfloat16 or float32"),
    ]
    lam = job.lam
    rules += [
        ("lam.head", lam.head in ("features", "flow"), "must be features or flow"),
        ("lam.head", lam.head != "flow" or (job.encoder.kind, job.encoder.tubelet) == ("patch", 1),
         "flow needs pixel features: encoder.kind patch with encoder.tubelet 1"),
        ("lam.flow_grid", lam.head != "flow" or (
            lam.flow_grid % (lam.grid // max(lam.token_merge, 1)) == 0),
         "must be a multiple of the merged token grid (grid / lam.token_merge)"),
        ("lam.idm_input", lam.idm_input in ("pair", "difference"), "must be pair or difference"),
        ("lam.change_weight", lam.change_weight >= 0, "must be ≥ 0"),
        ("lam.flow_l1", lam.flow_l1 >= 0, "must be ≥ 0"),
        ("lam.latent_grid", lam.latent_grid == 1 or (
            lam.kind == "latent" and lam.latent_grid == lam.grid // max(lam.token_merge, 1)),
         "must be 1 or, for latent models, the merged token grid (grid / lam.token_merge)"),
        ("lam.cell_modulation", not lam.cell_modulation or lam.latent_grid > 1,
         "needs a latent grid (lam.latent_grid > 1)"),
        ("lam.idm_radius", lam.idm_radius >= 0, "must be ≥ 0 (0: attention across the frame)"),
        ("train.reg_warmup_start", 0.0 <= t.reg_warmup_start <= 1.0, "must be in [0, 1]"),
    ]
    grid = job.lam.grid
    for key in ("token_merge", "idm_token_merge"):
        k = getattr(job.lam, key)
        rules.append((f"lam.{key}", k >= 1 and grid % k == 0,
                      f"must divide the token grid ({grid} tokens per row)"))
    k = job.controller.token_merge
    rules.append(("controller.token_merge", k >= 1 and grid % k == 0,
                  f"must divide the token grid ({grid} tokens per row)"))
    for key, ok, message in rules:
        if not ok:
            raise ConfigError(f"{key}: {message}")
    check_sources(job)
    miniwild_config(job)  # raises ConfigError naming data.miniwild.<key>
    if d.mixture is not None:
        if d.source != "miniwild":
            raise ConfigError(f"data.mixture: mixes MiniWild scenes, needs source: miniwild "
                              f"(got {d.source})")
        try:
            mixture_weights(d.mixture)
        except ValueError as e:
            raise ConfigError(f"data.mixture: {e}") from e


def miniwild_config(job: JobConfig):
    """The MiniWild generator settings of a run: its frames, size and fps, plus
    ``data.miniwild``.

    Raises:
        ConfigError: naming ``data.miniwild.<key>`` for an unknown field or a bad value.
    """
    from lam_core.data.miniwild import MiniWildConfig

    d, enc = job.data, job.encoder
    valid = {f.name for f in dataclasses.fields(MiniWildConfig)} - {"num_frames", "size", "fps"}
    given = d.miniwild or {}
    unknown = sorted(set(given) - valid)
    if unknown:
        raise ConfigError(f"data.miniwild.{unknown[0]}: unknown MiniWild setting (valid: "
                          f"{', '.join(sorted(valid))})")
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in given.items()}
    try:
        return MiniWildConfig(num_frames=d.num_frames, size=enc.image_size, fps=enc.fps,
                              **options)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"data.miniwild: {e}") from e


def load_job_config(config: str | Path | None, overrides: list[str] | tuple[str, ...] = (),
                    defaults: dict | None = None) -> JobConfig:
    """Read a recipe, apply ``key=value`` overrides, resolve and check it.

    Args:
        config: the YAML recipe (None: defaults only).
        overrides: dotted ``key=value`` strings, applied in order.
        defaults: a script's own defaults under the recipe (e.g. the controller's optimiser).
    """
    raw = _deep_update({}, defaults or {})
    if config is not None:
        raw = _deep_update(raw, read_yaml(config))
    for item in overrides:
        apply_override(raw, item)
    return resolve(raw)


def _deep_update(base: dict, over: dict) -> dict:
    """``over`` merged into a copy of ``base``, section by section (no checks)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_update(out[key], value)
        else:
            out[key] = value
    return out


def dump_yaml(job: JobConfig, path: str | Path) -> None:
    """Write the resolved config (``run_dir/config.yaml``); it loads back with ``--config``."""
    Path(path).write_text(yaml.safe_dump(job.to_dict(), sort_keys=False))
