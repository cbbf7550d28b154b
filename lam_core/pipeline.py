"""``LatentActionPipeline``: the face of lam_core (docs/DESIGN.md#data-flow,
docs/DESIGN.md#entry-points).

It holds the frozen encoder, the latent action model (IDM + regularizer + world model), the
decoder and, optionally, a controller; the :class:`~lam_core.processing.ClipProcessor` that turns
video into the encoder's input (``pipe.processor``); the hub I/O (``from_pretrained``,
``save_pretrained``); and the building blocks every consumer needs: ``encode``,
``infer_latents``, ``rollout``, ``decode``, ``latents_from_actions``, ``rollout_with_actions``,
``sample_latents``, all under ``torch.no_grad``. The operations built on them (transfer, cycle,
leakage) are functions in :mod:`lam_core.operations`; ``pipe.transfer``, ``pipe.cycle`` and
``pipe.leakage`` call them.

A pipeline folder (hub layout)::

    config.json          {"format": "lam-studio-pipeline", "format_version": 1,
                          "components": {"encoder": "encoder", "lam": "lam", ...}}
    encoder/             config.json (+ model.safetensors unless V-JEPA 2, which loads its hub_id)
    lam/ decoder/ controller/

A component entry may also be a relative path to another folder (``"../autoencoder/encoder"``) so
several shipped pipelines share one encoder; ``save_pretrained`` and ``push_to_hub`` always write
self-contained folders.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch
from huggingface_hub import ModelHubMixin, snapshot_download
from torch import nn

from lam_core import operations
from lam_core.checkpoint import (
    CONFIG_NAME,
    CheckpointError,
    build_component,
    check_format_version,
    check_keys,
    hub_offline,
    load_component,
    save_component,
)
from lam_core.clip import Clip
from lam_core.processing import ClipProcessor, VideoLike
from lam_core.results import CycleResult, LeakageResult, TransferResult

PIPELINE_FORMAT = "lam-studio-pipeline"
PIPELINE_KEYS = ("format", "format_version", "components", "world")
COMPONENT_NAMES = ("encoder", "lam", "decoder", "controller")
REPO_ROOT = Path(__file__).resolve().parent.parent


def resolve_path(name: str | Path) -> Path | None:
    """A local folder for ``name``: as given, else relative to the repository (``assets/…``)."""
    for p in (Path(name), REPO_ROOT / str(name)):
        if p.is_dir():
            return p
    return None


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


def _hub_error(name: str, error: Exception, local_files_only: bool) -> CheckpointError:
    """A download failure in words: offline (and how to point at a folder), no such repository,
    or the hub's own message."""
    from huggingface_hub.errors import (
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    folder_hint = (
        "pass a local folder instead (a pipeline folder holding config.json and one sub-folder "
        "per component, e.g. LatentActionPipeline.from_pretrained('assets/checkpoints/"
        "pixel-noisy')), or download it once while online"
    )
    if hub_offline() or isinstance(error, OfflineModeIsEnabled):
        return CheckpointError(
            f"{name}: could not download from the hub: it is offline (HF_HUB_OFFLINE=1) and "
            f"{name} is not in the local hub cache; {folder_hint}"
        )
    if local_files_only or isinstance(error, LocalEntryNotFoundError):
        why = "local_files_only=True" if local_files_only else "the hub cannot be reached"
        return CheckpointError(
            f"{name}: could not download from the hub: {why} and {name} is not in the local hub "
            f"cache; {folder_hint}"
        )
    if isinstance(error, RevisionNotFoundError):
        return CheckpointError(f"{name}: could not download from the hub: no such revision")
    if isinstance(error, RepositoryNotFoundError):
        return CheckpointError(
            f"{name}: could not download from the hub: no such repository (or a private one: "
            "pass token=…)"
        )
    return CheckpointError(f"{name}: could not download from the hub ({error})")


def cpu_has_native_bf16() -> bool:
    """AVX-512 BF16 or AMX: the CPUs on which bf16 matmuls are native (measured: a ViT block's
    training step ~2.4× faster than fp32); without them bf16 is emulated and several times slower
    than fp32."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def cpu_bf16(enabled: bool | None = None):
    """bf16 autocast for pipeline calls on the CPU: ``enabled=None`` turns it on where the CPU has
    native bf16. CEM costs under it: 1.7–2.3× faster than fp32 on such a CPU, relative error of a
    cost ~1e-4, the same elites (docs/PERFORMANCE.md)."""
    on = cpu_has_native_bf16() if enabled is None else enabled
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=on)


def _local_folder(name_or_path: str | Path, **hub) -> Path:
    """The folder of ``name_or_path``: a local one (:func:`resolve_path`), else a hub snapshot
    downloaded with ``hub`` (``revision``, ``token``, ``local_files_only``, ``cache_dir``)."""
    folder = resolve_path(name_or_path)
    if folder is not None:
        return folder
    if Path(name_or_path).is_file():
        raise CheckpointError(
            f"{name_or_path}: is a file; from_pretrained takes the pipeline folder that holds "
            f"{CONFIG_NAME} and the component folders"
        )
    if not _looks_like_hub_id(str(name_or_path)):
        raise CheckpointError(
            f"{name_or_path}: no such checkpoint folder (looked in the working directory "
            f"and in {REPO_ROOT}), and it is not a hub id of the form 'owner/name'"
        )
    try:
        return Path(snapshot_download(str(name_or_path), **hub))
    except Exception as e:  # network, auth, missing repo: say which
        raise _hub_error(str(name_or_path), e, hub.get("local_files_only", False)) from e


def _component_folders(folder: Path) -> dict[str, Path | None]:
    """The component folders a pipeline folder's ``config.json`` names, checked."""
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (not a lam-studio pipeline folder)")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(meta, dict) or meta.get("format") != PIPELINE_FORMAT:
        raise CheckpointError(
            f"{path}: 'format' is not {PIPELINE_FORMAT!r}; is this a "
            "component folder? Use LatentActionPipeline.from_components"
        )
    check_format_version(path, meta)
    check_keys(path, meta, PIPELINE_KEYS)
    comps = meta.get("components", {})
    if not isinstance(comps, dict):
        raise CheckpointError(f"{path}: 'components' must be a mapping, got {comps!r}")
    for required in ("encoder", "lam"):
        if not comps.get(required):
            raise CheckpointError(f"{path}: components.{required} is missing")
    unknown = set(comps) - set(COMPONENT_NAMES)
    if unknown:
        raise CheckpointError(
            f"{path}: unknown components {sorted(unknown)}; valid: {', '.join(COMPONENT_NAMES)}"
        )
    for name, entry in comps.items():
        if entry is None:
            continue
        if not isinstance(entry, str):
            raise CheckpointError(
                f"{path}: components.{name} must be a folder name or null, got {entry!r}"
            )
        if not (folder / entry).is_dir():
            state = "is a file" if (folder / entry).exists() else "does not exist"
            raise CheckpointError(
                f"{path}: components.{name} names the folder {entry!r}, but "
                f"{folder / entry} {state}"
            )
    return {k: (folder / v) if v else None for k, v in comps.items()}


class LatentActionPipeline(ModelHubMixin, nn.Module):
    """Encoder + latent action model + decoder (+ controller), and the processor of its input.

    Args:
        encoder: clip ``(B, T, 3, H, W)`` in [0, 1] → features ``(B, T', N, D)``.
        lam: a :class:`~lam_core.models.LatentActionModel`.
        decoder: features → pixels, or None (then nothing can be decoded).
        controller: real actions → latent actions, or None.
    """

    def __init__(
        self,
        encoder: nn.Module,
        lam: nn.Module,
        decoder: nn.Module | None = None,
        controller: nn.Module | None = None,
    ):
        super().__init__()
        self.encoder, self.lam, self.decoder, self.controller = encoder, lam, decoder, controller
        self.processor = ClipProcessor.from_config(encoder.cfg)
        self.eval()

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def from_config(cls, cfg) -> LatentActionPipeline:
        """Untrained components built from a :class:`~lam_core.presets.PipelineConfig`."""
        return cls(**{n: build_component(n, getattr(cfg, n)) for n in COMPONENT_NAMES})

    @classmethod
    def from_components(cls, **components: str | Path | None) -> LatentActionPipeline:
        """Load each component from its folder (``encoder=…, lam=…, decoder=…, controller=…``)."""
        mods = {k: (load_component(v, expected=k) if v else None) for k, v in components.items()}
        return cls(**mods)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        *,
        revision: str | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
        cache_dir: str | Path | None = None,
    ) -> LatentActionPipeline:
        """Open a pipeline folder or a hub repository.

        Args:
            name_or_path: a folder (absolute, relative to the working directory, or relative to
                the repository such as ``assets/checkpoints/pixel-noisy``) or a hub id.

        Raises:
            CheckpointError: naming the file and what is wrong with it.
        """
        folder = _local_folder(
            name_or_path, revision=revision, token=token, local_files_only=local_files_only,
            cache_dir=cache_dir,
        )
        return cls.from_components(**_component_folders(folder))

    def _save_pretrained(self, save_directory: Path) -> None:
        save_directory = Path(save_directory)
        comps = {}
        for name in COMPONENT_NAMES:
            module = getattr(self, name)
            comps[name] = None if module is None else name
            if module is not None:
                save_component(module, save_directory / name)
        meta = {"format": PIPELINE_FORMAT, "format_version": 1, "components": comps}
        (save_directory / CONFIG_NAME).write_text(json.dumps(meta, indent=2) + "\n")

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        return next(self.lam.parameters()).device

    @property
    def tubelet(self) -> int:
        return self.processor.tubelet

    @property
    def fps(self) -> float:
        return self.processor.fps

    @property
    def image_size(self) -> int:
        return self.processor.image_size

    def autocast(self):
        """bf16 autocast on CUDA; elsewhere the caller's (e.g. :func:`cpu_bf16` around a CEM
        plan on a CPU with native bf16), fp32 by default."""
        dev = self.device
        if dev.type != "cuda" and torch.is_autocast_enabled(dev.type):
            return contextlib.nullcontext()
        return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda")

    # ------------------------------------------------------------------ tensors in and out
    def to_tensor(self, video: VideoLike, max_frames: int | None = None) -> torch.Tensor:
        """Model input ``(B, T, 3, S, S)`` on the pipeline's device, ``T`` cut to a multiple of
        the tubelet: :meth:`ClipProcessor.to_tensor <lam_core.processing.ClipProcessor.to_tensor>`
        (a processed clip or a tensor is taken as it is; a clip is sampled and resized once)."""
        return self.processor.to_tensor(video, max_frames).to(self.device)

    def to_clip(self, video: torch.Tensor, index: int = 0) -> Clip:
        """``(B, T, 3, H, W)`` float → :class:`Clip` of item ``index`` (uint8, the model's fps)."""
        frames = video[index].clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1)
        return Clip(frames.cpu().numpy(), fps=self.fps)

    # ------------------------------------------------------------------ building blocks
    @torch.no_grad()
    def encode(self, video: VideoLike) -> torch.Tensor:
        """Video → features ``(B, T', N, D)``."""
        with self.autocast():
            return self.encoder(self.to_tensor(video)).float()

    def features(self, video_or_features: VideoLike) -> torch.Tensor:
        """Features ``(B, T', N, D)`` of a video, or the features themselves when given them."""
        x = video_or_features
        if isinstance(x, torch.Tensor) and x.ndim == 4 and x.shape[-1] == self.encoder.cfg.dim:
            return x.to(self.device)
        return self.encode(x)

    @torch.no_grad()
    def infer_latents(self, video_or_features: VideoLike) -> torch.Tensor:
        """Latent actions ``(B, T'-1, D_z)`` of a video or of features ``(B, T', N, D)``."""
        feats = self.features(video_or_features)
        with self.autocast():
            return self.lam.infer_latents(feats).float()

    @torch.no_grad()
    def rollout(
        self,
        context: torch.Tensor,
        cond: torch.Tensor | None = None,
        horizon: int | None = None,
        *,
        return_displacements: bool = False,
    ):
        """World-model rollout with a KV cache; see :meth:`WorldModel.rollout` for shapes.

        With ``return_displacements``: ``(steps, displacements | None)``, the flow head's
        composed displacements ``(B, H, 2, h, w)`` from the last context frame (float32; None
        for other heads), which :func:`lam_core.rendering.render_at` renders at a display
        resolution."""
        with self.autocast():
            if not return_displacements:
                return self.lam.rollout(context, cond, horizon).float()
            steps, moves = self.lam.rollout(context, cond, horizon, return_displacements=True)
        return steps.float(), None if moves is None else moves.float()

    @torch.no_grad()
    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """Features ``(B, T', N, D)`` → pixels ``(B, T'·tubelet, 3, H, W)`` clamped to [0, 1]."""
        if self.decoder is None:
            raise ValueError("this pipeline has no decoder; load one to look at predictions")
        with self.autocast():
            return self.decoder(features).float().clamp(0, 1)

    @torch.no_grad()
    def latents_from_actions(self, actions: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Controller: actions ``(B, T, A)`` at steps ``(B, T, N, D)`` → latents ``(B, T, D_z)``."""
        if self.controller is None:
            raise ValueError("this pipeline has no controller; train one with train/controller.py")
        with self.autocast():
            return self.controller(actions, features).float()

    @torch.no_grad()
    def rollout_with_actions(
        self, context: torch.Tensor, actions: torch.Tensor, use_cache: bool = True
    ) -> torch.Tensor:
        """Roll out driven by real actions (paper App. A, eq. 2).

        A latent model asks its controller for ``z_i = c(a_i, ŝ_i)`` from the step each action
        starts from (predicted ones included); an ``"action"`` model takes the actions as they are.

        Args:
            context: ``(B, C, N, D)`` real steps; the context's own transitions take IDM latents.
                ``(1, C, N, D)`` is a start shared by the B action sequences (CEM candidates): its
                latents and its shared prefix are computed once (:meth:`WorldModel.rollout`).
            actions: ``(B, H, A)``, one per predicted step.

        Returns:
            ``(B, H, N, D)``.
        """
        c, horizon = context.shape[1], actions.shape[1]
        actions = actions.to(self.device, torch.float32)
        kind = self.lam.cfg.kind
        with self.autocast():
            if kind == "action":
                if c != 1:
                    raise ValueError(f"an action-conditioned rollout starts from one step, got {c}")
                return self.lam.rollout(context, actions, use_cache=use_cache).float()
            if kind != "latent" or self.controller is None:
                raise ValueError(f"a {kind!r} model without a controller cannot take actions; "
                                 "train one with train/controller.py")
            z_ctx = self.lam.infer_latents(context) if c > 1 else None
            out = self.lam.rollout(
                context, z_ctx, horizon, use_cache,
                next_cond=lambda i, s: self.controller(actions[:, i : i + 1], s),
            )
        return out.float()

    @torch.no_grad()
    def sample_latents(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` latents ``(n, D_z)`` drawn without a video (paper App. B)."""
        if not self.lam.uses_latents:
            raise ValueError(f"a {self.lam.cfg.kind!r} model has no latent actions to sample")
        g = torch.Generator().manual_seed(seed)
        slots = self.lam.cfg.latent_slots  # a latent grid: each cell drawn from the prior
        return self.lam.regularizer.sample(n * slots, generator=g).reshape(n, -1)

    # ------------------------------------------------------------------ operations
    def transfer(self, source: VideoLike, target: VideoLike, **options) -> TransferResult:
        """:func:`lam_core.operations.transfer` on this pipeline (``context``, ``steps``,
        ``progress``, ``display``, ``source_display``)."""
        return operations.transfer(self, source, target, **options)

    def cycle(self, source: VideoLike, target: VideoLike, **options) -> CycleResult:
        """:func:`lam_core.operations.cycle` on this pipeline (``context``, ``progress``,
        ``decode``, ``display``, ``source_display``)."""
        return operations.cycle(self, source, target, **options)

    def leakage(self, a: VideoLike, b: VideoLike, cut: int | None = None) -> LeakageResult:
        """:func:`lam_core.operations.leakage` on this pipeline."""
        return operations.leakage(self, a, b, cut)
