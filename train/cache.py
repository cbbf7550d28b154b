"""Build the feature cache of a recipe's training split once, before several runs share it
(docs/DESIGN.md#at-scale; paper §4: the encoder is frozen, so its features are computed once).

``train/lam.py`` and ``train/controller.py`` build a missing ``data.cache_dir`` themselves; runs
that start in parallel on one cache need it built first, with this command:

    python train/cache.py --config train/configs/small_lam_sparse_high.yaml [key=value ...]
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from lam_core.config import ConfigError
from lam_core.data.cache import FeatureCacheDataset
from train.config import load_job_config, parse_cli
from train.data import ensure_cache, load_frozen_encoder


def main(argv: list[str] | None = None) -> Path:
    args = parse_cli(argv, __doc__.splitlines()[0])
    job = load_job_config(args.config, args.overrides)
    if not job.data.cache_dir:
        raise ConfigError("data.cache_dir: required (where to write the cache)")
    if job.train.threads:
        torch.set_num_threads(job.train.threads)
    begin = time.time()
    encoder = load_frozen_encoder(job)
    cache = ensure_cache(job, encoder)
    n = len(FeatureCacheDataset(cache, expected_encoder=encoder.cfg))
    print(f"feature cache {cache}: {n} clips ready ({time.time() - begin:.1f} s)", flush=True)
    return cache


if __name__ == "__main__":
    main()
