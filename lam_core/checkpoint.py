"""Save and load model components in the hub layout: ``config.json`` + ``model.safetensors``.

A component folder's ``config.json`` is ``{"component": <name>, "format_version": 1, "config":
{...}}`` with the component's dataclass config. Loading validates everything and names the file
and the mismatch when something is wrong; weights are never unpickled.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from lam_core.config import (
    COMPONENTS,
    ConfigError,
    DecoderConfig,
    EncoderConfig,
    config_from_dict,
    config_to_dict,
)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, broken or does not match its config; the message names the file."""


def build_component(name: str, cfg) -> nn.Module:
    """Build an untrained component from its config."""
    from lam_core.models import Controller, LatentActionModel, build_decoder, build_encoder

    builders = {
        "encoder": build_encoder,
        "lam": LatentActionModel,
        "decoder": build_decoder,
        "controller": Controller,
    }
    return builders[name](cfg)


def component_name(cfg) -> str:
    for name, cls in COMPONENTS.items():
        if isinstance(cfg, cls):
            return name
    raise TypeError(f"not a component config: {type(cfg).__name__}")


def has_weights(cfg) -> bool:
    """A V-JEPA 2 encoder's weights live at its ``hub_id``, not in our folder; the patch encoder
    and decoder have none."""
    if isinstance(cfg, EncoderConfig):
        return cfg.kind not in ("vjepa2", "patch")
    return not (isinstance(cfg, DecoderConfig) and cfg.kind == "patch")


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_component(
    module: nn.Module,
    directory: str | Path,
    dtype: torch.dtype | None = None,
    training: dict | None = None,
) -> Path:
    """Write ``module`` (which has a ``.cfg``) to ``directory``.

    Args:
        module: a component with its dataclass config at ``module.cfg``.
        directory: created if missing.
        dtype: cast floating-point weights (e.g. ``torch.float16`` for shipped assets).
        training: what trained these weights, kept in ``config.json`` under ``"training"``
            (cumulative ``steps`` and ``clips`` across warm-started runs, the runs themselves).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cfg = module.cfg
    meta = {
        "component": component_name(cfg),
        "format_version": FORMAT_VERSION,
        "config": config_to_dict(cfg),
    }
    if training is not None:
        meta["training"] = training
    _atomic_write(
        directory / CONFIG_NAME, lambda p: Path(p).write_text(json.dumps(meta, indent=2) + "\n")
    )
    if has_weights(cfg):
        state = {}
        for k, v in module.state_dict().items():
            v = v.detach().cpu()
            if dtype is not None and v.is_floating_point():
                v = v.to(dtype)
            state[k] = v.contiguous()
        _atomic_write(
            directory / WEIGHTS_NAME, lambda p: save_file(state, p, metadata={"format": "pt"})
        )
    return directory


def read_training_record(directory: str | Path) -> dict:
    """The ``"training"`` record of a component's ``config.json`` (``{}`` when there is none:
    components written before records existed, or never trained)."""
    path = Path(directory) / CONFIG_NAME
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: cannot read ({e})") from e
    record = meta.get("training") if isinstance(meta, dict) else None
    return record if isinstance(record, dict) else {}


def read_component_config(directory: str | Path, expected: str | None = None):
    """Read and validate a component's ``config.json``; returns its dataclass config."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(
            f"{path}: missing (a component folder needs {CONFIG_NAME} + {WEIGHTS_NAME})"
        )
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from e
    name = meta.get("component") if isinstance(meta, dict) else None
    if name not in COMPONENTS:
        raise CheckpointError(
            f"{path}: 'component' must be one of {sorted(COMPONENTS)}, got {name!r}"
        )
    if expected is not None and name != expected:
        raise CheckpointError(f"{path}: expected a {expected} component, found a {name}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format_version {meta.get('format_version')!r} is not "
            f"{FORMAT_VERSION}; this lam-studio cannot read it"
        )
    try:
        return config_from_dict(COMPONENTS[name], meta.get("config", {}), where=f"{path}: config")
    except ConfigError as e:
        raise CheckpointError(str(e)) from e


def load_state_checked(module: nn.Module, path: Path) -> None:
    """Load safetensors ``path`` into ``module``; every missing, unexpected or mis-shaped tensor is
    reported with the file's name."""
    if not path.is_file():
        raise CheckpointError(f"{path}: missing weights file")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot read safetensors ({e})") from e
    own = module.state_dict()
    problems = []
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing:
        problems.append(f"missing tensors {missing[:5]}{' …' if len(missing) > 5 else ''}")
    if unexpected:
        problems.append(f"unexpected tensors {unexpected[:5]}{' …' if len(unexpected) > 5 else ''}")
    for k in sorted(set(own) & set(state)):
        if own[k].shape != state[k].shape:
            problems.append(
                f"{k}: shape {tuple(state[k].shape)} in file, "
                f"{tuple(own[k].shape)} expected by config.json"
            )
    if problems:
        raise CheckpointError(f"{path}: does not match its config: " + "; ".join(problems))
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})


def load_component(directory: str | Path, expected: str | None = None) -> nn.Module:
    """Build a component from its folder and load its weights (CPU, fp32, eval mode)."""
    directory = Path(directory)
    cfg = read_component_config(directory, expected)
    module = build_component(component_name(cfg), cfg)
    if has_weights(cfg):
        load_state_checked(module, directory / WEIGHTS_NAME)
    return module.eval()
