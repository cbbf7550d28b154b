"""Sampled vs inferred latent actions (paper App. B, Fig. S1).

``n`` latents are drawn without a video with :meth:`LatentActionPipeline.sample_latents` (noisy:
the prior N(0, 1); sparse: SGLD on the energy E, eq. 4; discrete: the used codes; none: N(0, 1))
and ``n`` are inferred by the IDM on held-out clips. The paper shows a joint UMAP and judges the
overlap by eye; we return the UMAP as plain data for a Plotly ``Scattergl`` and add a number the
paper does not have: the held-out accuracy of a k-nearest-neighbour classifier told to separate
the two samples (a classifier two-sample test; Lopez-Paz & Oquab, 2017). 0.5 means the sampler
is indistinguishable from the IDM's latents; 1.0 means perfectly separable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lam_core.clip import Clip
from lam_core.eval.common import Progress, batched, clips_to_tensor, heldout_clips, no_progress
from lam_core.pipeline import LatentActionPipeline


@dataclass
class SamplingResult:
    """Fig. S1 for one pipeline.

    Attributes:
        n: latents per sample (sampled and inferred alike).
        accuracy: k-NN two-sample held-out accuracy (0.5 = indistinguishable).
        neighbors: k.
        embedding: ``{"x", "y", "kind", "clip", "step"}`` lists of ``2n`` points (``kind`` is
            ``"sampled"`` or ``"inferred"``; ``clip``/``step`` are -1 for sampled latents), or None
            when UMAP was skipped.
        sampled_norm, inferred_norm: mean L2 norms of the two samples (a quick look at scale).
    """

    n: int
    accuracy: float
    neighbors: int
    embedding: dict[str, list] | None
    sampled_norm: float
    inferred_norm: float


def two_sample_accuracy(
    a: np.ndarray,
    b: np.ndarray,
    neighbors: int = 5,
    test_fraction: float = 0.3,
    seed: int = 0,
    repeats: int = 5,
) -> float:
    """Held-out accuracy of a k-NN classifier separating sample ``a`` from sample ``b``.

    The two samples are cut to the same size (so chance is 0.5), split into a stratified train
    and test part, and a ``neighbors``-NN classifier (Euclidean) is fitted on the train part; the
    accuracy is averaged over ``repeats`` seeded splits. A seeded jitter of 10⁻⁶ × the data's
    spread breaks exact ties: discrete latents repeat the same codes, and ties would otherwise be
    resolved by index order (giving accuracies far below chance for identical samples).

    Args:
        a, b: ``(n, d)`` and ``(m, d)`` samples.
        neighbors: k.
        test_fraction: share of points held out.
        seed: seeds the subsampling, the jitter and the splits.
        repeats: splits averaged.
    """
    from sklearn.model_selection import train_test_split
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(seed)
    n = min(len(a), len(b))
    a = np.asarray(a, np.float64)[rng.permutation(len(a))[:n]]
    b = np.asarray(b, np.float64)[rng.permutation(len(b))[:n]]
    x = np.concatenate([a, b])
    x = x + rng.normal(size=x.shape) * 1e-6 * max(float(x.std()), 1e-12)
    y = np.r_[np.zeros(n), np.ones(n)]
    accs = []
    for r in range(repeats):
        x_tr, x_te, y_tr, y_te = train_test_split(
            x, y, test_size=test_fraction, stratify=y, random_state=seed + r
        )
        clf = KNeighborsClassifier(n_neighbors=min(neighbors, len(x_tr))).fit(x_tr, y_tr)
        accs.append(float((clf.predict(x_te) == y_te).mean()))
    return float(np.mean(accs))


def joint_umap(
    points: np.ndarray, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1
) -> np.ndarray:
    """2-D UMAP of ``(n, d)`` points → ``(n, 2)`` (seeded, hence single-threaded and
    reproducible; the first fit in a process pays 15–37 s of numba JIT)."""
    import umap

    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=min(n_neighbors, len(points) - 1),
        min_dist=min_dist,
        random_state=seed,
        n_jobs=1,
    )
    return reducer.fit_transform(np.asarray(points, np.float32))


@torch.no_grad()
def inferred_latents(
    pipeline: LatentActionPipeline, clips: Sequence[Clip], batch_size: int = 8
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IDM latents of every transition of ``clips``: ``(M, D_z)``, clip index ``(M,)``, step
    ``(M,)``."""
    video = clips_to_tensor(pipeline, clips)
    out = []
    for sl in batched(len(video), batch_size):
        out.append(pipeline.infer_latents(video[sl]).cpu())
    z = torch.cat(out)  # B, T'-1, D_z
    b, t = z.shape[:2]
    clip_idx = np.repeat(np.arange(b), t)
    step = np.tile(np.arange(t), b)
    return z.reshape(b * t, -1).numpy(), clip_idx, step


@torch.no_grad()
def sampling(
    pipeline: LatentActionPipeline,
    clips: Sequence[Clip] | None = None,
    *,
    n: int = 512,
    seed: int = 0,
    umap: bool = True,
    neighbors: int = 5,
    progress: Progress | None = None,
) -> SamplingResult:
    """Sampled vs inferred latents: the two-sample accuracy and (optionally) a joint UMAP.

    Args:
        pipeline: kind ``"latent"``.
        clips: held-out clips for the IDM (default: enough MiniWild validation clips for ``n``
            transitions).
        n: latents per sample (fewer if the clips have fewer transitions).
        seed: seeds the sampler, the subsampling, the classifier split and UMAP.
        umap: compute the joint UMAP (slow the first time in a process).
        neighbors: k of the k-NN classifier.
        progress: ``progress(fraction, message)``.
    """
    report = progress or no_progress
    if clips is None:
        per_clip = 16 // pipeline.tubelet - 1  # transitions of a 16-frame MiniWild clip
        clips = heldout_clips(-(-n // per_clip), seed_offset=seed)
    report(0.0, "inferring latents")
    z_inf, clip_idx, step = inferred_latents(pipeline, clips)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.permutation(len(z_inf))[:n])
    z_inf, clip_idx, step = z_inf[pick], clip_idx[pick], step[pick]
    n = len(z_inf)
    report(0.3, "sampling latents")
    z_smp = pipeline.sample_latents(n, seed=seed).cpu().numpy()
    acc = two_sample_accuracy(z_smp, z_inf, neighbors=neighbors, seed=seed)
    embedding = None
    if umap:
        report(0.5, "UMAP")
        xy = joint_umap(np.concatenate([z_smp, z_inf]), seed=seed)
        embedding = {
            "x": xy[:, 0].tolist(),
            "y": xy[:, 1].tolist(),
            "kind": ["sampled"] * n + ["inferred"] * n,
            "clip": [-1] * n + clip_idx.tolist(),
            "step": [-1] * n + step.tolist(),
        }
    report(1.0, "done")
    return SamplingResult(
        n=n,
        accuracy=acc,
        neighbors=neighbors,
        embedding=embedding,
        sampled_norm=float(np.linalg.norm(z_smp, axis=1).mean()),
        inferred_norm=float(np.linalg.norm(z_inf, axis=1).mean()),
    )
