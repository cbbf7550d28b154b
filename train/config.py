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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from lam_core.checkpoint import (
    CheckpointError,
    check_format_version,
    check_keys,
    read_component_config,
)
from lam_core.config import ConfigError, config_from_dict, config_to_dict
from lam_core.models import Controller, LatentActionModel
from lam_core.models.lam import CHANGE_FROM
from lam_core.pipeline import PIPELINE_FORMAT, PIPELINE_KEYS
from lam_core.presets import PRESETS, get_preset
from train.job import DataConfig, JobConfig, RunConfig, SourceConfig
from train.sources import check_data, miniwild_config

__all__ = [
    "DataConfig",
    "JobConfig",
    "RunConfig",
    "SourceConfig",
    "apply_override",
    "component_folder",
    "dump_yaml",
    "job_main",
    "load_job_config",
    "miniwild_config",
    "parse_cli",
    "read_yaml",
    "resolve",
]


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


def job_main(train: Callable[..., Path], doc: str, defaults: dict | None = None,
             warm_start: bool = False) -> Callable[[list[str] | None], Path]:
    """The ``main(argv)`` of a training script (train/lam.py, train/decoder.py,
    train/controller.py): the command line of :func:`parse_cli` → ``train(job, resume=…)`` (and
    ``init_from=…`` with ``warm_start``); a wrong config or checkpoint ends the process with a
    one-line ``error: …`` instead of a traceback.

    Args:
        train: the script's ``train(job, resume=None[, init_from=None])``.
        doc: the script's docstring (its first line is the help text).
        defaults: the script's own defaults under the recipe (e.g. the controller's optimiser).
        warm_start: the script takes ``--init-from``.
    """

    def main(argv: list[str] | None = None) -> Path:
        args = parse_cli(argv, doc.splitlines()[0])
        try:
            if args.init_from and not warm_start:
                raise ConfigError("--init-from: only train/lam.py warm-starts")
            job = load_job_config(args.config, args.overrides, defaults)
            extra = {"init_from": args.init_from} if warm_start else {}
            return train(job, resume=args.resume, **extra)
        except (ConfigError, CheckpointError) as e:  # a one-line error, not a traceback
            raise SystemExit(f"error: {e}") from None

    return main


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
                  * (lam.get("latent_grid", 1) ** 2 + bool(lam.get("global_latent"))),
                  "latent_grid": lam.get("latent_grid", 1),
                  "global_latent": bool(lam.get("global_latent"))})
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
    """Value checks that typing cannot express: the run's own here; the models' and the data
    sources' from their owners (``LatentActionModel.check``, ``Controller.check``,
    :func:`train.sources.check_data`), each naming the dotted key."""
    t, d = job.train, job.data
    rules = [
        ("train.steps", t.steps >= 1, "must be ≥ 1"),
        ("train.batch_size", t.batch_size >= 1, "must be ≥ 1"),
        ("train.grad_accum", t.grad_accum >= 1, "must be ≥ 1"),
        ("train.mixed_precision", t.mixed_precision in ("no", "bf16", "auto"),
         "must be no, bf16 or auto"),
        ("train.warmup_fraction", 0.0 <= t.warmup_fraction < 1.0, "must be in [0, 1)"),
        ("train.reg_warmup_fraction", 0.0 <= t.reg_warmup_fraction <= 1.0, "must be in [0, 1]"),
        ("train.reg_warmup_start", 0.0 <= t.reg_warmup_start <= 1.0, "must be in [0, 1]"),
        ("train.adamw_betas", len(t.adamw_betas) == 2, "must be two numbers"),
        ("train.keep_last", t.keep_last >= 1, "must be ≥ 1"),
        ("train.world_loss_weight", t.world_loss_weight >= 0, "must be ≥ 0"),
        ("train.world_change_from", t.world_change_from in ("lam", *CHANGE_FROM),
         f"must be lam, {' or '.join(CHANGE_FROM)}"),
        ("train.lpips_net", t.lpips_net in ("alex", "vgg", "squeeze"),
         "must be alex, vgg or squeeze"),
        ("data.num_frames", d.num_frames % job.encoder.tubelet == 0
         and d.num_frames >= 2 * job.encoder.tubelet,
         f"must be a multiple of the tubelet ({job.encoder.tubelet}) covering ≥ 2 steps"),
        ("data.cache_dtype", d.cache_dtype in ("float16", "bfloat16", "float32"),
         "must be float16, bfloat16 or float32"),
    ]
    for key, ok, message in rules:
        if not ok:
            raise ConfigError(f"{key}: {message}")
    for check, cfg in ((LatentActionModel.check, job.lam), (Controller.check, job.controller)):
        try:
            check(cfg)
        except ValueError as e:  # the message starts with the dotted key
            raise ConfigError(str(e)) from None
    check_data(job)


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
