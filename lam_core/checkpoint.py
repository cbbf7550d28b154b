"""Save and load model components in the hub layout: ``config.json`` + ``model.safetensors``.

A component folder's ``config.json`` is ``{"component": <name>, "format_version": 1, "config":
{...}}`` with the component's dataclass config (and, optionally, the ``"training"`` record).
Loading validates everything and names the file and the mismatch when something is wrong (a
missing or truncated file, a pickle file in place of safetensors, a newer ``format_version``, an
unknown key, a shape that does not match the config); weights are never unpickled. The cases and
their messages are listed in docs/RELIABILITY.md.
"""

from __future__ import annotations

import json
import os
import struct
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
from lam_core.models import Controller, LatentActionModel, build_decoder, build_encoder
from lam_core.version import __version__

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1
COMPONENT_KEYS = ("component", "format_version", "config", "training")
# files that hold weights in other formats; named when model.safetensors is missing
OTHER_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.safetensors")
MAX_HEADER = 100_000_000  # safetensors refuses larger headers too


class CheckpointError(ValueError):
    """A checkpoint is missing, broken or does not match its config; the message names the file."""


def check_format_version(path: Path, meta: dict) -> None:
    """Refuse a ``config.json`` whose ``format_version`` this lam-studio does not read.

    Raises:
        CheckpointError: a newer version (this lam-studio is too old: upgrade it) or a missing or
            malformed one, naming ``path`` and the version this lam-studio reads.
    """
    version = meta.get("format_version")
    if version == FORMAT_VERSION:
        return
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format_version {version} is newer than the format_version {FORMAT_VERSION} "
            f"this lam-studio ({__version__}) reads: this lam-studio is too old; upgrade it "
            "(pip install -U lam-studio) to open this checkpoint"
        )
    raise CheckpointError(
        f"{path}: format_version {version!r} is not one this lam-studio ({__version__}) reads "
        f"(it reads format_version {FORMAT_VERSION}); was this file written by lam-studio?"
    )


def check_keys(path: Path, meta: dict, known: tuple[str, ...]) -> None:
    """Refuse unknown top-level keys of a ``config.json`` (a typo, or another program's file)."""
    unknown = sorted(set(meta) - set(known))
    if unknown:
        raise CheckpointError(
            f"{path}: unknown key(s) {', '.join(map(str, unknown))}; valid keys: "
            f"{', '.join(known)}"
        )


def build_component(name: str, cfg) -> nn.Module:
    """Build an untrained component from its config."""
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


def record_sources(data: dict | None) -> list[tuple[dict, float]] | None:
    """The sources of one run's ``data`` record (a training record's ``runs[i]["data"]``), each
    with its share of the run's clips: one per line of a ``data.sources`` run (weights
    normalised), else the run's own description with share 1; None when the record does not say
    what the run trained on."""
    if not isinstance(data, dict) or "source" not in data:
        return None
    if data["source"] != "sources":
        return [(data, 1.0)]
    lines = [x for x in data.get("sources") or [] if isinstance(x, dict)]
    total = sum(float(x.get("weight", 1.0)) for x in lines)
    return [(x, float(x.get("weight", 1.0)) / total) for x in lines] if total > 0 else None


def read_component_config(directory: str | Path, expected: str | None = None):
    """Read and validate a component's ``config.json``; returns its dataclass config.

    Args:
        directory: the component folder.
        expected: the component it must be (``"lam"``, …), or None for any.

    Raises:
        CheckpointError: naming the file and the key or value that is wrong.
    """
    directory = Path(directory)
    path = directory / CONFIG_NAME
    if not directory.is_dir():
        what = "is a file, not" if directory.exists() else "no such folder; expected"
        raise CheckpointError(
            f"{directory}: {what} a component folder ({CONFIG_NAME} + {WEIGHTS_NAME})"
        )
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
    check_format_version(path, meta)
    check_keys(path, meta, COMPONENT_KEYS)
    if not isinstance(meta.get("config", {}), dict):
        raise CheckpointError(f"{path}: 'config' must be a mapping, got {meta['config']!r}")
    try:
        return config_from_dict(COMPONENTS[name], meta.get("config", {}), where=f"{path}: config")
    except ConfigError as e:
        raise CheckpointError(str(e)) from e


def _missing_weights(path: Path) -> str:
    """Why ``path`` is missing, naming weight files of other formats found beside it."""
    others = sorted({p.name for pattern in OTHER_WEIGHTS for p in path.parent.glob(pattern)})
    if not others:
        return f"{path}: missing weights file"
    return (
        f"{path}: missing weights file; found {', '.join(others)} instead: lam-studio reads "
        f"weights only from {WEIGHTS_NAME} and never unpickles .bin/.pt/.ckpt files (convert a "
        "file you trust with safetensors.torch.save_file)"
    )


def diagnose_safetensors(path: Path) -> str | None:
    """What is wrong with a file safetensors refused, in words (None: nothing more to say).

    Recognises an empty or truncated file (its header describes more bytes than the file has), a
    zip or pickle file (``torch.save``) under the safetensors name, and bytes that are not
    safetensors at all.
    """
    size = path.stat().st_size
    pickled = (
        "{} (torch.save?), not safetensors: lam-studio never unpickles weights; convert a file "
        "you trust with safetensors.torch.save_file"
    )
    with path.open("rb") as f:
        head = f.read(8)
        if head.startswith(b"PK\x03\x04"):
            return pickled.format("a zip archive")
        if size < 8:
            return f"{size} bytes, too short for safetensors (an interrupted write?)"
        (n,) = struct.unpack("<Q", head)
        try:
            if n > MAX_HEADER or 8 + n > size:
                raise ValueError("no header")
            header = json.loads(f.read(n))
            ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            if head[:1] == b"\x80" and head[1] in range(2, 6):
                return pickled.format("a pickle")
            if n <= MAX_HEADER and 8 + n > size:
                return f"truncated: {size} bytes, its header alone needs {8 + n}"
            return "not a safetensors file (no valid header: random bytes or another format)"
    expected = 8 + n + max(ends, default=0)
    if size < expected:
        return (
            f"truncated: {size} bytes, its header describes {expected} "
            "(an interrupted copy or download?)"
        )
    return None


def load_state_checked(module: nn.Module, path: Path, new: tuple[str, ...] = (),
                       keep: str = "", skip: tuple[str, ...] = ()) -> None:
    """Load safetensors ``path`` into ``module``; every missing, unexpected or mis-shaped tensor is
    reported with the file's name. Tensors whose names start with one of ``new`` may be missing
    (modules a warm start adds: they keep their initialisation). With ``keep``, only the file's
    tensors under that prefix are read (and only those of ``module`` are expected), minus those
    under ``skip`` (a part of another model taken into this one).

    Raises:
        CheckpointError: the file is missing (naming other weight files found beside it),
            unreadable (truncated, a pickle, random bytes) or does not match ``module``.
    """
    if not path.is_file():
        raise CheckpointError(_missing_weights(path))
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        why = diagnose_safetensors(path) if path.is_file() else None
        if why:
            raise CheckpointError(f"{path}: cannot read safetensors: {why} [{e}]") from e
        raise CheckpointError(f"{path}: cannot read safetensors ({e})") from e
    own = module.state_dict()
    if keep:
        state = {k: v for k, v in state.items() if k.startswith(keep) and not k.startswith(skip)}
        own = {k: v for k, v in own.items() if k.startswith(keep)}
    problems = []
    missing = sorted(k for k in set(own) - set(state) if not k.startswith(new))
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
        elif own[k].is_floating_point() != state[k].is_floating_point():
            problems.append(f"{k}: dtype {state[k].dtype} in file, {own[k].dtype} expected")
    if problems:
        raise CheckpointError(f"{path}: does not match its config: " + "; ".join(problems))
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()},
                           strict=not (new or keep))


def hub_offline() -> bool:
    """Whether the model hub is switched off (``HF_HUB_OFFLINE=1``)."""
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")
    return bool(constants.HF_HUB_OFFLINE) or flag


def load_component(directory: str | Path, expected: str | None = None) -> nn.Module:
    """Build a component from its folder and load its weights (CPU, fp32, eval mode).

    Args:
        directory: the component folder (``config.json`` + ``model.safetensors``).
        expected: the component it must be (``"encoder"``, ``"lam"``, …), or None for any.

    Raises:
        CheckpointError: naming the file and what is wrong with it (see
            :func:`read_component_config`, :func:`load_state_checked`); for a V-JEPA 2 encoder
            whose ``hub_id`` cannot be loaded, naming the id (and saying when the hub is off).
    """
    directory = Path(directory)
    cfg = read_component_config(directory, expected)
    try:
        module = build_component(component_name(cfg), cfg)
    except OSError as e:  # a V-JEPA 2 encoder whose hub_id is neither cached nor reachable
        if not (isinstance(cfg, EncoderConfig) and cfg.kind == "vjepa2"):
            raise
        hint = (
            " The hub is offline (HF_HUB_OFFLINE=1): set encoder hub_id to a local folder "
            "holding the VJEPA2Model (config.json + model.safetensors), or download it once "
            "online."
            if hub_offline()
            else ""
        )
        raise CheckpointError(
            f"{directory / CONFIG_NAME}: config.hub_id {cfg.hub_id!r}: cannot load the V-JEPA 2 "
            f"weights ({str(e).splitlines()[0]}).{hint}"
        ) from e
    if has_weights(cfg):
        load_state_checked(module, directory / WEIGHTS_NAME)
    return module.eval()
