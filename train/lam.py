"""Train a latent action model: IDM + regularizer + world model on frozen features (paper §3–§4,
App. A "Latent action training").

    L_t = ‖s_t+1 − p(s_0:t, z_t)‖₁ + L_z(z_t),  z_t = g(s_t, s_t+1)

with teacher forcing over all steps of a clip. ``lam.kind: deterministic`` drops the latent (the
low end of the capacity axis) and ``lam.kind: action`` conditions on real actions (the V-JEPA 2-AC
baseline of Table S1; needs ``data.source: world``). Features come from the frozen encoder
(``encoder_path``), on the fly or from a feature cache (``data.cache_dir``). Validation: feature
L1 on held-out clips every ``eval_every`` steps; the copy-last-step baseline is logged once.

    accelerate launch train/lam.py --config train/configs/tiny_lam.yaml [key=value ...]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from lam_core.config import ConfigError
from lam_core.models import LatentActionModel
from train.common import Trainer, write_final
from train.config import JobConfig, load_job_config, parse_cli
from train.data import features_of, load_frozen_encoder, training_data, validation_batches


def copy_last_l1(val: list[dict[str, torch.Tensor]]) -> float:
    """Feature L1 of predicting ŝ_t+1 = s_t on the held-out clips (what the model must beat)."""
    total, n = 0.0, 0
    for batch in val:
        f = batch["features"]
        total += (f[:, 1:] - f[:, :-1]).abs().mean().item() * len(f)
        n += len(f)
    return total / max(n, 1)


def validation_l1(model: LatentActionModel, val: list[dict[str, torch.Tensor]]) -> float:
    """Teacher-forced one-step feature L1 on the held-out clips (IDM latents, eval mode)."""
    total, n = 0.0, 0
    for batch in val:
        out = model(batch["features"], batch.get("actions"))
        total += out.prediction_loss.item() * len(batch["features"])
        n += len(batch["features"])
    return total / max(n, 1)


def train(job: JobConfig, resume: str | None = None,
          on_step: Callable[[int, dict], None] | None = None) -> Path:
    """Run the job; returns ``run_dir/final`` (a pipeline folder: encoder, lam[, decoder]).

    Args:
        job: resolved config.
        resume: ``latest``, a step, or a checkpoint folder.
        on_step: ``on_step(step, logged)`` after every optimiser step.
    """
    if job.lam.kind == "action" and job.data.source != "world":
        raise ConfigError("lam.kind: 'action' needs real actions: set data.source: world")
    trainer = Trainer(job, "lam")
    encoder = load_frozen_encoder(job).to(trainer.device)
    dataset = training_data(job, trainer, encoder)
    val = []  # the held-out split lives on the main process, which alone evaluates
    run_eval = job.train.eval_every > 0
    if trainer.is_main and run_eval:
        with trainer.autocast():
            val = validation_batches(job, encoder, trainer.device)
        if not resume:
            baseline = copy_last_l1(val)
            trainer.record({"val_copy_last_l1": baseline}, step=0)
            trainer.print(f"copy-last-step baseline on {job.data.val_clips} held-out clips: "
                          f"L1 {baseline:.5f}")
    torch.manual_seed(job.train.seed)
    lam = LatentActionModel(job.lam)

    ramp = job.train.reg_warmup_fraction * job.train.steps

    def step_fn(model, batch):
        with trainer.autocast():
            features = features_of(batch, encoder)
        out = model(features, batch.get("actions"))
        weight = min(1.0, trainer.step / ramp) if ramp > 0 else 1.0
        stats = {"prediction_loss": out.prediction_loss.detach(),
                 "regularizer_loss": out.regularizer_loss.detach(), **out.stats}
        if ramp > 0:
            stats["regularizer_weight"] = torch.tensor(weight)
        return out.prediction_loss + weight * out.regularizer_loss, stats

    def evaluate(model):
        return {"val_l1": validation_l1(model, val)}

    lam = trainer.fit(lam, dataset, step_fn, evaluate if run_eval else None, resume, on_step)
    final = trainer.run_dir / "final"
    if trainer.is_main:
        write_final(final, {"encoder": Path(job.encoder_path) if job.encoder_path else encoder,
                            "lam": lam,
                            "decoder": Path(job.decoder_path) if job.decoder_path else None})
        trainer.print(f"final pipeline: {final}")
    trainer.finish()
    return final


def main(argv: list[str] | None = None) -> None:
    args = parse_cli(argv, __doc__.splitlines()[0])
    train(load_job_config(args.config, args.overrides), resume=args.resume)


if __name__ == "__main__":
    main()
