"""lam_core: latent action world models (Garrido et al., 2026, "Learning Latent Action World Models
In The Wild"): frozen frame-causal encoder, inverse dynamics model, latent action regularizers,
frame-wise AdaLN-zero world model, frame-causal decoder, controller, and the pipeline that ties
them together.
"""

from lam_core.checkpoint import CheckpointError
from lam_core.clip import Clip
from lam_core.config import (
    ConfigError,
    ControllerConfig,
    DecoderConfig,
    EncoderConfig,
    LAMConfig,
    RegularizerConfig,
    TransformerConfig,
)
from lam_core.pipeline import LatentActionPipeline
from lam_core.presets import PRESETS, PipelineConfig, get_preset
from lam_core.results import CycleResult, LeakageResult, TransferResult
from lam_core.version import __version__ as __version__  # pyproject.toml reads it there

__all__ = [
    "PRESETS",
    "CheckpointError",
    "Clip",
    "ConfigError",
    "ControllerConfig",
    "CycleResult",
    "DecoderConfig",
    "EncoderConfig",
    "LAMConfig",
    "LatentActionPipeline",
    "LeakageResult",
    "PipelineConfig",
    "RegularizerConfig",
    "TransferResult",
    "TransformerConfig",
    "get_preset",
]
