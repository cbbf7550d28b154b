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

from collections.abc import Callable
from pathlib import Path

import torch

from lam_core.checkpoint import (
    WEIGHTS_NAME,
    build_component,
    load_component,
    load_state_checked,
    read_component_config,
    read_training_record,
)
from lam_core.config import ConfigError, config_to_dict
from lam_core.models import LatentActionModel
from lam_core.pipeline import resolve_path
from train.common import Trainer, training_record, write_final
from train.config import JobConfig, component_folder, job_main
from train.data import (
    data_description,
    features_of,
    load_frozen_encoder,
    training_data,
    validation_batches,
)


def copy_last_l1(val: list[dict[str, torch.Tensor]]) -> float:
    """Feature L1 of predicting ŝ_t+1 = s_t on the held-out clips (what the model must beat)."""
    total, n = 0.0, 0
    for batch in val:
        f = batch["features"]
        total += (f[:, 1:] - f[:, :-1]).abs().mean().item() * len(f)
        n += len(f)
    return total / max(n, 1)


def validation_l1(model: LatentActionModel, val: list[dict[str, torch.Tensor]]) -> float:
    """Teacher-forced one-step feature L1 on the held-out clips (IDM latents, eval mode); plain
    L1 whatever the training loss weights (``lam.change_weight``), like the copy-last baseline."""
    total, n = 0.0, 0
    for batch in val:
        f = batch["features"]
        out = model(f, batch.get("actions"))
        total += (out.predictions.float() - f[:, 1:].float()).abs().mean().item() * len(f)
        n += len(f)
    return total / max(n, 1)


def regularizer_schedule(run) -> Callable[[int], float]:
    """The regularizer's weight at a step: 0 for the first ``reg_warmup_start`` share of the
    steps, then rising linearly to 1 over ``reg_warmup_fraction`` of them."""
    start, ramp = run.reg_warmup_start * run.steps, run.reg_warmup_fraction * run.steps

    def weight(step: int) -> float:
        if start > 0 and step <= start:
            return 0.0
        return 1.0 if ramp <= 0 else min(1.0, (step - start) / ramp)

    return weight


# LAM settings that weigh the loss only: a warm start may change them (the weights mean the same)
LOSS_ONLY = {"change_weight", "change_from", "rollout_weight", "flow_l1", "regularizer.beta",
             "regularizer.free_bits", "regularizer.lambda_l1", "regularizer.lambda_l2",
             "regularizer.lambda_v", "regularizer.lambda_c", "regularizer.lambda_m",
             "regularizer.commitment", "regularizer.reset_every"}
# LAM settings a warm start may change although they shape the model, because every weight keeps
# its shape and meaning: a latent grid's cells are read by the IDM's head and embedded by the
# world model's condition embedding exactly as the one latent was (each cell starts as a local
# version of the frame's latent)
REINTERPRETED = {"latent_grid", "cell_modulation", "idm_radius"}
# LAM settings a warm start may switch on: they add modules, which start so that the model is
# the warm start's (the global latent's embedding is zero, its IDM head a copy of the cells';
# convex upsampling's mask starts as bilinear upsampling)
ADDED = {"global_latent": ("idm.global_head.", "world_model.global_embed."),
         "flow_upsample": ("world_model.head.mask.",)}
OFF = {"global_latent": False, "flow_upsample": "bilinear"}  # each ADDED setting's "not there"
# what an action-conditioned model warm-started from a latent one does not take: the latent's
# machinery (IDM, regularizer, grid) and the condition embedding's first layer (latent → action
# width); the rest of the world model is the latent model's, so the baseline differs from the
# controller's model only in what conditions it
LATENT_SIDE = ("kind", "action_dim", "latent_grid", "cell_modulation", "idm_radius",
               "global_latent", "idm.", "idm_token_merge", "idm_input", "regularizer.")
FRESH_IN_ACTION = ("world_model.cond_embed.0.",)
# a deterministic model warm-started from a latent one: the world model but for the condition
# embedding, whose place the deterministic model's one condition takes (set to the latent
# model's embedding of a zero latent: the warm start predicts what the latent model does at z = 0)
FRESH_IN_DETERMINISTIC = ("world_model.null_cond",)


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def init_record(folder: str) -> dict:
    """The training record of the LAM in ``folder`` (pipeline or lam component; ``{}`` if none),
    without loading its weights: what a resumed warm-started run adds its own steps to."""
    path = resolve_path(folder)
    if path is None:
        raise ConfigError(f"--init-from {folder}: no such folder")
    return read_training_record(component_folder(path, "lam"))


@torch.no_grad()
def _zero_latent_condition(lam: LatentActionModel, comp: Path) -> None:
    """Set a deterministic ``lam``'s condition to the embedding of a zero latent by the latent
    model in ``comp`` (with a latent grid every cell then embeds the same, so their mean, the
    step's condition, and each cell's agree)."""
    latent = load_component(comp, "lam")
    c, _ = latent.world_model.embed_conditions(torch.zeros(1, 1, latent.cfg.latent_dim), 1, 1)
    lam.world_model.null_cond.copy_(c.reshape(-1))


def warm_start(lam: LatentActionModel, folder: str, log=print) -> dict:
    """Load the LAM weights of ``folder`` (a pipeline folder or a lam component) into ``lam``;
    returns the training record they carry (``{"steps", "clips", "runs"}``, ``{}`` if none).
    Settings that only weigh the loss (:data:`LOSS_ONLY`, e.g. ``lam.regularizer.beta``) may
    differ: each change is logged.

    Raises:
        ConfigError: the folder is missing or its LAM config differs from the run's in a setting
            that shapes the model (named keys).
    """
    path = resolve_path(folder)
    if path is None:
        raise ConfigError(f"--init-from {folder}: no such folder")
    comp = component_folder(path, "lam")
    theirs = _flat(config_to_dict(read_component_config(comp, "lam")))
    ours = _flat(config_to_dict(lam.cfg))
    diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
    transplant = ours["kind"] in ("action", "deterministic") and theirs.get("kind") == "latent"
    if transplant:  # the world model alone
        diff = [k for k in diff if not k.startswith(LATENT_SIDE)]
    added = [k for k in diff if k in ADDED and theirs.get(k, OFF[k]) == OFF[k] != ours.get(k)]
    shaping = [k for k in diff if k not in LOSS_ONLY | REINTERPRETED | set(added)]
    if shaping:
        raise ConfigError(f"--init-from {comp}: its lam config differs from this run's in "
                          f"{', '.join('lam.' + k for k in shaping)}")
    for k in diff:
        why = ("weighs the loss only" if k in LOSS_ONLY else "new modules, starting neutral"
               if k in added else "the same weights, read anew")
        log(f"warm start: lam.{k} {theirs.get(k)!r} → {ours.get(k)!r} ({why})")
    if transplant and ours["kind"] == "deterministic":
        log("warm start: a deterministic model takes the latent model's world model; its one "
            "condition is the latent model's embedding of a zero latent")
        load_state_checked(lam, comp / WEIGHTS_NAME, FRESH_IN_DETERMINISTIC, keep="world_model.",
                           skip=("world_model.cond_embed.",) + ADDED["global_latent"])
        _zero_latent_condition(lam, comp)
        return read_training_record(comp)
    if transplant:
        log("warm start: an action-conditioned model takes the latent model's world model; "
            "its action embedding's first layer starts fresh")
        load_state_checked(lam, comp / WEIGHTS_NAME, FRESH_IN_ACTION, keep="world_model.",
                           skip=FRESH_IN_ACTION + ADDED["global_latent"])
        return read_training_record(comp)
    load_state_checked(lam, comp / WEIGHTS_NAME, sum((ADDED[k] for k in added), ()))
    if "global_latent" in added:
        lam.idm.seed_global_head()
    return read_training_record(comp)


def train(job: JobConfig, resume: str | None = None,
          on_step: Callable[[int, dict], None] | None = None,
          init_from: str | None = None) -> Path:
    """Run the job; returns ``run_dir/final`` (a pipeline folder: encoder, lam[, decoder]).

    Args:
        job: resolved config.
        resume: ``latest``, a step, or a checkpoint folder.
        on_step: ``on_step(step, logged)`` after every optimiser step.
        init_from: warm start from the LAM of this pipeline or lam folder (when resuming, only
            its record is read: the checkpoint holds the weights); the final model's record adds
            this run's steps and clips to the ones it carries.
    """
    if job.lam.kind == "action" and job.data.source != "world":
        raise ConfigError("lam.kind: 'action' needs real actions: set data.source: world")
    torch.manual_seed(job.train.seed)
    lam = LatentActionModel(job.lam)
    history = {}
    if init_from and not resume:  # before the run folder exists: a refused warm start leaves none
        history = warm_start(lam, init_from)
    elif init_from:  # resuming a warm-started run: the checkpoint has the weights, not the record
        history = init_record(init_from)
    trainer = Trainer(job, "lam")
    if init_from and not resume:
        trainer.print(f"warm start from {init_from} ({history.get('steps', 0)} steps, "
                      f"{history.get('clips', 0)} clips seen before)")
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
    schedule = regularizer_schedule(job.train)

    def step_fn(model, batch):
        with trainer.autocast():
            features = features_of(batch, encoder)
        out = model(features, batch.get("actions"))
        weight = schedule(trainer.step)
        stats = {"prediction_loss": out.prediction_loss.detach(),
                 "regularizer_loss": out.regularizer_loss.detach(), **out.stats}
        if weight < 1.0 or job.train.reg_warmup_fraction > 0:
            stats["regularizer_weight"] = torch.tensor(weight)
        loss = out.prediction_loss + weight * out.regularizer_loss
        return (loss if out.auxiliary_loss is None else loss + out.auxiliary_loss), stats

    def evaluate(model):
        return {"val_l1": validation_l1(model, val)}

    lam = trainer.fit(lam, dataset, step_fn, evaluate if run_eval else None, resume, on_step)
    final = trainer.run_dir / "final"
    if trainer.is_main:
        steps = trainer.step  # fewer than train.steps after stop_at or the time limit
        clips = steps * job.train.batch_size * job.train.grad_accum
        clips *= trainer.accelerator.num_processes
        record = training_record(history, str(trainer.run_dir), steps, clips,
                                 data_description(job, "train"))
        decoder = Path(job.decoder_path) if job.decoder_path else None
        if decoder is None and job.decoder.kind == "patch":  # exact, nothing to train
            decoder = build_component("decoder", job.decoder)
        write_final(final, {"encoder": Path(job.encoder_path) if job.encoder_path else encoder,
                            "lam": lam, "decoder": decoder},
                    training={"lam": record})
        trainer.print(f"final pipeline: {final}")
    trainer.finish()
    return final


main = job_main(train, __doc__, warm_start=True)

if __name__ == "__main__":
    main()
