"""What the latent actions carry, read by a linear probe (a diagnostic beyond the paper).

A latent action is useful for objects only if it holds the object's motion. The probe asks it
directly: MiniWild clips with known motion (a camera panning over a photo; one mover on a still
background) are encoded, every transition's latent is paired with the true velocity, and a ridge
regression fitted on half of the clips predicts the velocity of the other half. ``R²`` near 1: the
latent holds that motion linearly; near 0: it does not (or only in a form the world model alone
can read). For the mover the target is its velocity together with its position (a latent that
says "something moved right" without where cannot move the right object). With a grid of latents
(``LAMConfig.latent_grid``) the probe reads what a consumer would: the camera from the mean of the
cells, the mover from the cell it starts the step in (one cell's ``regularizer.latent_dim``
values, so the probe is not a regression over every cell with few samples).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lam_core.eval.common import Progress, no_progress


@dataclass
class ProbeResult:
    """``r2``: held-out R² per target (``camera_velocity``, ``mover_velocity``,
    ``mover_position``); ``samples``: transitions per target (train + test)."""

    r2: dict[str, float]
    samples: dict[str, int]


def ridge_r2(x: np.ndarray, y: np.ndarray, groups: np.ndarray, alpha: float = 1.0) -> float:
    """Held-out R² of a ridge regression ``y ≈ [x, 1] W``: fitted on the even ``groups`` (clips),
    scored on the odd ones, pooled over the target's columns.

    Args:
        x: ``(n, d)`` inputs; y: ``(n, k)`` targets; groups: ``(n,)`` clip index of each row.
        alpha: ridge strength (on standardised inputs).
    """
    train, test = groups % 2 == 0, groups % 2 == 1
    mean, std = x[train].mean(0), x[train].std(0) + 1e-6
    xs = np.concatenate([(x - mean) / std, np.ones((len(x), 1))], axis=1)
    a = xs[train]
    reg = alpha * np.eye(a.shape[1])
    reg[-1, -1] = 0.0  # the intercept is not shrunk
    w = np.linalg.solve(a.T @ a + reg, a.T @ y[train])
    residual = ((xs[test] @ w - y[test]) ** 2).sum()
    total = ((y[test] - y[train].mean(0)) ** 2).sum()
    return float(1.0 - residual / max(total, 1e-12))


def _clips(scene: str, n: int, size: int, fps: float, seed: int):
    from lam_core.data.miniwild import MiniWildConfig, generate_clip, split_seeds

    cfg = MiniWildConfig(scene=scene, num_frames=8, size=size, fps=fps, min_movers=1,
                         max_movers=1, scene_noise_probability=0.0, pan_zoom_probability=0.0,
                         rotation_probability=0.0)
    return [generate_clip(s, cfg) for s in split_seeds(n, "val", 900_000 + 1000 * seed)]


@torch.no_grad()
def latent_probe(pipeline, n_clips: int = 96, seed: int = 0,
                 progress: Progress | None = None) -> ProbeResult:
    """Linear probes of the latents: camera velocity (``pan`` clips), mover velocity and
    position (``movers`` clips with one mover), held-out R² over half of the clips.

    Args:
        pipeline: a latent model.
        n_clips: clips per scene (half fit the probe, half score it).
        seed: selects the held-out clips.
        progress: ``progress(fraction, message)``.
    """
    report = progress or no_progress
    size, fps = pipeline.image_size, pipeline.fps
    grid = pipeline.lam.cfg.latent_grid
    rows: dict[str, tuple[list, list, list]] = {}
    for k, scene in enumerate(("pan", "movers")):
        for i, clip in enumerate(_clips(scene, n_clips, size, fps, seed)):
            z = pipeline.infer_latents(clip)[0].float().cpu().numpy()  # (T-1, D_z)
            z = z.reshape(len(z), grid * grid, -1)  # (T-1, cells, d)
            if scene == "pan":
                z = z.mean(axis=1)
                targets = {"camera_velocity": -clip.meta["camera"]["velocity"]}
            else:
                agent = clip.meta["agents"][0]
                cell = np.clip((agent["position"][:-1] * grid / size).astype(int), 0, grid - 1)
                z = z[np.arange(len(z)), cell[: len(z), 1] * grid + cell[: len(z), 0]]
                targets = {"mover_velocity": agent["velocity"],
                           "mover_position": agent["position"][:-1]}
            for name, y in targets.items():
                xs, ys, gs = rows.setdefault(name, ([], [], []))
                xs.append(z[: len(y)])
                ys.append(np.asarray(y, np.float64)[: len(z)])
                gs.append(np.full(min(len(y), len(z)), i))
            report((k * n_clips + i + 1) / (2 * n_clips), f"latent probe: {scene} {i + 1}")
    r2, samples = {}, {}
    for name, (xs, ys, gs) in rows.items():
        x, y, g = np.concatenate(xs), np.concatenate(ys), np.concatenate(gs)
        r2[name], samples[name] = ridge_r2(x, y, g), len(x)
    return ProbeResult(r2, samples)


def optimised_latents(pipeline, n_clips: int = 8, iters: int = 60, lr: float = 0.05,
                      seed: int = 0, progress: Progress | None = None) -> dict[str, float]:
    """Can the world model move an object at all? Latents optimised against the true frames.

    On single objects moving at random over plain, gradient and noise backgrounds
    (:func:`lam_core.eval.objects.object_clips`), the latents of every transition are optimised
    (Adam, the world model frozen, teacher-forced L1 against the true next steps, from the IDM's
    latents), then the clip is rolled out from its first frame with them and the object tracked.
    A high ``optimised_path_ratio`` with a low ``idm_path_ratio``: the world model can move the
    object and the IDM does not ask it to; both low: the world model cannot.

    Returns:
        ``idm_path_ratio``, ``optimised_path_ratio``, ``idm_epe_px``, ``optimised_epe_px``
        (medians), ``idm_norm``, ``optimised_norm`` (mean latent norms).
    """
    from lam_core.eval.objects import object_clips, path_metrics, track

    report = progress or no_progress
    lam = pipeline.lam
    clips = object_clips(n_clips, seed, "random", size=pipeline.image_size, fps=pipeline.fps)
    out: dict[str, list] = {}
    frozen = [p.requires_grad for p in lam.parameters()]
    lam.requires_grad_(False)
    try:
        for i, clip in enumerate(clips):
            feats = pipeline.encode(clip)
            z_idm = pipeline.infer_latents(feats)
            z = z_idm.clone().requires_grad_(True)
            opt = torch.optim.Adam([z], lr=lr)
            with torch.enable_grad():
                for _ in range(iters):
                    pred = lam.world_model(feats[:, :-1], z)
                    loss = (pred - feats[:, 1:]).abs().mean()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            true, obj = clip.meta["positions"][0], clip.meta["objects"][0]
            for name, latents in (("idm", z_idm), ("optimised", z.detach())):
                frames = pipeline.to_clip(pipeline.decode(torch.cat(
                    [feats[:, :1], pipeline.rollout(feats[:, :1], latents)], dim=1))).frames
                m = path_metrics(track(frames[: len(true)], true[0], obj["radius"], shape=obj),
                                 true)
                out.setdefault(f"{name}_path_ratio", []).append(m["path_ratio"])
                out.setdefault(f"{name}_epe_px", []).append(m["epe_px"])
                out.setdefault(f"{name}_norm", []).append(float(latents.norm(dim=-1).mean()))
            report((i + 1) / len(clips), f"latent optimisation: clip {i + 1}/{len(clips)}")
    finally:
        for p, g in zip(lam.parameters(), frozen):
            p.requires_grad_(g)
    return {k: float(np.mean(v) if k.endswith("norm") else np.median(v)) for k, v in out.items()}
