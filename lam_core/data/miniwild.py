"""MiniWild: seeded procedural stand-in for in-the-wild video (docs/DESIGN.md#miniwild; the
paper's data, §4). One clip of any scene, datasets of them, and mixtures of scenes by weight.

The paper trains on YoutubeTemporal-1B: many embodiments, moving cameras, distractors. MiniWild
renders small clips with those traits directly at the target size with vectorised numpy. Its
scenes (``MiniWildConfig.scene``, :data:`RENDERERS`):

- ``"wild"`` (:mod:`lam_core.data.wild`): a panning, zooming camera, agents of several
  embodiments, distractors;
- ``"pan"``, ``"movers"`` (:mod:`lam_core.data.scenes`) and ``"layers"``
  (:mod:`lam_core.data.layers`): motion that changes at random every step.

What they share (settings, photos, textures, seeds) is :mod:`lam_core.data.common`; this module
sits above every scene. Ground truth (agent states, camera) goes to ``clip.meta`` for evaluation
only; training never reads it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace

import torch

from lam_core.clip import Clip, frames_to_tensor
from lam_core.data.common import (  # the shared names, importable from here as before
    EMBODIMENTS,
    PHOTOS,
    SCENES,
    VAL_SEED_START,
    MiniWildConfig,
    load_photos,
    procedural_texture,
    split_seeds,
)
from lam_core.data.layers import render_layers
from lam_core.data.scenes import choose_scene, mixture_weights, render_movers, render_pan
from lam_core.data.wild import render_wild

__all__ = [
    "EMBODIMENTS",
    "PHOTOS",
    "RENDERERS",
    "SCENES",
    "VAL_SEED_START",
    "MiniWildConfig",
    "MiniWildDataset",
    "MixtureDataset",
    "benchmark",
    "generate_clip",
    "load_photos",
    "procedural_texture",
    "split_seeds",
]

RENDERERS: dict[str, Callable[[int, MiniWildConfig], Clip]] = {  # one per name of SCENES
    "wild": render_wild,
    "pan": render_pan,
    "movers": render_movers,
    "layers": render_layers,
}


def generate_clip(seed: int, cfg: MiniWildConfig | None = None) -> Clip:
    """Render one MiniWild clip of ``cfg.scene``; the same ``seed`` and ``cfg`` always give the
    same frames.

    Args:
        seed: the clip's seed.
        cfg: the generator's settings (default :class:`MiniWildConfig`: the ``"wild"`` scene).

    Returns:
        A clip of ``(num_frames, size, size, 3)`` uint8 frames at ``cfg.fps``; its ``meta``:
        :func:`~lam_core.data.wild.render_wild` (``"wild"``),
        :func:`~lam_core.data.scenes.render_pan` (the others).
    """
    cfg = cfg or MiniWildConfig()
    return RENDERERS[cfg.scene](seed, cfg)


def benchmark(n: int = 200, cfg: MiniWildConfig | None = None) -> float:
    """Clips per second of :func:`generate_clip` on one core: CPU time of this process, so other
    load on the machine does not count (photos are loaded beforehand).

    Args:
        n: number of clips to render.
        cfg: generator settings.

    Returns:
        clips per second.
    """
    generate_clip(0, cfg)  # loads the photos and the noise bank
    begin = time.process_time()
    for seed in range(n):
        generate_clip(seed, cfg)
    return n / (time.process_time() - begin)


class MiniWildDataset(torch.utils.data.Dataset):
    """MiniWild clips as model inputs; item ``i`` of a split is always the same clip.

    Args:
        cfg: generator settings.
        length: number of clips.
        seed_offset: first seed of the split (train seeds ``seed_offset + i``, val seeds
            ``10**9 + seed_offset + i``, so train and val never share a clip).
        split: ``"train"`` or ``"val"``.
    """

    def __init__(self, cfg: MiniWildConfig | None = None, length: int = 10_000,
                 seed_offset: int = 0, split: str = "train") -> None:
        self.cfg = cfg or MiniWildConfig()
        self.seeds = split_seeds(length, split, seed_offset)

    def __len__(self) -> int:
        return len(self.seeds)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        """``{"video": (T, 3, H, W) float32 in [0, 1]}``."""
        return {"video": frames_to_tensor(generate_clip(self.seeds[i], self.cfg).frames)}


class MixtureDataset(torch.utils.data.Dataset):
    """MiniWild clips of several scenes mixed by weight; item ``i`` of a split is always the same
    clip: its scene is drawn by a generator seeded with the item's seed, then the clip is
    ``generate_clip(seed, replace(cfg, scene=scene))``.

    Args:
        cfg: generator settings (its ``scene`` is replaced by each item's).
        weights: scene → weight, e.g. ``{"pan": 2, "movers": 1, "wild": 1}``.
        length: number of clips.
        split: ``"train"`` or ``"val"`` (seeds from :func:`split_seeds`: never shared).
        seed_offset: first seed of the split, relative to its start.
    """

    def __init__(self, cfg: MiniWildConfig | None, weights: Mapping[str, float],
                 length: int = 10_000, split: str = "train", seed_offset: int = 0) -> None:
        self.cfg = cfg or MiniWildConfig()
        self.probabilities = mixture_weights(weights)
        self.seeds = split_seeds(length, split, seed_offset)
        self._configs = {name: replace(self.cfg, scene=name) for name in self.probabilities}

    def __len__(self) -> int:
        return len(self.seeds)

    def scene(self, i: int) -> str:
        """The scene of item ``i``."""
        return choose_scene(self.seeds[i], self.probabilities)

    def clip(self, i: int) -> Clip:
        """Item ``i`` as a clip (with its ground truth in ``meta``)."""
        return generate_clip(self.seeds[i], self._configs[self.scene(i)])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        """``{"video": (T, 3, H, W) float32 in [0, 1]}``."""
        return {"video": frames_to_tensor(self.clip(i).frames)}
