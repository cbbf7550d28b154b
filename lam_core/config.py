"""Typed configurations of every model component, saved as ``config.json`` beside the weights.

Each component folder holds ``config.json`` (one of the dataclasses below, plus a ``"component"``
tag) and ``model.safetensors``. YAML training recipes live in ``train/configs/``, never here.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A configuration value or key is wrong; the message names it."""


@dataclass
class EncoderConfig:
    """Frozen frame-causal video encoder f (paper §4).

    Attributes:
        kind: ``"patch"`` (exact: the features are the pixels of each patch, nothing to train,
            any footage is represented exactly; the embedded default), ``"tiny"`` (a small
            trainable ViT, trained as an autoencoder with its decoder) or ``"vjepa2"`` (V-JEPA 2
            from ``transformers``, loaded from ``hub_id``; the paper).
        image_size: square input size in pixels (V-JEPA 2: its ``crop_size``).
        patch_size: spatial patch in pixels.
        tubelet: frames per model step.
        dim: feature width D_enc (V-JEPA 2: its ``hidden_size``; patch: ``tubelet · patch² · 3``).
        depth, heads, mlp_ratio: transformer shape (tiny only).
        hub_id: hub id or local folder of the V-JEPA 2 weights (vjepa2 only).
        fps: frame rate the model expects (paper: 4).
    """

    kind: str = "tiny"
    image_size: int = 64
    patch_size: int = 8
    tubelet: int = 2
    dim: int = 96
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    hub_id: str | None = None
    fps: float = 4.0

    @property
    def grid(self) -> int:
        """Tokens per row (and column) of a step."""
        return self.image_size // self.patch_size

    @property
    def tokens_per_step(self) -> int:
        return self.grid**2


@dataclass
class RegularizerConfig:
    """Latent action regularizer (paper §3 and App. A coefficients).

    Attributes:
        kind: ``"sparse"``, ``"noisy"``, ``"discrete"`` or ``"none"``.
        latent_dim: D_z (paper: 128).
        lambda_l1, lambda_l2, lambda_v, lambda_c, lambda_m: sparse coefficients.
        beta: KL weight of the noisy regularizer.
        logvar_offset: added to the IDM's raw log-variance (noisy): a negative value starts the
            posterior nearly deterministic (−5 in the embedded default), so the world model learns
            to read the latent before the KL weight rises.
        free_bits: noisy: KL per latent dimension below this many nats costs nothing (0: off).
        codebook_size, commitment, reset_every: discrete (VQ) settings; ``reset_every`` counts
            latents between resets of unused codes.
    """

    kind: str = "sparse"
    latent_dim: int = 128
    lambda_l1: float = 0.05
    lambda_l2: float = 1.0
    lambda_v: float = 0.1
    lambda_c: float = 0.001
    lambda_m: float = 0.1
    beta: float = 1e-4
    logvar_offset: float = 0.0
    free_bits: float = 0.0
    codebook_size: int = 1024
    commitment: float = 0.25
    reset_every: int = 20000


@dataclass
class TransformerConfig:
    """Width, depth and heads of a transformer stack."""

    width: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0


@dataclass
class LAMConfig:
    """Latent action model: IDM g + regularizer + world model p (paper §3–§4).

    Attributes:
        kind: ``"latent"`` (IDM latents), ``"deterministic"`` (no latent: the low end of the
            capacity axis) or ``"action"`` (conditioned on real actions: the V-JEPA 2-AC baseline).
        feature_dim: D_enc of the encoder's features.
        grid: tokens per row/column of a step (the encoder's grid).
        action_dim: size of real actions (``"action"`` kind).
        token_merge: the world model merges ``k × k`` feature tokens into one (k=1: none); the
            knob that makes CPU rollouts and planning interactive.
        idm_token_merge: the same for the IDM, which sees every pair of steps (T'-1 pairs of
            2N tokens per clip: most of a training step's compute at k=1 on the small preset).
        predict_residual: predict ``s_t+1 - s_t`` (the output head starts at zero, so the untrained
            model is the copy-last-frame baseline).
        head: the world model's head, a name of :data:`lam_core.models.heads.HEADS`:
            ``"features"`` (predict the next step's features: the paper), ``"flow"`` (pixel
            features only, i.e. the ``patch`` encoder: predict a flow field that warps the last
            frame, plus a fill where the warp has no source pixels; :mod:`lam_core.models.flow`)
            or another registered head. Its values are checked by the head
            (``LatentActionModel.check``).
        patch_size: pixels per token side (flow head; derived from the patch encoder).
        flow_grid: flow vectors per image side (flow head); each merged token predicts
            ``(flow_grid / merged grid)²`` of them, upsampled bilinearly to every pixel.
        flow_upsample: how the flow reaches every pixel: ``"bilinear"``, or ``"convex"`` (as
            RAFT: each pixel's flow is a learned convex combination of its cell's 3 × 3
            neighbouring vectors, so an object's edge can be sharp; it starts as bilinear, and
            a warm start may switch it on).
        flow_l1: weight of the mean flow magnitude (pixels) in the loss (flow head): where the
            pixels do not say how content moved (flat regions) the flow stays at zero.
        idm_input: ``"pair"`` (a transformer over the tokens of both steps) or ``"difference"``
            (one token per position holding ``s_t``, ``s_t+1`` and their difference: half the
            tokens, and small changes stand out).
        condition_add: besides AdaLN-zero, add the condition's embedding to the tokens of its
            step (measured: the latent is used sooner).
        change_weight: the prediction L1 of a token is weighted by ``1 + change_weight · c`` with
            ``c`` its change ``|s_t+1 − s_t|`` relative to the clip's mean change (0: plain L1).
            Movers are a few percent of the pixels; this keeps copying the last frame from
            being nearly optimal.
        change_from: whose change ``c`` is: ``"target"`` (the true next step's) or ``"both"``
            (the larger of the target's and the prediction's, without gradient: a prediction
            that moves what stays still is weighed as a missed move is; measured on the
            action-conditioned reach model, where the target's alone rewards sliding the whole
            scene with the agent).
        rollout_weight: beyond teacher forcing, the world model also predicts every step from
            its own previous prediction (a two-step unroll, as V-JEPA 2-AC's rollout loss), and
            that L1 is added with this weight (0: off; the world model then never sees its
            own outputs in training, and errors compound in rollouts: a small object drifts
            off its latents' cells and stops).
        latent_grid: latent actions per step (beyond the paper): 1 is the paper's one latent per
            transition; ``g > 1`` gives a ``g × g`` grid of latents, each of
            ``regularizer.latent_dim`` dimensions, inferred from the IDM's tokens of its cell
            and applied to the world model's tokens of that cell (``g`` must equal the world
            model's merged grid). A small object's motion then lands where the object is instead
            of being averaged away over the frame, and a transfer replays it at the same place
            (the paper's actions localized relative to the camera, Fig. 8). Consumers see one
            vector per step of :attr:`latent_dim` ``= g² · regularizer.latent_dim``.
        cell_modulation: with a latent grid, each token's AdaLN modulation comes from its own
            cell's latent instead of the mean of the cells (the world model's blocks then cost
            about 1.5× the FLOPs: the modulation runs per token).
        idm_radius: 0: the IDM's tokens attend to each other across the frame (the paper);
            ``r ≥ 1``: only within ``r`` rows and columns of IDM tokens, so with a latent grid
            a cell's latent holds the motion near it and not a far object's.
        global_latent: with a latent grid, one more latent per step (``regularizer.latent_dim``
            dimensions, after the cells) inferred from the mean of all the IDM's tokens and
            applied to every token: the camera's motion, pooled over every cell's evidence
            (a cell over a flat or slowly moving region sees too little to carry a pan at full
            speed), while the cells carry what moves on its own.
    """

    kind: str = "latent"
    feature_dim: int = 96
    grid: int = 8
    action_dim: int = 2
    token_merge: int = 1
    idm_token_merge: int = 1
    predict_residual: bool = True
    head: str = "features"
    patch_size: int = 0
    flow_grid: int = 16
    flow_upsample: str = "bilinear"
    flow_l1: float = 0.0
    idm_input: str = "pair"
    condition_add: bool = False
    change_weight: float = 0.0
    change_from: str = "target"
    rollout_weight: float = 0.0
    latent_grid: int = 1
    cell_modulation: bool = False
    idm_radius: int = 0
    global_latent: bool = False
    regularizer: RegularizerConfig = field(default_factory=RegularizerConfig)
    idm: TransformerConfig = field(default_factory=lambda: TransformerConfig(128, 2, 4))
    world_model: TransformerConfig = field(default_factory=TransformerConfig)

    @property
    def latent_cells(self) -> int:
        """Latents per step: ``latent_grid²``."""
        return self.latent_grid * self.latent_grid

    @property
    def latent_slots(self) -> int:
        """Latent vectors per step: the cells, plus the global latent if any."""
        return self.latent_cells + int(self.global_latent)

    @property
    def latent_dim(self) -> int:
        """Width of a step's latent action as consumers see it (controller, planner, studio):
        ``latent_slots · regularizer.latent_dim``."""
        return self.latent_slots * self.regularizer.latent_dim


@dataclass
class DecoderConfig:
    """Frame-causal ViT decoder from features to pixels (paper App. A).

    Attributes:
        kind: ``"vit"`` (a trained ViT) or ``"patch"`` (the exact inverse of the patch encoder:
            no weights).
    """

    kind: str = "vit"
    feature_dim: int = 96
    image_size: int = 64
    patch_size: int = 8
    tubelet: int = 2
    width: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size


@dataclass
class ControllerConfig:
    """Controller c(a_t, s_t) → z_t from real actions to latent actions (paper §7, App. A).

    Attributes:
        kind: ``"mlp"`` (actions only) or ``"adapter"`` (2 self-attention blocks over the current
            step's tokens, a 3-layer action MLP, cross-attention from the action token to the frame
            tokens, a linear layer to D_z).
        token_merge: the adapter merges ``k × k`` feature tokens into one first (1: none).
        latent_grid: the LAM's latent grid (``LAMConfig.latent_grid``). With ``g > 1`` the adapter
            answers per cell: the action's embedding joins every merged frame token (one per
            cell: ``g`` must equal the merged grid), a self-attention block lets the cells
            agree, and each token gives its cell's latent — the cell where the agent is moves,
            the others stay, as the LAM's own latents do.
        global_latent: the LAM's global latent (``LAMConfig.global_latent``): the adapter also
            answers it, from the mean of the cells' tokens (after the cells' latents).
    """

    kind: str = "adapter"
    action_dim: int = 2
    latent_dim: int = 128
    feature_dim: int = 96
    grid: int = 8
    width: int = 128
    heads: int = 4
    hidden: int = 256
    token_merge: int = 1
    latent_grid: int = 1
    global_latent: bool = False


COMPONENTS: dict[str, type] = {
    "encoder": EncoderConfig,
    "lam": LAMConfig,
    "decoder": DecoderConfig,
    "controller": ControllerConfig,
}


def config_to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (and build nested dataclasses)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return config_from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: {value!r} does not fit {tp}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (arg, *_) = typing.get_args(tp) or (Any,)
        return list(_coerce(v, arg, f"{where}[{i}]") for i, v in enumerate(value))
    if tp is Any or origin is dict or tp is dict:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
    return value


def config_from_dict(cls: type, data: dict, where: str = "config") -> Any:
    """Build dataclass ``cls`` from a plain dict, rejecting unknown keys and wrong types.

    Raises:
        ConfigError: naming the offending key (dotted path) and what was expected.
    """
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(names))}"
        )
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)
