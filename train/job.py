"""What a training run is (docs/DESIGN.md#training): the typed sections of a recipe. Reading and
checking a recipe is :mod:`train.config`; the kinds of data, :mod:`train.sources`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lam_core.config import (
    ControllerConfig,
    DecoderConfig,
    EncoderConfig,
    LAMConfig,
    config_to_dict,
)


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
        world_loss_weight: controller job: loss = ‖c(a_t, s_t) − z_t‖² + world_loss_weight · the
            frozen world model's prediction loss of s_t+1 under the controller's latents
            (teacher-forced, the LAM's own change-weighted L1). 0: the paper's regression alone.
            The IDM's latents are what the world model was trained on, not the latents that
            place a small agent best: this term asks the controller for those.
        world_change_from: controller job: whose change weighs a token in that loss (as
            ``lam.change_from``): ``"lam"`` (the LAM's own setting), ``"target"`` or ``"both"``
            (the larger of the true and the predicted change, so moving the still scene costs as
            much as missing the agent).
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
    world_loss_weight: float = 0.0
    world_change_from: str = "lam"


@dataclass
class SourceConfig:
    """One weighted line of ``data.sources``: ``source`` (a name of
    :data:`train.sources.SOURCES`), ``weight`` (> 0) and the keys that source reads (its
    ``keys``): ``scene``, ``world``, ``clips`` (seeds of the training split; default
    ``data.train_clips``), ``folder``, ``shards``, ``index``, ``val_shards``."""

    source: str = ""
    weight: float = 1.0
    scene: str | None = None
    world: str | None = None
    clips: int | None = None
    folder: str | None = None
    shards: str | None = None
    index: str | None = None
    val_shards: str | None = None


@dataclass
class DataConfig:
    """What a run trains on.

    Attributes:
        source: a name of :data:`train.sources.SOURCES`, e.g. ``"miniwild"`` (procedural
            in-the-wild video), ``"world"`` (an action-labeled world, with real actions),
            ``"folder"`` (video files) or ``"shards"`` (WebDataset shards of ``train/shards.py
            pack``, streamed; see docs/SCALE.md).
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
            ``- {source: miniwild, scene: pan, weight: 2}`` (:class:`SourceConfig`,
            :mod:`train.sources`).
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
