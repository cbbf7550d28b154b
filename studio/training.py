"""Handlers of the Training tab: runs and their curves, the exact ``accelerate launch`` command of
a recipe, and an optional background CPU run.

A run is a folder with ``metrics.jsonl`` (one JSON object per logged step: ``step``, ``time``,
``loss``, ...), written by ``train/``; the studio only reads it (a half-written last line is
skipped). Shipped pipeline folders that carry the ``metrics.jsonl`` of their training are listed
too (``shipped: pixel-noisy``), so a fresh clone shows curves without any local run.

Commands follow docs/DESIGN.md#entry-points and avoid accelerate's trap: ``--cpu --num_processes 2``
silently starts one process, so N CPU processes need ``ACCELERATE_USE_CPU=1 … --multi_gpu``.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import json
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import plotly.graph_objects as go

from lam_core.pipeline import REPO_ROOT
from studio import plots
from studio.handlers import bad_input
from studio.models import CHECKPOINTS_DIR, scan_pipeline_folders

CONFIGS_DIR = REPO_ROOT / "train" / "configs"
TRAIN_DIR = REPO_ROOT / "train"
NOT_JOBS = {"common", "config", "data", "__init__"}
JOB_ALIASES = {"autoencoder": "decoder"}  # the autoencoder stage is train/decoder.py
DEFAULT_RECIPE = "train/configs/pixel_lam.yaml"  # the flagship's recipe, one CPU process
SHIPPED = "shipped: "
MODES = ("1 CPU process", "N CPU processes", "N GPUs")
RUN_COLUMNS = ["run", "logged steps", "last step", "last loss", "updated", "folder"]


# ---------------------------------------------------------------------------------- runs
def read_metrics(path: str | Path) -> list[dict]:
    """The records of a ``metrics.jsonl`` (lines that do not parse, e.g. a half-written last
    one, are skipped)."""
    records = []
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return records
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "step" in record:
            records.append(record)
    return records


def _resolve_folder(folder: str | Path) -> Path:
    folder = Path(str(folder).strip() or "runs").expanduser()
    return folder if folder.is_absolute() else REPO_ROOT / folder


def local_runs(folder: str | Path) -> dict[str, Path]:
    """``{name: run folder}`` for every folder under ``folder`` (≤ 3 levels) with a metrics.jsonl;
    names are relative to ``folder``."""
    root = _resolve_folder(folder)
    if not root.is_dir():
        return {}
    runs = {}
    for metrics in sorted(root.glob("**/metrics.jsonl")):
        rel = metrics.parent.relative_to(root)
        if len(rel.parts) <= 3:
            runs[str(rel) if rel.parts else root.name] = metrics.parent
    return runs


def shipped_runs(root: str | Path | None = None) -> dict[str, Path]:
    """``{"shipped: <name>": folder}`` for every pipeline folder under ``root`` (default
    ``assets/checkpoints``) that ships the ``metrics.jsonl`` of its training."""
    folders = scan_pipeline_folders(CHECKPOINTS_DIR if root is None else root)
    return {SHIPPED + f.name: f for f in folders if (f / "metrics.jsonl").is_file()}


def find_runs(folder: str | Path, shipped: str | Path | None = None) -> dict[str, Path]:
    """The shipped models' curves (:func:`shipped_runs` of ``shipped``), then the runs under
    ``folder`` (:func:`local_runs`); a folder listed both ways is listed once, as a run."""
    runs = local_runs(folder)
    seen = {p.resolve() for p in runs.values()}
    ships = {k: p for k, p in shipped_runs(shipped).items() if p.resolve() not in seen}
    return {**ships, **runs}


def metric_keys(records: list[dict]) -> list[str]:
    """Numeric keys of the records other than ``step`` and ``time``, ``loss`` first."""
    keys = {k for r in records for k, v in r.items() if isinstance(v, int | float)}
    keys -= {"step", "time"}
    return sorted(keys, key=lambda k: (k != "loss", k))


def _last(records: list[dict], key: str) -> float | None:
    values = [r[key] for r in records if isinstance(r.get(key), int | float)]
    return values[-1] if values else None


def list_runs(
    folder: str, shipped: str | Path | None = None
) -> tuple[list[list], gr.Dropdown, gr.Dropdown, str]:
    """The runs table, the run picker, the metric picker and a status line for ``folder`` and the
    shipped models (``shipped``: where to look for them, default ``assets/checkpoints``)."""
    runs = find_runs(folder, shipped)
    rows, keys = [], set()
    for name, path in runs.items():
        records = read_metrics(path / "metrics.jsonl")
        keys.update(metric_keys(records))
        loss = _last(records, "loss")
        updated = dt.datetime.fromtimestamp((path / "metrics.jsonl").stat().st_mtime)
        rows.append(
            [
                name,
                len(records),
                _last(records, "step"),
                None if loss is None else round(loss, 5),
                updated.strftime("%Y-%m-%d %H:%M"),
                str(path),
            ]
        )
    names = list(runs)
    ordered = sorted(keys, key=lambda k: (k != "loss", k)) or ["loss"]
    ships = sum(name.startswith(SHIPPED) for name in runs)
    local = len(runs) - ships
    where = f"`{_resolve_folder(folder)}`"
    status = (
        f"{local} run(s) in {where}" if local else f"no runs with a metrics.jsonl in {where} yet"
    )
    if ships:
        status += f"; {ships} shipped model(s) with their training curves"
    return (
        rows,
        gr.Dropdown(choices=names, value=names[-3:], multiselect=True),
        gr.Dropdown(choices=ordered, value=ordered[0]),
        status,
    )


def curves(
    folder: str,
    names: list[str] | None,
    key: str | None = "loss",
    shipped: str | Path | None = None,
) -> go.Figure:
    """The curve of ``key`` over steps for each chosen run (or shipped model)."""
    key = key or "loss"
    runs = find_runs(folder, shipped)
    data = {}
    for name in names or []:
        if name not in runs:
            continue
        records = [
            r
            for r in read_metrics(runs[name] / "metrics.jsonl")
            if isinstance(r.get(key), int | float) and math.isfinite(r[key])
        ]
        if records:
            data[name] = ([r["step"] for r in records], [r[key] for r in records])
    return plots.loss_figure(data, key)


# ---------------------------------------------------------------------------------- commands
def recipes() -> list[str]:
    """``train/configs/*.yaml`` as repository-relative paths."""
    if not CONFIGS_DIR.is_dir():
        return []
    return [str(p.relative_to(REPO_ROOT)) for p in sorted(CONFIGS_DIR.glob("*.yaml"))]


def default_recipe(choices: list[str]) -> str | None:
    """The launcher's first recipe: :data:`DEFAULT_RECIPE` (the flagship's, which one CPU process
    runs) when it is there, else the first of ``choices``."""
    return DEFAULT_RECIPE if DEFAULT_RECIPE in choices else next(iter(choices), None)


def jobs() -> list[str]:
    """The training scripts: ``train/<job>.py`` other than the shared modules."""
    return sorted(p.stem for p in TRAIN_DIR.glob("*.py") if p.stem not in NOT_JOBS)


def job_for_recipe(recipe: str) -> str:
    """The script a recipe is for. Recipes do not name it in a key, so: the first
    ``train/<job>.py`` their comments mention (``tiny_autoencoder.yaml`` → ``decoder``), else a
    job named in the file name (``small_lam_sparse_high`` → ``lam``, ``*_autoencoder`` →
    ``decoder``), else ``lam``."""
    known = jobs()
    path = Path(recipe) if Path(recipe).is_absolute() else REPO_ROOT / recipe
    try:
        text = path.read_text()
    except OSError:
        text = ""
    for job in re.findall(r"train/(\w+)\.py", text):
        if job in known:
            return job
    for token in reversed(re.split(r"[_\-]", Path(recipe).stem)):
        job = JOB_ALIASES.get(token, token)
        if job in known:
            return job
    return "lam"


def launch_command(recipe: str | None, mode: str, processes: float = 1, overrides: str = "") -> str:
    """The exact ``accelerate launch`` command for a recipe.

    Args:
        recipe: ``train/configs/<name>.yaml``.
        mode: one of :data:`MODES`.
        processes: N (ignored for one CPU process).
        overrides: extra ``key=value`` overrides, space-separated.
    """
    if not recipe:
        return "# no recipe in train/configs/ yet"
    n = max(1, int(processes or 1))
    script = f"train/{job_for_recipe(recipe)}.py"
    tail = f"{script} --config {shlex.quote(recipe)}"
    if overrides.strip():
        tail += " " + " ".join(shlex.quote(o) for o in shlex.split(overrides))
    if mode == MODES[0]:
        return f"accelerate launch --num_processes 1 --cpu {tail}"
    if mode == MODES[1]:
        return (
            f"ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes {n} "
            f"--num_machines 1 --mixed_precision no --dynamo_backend no {tail}"
        )
    multi = "--multi_gpu " if n > 1 else ""
    return f"accelerate launch {multi}--num_processes {n} --mixed_precision bf16 {tail}"


# ---------------------------------------------------------------------------------- background run
@dataclass
class BackgroundRun:
    """A CPU run the studio started (one at a time per studio process)."""

    process: subprocess.Popen
    run_dir: Path
    log: Path
    command: list[str]
    started: float
    ended: float | None = None


_RUN: BackgroundRun | None = None
_RUN_LOCK = threading.Lock()


def start_run(
    recipe: str | None, folder: str, name: str = "", overrides: str = ""
) -> tuple[str, gr.Timer]:
    """Start ``recipe`` on one CPU process in the background, writing to ``<folder>/<name>``
    (``overrides``: extra ``key=value`` items, as in :func:`launch_command`).

    Returns:
        A status line and the timer (activated) that refreshes the live curve.
    """
    global _RUN
    if not recipe:
        raise bad_input("choose a recipe first")
    with _RUN_LOCK:
        if _RUN is not None and _RUN.process.poll() is None:
            raise bad_input(f"a run is already going ({_RUN.run_dir.name}); stop it first")
        stem = name.strip() or f"{Path(recipe).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        run_dir = _resolve_folder(folder) / stem
        run_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--num_processes",
            "1",
            "--cpu",
            f"train/{job_for_recipe(recipe)}.py",
            "--config",
            recipe,
            *shlex.split(overrides or ""),
            f"train.output_dir={run_dir}",
        ]
        log = run_dir / "studio-launch.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                command, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        _RUN = BackgroundRun(process, run_dir, log, command, time.time())
    return f"started `{shlex.join(command[2:])}` (pid {process.pid}) → `{run_dir}`", gr.Timer(
        active=True
    )


def stop_run() -> str:
    """Stop the studio's background run: the process group it started (the launcher and the
    training process under it), by the launcher's id."""
    with _RUN_LOCK:
        if _RUN is None or _RUN.process.poll() is not None:
            return "no run is going"
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(_RUN.process.pid, sig)
            try:
                _RUN.process.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue
        return f"stopped {_RUN.run_dir.name}"


atexit.register(stop_run)  # a run the studio started does not outlive it


def poll_run() -> tuple[go.Figure, str, str, gr.Timer]:
    """The background run's live curve, the end of its log, a status line, and the timer
    (deactivated once the run has ended)."""
    run = _RUN
    if run is None:
        return (
            plots.empty_figure("no background run"),
            "",
            "no background run",
            gr.Timer(active=False),
        )
    records = [
        r
        for r in read_metrics(run.run_dir / "metrics.jsonl")
        if isinstance(r.get("loss"), int | float)
    ]
    fig = plots.loss_figure(
        {run.run_dir.name: ([r["step"] for r in records], [r["loss"] for r in records])}
        if records
        else {}
    )
    try:
        tail = "\n".join(run.log.read_text(errors="replace").splitlines()[-15:])
    except OSError:
        tail = ""
    code = run.process.poll()
    if code is not None and run.ended is None:
        run.ended = time.time()
    elapsed = (run.ended or time.time()) - run.started
    status = (
        f"running for {elapsed:.0f} s"
        if code is None
        else f"finished with exit code {code} after {elapsed:.0f} s"
    )
    return fig, tail, f"{run.run_dir.name}: {status}", gr.Timer(active=code is None)
