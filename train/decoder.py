"""Train the frame-causal pixel decoder (paper App. A "Decoder training"), or, with
``encoder.kind: tiny`` and ``train.train_encoder: true``, the learned tiny encoder (the ``small``
preset's) and its decoder together as an autoencoder (docs/DESIGN.md#encoder).

Loss: L1 + ``lpips_weight`` · LPIPS (Zhang et al., 2018), as the paper. LPIPS needs its
torchvision backbone, which cannot be downloaded here: it is used only when the backbone file is
already in ``$TORCH_HOME/hub/checkpoints/``; otherwise the run trains with L1 only and says so
loudly. A randomly initialised LPIPS backbone is never used. Paper optimiser: Muon 0.02, AdamW
3e-4, weight decay 0.01 (the defaults here).

    accelerate launch train/decoder.py --config train/configs/tiny_autoencoder.yaml [key=value ...]
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from lam_core.checkpoint import build_component
from lam_core.config import ConfigError
from lam_core.models import Decoder
from train.common import Trainer, write_final
from train.config import JobConfig, job_main
from train.data import build_dataset, encode, fit_video, load_frozen_encoder, validation_batches

DEFAULTS = {"train": {"lr_adamw": 3e-4, "weight_decay": 0.01}}
LPIPS_BACKBONES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth",
                   "squeeze": "squeezenet1_1-b8a52dc0.pth"}


def load_lpips(net: str) -> nn.Module | None:
    """The real LPIPS (frozen) if its backbone weights are on disk, else None (with a warning)."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_BACKBONES[net]
    if not path.is_file():
        warnings.warn(
            f"\n{'!' * 78}\nLPIPS DISABLED: {path} is missing, so the decoder trains with L1 ONLY "
            f"(no perceptual loss).\nPut the torchvision '{net}' weights there to train with "
            f"L1 + LPIPS as the paper does.\n{'!' * 78}", stacklevel=2)
        return None
    import lpips

    model = lpips.LPIPS(net=net, pretrained=True, verbose=False)
    return model.eval().requires_grad_(False)  # its linear heads keep requires_grad otherwise


class Autoencoder(nn.Module):
    """Encoder + decoder trained together: clip ``(B, T, 3, H, W)`` → reconstruction."""

    def __init__(self, encoder: nn.Module, decoder: Decoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(video))


def pixel_losses(recon: torch.Tensor, video: torch.Tensor, lpips_model: nn.Module | None,
                 ) -> dict[str, torch.Tensor]:
    """``{"l1"[, "lpips"]}`` between ``(B, T, 3, H, W)`` clips (LPIPS per frame, in [-1, 1])."""
    out = {"l1": (recon.float() - video).abs().mean()}
    if lpips_model is not None:
        flat = recon.float().flatten(0, 1) * 2 - 1
        out["lpips"] = lpips_model(flat, video.flatten(0, 1) * 2 - 1).mean()
    return out


def train(job: JobConfig, resume: str | None = None,
          on_step: Callable[[int, dict], None] | None = None) -> Path:
    """Run the job; returns ``run_dir/final`` (component folders ``encoder/`` and ``decoder/``).

    Args:
        job: resolved config.
        resume: ``latest``, a step, or a checkpoint folder.
        on_step: ``on_step(step, logged)`` after every optimiser step.
    """
    run = job.train
    if job.data.cache_dir:
        raise ConfigError("data.cache_dir: the decoder needs the pixels of each clip; a feature "
                          "cache holds only features")
    if job.data.shard_features:
        raise ConfigError("data.shard_features: the decoder needs the pixels of each clip; set "
                          "it to false (the shards hold the frames too)")
    if run.train_encoder and (job.encoder.kind != "tiny" or job.encoder_path):
        raise ConfigError("train.train_encoder: needs encoder.kind: tiny and no encoder_path")
    trainer = Trainer(job, "decoder")
    lpips_model = load_lpips(run.lpips_net) if run.lpips_weight > 0 else None
    if lpips_model is not None:
        lpips_model.to(trainer.device)
    if run.train_encoder:
        encoder = None
        dataset = build_dataset(job, "train")
        model: nn.Module = Autoencoder(build_component("encoder", job.encoder),
                                       build_component("decoder", job.decoder))
    else:
        encoder = load_frozen_encoder(job).to(trainer.device)
        dataset = build_dataset(job, "train")
        torch.manual_seed(run.seed)
        model = build_component("decoder", job.decoder)
    val = []  # the held-out split lives on the main process, which alone evaluates
    run_eval = run.eval_every > 0
    if trainer.is_main and run_eval:
        if encoder is None:
            loader = torch.utils.data.DataLoader(build_dataset(job, "val"),
                                                 batch_size=run.batch_size)
            val = [{"video": fit_video(b["video"], job.encoder.image_size).to(trainer.device)}
                   for b in loader]
        else:
            with trainer.autocast():
                val = validation_batches(job, encoder, trainer.device, keep_video=True)

    def reconstruct(model: nn.Module, batch: dict) -> torch.Tensor:
        if encoder is None:
            return model(fit_video(batch["video"], job.encoder.image_size))
        with trainer.autocast():
            features = encode(encoder, batch["video"])
        return model(features)

    def step_fn(model, batch):
        recon = reconstruct(model, batch)
        losses = pixel_losses(recon, fit_video(batch["video"], job.encoder.image_size), lpips_model)
        loss = losses["l1"] + run.lpips_weight * losses.get("lpips", 0.0)
        return loss, {k: v.detach() for k, v in losses.items()}

    def evaluate(model):
        sums: dict[str, float] = {}
        n = sum(len(b["video"]) for b in val)
        for batch in val:
            recon = reconstruct(model, batch)
            for k, v in pixel_losses(recon, batch["video"], lpips_model).items():
                sums[f"val_{k}"] = sums.get(f"val_{k}", 0.0) + v.item() * len(batch["video"]) / n
        return sums

    model = trainer.fit(model, dataset, step_fn, evaluate if run_eval else None, resume, on_step)
    final = trainer.run_dir / "final"
    if trainer.is_main:
        if run.train_encoder:
            comps = {"encoder": model.encoder, "decoder": model.decoder}
        else:
            comps = {"encoder": Path(job.encoder_path) if job.encoder_path else encoder,
                     "decoder": model}
        write_final(final, comps, pipeline=False)
        trainer.print(f"final encoder/ and decoder/: {final}")
    trainer.finish()
    return final


main = job_main(train, __doc__, DEFAULTS)

if __name__ == "__main__":
    main()
