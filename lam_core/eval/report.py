"""The evaluation report (docs/DESIGN.md#evaluation): every applicable evaluation on every pipeline
folder under a directory, printed as the paper's tables beside the paper's numbers.

``python -m lam_core.eval.report --checkpoints DIR --out DIR [--clips DIR] [--episodes N]
[--pairs N] [--only PATTERN ...] [--quick]``; ``--merge A/report.json B/report.json --out DIR``
joins reports made in parallel (``--only`` subsets, one process each) into one, with the checks
that compare pipelines across them.

Pipeline folders are found by their ``config.json`` (``"format": "lam-studio-pipeline"``); a
folder's path under DIR is its name. What runs on a pipeline follows from what it is:

- no world (in-the-wild LAMs, e.g. ``sparse-low``, ``deterministic``, ``none``): capacity
  (Fig. 4) and leakage (Table 1); with latents also cycle (Table 2), sampling (Fig. S1),
  transfer fidelity and motion transfer (MiniWild movers; camera pans over stills of the
  ``--clips`` videos, :mod:`lam_core.eval.motion`); on MiniWild validation clips, and on
  ``--clips`` real videos as an extra column (with how exactly the representation keeps them).
- a world (``"world"`` in its ``config.json``, else ``reach`` / ``drive`` / ``pusht`` as a word of
  its name, e.g. ``reach-controller``, ``reach-ac``): the controller evaluation (Tables S1/S2 left,
  latents + controller) and the planning protocol of that world (Tables S1/S2 right; a world model
  of kind ``"action"`` is the V-JEPA 2-AC baseline).

Writes ``report.json`` (all numbers and per-step arrays) and ``plots.html`` (Plotly, offline), and
prints PASS/FAIL lines for the checks of :func:`lam_core.eval.tables.checks`.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import functools
import json
import logging
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lam_core.checkpoint import CheckpointError, read_training_record, record_sources
from lam_core.data.worlds import WORLDS
from lam_core.eval.agents import drive_tracking, reach_tracking
from lam_core.eval.capacity import capacity, model_label
from lam_core.eval.common import Progress, heldout_clips, read_clips, sub_progress, to_jsonable
from lam_core.eval.controller import controller_eval
from lam_core.eval.cycle import cycle
from lam_core.eval.fidelity import transfer_fidelity
from lam_core.eval.leakage import leakage
from lam_core.eval.metrics import lpips_available
from lam_core.eval.motion import camera_motion_transfer, mover_motion_transfer, real_images
from lam_core.eval.objects import object_motion
from lam_core.eval.planning import (
    DRIVE_CEM,
    REACH_CEM,
    can_plan,
    drive_protocol,
    reach_protocol,
)
from lam_core.eval.sampling import sampling
from lam_core.eval.tables import checks, format_checks, format_tables
from lam_core.pipeline import PIPELINE_FORMAT, LatentActionPipeline
from lam_core.planning import CEMConfig

logger = logging.getLogger(__name__)


@dataclass
class ReportSettings:
    """How much data each evaluation sees. Defaults: the paper's protocols where it gives them
    (64 planning episodes, CEM settings of App. A)."""

    clips: int = 32
    pairs: int = 32
    episodes: int = 64
    drive_episodes: int | None = None  # drive plans are cheap: more episodes than reach's
    sampling_n: int = 512
    umap: bool = True
    fidelity_pairs: int = 16
    motion_pairs: int = 24
    object_clips: int = 24  # per motion kind (smooth, random): 48 clips
    controller_clips: int = 32
    reach_cem: CEMConfig = dataclasses.field(default_factory=lambda: REACH_CEM)
    drive_cem: CEMConfig = dataclasses.field(default_factory=lambda: DRIVE_CEM)
    seed: int = 0
    quick_run: bool = False

    @classmethod
    def quick(cls) -> ReportSettings:
        """A smoke run in seconds: a few clips, pairs and episodes, a small CEM, no UMAP."""
        return cls(
            clips=4,
            pairs=3,
            episodes=2,
            sampling_n=48,
            umap=False,
            fidelity_pairs=2,
            motion_pairs=2,
            object_clips=2,
            controller_clips=4,
            reach_cem=CEMConfig(samples=24, elites=4, iterations=2),
            drive_cem=CEMConfig(samples=16, elites=4, iterations=1, horizon=1),
            quick_run=True,
        )


# ------------------------------------------------------------------------------------ discovery
def find_pipelines(root: str | Path) -> list[tuple[str, Path, dict]]:
    """``(name, folder, config)`` of every pipeline folder under ``root`` (``root`` included),
    sorted by name; the name is the folder's path relative to ``root``."""
    root = Path(root)
    found = []
    for path in sorted(root.rglob("config.json")):
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and meta.get("format") == PIPELINE_FORMAT:
            rel = path.parent.relative_to(root).as_posix()
            found.append((rel if rel != "." else path.parent.name, path.parent, meta))
    return found


def world_of(name: str, meta: dict) -> str | None:
    """The action world a pipeline belongs to: ``meta["world"]``, else a word of its name
    (words split at any non-alphanumeric: ``reach-ac``, ``runs/controller_reach/final``)."""
    if meta.get("world") in WORLDS:
        return meta["world"]
    words = re.split(r"[^a-z0-9]+", name.lower())
    return next((w for w in WORLDS if w in words), None)


def world_shares(data: dict | None) -> dict[str, float] | None:
    """Share of a run's clips drawn from each action world (their frames, never their actions:
    Table S3's "DROID weight"), from its ``data`` record; None when the record does not say."""
    parts = record_sources(data)
    if parts is None:
        return None
    out: dict[str, float] = {}
    for line, share in parts:
        if line.get("source") == "world":
            w = line.get("world", "?")
            out[w] = out.get(w, 0.0) + share
    return out


def lam_data(folder: Path, meta: dict) -> dict | None:
    """What a pipeline's LAM trained on, from its training record: the folder of its last run
    (which names the LAM in Table S3), steps, clips, and per world the share of all its clips
    that came from that world's videos (warm-started runs weighted by their clips); None when the
    LAM has no record."""
    lam = (meta.get("components") or {}).get("lam")
    if not isinstance(lam, str):
        return None
    try:
        record = read_training_record(folder / lam)
    except CheckpointError:
        return None
    runs = [r for r in record.get("runs", []) if isinstance(r, dict)]
    if not runs:
        return None
    shares: dict[str, float] | None = {}
    for run in runs:
        part = world_shares(run.get("data"))
        if part is None or shares is None:
            shares = None
            continue
        for w, x in part.items():
            shares[w] = shares.get(w, 0.0) + x * run.get("clips", 0)
    clips = int(record.get("clips", 0))
    if shares is not None:
        shares = {w: x / clips for w, x in shares.items()} if clips else None
    return {"run": runs[-1].get("run"), "steps": int(record.get("steps", 0)), "clips": clips,
            "world_share": shares, "last_run_world_share": world_shares(runs[-1].get("data"))}


# ------------------------------------------------------------------------------------ running
def representation(pipe: LatentActionPipeline, clips: list, progress=None) -> dict:
    """PSNR (dB) of decoding the true features of real clips against the clips at the model's
    resolution: how well the representation keeps real footage (inf: exact)."""
    from lam_core.eval.metrics import psnr

    values = []
    for clip in clips:
        x = pipe.to_tensor(clip)
        values.append(float(psnr(pipe.decode(pipe.encode(x)), x).mean()))
    return {"psnr": float(np.mean(values)), "min_psnr": float(np.min(values)),
            "clips": len(values)}


def _jobs(pipe: LatentActionPipeline, world: str | None, s: ReportSettings, wild, real,
          images=None):
    """``[(key, fn)]`` of the evaluations that apply to ``pipe``; ``fn(progress=...)`` runs one."""
    kind, jobs = pipe.lam.cfg.kind, []

    def add(key: str, fn, *args, **kwargs) -> None:
        jobs.append((key, functools.partial(fn, pipe, *args, **kwargs)))

    pairs = {"n_pairs": s.pairs, "seed": s.seed}
    if world is None and kind in ("latent", "deterministic"):
        for suffix, clips in (("", wild), ("_real", real)):
            if clips is not None:
                add(f"capacity{suffix}", capacity, clips)
                add(f"leakage{suffix}", leakage, clips, **pairs)
                if kind == "latent":
                    add(f"cycle{suffix}", cycle, clips, **pairs)
        if real is not None and pipe.decoder is not None:
            add("representation_real", representation, real)
        if kind == "latent":
            add("sampling", sampling, n=s.sampling_n, seed=s.seed, umap=s.umap)
            if pipe.decoder is not None:
                add("fidelity", transfer_fidelity, n_pairs=s.fidelity_pairs, seed=s.seed)
                add("motion_mover", mover_motion_transfer, n_pairs=s.motion_pairs, seed=s.seed)
                add("objects", object_motion, n_clips=s.object_clips, seed=s.seed,
                    backdrops=images or None)
                if images:
                    add("motion_camera_real", camera_motion_transfer, images,
                        n_pairs=s.motion_pairs, seed=s.seed)
    if world is not None:
        if kind == "latent" and pipe.controller is not None:
            add("controller", controller_eval, world, n_clips=s.controller_clips, seed=s.seed)
        can_drive = kind == "action" or (kind == "latent" and pipe.controller is not None)
        if world == "reach" and can_drive and pipe.decoder is not None:
            add("reach_tracking", reach_tracking, episodes=s.episodes, seed=s.seed)
        if world == "drive" and can_drive and pipe.decoder is not None:
            add("drive_tracking", drive_tracking, episodes=s.drive_episodes or s.episodes,
                seed=s.seed)
        if can_plan(pipe) and world == "drive":
            add("planning_drive", drive_protocol, episodes=s.drive_episodes or s.episodes,
                cfg=s.drive_cem, seed=s.seed)
        elif can_plan(pipe):
            add(f"planning_{world}", reach_protocol, episodes=s.episodes, cfg=s.reach_cem,
                seed=s.seed, world=world)
    return jobs


def _pusht_missing() -> str | None:
    try:
        import gym_pusht  # noqa: F401
    except ImportError as e:
        return f"skipped: gym-pusht is not installed ({e})"
    return None


def run_report(
    checkpoints: str | Path,
    clips: str | Path | None = None,
    settings: ReportSettings | None = None,
    device: str | None = None,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
    only: list[str] | None = None,
) -> dict:
    """Run every applicable evaluation on every pipeline under ``checkpoints``.

    Args:
        checkpoints: folder holding pipeline folders.
        only: keep the pipelines whose name matches one of these shell patterns (``"sparse-*"``),
            e.g. to split a long report over processes.
        clips: optional folder of real videos (an extra column).
        settings: data sizes (default :class:`ReportSettings`).
        device: ``cpu``, ``cuda``, … (default: CUDA when available).
        progress: ``progress(fraction, message)`` over the whole report.
        log: where one-line notes go (skips, errors); default: this module's logger, as
            warnings.

    Returns:
        ``{"settings", "lpips", "pipelines": {name: {"path", "kind", "label", "world",
        "<evaluation>": result or {"failed": message}}}, "checks"}`` (JSON-ready); a pipeline
        that could not be loaded or whose world is unavailable has "error" or "skipped".
    """
    s = settings or ReportSettings()
    log = log or logger.warning
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    found = find_pipelines(checkpoints)
    if not found:
        raise FileNotFoundError(
            f"{checkpoints}: no pipeline folders (config.json with "
            f'"format": "{PIPELINE_FORMAT}") found'
        )
    if only:
        names = [name for name, _, _ in found]
        found = [f for f in found if any(fnmatch.fnmatchcase(f[0], pat) for pat in only)]
        if not found:
            raise FileNotFoundError(
                f"{checkpoints}: no pipeline matches --only {' '.join(only)} (there are: "
                f"{', '.join(names)})"
            )
    wild = heldout_clips(s.clips)
    real_cache: dict = {}
    out: dict = {
        "settings": to_jsonable(s),
        "device": device,
        "lpips": lpips_available(),
        "clips_dir": None if clips is None else str(clips),
        "pipelines": {},
    }
    for i, (name, folder, meta) in enumerate(found):
        report = sub_progress(progress, i / len(found), (i + 1) / len(found))
        entry: dict = {"path": str(folder), "world": world_of(name, meta),
                       "lam_data": lam_data(folder, meta)}
        out["pipelines"][name] = entry
        try:
            pipe = LatentActionPipeline.from_pretrained(folder).to(device)
        except Exception as e:  # a broken folder must not stop the report
            entry["error"] = f"could not load: {e}"
            log(f"{name}: could not load ({e})")
            continue
        entry.update(
            kind=pipe.lam.cfg.kind,
            label=model_label(pipe),
            has_controller=pipe.controller is not None,
            has_decoder=pipe.decoder is not None,
        )
        real = images = None
        if clips is not None:
            key = (pipe.fps, pipe.image_size)  # read once per sampling and size
            if key not in real_cache:
                real_cache[key] = read_clips(clips, pipe.fps, size=pipe.image_size)
            real = real_cache[key] or None
            if "images" not in real_cache:  # stills to pan over (camera-motion transfer)
                real_cache["images"] = real_images(clips)
            images = real_cache["images"] if len(real_cache["images"]) >= 2 else None
        world = entry["world"]
        why = _pusht_missing() if world == "pusht" else None
        if why:
            entry["skipped"] = why
            log(f"{name}: {why}")
        jobs = [] if why else _jobs(pipe, world, s, wild, real, images)
        if not jobs and not why:
            entry["note"] = "no applicable evaluation (a world pipeline needs a controller)"
        for j, (key, fn) in enumerate(jobs):
            sub = sub_progress(report, j / len(jobs), (j + 1) / len(jobs))
            sub(0.0, f"{name}: {key}")
            t0 = time.perf_counter()
            try:
                with torch.no_grad():
                    result = fn(progress=lambda f, m, sub=sub, n=name: sub(f, f"{n}: {m}"))
                entry[key] = to_jsonable(result)
                entry[key]["seconds"] = round(time.perf_counter() - t0, 2)
            except Exception as e:  # report it, keep going
                entry[key] = {"failed": f"{type(e).__name__}: {e}"}
                log(f"{name}: {key} failed: {type(e).__name__}: {e}")
        del pipe
    out["notes"] = []
    if not any(p.get("world") == "pusht" for p in out["pipelines"].values()):
        out["notes"].append(
            "Push-T (optional): no pipeline of the pusht world (a name with 'pusht' or "
            '"world": "pusht" in its config.json), so its controller and planning were skipped'
        )
    out["checks"] = checks(out)
    return out


# ------------------------------------------------------------------------------------ CLI
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m lam_core.eval.report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--checkpoints", help="folder holding pipeline folders")
    ap.add_argument("--merge", nargs="+", metavar="REPORT_JSON",
                    help="instead of evaluating: join these report.json files into one")
    ap.add_argument("--out", required=True, help="where report.json and plots.html go")
    ap.add_argument("--clips", help="folder of real videos (an extra column)")
    ap.add_argument("--only", nargs="+", metavar="PATTERN",
                    help="only the pipelines whose name matches (shell patterns: 'sparse-*')")
    ap.add_argument("--episodes", type=int, help="planning episodes (paper: 64)")
    ap.add_argument("--drive-episodes", type=int, metavar="N",
                    help="planning episodes on drive (default: --episodes; a drive plan costs "
                         "~1/10 of a reach plan)")
    ap.add_argument("--pairs", type=int, help="pairs for leakage and cycle")
    ap.add_argument("--quick", action="store_true", help="a smoke run in seconds")
    ap.add_argument("--no-umap", action="store_true", help="skip the UMAP of the sampling view")
    ap.add_argument("--device", help="cpu, cuda, … (default: CUDA when available)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--strict", action="store_true", help="exit with 1 when a check fails")
    args = ap.parse_args(argv)
    if args.merge:
        try:
            rep = merge_reports(args.merge)
        except (OSError, ValueError) as e:
            ap.error(str(e))
        return _write(rep, Path(args.out), args.strict)
    if not args.checkpoints:
        ap.error("--checkpoints DIR is required (or --merge REPORT_JSON ...)")
    for flag in ("episodes", "drive_episodes", "pairs"):
        if (n := getattr(args, flag)) is not None and n < 1:
            ap.error(f"--{flag.replace('_', '-')} {n}: give a positive number")
    s = ReportSettings.quick() if args.quick else ReportSettings()
    s.seed = args.seed
    s.episodes = args.episodes or s.episodes
    s.drive_episodes = args.drive_episodes or s.drive_episodes
    s.pairs = args.pairs or s.pairs
    s.umap = s.umap and not args.no_umap
    from tqdm.auto import tqdm

    with tqdm(total=1000, desc="report", unit="‰", file=sys.stderr) as bar:

        def progress(fraction: float, message: str) -> None:
            bar.n = int(1000 * min(max(fraction, 0.0), 1.0))
            bar.set_description(message[:60], refresh=False)
            bar.refresh()

        try:
            rep = run_report(
                args.checkpoints,
                args.clips,
                s,
                args.device,
                progress,
                log=lambda m: bar.write(m, file=sys.stderr),
                only=args.only,
            )
        except FileNotFoundError as e:
            print(e, file=sys.stderr)
            return 2
    if all("error" in p for p in rep["pipelines"].values()):
        print(f"{args.checkpoints}: no pipeline could be loaded (reasons above)", file=sys.stderr)
        return 2
    return _write(rep, Path(args.out), args.strict)


def merge_reports(paths: list[str]) -> dict:
    """One report from several ``report.json`` (e.g. ``--only`` subsets run side by side): the
    pipelines of all (a name in two is an error), the notes of all, the checks made anew."""
    rep: dict = {"pipelines": {}, "notes": []}
    for path in paths:
        part = json.loads(Path(path).read_text())
        if not isinstance(part, dict) or not isinstance(part.get("pipelines"), dict):
            raise ValueError(f"{path}: not a report.json (no 'pipelines')")
        twice = sorted(set(part["pipelines"]) & set(rep["pipelines"]))
        if twice:
            raise ValueError(f"{path}: pipeline(s) {', '.join(twice)} already in another report")
        rep["pipelines"].update(part["pipelines"])
        rep["notes"] += [n for n in part.get("notes", []) if n not in rep["notes"]]
        for key, value in part.items():
            rep.setdefault(key, value)  # settings and the rest: the first report's
    rep["merged_from"] = [str(p) for p in paths]
    rep["checks"] = checks(rep)
    return rep


def _write(rep: dict, out: Path, strict: bool) -> int:
    """Write ``report.json`` and ``plots.html`` under ``out``, print the tables and checks;
    the exit status (1 when ``strict`` and a check failed)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(rep, indent=1, allow_nan=False) + "\n")
    from lam_core.eval.plots import write_html

    plots = write_html(rep["pipelines"], out / "plots.html")
    print(format_tables(rep))
    print("Checks")
    print(format_checks(rep))
    print(f"\nwrote {out / 'report.json'}" + (f" and {plots}" if plots else ""))
    failed = any(c["status"] == "FAIL" for c in rep["checks"])
    return 1 if strict and failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
