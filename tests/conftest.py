"""Shared fixtures."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest
import torch

from lam_core import LatentActionPipeline

from .helpers import tiny_pipeline


@pytest.fixture
def pipe() -> LatentActionPipeline:
    return tiny_pipeline()


@pytest.fixture
def video() -> torch.Tensor:
    """``(2, 16, 3, 32, 32)`` in [0, 1]."""
    return torch.rand(2, 16, 3, 32, 32, generator=torch.Generator().manual_seed(1))
