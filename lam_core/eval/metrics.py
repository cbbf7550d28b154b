"""Prediction metrics (paper §5, Tables 1, 2, S1–S3): feature-space L1, pixel L1 and PSNR through
the decoder, and LPIPS — the paper's reported number — only with the real backbone weights.

LPIPS needs its torchvision backbone (AlexNet by default). ``lpips.LPIPS`` downloads it when it is
missing, which fails offline, and ``pnet_rand=True`` gives a *random* backbone whose values mean
nothing. So LPIPS is computed only when the backbone file is already in
``$TORCH_HOME/hub/checkpoints/`` (:func:`torch.hub.get_dir`); otherwise every LPIPS value is None
and tables print :data:`LPIPS_UNAVAILABLE` (docs/DESIGN.md#platform-notes).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

LPIPS_WEIGHTS = {
    "alex": "alexnet-owt-7be5be79.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
    "vgg": "vgg16-397923af.pth",
}
LPIPS_UNAVAILABLE = "n/a (no LPIPS weights)"


def feature_l1(pred: torch.Tensor, true: torch.Tensor) -> np.ndarray:
    """Feature L1 per item and step: ``(B, S, N, D)`` × 2 → ``(B, S)`` (mean over tokens and
    channels; the world model's training loss)."""
    return (pred.float() - true.float()).abs().mean(dim=(2, 3)).cpu().numpy()


def pixel_l1(pred: torch.Tensor, true: torch.Tensor) -> np.ndarray:
    """Pixel L1 in [0, 1] units per item and frame: ``(B, T, 3, H, W)`` × 2 → ``(B, T)``."""
    return (pred.float() - true.float()).abs().mean(dim=(2, 3, 4)).cpu().numpy()


def psnr(pred: torch.Tensor, true: torch.Tensor) -> np.ndarray:
    """PSNR in dB (peak 1) per item and frame: ``(B, T, 3, H, W)`` × 2 → ``(B, T)``; a perfect
    frame is capped at 100 dB."""
    mse = (pred.float() - true.float()).pow(2).mean(dim=(2, 3, 4)).clamp_min(1e-10)
    return (10 * torch.log10(1.0 / mse)).cpu().numpy()


def lpips_weights_path(net: str = "alex") -> Path:
    """The LPIPS backbone file of ``net``, where torchvision looks (``$TORCH_HOME/hub/...``)."""
    if net not in LPIPS_WEIGHTS:
        raise ValueError(f"unknown LPIPS net {net!r}; expected one of {sorted(LPIPS_WEIGHTS)}")
    return Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_WEIGHTS[net]


def lpips_available(net: str = "alex") -> bool:
    """Whether the real LPIPS backbone of ``net`` is on disk (then LPIPS loads offline)."""
    return lpips_weights_path(net).is_file()


@functools.cache
def _lpips_model(net: str, path: str, device: str):
    """The LPIPS module for ``net`` with the backbone at ``path`` (cached per path and device)."""
    import lpips

    model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=False, verbose=False)
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval().to(device)


@torch.no_grad()
def lpips_distance(
    pred: torch.Tensor, true: torch.Tensor, net: str = "alex", batch_size: int = 64
) -> np.ndarray | None:
    """LPIPS per item and frame, ``(B, T, 3, H, W)`` × 2 in [0, 1] → ``(B, T)``, or None when the
    backbone weights are not on disk (never a value from a random backbone).

    Args:
        pred, true: frames in [0, 1].
        net: ``alex`` (the default of Zhang et al.), ``squeeze`` or ``vgg``.
        batch_size: frames per LPIPS call.
    """
    if not lpips_available(net):
        return None
    model = _lpips_model(net, str(lpips_weights_path(net)), str(pred.device))
    b, t = pred.shape[:2]
    x = pred.reshape(b * t, *pred.shape[2:]).float() * 2 - 1
    y = true.reshape(b * t, *true.shape[2:]).float().to(pred.device) * 2 - 1
    out = [
        model(x[i : i + batch_size], y[i : i + batch_size]).flatten()
        for i in range(0, len(x), batch_size)
    ]
    return torch.cat(out).reshape(b, t).cpu().numpy()


def pixel_metrics(pred: torch.Tensor, true: torch.Tensor) -> dict[str, np.ndarray | None]:
    """``{"pixel_l1", "psnr", "lpips"}`` per item and frame ``(B, T)``; ``lpips`` may be None."""
    return {
        "pixel_l1": pixel_l1(pred, true),
        "psnr": psnr(pred, true),
        "lpips": lpips_distance(pred, true),
    }


def mean_or_none(x: np.ndarray | None) -> float | None:
    """Mean of an array, None for None (a metric that could not be computed)."""
    return None if x is None else float(np.mean(x))


def fmt(value: float | None, digits: int = 3, missing: str = LPIPS_UNAVAILABLE) -> str:
    """A table cell: the number, or ``missing`` when it could not be computed."""
    if value is None:
        return missing
    if isinstance(value, float) and not np.isfinite(value):
        return "nan"
    return f"{round(value, digits) + 0.0:.{digits}f}"  # + 0.0: no "-0.00"


@torch.no_grad()
def rollout_pixel_metrics(
    pipeline, context: torch.Tensor, pred: torch.Tensor, frames: torch.Tensor
) -> dict[str, np.ndarray | None] | None:
    """Pixel metrics of a rollout through the decoder, per item and predicted step.

    Args:
        pipeline: a :class:`~lam_core.pipeline.LatentActionPipeline` (None is returned when it has
            no decoder).
        context: ``(B, C, N, D)`` real steps the rollout started from (decoded too: the decoder is
            frame causal, so the predicted frames see their real past).
        pred: ``(B, H, N, D)`` predicted steps.
        frames: ``(B, T, 3, S, S)`` the real pixels (``T ≥ (C + H) · tubelet``).

    Returns:
        ``{"pixel_l1", "psnr", "lpips"}`` arrays ``(B, H)`` (frames of a step averaged), or None.
    """
    if pipeline.decoder is None:
        return None
    tub, (b, c), h = pipeline.tubelet, context.shape[:2], pred.shape[1]
    decoded = pipeline.decode(torch.cat([context, pred], dim=1))
    lo, hi = c * tub, (c + h) * tub
    m = pixel_metrics(decoded[:, lo:hi], frames[:, lo:hi].to(decoded.device))
    return {k: None if v is None else v.reshape(b, h, tub).mean(-1) for k, v in m.items()}
