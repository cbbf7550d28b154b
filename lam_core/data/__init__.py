"""Data for lam-studio (docs/DESIGN.md#data-sources): MiniWild (procedural in-the-wild video; its
scenes, the dataset of a mixture of them and what they share: :mod:`lam_core.data.miniwild`), the
action-labeled reach and drive worlds, Push-T recordings (gym-pusht is optional: imported when an
episode is recorded) and folders of real video files. Everything produces
:class:`~lam_core.clip.Clip` objects; the datasets give ``(T, 3, H, W)`` float tensors in [0, 1].
For scale: WebDataset shards of clips (:mod:`lam_core.data.shards`) and resumable streams that mix
sources by weight (:mod:`lam_core.data.streams`).
"""

from __future__ import annotations

from lam_core.data.common import (
    EMBODIMENTS,
    MOVER_KINDS,
    PHOTOS,
    SCENES,
    MiniWildConfig,
    load_photos,
    procedural_texture,
    split_seeds,
)
from lam_core.data.folders import VIDEO_EXTENSIONS, VideoFolderDataset, file_split
from lam_core.data.miniwild import (
    RENDERERS,
    MiniWildDataset,
    MixtureDataset,
    benchmark,
    generate_clip,
)
from lam_core.data.pusht import PUSHT_FPS, denormalize_action, normalize_action, record_pusht_clip
from lam_core.data.scenes import (
    PHOTO_SOURCES,
    choose_scene,
    load_scene_photos,
    mixture_weights,
    step_velocities,
)
from lam_core.data.shards import ShardClips, ShardError, ShardWriter
from lam_core.data.streams import ClipStream, MapSource, ShardSource
from lam_core.data.worlds import (
    EFFECTOR_COLOR,
    WORLD_FPS,
    WORLDS,
    ActionWorldDataset,
    DriveWorld,
    ReachWorld,
    drive_episode,
    make_drive_clip,
    make_reach_clip,
    reach_episode,
    rollout_clip,
)

__all__ = [
    "EFFECTOR_COLOR",
    "EMBODIMENTS",
    "MOVER_KINDS",
    "PHOTOS",
    "PHOTO_SOURCES",
    "PUSHT_FPS",
    "RENDERERS",
    "SCENES",
    "VIDEO_EXTENSIONS",
    "WORLDS",
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
    "denormalize_action",
    "drive_episode",
    "file_split",
    "generate_clip",
    "load_photos",
    "load_scene_photos",
    "make_drive_clip",
    "make_reach_clip",
    "mixture_weights",
    "normalize_action",
    "procedural_texture",
    "reach_episode",
    "record_pusht_clip",
    "rollout_clip",
    "split_seeds",
    "step_velocities",
]
