"""Data for lam-studio (docs/DESIGN.md#data-sources): MiniWild (procedural in-the-wild video; its
"pan" and "movers" scenes and mixtures of scenes in :mod:`lam_core.data.scenes`), the action-labeled
reach and drive worlds, Push-T recordings (optional gym-pusht, imported on first use) and folders of
real video files. Everything produces :class:`~lam_core.clip.Clip` objects; the datasets give
``(T, 3, H, W)`` float tensors in [0, 1]. For scale: WebDataset shards of clips
(:mod:`lam_core.data.shards`) and resumable streams that mix sources by weight
(:mod:`lam_core.data.streams`).
"""

from __future__ import annotations

from lam_core.data.folders import VIDEO_EXTENSIONS, VideoFolderDataset, file_split
from lam_core.data.miniwild import (
    EMBODIMENTS,
    PHOTOS,
    SCENES,
    MiniWildConfig,
    MiniWildDataset,
    benchmark,
    generate_clip,
    load_photos,
    procedural_texture,
    split_seeds,
)
from lam_core.data.scenes import (
    MOVER_KINDS,
    PHOTO_SOURCES,
    MixtureDataset,
    choose_scene,
    generate_scene,
    load_scene_photos,
    mixture_weights,
    step_velocities,
)
from lam_core.data.shards import ShardClips, ShardError, ShardWriter
from lam_core.data.streams import ClipStream, MapSource, ShardSource
from lam_core.data.worlds import (
    EFFECTOR_COLOR,
    WORLD_FPS,
    ActionWorldDataset,
    DriveWorld,
    ReachWorld,
    drive_episode,
    make_drive_clip,
    make_reach_clip,
    reach_episode,
    rollout_clip,
)

_PUSHT = ("PUSHT_FPS", "denormalize_action", "normalize_action", "record_pusht_clip")

__all__ = [
    "EFFECTOR_COLOR",
    "EMBODIMENTS",
    "MOVER_KINDS",
    "PHOTOS",
    "PHOTO_SOURCES",
    "SCENES",
    "VIDEO_EXTENSIONS",
    "WORLD_FPS",
    "ActionWorldDataset",
    "ClipStream",
    "DriveWorld",
    "MapSource",
    "MiniWildConfig",
    "MiniWildDataset",
    "MixtureDataset",
    "ReachWorld",
    "ShardClips",
    "ShardError",
    "ShardSource",
    "ShardWriter",
    "VideoFolderDataset",
    "benchmark",
    "choose_scene",
    "drive_episode",
    "file_split",
    "generate_clip",
    "generate_scene",
    "load_photos",
    "load_scene_photos",
    "make_drive_clip",
    "make_reach_clip",
    "mixture_weights",
    "procedural_texture",
    "reach_episode",
    "rollout_clip",
    "split_seeds",
    "step_velocities",
    *_PUSHT,
]


def __getattr__(name: str):
    """Push-T names come from :mod:`lam_core.data.pusht` on first use (gym-pusht stays optional;
    the module itself imports it only when an episode is recorded)."""
    if name in _PUSHT:
        from lam_core.data import pusht

        return getattr(pusht, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
