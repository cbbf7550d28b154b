"""Tiny components with fixed seeds for tests (diffusers' get_dummy_components habit)."""

from __future__ import annotations

import socket

import torch

from lam_core import LatentActionPipeline, get_preset


def tiny_pipeline(
    regularizer: str = "sparse",
    kind: str = "latent",
    seed: int = 0,
    randomize_zero_init: bool = True,
) -> LatentActionPipeline:
    """A tiny random pipeline. Zero-initialised AdaLN layers are randomised (unless told not to)
    so that properties are tested on a model whose every path carries signal."""
    torch.manual_seed(seed)
    cfg = get_preset("tiny", regularizer=regularizer, kind=kind)
    pipe = LatentActionPipeline.from_config(cfg)
    if randomize_zero_init:
        with torch.no_grad():
            for n, p in pipe.lam.named_parameters():
                if "modulation" in n or n.startswith("world_model.head"):
                    p.normal_(0, 0.05)
    return pipe


def free_port() -> int:
    """A free TCP port on the loopback interface (for a studio served by a test)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
