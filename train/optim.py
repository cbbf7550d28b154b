"""Optimisers of the training scripts (paper §4, App. A): ``torch.optim.Muon`` for the 2-D weights
of hidden layers and ``torch.optim.AdamW`` for everything else, linear warm-up over
``warmup_fraction`` of the steps then cosine annealing to zero; and the choice of mixed precision
for this machine.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from lam_core.pipeline import cpu_has_native_bf16
from train.config import RunConfig

# Layers that touch the outside world (inputs, outputs, codebooks) go to AdamW: Muon is meant for
# hidden weight matrices (Jordan et al., 2024). Matched on the last part of a parameter's module
# name: tokens in (embed, proj_in, frame_proj, a component's top-level proj), the first layer of an
# input MLP (cond_embed.0, action_embed.0) and heads (head, out).
INPUT_LAYERS = {"embed", "proj_in", "frame_proj"}
OUTPUT_LAYERS = {"head", "out"}
ATTENTION_PARENTS = {"attn", "cross"}
INPUT_MLPS = {"cond_embed", "action_embed"}


def resolve_mixed_precision(mode: str) -> str:
    """``"auto"`` → ``"bf16"`` on CUDA or CPUs with native bf16, else ``"no"``."""
    if mode != "auto":
        return mode
    return "bf16" if torch.cuda.is_available() or cpu_has_native_bf16() else "no"


def is_hidden_matrix(module_name: str, module: nn.Module, param: torch.Tensor) -> bool:
    """Whether a parameter is a 2-D weight of a hidden ``nn.Linear`` (a Muon parameter)."""
    if param.ndim != 2 or not isinstance(module, nn.Linear) or param is not module.weight:
        return False
    parts = module_name.split(".")
    last, parent = parts[-1], (parts[-2] if len(parts) > 1 else "")
    if last in INPUT_LAYERS or last in OUTPUT_LAYERS:
        return False
    if last == "proj" and parent not in ATTENTION_PARENTS:  # idm.proj, decoder.proj
        return False
    return not (parent in INPUT_MLPS and last == "0")


def split_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``(muon, adamw)`` trainable parameters of ``model`` (see :func:`is_hidden_matrix`)."""
    muon, adamw, seen = [], [], set()
    for mname, module in model.named_modules():
        for _, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            (muon if is_hidden_matrix(mname, module, p) else adamw).append(p)
    return muon, adamw


def _newton_schulz_fp32(grad: torch.Tensor, ns_coefficients: tuple[float, float, float],
                        ns_steps: int, eps: float) -> torch.Tensor:
    """torch's quintic Newton–Schulz orthogonalisation, in fp32 instead of bf16."""
    a, b, c = ns_coefficients
    x = grad.float()
    tall = x.size(0) > x.size(1)
    x = x.T if tall else x
    x = x / x.norm().clamp(min=eps)
    for _ in range(ns_steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if tall else x


class Muon(torch.optim.Muon):
    """``torch.optim.Muon``; on CPUs without native bf16 its Newton–Schulz step runs in fp32.

    torch runs the iteration in bf16, which such CPUs emulate: measured here (2 cores, no AVX-512
    BF16) fp32 is 3–4× faster on 192-wide matrices, and the maths is the same, more precise.
    """

    def step(self, closure=None):
        if any(p.device.type == "cuda" for g in self.param_groups for p in g["params"]) or \
                cpu_has_native_bf16():
            return super().step(closure)
        import torch.optim._muon as muon_impl

        original = muon_impl._zeropower_via_newtonschulz
        muon_impl._zeropower_via_newtonschulz = _newton_schulz_fp32
        try:
            return super().step(closure)
        finally:
            muon_impl._zeropower_via_newtonschulz = original


def build_optimizers(model: nn.Module, run: RunConfig) -> list[torch.optim.Optimizer]:
    """Muon (hidden matrices) + AdamW (the rest), or AdamW alone when ``run.use_muon`` is off."""
    muon, adamw = split_parameters(model) if run.use_muon else ([], [
        p for p in model.parameters() if p.requires_grad])
    opts: list[torch.optim.Optimizer] = []
    if muon:
        opts.append(Muon(muon, lr=run.lr_muon, weight_decay=run.weight_decay))
    if adamw:
        opts.append(torch.optim.AdamW(adamw, lr=run.lr_adamw, weight_decay=run.weight_decay,
                                      betas=tuple(run.adamw_betas)))
    if not opts:
        raise ValueError("the model has no trainable parameters")
    return opts


def warmup_cosine(steps: int, warmup_fraction: float) -> Callable[[int], float]:
    """LR factor after ``s`` scheduler steps: linear warm-up to 1, then cosine to 0."""
    warmup = max(1, round(warmup_fraction * steps)) if warmup_fraction > 0 else 0

    def factor(s: int) -> float:
        if s < warmup:
            return (s + 1) / warmup
        progress = (s - warmup) / max(1, steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


