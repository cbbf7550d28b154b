"""The registry of world-model heads (``lam.head``; docs/DESIGN.md#world-model-heads).

Each entry is a :class:`~lam_core.models.head.WorldModelHead`; a new head is its class (in its own
module) plus one entry here. The world model and the LAM only talk to the head through that
interface.
"""

from __future__ import annotations

from lam_core.config import LAMConfig
from lam_core.models.flow import FlowHead
from lam_core.models.head import FeatureHead, WorldModelHead
from lam_core.models.shift import ShiftHead

HEADS: dict[str, type[WorldModelHead]] = {
    "features": FeatureHead,
    "flow": FlowHead,
    "shift": ShiftHead,
}


def head_class(name: str) -> type[WorldModelHead]:
    """The head registered as ``name``.

    Raises:
        ValueError: ``lam.head: …`` naming the registered heads.
    """
    if name not in HEADS:
        raise ValueError(f"lam.head: must be one of {', '.join(HEADS)}, not {name!r}")
    return HEADS[name]


def check_head(cfg: LAMConfig) -> None:
    """Raise ``ValueError`` (``lam.<key>: …``) for an unknown ``cfg.head`` or settings it cannot
    use."""
    head_class(cfg.head).check(cfg)


def build_head(cfg: LAMConfig, width: int) -> WorldModelHead:
    """The head ``cfg.head`` for a world model of width ``width`` (its settings checked)."""
    return head_class(cfg.head)(cfg, width)
