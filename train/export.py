"""Export a run's final model into the shipped assets (docs/DESIGN.md#assets): weights cast to
fp16, hub layout, components shared between pipelines by relative path (a pipeline's
``config.json`` may name ``"../autoencoder/encoder"``) so one encoder and decoder serve them all.

    python train/export.py RUN/final assets/checkpoints/pixel-noisy \\
        --share encoder=../autoencoder/encoder --share decoder=../autoencoder/decoder

``RUN/final`` is a pipeline folder, or a folder of component folders (the autoencoder's); the
result is opened once with ``LatentActionPipeline.from_pretrained`` to check it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import torch

from lam_core.checkpoint import (
    CONFIG_NAME,
    load_component,
    read_component_config,
    read_training_record,
    save_component,
)
from lam_core.pipeline import PIPELINE_FORMAT, LatentActionPipeline

COMPONENTS = ("encoder", "lam", "decoder", "controller")
METRICS_NAME = "metrics.jsonl"


def write_metrics(path: Path, metrics: Path, previous: str = "") -> None:
    """``metrics`` (a run's metrics.jsonl) into ``path``; with ``previous`` (the metrics.jsonl
    text of the model the run warm-started from), those first and the run's steps shifted after
    them, so the shipped curve covers every run."""
    lines = [json.loads(x) for x in previous.splitlines() if x.strip()]
    offset = max((d.get("step", 0) for d in lines), default=0)
    for x in metrics.read_text().splitlines():
        if x.strip():
            d = json.loads(x)
            if offset and d.get("step", 0) == 0:
                continue  # the new run's step-0 baseline repeats the old one's
            lines.append({**d, "step": d.get("step", 0) + offset})
    path.write_text("".join(json.dumps(d) + "\n" for d in lines))


def export(src: str | Path, dst: str | Path, share: dict[str, str] | None = None,
           dtype: torch.dtype = torch.float16, metrics: str | Path | None = None,
           previous: str | Path | None = None) -> Path:
    """Copy ``src`` to ``dst`` with weights in ``dtype``; components in ``share`` are referenced
    (a path relative to ``dst``) instead of copied.

    Args:
        src: a pipeline folder or a folder of component folders.
        dst: the asset folder (replaced).
        share: ``{"encoder": "../autoencoder/encoder", ...}``.
        dtype: weight type of the copies.
        metrics: the run's ``metrics.jsonl``, shipped as ``dst/metrics.jsonl``.
        previous: the ``metrics.jsonl`` of the model the run warm-started from (prepended).

    Returns:
        ``dst``.
    """
    src, dst, share = Path(src), Path(dst), share or {}
    metrics = Path(metrics) if metrics else None
    # read now: previous may live in dst (continuing the shipped model), which is replaced
    previous_text = Path(previous).read_text() if previous and Path(previous).is_file() else ""
    meta_path = src / CONFIG_NAME
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
    is_pipeline = isinstance(meta, dict) and meta.get("format") == PIPELINE_FORMAT
    if is_pipeline:
        entries = meta["components"]
    else:
        entries = {n: n for n in COMPONENTS if (src / n / CONFIG_NAME).is_file()}
    if not entries:
        raise ValueError(f"{src}: neither a pipeline folder nor a folder of component folders")
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    names: dict[str, str | None] = {}
    for name, entry in entries.items():
        if not entry:
            names[name] = None
        elif name in share:
            shared = Path(os.path.normpath(dst / share[name]))
            if not (shared / CONFIG_NAME).is_file():
                raise FileNotFoundError(f"{shared}: shared {name} is not there yet")
            if read_component_config(shared) != read_component_config(src / entry):
                raise ValueError(f"{shared}: its config differs from {src / entry}'s")
            names[name] = share[name]
        else:
            save_component(load_component(src / entry, expected=name), tmp / name, dtype=dtype,
                           training=read_training_record(src / entry) or None)
            names[name] = name
    if metrics is not None:  # the loss curves the studio's Training tab shows
        write_metrics(tmp / METRICS_NAME, metrics, previous_text)
    if is_pipeline:
        out = {"format": PIPELINE_FORMAT, "format_version": 1, "components": names}
        (tmp / CONFIG_NAME).write_text(json.dumps(out, indent=2) + "\n")
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)
    if is_pipeline:
        LatentActionPipeline.from_pretrained(dst)  # it opens
    return dst


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", help="a run's final/ folder")
    parser.add_argument("dst", help="the asset folder to write")
    parser.add_argument("--share", action="append", default=[], metavar="NAME=RELPATH",
                        help="reference a component already exported (path relative to dst)")
    parser.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    parser.add_argument("--metrics", help="the run's metrics.jsonl, shipped beside the model")
    parser.add_argument("--previous-metrics", help="the warm-start model's metrics.jsonl, "
                        "prepended (the shipped curve covers every run)")
    args = parser.parse_args(argv)
    share = dict(item.split("=", 1) for item in args.share)
    out = export(args.src, args.dst, share, getattr(torch, args.dtype), args.metrics,
                 args.previous_metrics)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"exported {args.src} → {out} ({size / 1e6:.1f} MB)", flush=True)


if __name__ == "__main__":
    main()
