"""Training machinery shared by ``train/decoder.py``, ``train/lam.py`` and ``train/controller.py``
(docs/DESIGN.md#training).

- Optimisers (paper §4, App. A; :mod:`train.optim`): ``torch.optim.Muon`` for the 2-D weights of
  hidden layers and ``torch.optim.AdamW`` for everything else, linear warm-up over
  ``warmup_fraction`` of the steps then cosine annealing to zero, as a ``LambdaLR`` on both.
- ``Accelerator`` owns devices, processes, mixed precision, gradient accumulation and
  ``save_state``/``load_state``; TensorBoard through its trackers; a tqdm bar on the main process;
  every logged step also goes to ``run_dir/metrics.jsonl`` (read by the studio).
- Data order is a pure function of ``(seed, step)`` (:class:`train.batches.StepBatchSampler`;
  streams of shards resume at their sample, :mod:`lam_core.data.streams`), so a run resumed
  from ``checkpoints/<step>/`` sees exactly the batches the uninterrupted run would have seen.
- Checkpoints (:mod:`train.checkpoints`) are written to a temporary folder and renamed;
  ``checkpoints/last`` names the latest.
  ``--resume latest`` takes the last complete one (never a ``.tmp-*`` folder or one without
  ``trainer_state.json``, which it removes), so a run killed at any moment (``kill -9``) resumes
  with the losses of an uninterrupted run (docs/RELIABILITY.md).
- A non-finite loss stops the run (:class:`FloatingPointError` naming the step and the last good
  checkpoint); a checkpoint is never written with non-finite weights.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset
from tqdm.auto import tqdm

from lam_core.checkpoint import save_component
from lam_core.pipeline import PIPELINE_FORMAT
from train.batches import EpochItems, StepBatchSampler
from train.checkpoints import TRAINER_STATE, CheckpointedRun
from train.config import JobConfig, dump_yaml
from train.optim import build_optimizers, resolve_mixed_precision, warmup_cosine
from train.runlock import lock_run_dir, release_run_dir

StepFn = Callable[[nn.Module, dict], tuple[torch.Tensor, dict[str, torch.Tensor]]]
EvalFn = Callable[[nn.Module], dict[str, float]]


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """Nested dict → ``{"a.b": scalar}`` with non-scalars as strings (TensorBoard hparams)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out


class Trainer(CheckpointedRun):
    """One run of one job: the accelerator, the run folder, the loop and logs; its checkpoints
    come from :class:`~train.checkpoints.CheckpointedRun`.

    Args:
        job: the resolved config.
        name: the job's name (``lam``, ``decoder``, ``controller``), used for the trackers.
    """

    def __init__(self, job: JobConfig, name: str):
        self.job, self.run, self.name = job, job.train, name
        if self.run.threads:
            torch.set_num_threads(self.run.threads)
        self.run_dir = job.run_dir
        self.mixed_precision = resolve_mixed_precision(self.run.mixed_precision)
        self.accelerator = Accelerator(
            gradient_accumulation_steps=self.run.grad_accum, mixed_precision=self.mixed_precision,
            log_with="tensorboard", project_dir=str(self.run_dir))
        set_seed(self.run.seed)
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            lock_run_dir(self.run_dir)  # one writer per folder (train/runlock.py)
            dump_yaml(job, self.run_dir / "config.yaml")
        self.accelerator.wait_for_everyone()
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.start_time = time.time()
        self._trackers = False
        self.step = 0  # the optimiser step being computed (1-based) while fit() runs

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    def autocast(self):
        return self.accelerator.autocast()

    # ------------------------------------------------------------------ logs
    def record(self, metrics: dict[str, float], step: int) -> None:
        """Append ``{"step", "time", **metrics}`` to metrics.jsonl and the trackers (main only)."""
        if not self.is_main:
            return
        line = {"step": step, "time": round(time.time() - self.start_time, 3), **metrics}
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(line) + "\n")
        if self._trackers:
            self.accelerator.log(metrics, step=step)

    def _truncate_metrics(self, step: int) -> None:
        """Drop logged lines after ``step`` (they belong to the interrupted run), and a line cut
        short by a kill."""
        if not self.is_main or not self.metrics_path.is_file():
            return
        keep = []
        for ln in self.metrics_path.read_text().splitlines():
            try:
                line = json.loads(ln)
            except json.JSONDecodeError:  # half-written when the run was killed
                continue
            if isinstance(line, dict) and line.get("step", 0) <= step:
                keep.append(ln)
        tmp = self.metrics_path.with_name(f".{self.metrics_path.name}.tmp")
        tmp.write_text("".join(ln + "\n" for ln in keep))
        os.replace(tmp, self.metrics_path)

    def check_finite(self, model: nn.Module | None, step: int, sums: dict[str, float]) -> None:
        """Stop on a non-finite loss, or (at a checkpoint) non-finite weights.

        Raises:
            FloatingPointError: naming the step, the value and the last good checkpoint.
        """
        loss = sums.get("loss", 0.0)
        if not math.isfinite(loss):
            rank = (f" on process {self.accelerator.process_index}"
                    if self.accelerator.num_processes > 1 else "")
            raise FloatingPointError(f"step {step}: loss is {loss}{rank}; "
                                     f"{self.last_good_checkpoint()}")
        if model is not None:
            bad = next((n for n, p in self.accelerator.unwrap_model(model).named_parameters()
                        if not torch.isfinite(p).all()), None)
            if bad is not None:
                raise FloatingPointError(f"step {step}: weight {bad} is not finite after the "
                                         f"optimiser step; {self.last_good_checkpoint()}")

    # ------------------------------------------------------------------ the loop
    def fit(self, model: nn.Module, dataset: Dataset, step_fn: StepFn,
            evaluate: EvalFn | None = None, resume: str | None = None,
            on_step: Callable[[int, dict[str, float]], None] | None = None) -> nn.Module:
        """Train ``model`` and return it unwrapped.

        Args:
            model: the trainable module (built after the seed was set, on any device).
            dataset: training items (dicts of tensors), in a fixed order; or a
                ``lam_core.data.streams.ClipStream`` (shards, mixed sources), resumed at
                sample ``step × grad_accum × batch_size`` of each rank's stream.
            step_fn: ``(model, batch on device) → (loss, {name: scalar tensor})`` of a micro-batch.
            evaluate: ``(unwrapped model in eval mode) → {name: float}``, run on the main process
                under ``no_grad`` every ``eval_every`` steps and at the end.
            resume: ``latest``, a step, or a checkpoint folder.
            on_step: called after every step with the step's logged values (tests use it to
                interrupt a run).
        """
        run, acc = self.run, self.accelerator
        opts = build_optimizers(model, run)
        factor = warmup_cosine(run.steps, run.warmup_fraction)
        scheds = [torch.optim.lr_scheduler.LambdaLR(o, factor) for o in opts]
        model, *opts = acc.prepare(model, *opts)
        set_seed(run.seed, device_specific=True)  # same init on every rank, own noise per rank
        for sched in scheds:  # stepped by us once per optimiser step, saved with the state
            acc.register_for_checkpointing(sched)
        start = 0
        if resume:
            path = self.find_checkpoint(resume)
            self.clean_checkpoints()
            acc.load_state(str(path))
            start = json.loads((path / TRAINER_STATE).read_text())["step"]
            self._truncate_metrics(start)
            self.print(f"resumed from {path} at step {start}")
        if self.is_main and not self._trackers:
            acc.init_trackers("tensorboard", config=flatten(self.job.to_dict()))
            self._trackers = True
        if isinstance(dataset, IterableDataset):  # a ClipStream (data.source: shards, sources):
            # micro-step k starts at sample k × batch_size of this rank's stream
            dataset.configure(acc.process_index, acc.num_processes, run.batch_size,
                              start_batch=start * run.grad_accum)
            loader = DataLoader(dataset, batch_size=run.batch_size, num_workers=run.num_workers,
                                persistent_workers=run.num_workers > 0)
        else:
            sampler = StepBatchSampler(len(dataset), run.batch_size, run.seed, acc.process_index,
                                       acc.num_processes, start=start * run.grad_accum)
            loader = DataLoader(EpochItems(dataset), batch_sampler=sampler,
                                num_workers=run.num_workers,
                                generator=torch.Generator().manual_seed(run.seed),
                                persistent_workers=run.num_workers > 0)
        batches = iter(loader)
        bar = tqdm(total=run.steps, initial=start, disable=not self.is_main, desc=self.name,
                   dynamic_ncols=True)
        busy, last_log_step = 0.0, start  # seconds spent in training steps since the last log
        model.train()
        for step in range(start + 1, run.steps + 1):
            began = time.time()
            self.step = step
            sums: dict[str, float] = {}
            for _ in range(run.grad_accum):
                batch = {k: v.to(self.device, non_blocking=True) for k, v in next(batches).items()}
                with acc.accumulate(model):
                    loss, stats = step_fn(model, batch)
                    acc.backward(loss)
                    if acc.sync_gradients and run.max_grad_norm > 0:
                        acc.clip_grad_norm_(model.parameters(), run.max_grad_norm)
                    for opt in opts:
                        opt.step()
                        opt.zero_grad(set_to_none=True)
                for k, v in {"loss": loss, **stats}.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach()) / run.grad_accum
            if not acc.sync_gradients:
                raise RuntimeError("gradient accumulation out of step with the optimiser steps")
            try:
                self.check_finite(None, step, sums)  # before anything is logged or saved
            except FloatingPointError:
                bar.close()
                raise
            lrs = {("lr_muon" if isinstance(o.optimizer, torch.optim.Muon) else "lr"):
                   o.param_groups[0]["lr"] for o in opts}  # the rates this step used
            for sched in scheds:
                sched.step()
            bar.update(1)
            busy += time.time() - began
            logged: dict[str, float] = {}
            if run.log_every and (step % run.log_every == 0 or step == run.steps):
                names = sorted(sums)
                values = acc.reduce(torch.tensor([sums[k] for k in names], device=self.device),
                                    reduction="mean")
                logged = dict(zip(names, values.tolist(), strict=True))
                clips = (step - last_log_step) * run.batch_size * run.grad_accum * acc.num_processes
                logged["clips_per_s"] = clips / max(busy, 1e-9)
                busy, last_log_step = 0.0, step
                logged.update(lrs)
                self.record(logged, step)
                bar.set_postfix(loss=f"{logged['loss']:.4f}")
            if on_step is not None:
                on_step(step, logged)
            if evaluate is not None and run.eval_every and (
                    step % run.eval_every == 0 or step == run.steps):
                self.evaluate(model, evaluate, step)
            stop = run.stop_at is not None and step >= run.stop_at
            out_of_time = self._out_of_time()
            if out_of_time and evaluate is not None and run.eval_every and step % run.eval_every:
                self.evaluate(model, evaluate, step)  # the last step is always evaluated
            if (step == run.steps or stop or out_of_time
                    or (run.save_every and step % run.save_every == 0)):
                try:
                    self.check_finite(model, step, sums)  # never a checkpoint of broken weights
                except FloatingPointError:
                    bar.close()
                    raise
                self.save_checkpoint(step)
            if stop:
                self.print(f"stopping at step {step} (train.stop_at); resume with --resume latest")
                break
            if out_of_time:
                self.print(f"stopping at step {step}: train.time_limit_minutes "
                           f"({run.time_limit_minutes:g}) reached")
                break
        bar.close()
        return acc.unwrap_model(model)

    def _out_of_time(self) -> bool:
        """Whether ``train.time_limit_minutes`` has passed (on any rank: all stop together)."""
        limit = self.run.time_limit_minutes
        if not limit:
            return False
        late = float(time.time() - self.start_time > 60 * limit)
        if self.accelerator.num_processes > 1:
            late = self.accelerator.reduce(torch.tensor([late], device=self.device), "sum").item()
        return late > 0

    def evaluate(self, model: nn.Module, evaluate: EvalFn, step: int) -> dict[str, float]:
        """Run ``evaluate`` on the main process (eval mode, no grad) and record its numbers."""
        result: dict[str, float] = {}
        if self.is_main:
            inner = self.accelerator.unwrap_model(model)
            inner.eval()
            with torch.no_grad(), self.autocast():
                result = evaluate(inner)
            inner.train()
            self.record(result, step)
            self.print(f"step {step}: " + ", ".join(f"{k} {v:.5f}" for k, v in result.items()))
        self.accelerator.wait_for_everyone()
        return result

    def finish(self) -> None:
        """Flush trackers and print the wall time."""
        self.accelerator.wait_for_everyone()
        self.accelerator.end_training()  # trackers (main) and the process group (all ranks)
        self.print(f"{self.name}: done in {time.time() - self.start_time:.1f} s → {self.run_dir}")
        if self.is_main:
            release_run_dir(self.run_dir)


def training_record(history: dict, run_dir: str, steps: int, clips: int, data: dict) -> dict:
    """The cumulative record of a warm-started model: earlier runs plus this one (``data``: what
    this run trained on, ``train.data.data_description``)."""
    run = {"run": run_dir, "steps": steps, "clips": clips, "data": data}
    return {"steps": int(history.get("steps", 0)) + steps,
            "clips": int(history.get("clips", 0)) + clips,
            "runs": [*history.get("runs", []), run]}


def write_final(directory: Path, components: dict[str, nn.Module | Path | None],
                pipeline: bool = True, training: dict[str, dict] | None = None) -> Path:
    """Write the final model in the hub layout: one folder per component (a module is saved with
    ``save_component``; a folder is copied as it is) and, with ``pipeline``, the pipeline's
    ``config.json`` that ``LatentActionPipeline.from_pretrained`` opens.

    Args:
        directory: ``run_dir/final`` (replaced if present).
        components: ``{"encoder": …, "lam": …, "decoder": …, "controller": …}``; None: absent.
        pipeline: write the pipeline config.json (needs an encoder and a LAM).
        training: ``{component: record}`` kept in that component's config.json (cumulative
            steps and clips of warm-started runs, see ``lam_core.checkpoint.save_component``).
    """
    tmp = directory.with_name(f".{directory.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    names = {}
    for name, comp in components.items():
        if comp is None:
            names[name] = None
        elif isinstance(comp, nn.Module):
            save_component(comp, tmp / name, training=(training or {}).get(name))
            names[name] = name
        else:
            shutil.copytree(comp, tmp / name)
            names[name] = name
    if pipeline:
        meta = {"format": PIPELINE_FORMAT, "format_version": 1, "components": names}
        (tmp / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)
    return directory
