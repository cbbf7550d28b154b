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
def fresh_accelerate_state():
    """Each in-process training run starts from a clean accelerate singleton state."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


@pytest.fixture
def pipe() -> LatentActionPipeline:
    return tiny_pipeline()


@pytest.fixture
def video() -> torch.Tensor:
    """``(2, 16, 3, 32, 32)`` in [0, 1]."""
    return torch.rand(2, 16, 3, 32, 32, generator=torch.Generator().manual_seed(1))
