"""Train a controller c(a_t, s_t) → z_t from real actions to the latent actions of a frozen latent
action model (paper §7, App. A "Controller training").

On an action-labeled world (``reach``, ``drive``; ``pusht`` with gym-pusht), the frozen IDM infers
z_t from consecutive steps and the controller learns to predict it from the real action a_t (and,
for the ``adapter`` kind, the features of s_t): loss ‖c(a_t, s_t) − z_t‖² (mean squared error).
Paper optimiser (the defaults here): AdamW only, lr 1e-3, weight decay 0.04, betas (0.9, 0.999),
warm-up 10 % then cosine.

Beyond the paper, ``train.world_loss_weight`` > 0 adds the frozen world model's teacher-forced
prediction loss of s_t+1 under the controller's latents (the LAM's own change-weighted L1; the
gradient flows through the frozen world model into the controller). The IDM's latents are what
the world model was trained with, not the latents that place a small agent best: a controller
that only regresses them leaves the reach cross farther off than the IDM's own latents do, and
with this term it finds latents that place it several times closer (docs/RESULTS.md). The
validation then also logs ``val_world_l1`` and, once, ``val_idm_world_l1`` (the same loss under
the IDM's own latents).

``lam_path`` is a pipeline folder (a LAM run's ``final/``; its encoder and decoder are used too)
or a LAM component folder (then ``encoder_path`` is needed). The final folder is a pipeline whose
encoder, LAM and decoder are **copies** of the frozen ones (a run folder stays self-contained and
can be moved or pushed on its own; the shipped assets share components by relative path instead,
see ``train/export.py``) and whose controller is the trained one.

    accelerate launch train/controller.py --config train/configs/tiny_controller.yaml lam_path=…
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from lam_core.checkpoint import build_component, load_component
from lam_core.config import ConfigError
from lam_core.models.lam import prediction_l1
from train.common import Trainer, training_record, write_final
from train.config import JobConfig, job_main
from train.data import (
    data_description,
    features_of,
    load_frozen_encoder,
    training_data,
    validation_batches,
)

DEFAULTS = {"train": {"use_muon": False, "lr_adamw": 1e-3, "weight_decay": 0.04,
                      "adamw_betas": [0.9, 0.999]},
            "data": {"source": "world"}}


def train(job: JobConfig, resume: str | None = None,
          on_step: Callable[[int, dict], None] | None = None) -> Path:
    """Run the job; returns ``run_dir/final`` (a pipeline with the trained controller).

    Args:
        job: resolved config.
        resume: ``latest``, a step, or a checkpoint folder.
        on_step: ``on_step(step, logged)`` after every optimiser step.
    """
    if not job.lam_path:
        raise ConfigError("lam_path: required (a LAM pipeline folder, e.g. a train/lam.py run's "
                          "final/)")
    if job.data.source != "world":
        raise ConfigError("data.source: the controller needs real actions: use world")
    trainer = Trainer(job, "controller")
    encoder = load_frozen_encoder(job).to(trainer.device)
    lam = load_component(job.lam_path, expected="lam").to(trainer.device).requires_grad_(False)
    lam.eval()
    if not lam.uses_latents:
        raise ConfigError(f"lam_path: a {lam.cfg.kind!r} model has no latent actions to control")
    dataset = training_data(job, trainer, encoder)

    @torch.no_grad()
    def targets(features: torch.Tensor) -> torch.Tensor:
        """The frozen IDM's latents ``(B, T'-1, D_z)`` (eval mode: deterministic)."""
        return lam.infer_latents(features).float()

    world_weight = job.train.world_loss_weight
    change_from = (lam.cfg.change_from if job.train.world_change_from == "lam"
                   else job.train.world_change_from)

    def world_loss(latents: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """The frozen world model's teacher-forced prediction loss under ``latents``."""
        pred = lam.world_model.predict(features[:, :-1], latents.to(features.dtype))[0]
        return prediction_l1(pred, features, lam.cfg.change_weight, change_from=change_from)

    def val_mean(loss_of: Callable[[dict], torch.Tensor]) -> float:
        """``loss_of(batch)`` averaged over the held-out clips (batches weighted by size)."""
        return sum(loss_of(b).item() * len(b["features"]) for b in val) / sum(
            len(b["features"]) for b in val)

    val = []  # the held-out split lives on the main process, which alone evaluates
    run_eval = job.train.eval_every > 0
    if trainer.is_main and run_eval:
        with trainer.autocast():
            val = validation_batches(job, encoder, trainer.device)
            for batch in val:
                batch["latents"] = targets(batch["features"])
            if not resume:
                z = torch.cat([b["latents"] for b in val])
                constant = (z - z.mean(dim=(0, 1))).pow(2).mean().item()
                trainer.record({"val_constant_l2": constant}, step=0)
                trainer.print(f"best constant latent on {len(z)} held-out clips: L2 "
                              f"{constant:.5f}")
                if world_weight > 0:  # what the controller's latents compete with
                    idm = val_mean(lambda b: world_loss(b["latents"], b["features"]))
                    trainer.record({"val_idm_world_l1": idm}, step=0)
                    trainer.print(f"world-model L1 under the IDM's own latents: {idm:.5f}")
    torch.manual_seed(job.train.seed)
    controller = build_component("controller", job.controller)

    def step_fn(model, batch):
        with trainer.autocast():
            features = features_of(batch, encoder)
            z = targets(features)
        actions = batch["actions"].float()
        if actions.shape[-1] != job.controller.action_dim:
            raise ConfigError(f"controller.action_dim: is {job.controller.action_dim}, the world's "
                              f"actions have {actions.shape[-1]}")
        pred = model(actions, features[:, :-1])
        loss = F.mse_loss(pred.float(), z)
        if world_weight == 0:
            return loss, {}
        with trainer.autocast():
            world = world_loss(pred, features)
        return loss + world_weight * world, {"latent_l2": loss.detach(),
                                             "world_l1": world.detach()}

    @torch.no_grad()
    def evaluate(model):
        def latents(b):
            return model(b["actions"], b["features"][:, :-1]).float()

        out = {"val_l2": val_mean(lambda b: F.mse_loss(latents(b), b["latents"]))}
        if world_weight > 0:
            with trainer.autocast():
                out["val_world_l1"] = val_mean(lambda b: world_loss(latents(b), b["features"]))
        return out

    controller = trainer.fit(controller, dataset, step_fn, evaluate if run_eval else None, resume,
                             on_step)
    final = trainer.run_dir / "final"
    if trainer.is_main:
        clips = trainer.step * job.train.batch_size * job.train.grad_accum
        record = training_record({}, str(trainer.run_dir), trainer.step,
                                 clips * trainer.accelerator.num_processes,
                                 data_description(job, "train"))
        write_final(final, {
            "encoder": Path(job.encoder_path) if job.encoder_path else encoder,
            "lam": Path(job.lam_path),
            "decoder": Path(job.decoder_path) if job.decoder_path else None,
            "controller": controller}, training={"controller": record})
        trainer.print(f"final pipeline: {final}")
    trainer.finish()
    return final


main = job_main(train, __doc__, DEFAULTS)

if __name__ == "__main__":
    main()
