"""Model components of lam_core (paper §3–§4, §7, App. A)."""

from lam_core.models.controller import Controller
from lam_core.models.decoder import Decoder, PatchDecoder, build_decoder
from lam_core.models.encoder import PatchEncoder, TinyEncoder, VJEPA2Encoder, build_encoder
from lam_core.models.flow import FlowHead
from lam_core.models.head import FeatureHead, WorldModelHead
from lam_core.models.heads import HEADS, build_head
from lam_core.models.idm import InverseDynamics
from lam_core.models.lam import LAMOutput, LatentActionModel
from lam_core.models.regularizers import (
    DiscreteRegularizer,
    NoisyRegularizer,
    Regularizer,
    RegularizerOutput,
    SparseRegularizer,
    build_regularizer,
)
from lam_core.models.world_model import AdaLNBlock, WorldModel

__all__ = [
    "HEADS",
    "AdaLNBlock",
    "Controller",
    "Decoder",
    "DiscreteRegularizer",
    "FeatureHead",
    "FlowHead",
    "InverseDynamics",
    "LAMOutput",
    "LatentActionModel",
    "NoisyRegularizer",
    "PatchDecoder",
    "PatchEncoder",
    "Regularizer",
    "RegularizerOutput",
    "SparseRegularizer",
    "TinyEncoder",
    "VJEPA2Encoder",
    "WorldModel",
    "WorldModelHead",
    "build_decoder",
    "build_encoder",
    "build_head",
    "build_regularizer",
]
