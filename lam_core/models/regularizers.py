"""Latent action regularizers (paper §3; coefficients App. A; sampling App. B).

One class per mechanism, one interface: ``forward(raw) -> RegularizerOutput(latents, loss, stats)``
with ``raw`` of shape ``(..., raw_dim)`` from the IDM and ``latents`` of shape ``(..., D_z)``.
Each also knows how to ``sample(n)`` latents without a video (App. B).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from lam_core.config import RegularizerConfig


@dataclass
class RegularizerOutput:
    """``latents``: ``(..., D_z)``; ``loss``: scalar; ``stats``: detached scalars for logging."""

    latents: torch.Tensor
    loss: torch.Tensor
    stats: dict[str, torch.Tensor] = field(default_factory=dict)


class Regularizer(nn.Module):
    """Base class: the identity with no loss (the unconstrained ``"none"`` end)."""

    def __init__(self, cfg: RegularizerConfig):
        super().__init__()
        self.cfg = cfg

    @property
    def raw_dim(self) -> int:
        """Width the IDM must output."""
        return self.cfg.latent_dim

    def forward(self, raw: torch.Tensor) -> RegularizerOutput:
        return RegularizerOutput(
            raw, raw.new_zeros(()), {"latent_norm": raw.detach().norm(dim=-1).mean()}
        )

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` latents ``(n, D_z)`` without a video. Unconstrained latents have no prior:
        a standard normal is returned, and the sampling evaluation shows how far that is."""
        return torch.randn(n, self.cfg.latent_dim, generator=generator)


class SparseRegularizer(Regularizer):
    """Sparse latents: ``L(Z) = VCM(Z) + mean_i E(z_i)`` (paper §3).

    ``E(z) = λ_l2 · max(√D − ‖z‖², 0) + λ_l1 · ‖z‖₁`` and
    ``VCM(Z) = λ_V · mean_d max(1 − √Var(Z_:,d), 0) + λ_C · Σ_{i≠j} Cov(Z)_ij² / (D(D−1))
    + λ_M · mean_d |mean_i Z_i,d|``.

    The printed mean term is a plain sum of Z, which is unbounded below; we penalise each
    dimension's batch mean towards zero (its absolute value) instead, which is what the term is for.
    """

    def energy(self, z: torch.Tensor) -> torch.Tensor:
        """E(z) per latent: ``(..., D)`` → ``(...)``."""
        c = self.cfg
        d = z.shape[-1]
        return c.lambda_l2 * F.relu(math.sqrt(d) - z.pow(2).sum(-1)) + c.lambda_l1 * z.abs().sum(-1)

    def vcm(self, z: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """VCM of a batch ``(M, D)`` of latents."""
        c = self.cfg
        m, d = z.shape
        zc = z - z.mean(0)
        std = torch.sqrt(z.var(0) + 1e-4)
        var_term = F.relu(1.0 - std).mean()
        cov = zc.T @ zc / max(m - 1, 1)
        off = cov - torch.diag(torch.diagonal(cov))
        cov_term = off.pow(2).sum() / (d * (d - 1))
        mean_term = z.mean(0).abs().mean()
        loss = c.lambda_v * var_term + c.lambda_c * cov_term + c.lambda_m * mean_term
        return loss, {
            "vcm_var": var_term.detach(),
            "vcm_cov": cov_term.detach(),
            "vcm_mean": mean_term.detach(),
        }

    def forward(self, raw: torch.Tensor) -> RegularizerOutput:
        z = raw.reshape(-1, raw.shape[-1])
        energy = self.energy(z).mean()
        vcm, stats = self.vcm(z)
        stats.update(energy=energy.detach(), latent_l1=z.detach().abs().sum(-1).mean())
        return RegularizerOutput(raw, vcm + energy, stats)

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        steps: int = 200,
        alpha: float = 0.01,
    ) -> torch.Tensor:
        """SGLD on E (paper App. B, eq. 4): ``z ← z − α/2 ∇E(z) + ε``, ε ~ N(0, α), z₀ ~ N(0,1)."""
        z = torch.randn(n, self.cfg.latent_dim, generator=generator)
        for _ in range(steps):
            with torch.enable_grad():
                z = z.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(self.energy(z).sum(), z)
            noise = torch.randn(z.shape, generator=generator) * math.sqrt(alpha)
            z = z.detach() - 0.5 * alpha * grad + noise
        return z.detach()


class NoisyRegularizer(Regularizer):
    """VAE-style noisy latents: ``z = μ + σ·ε`` in training, ``μ`` at inference;
    loss ``β·KL(q‖N(0,1))``.

    (The paper prints ``−β D_KL`` as the objective to maximise; as a loss it is ``+β D_KL``.)
    """

    @property
    def raw_dim(self) -> int:
        return 2 * self.cfg.latent_dim

    @staticmethod
    def kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(N(μ, σ²) ‖ N(0, 1)) summed over the last dimension."""
        return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)

    def forward(self, raw: torch.Tensor) -> RegularizerOutput:
        mu, logvar = raw.chunk(2, dim=-1)
        logvar = (logvar + self.cfg.logvar_offset).clamp(-12.0, 8.0)
        per_dim = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)  # (..., D_z)
        kl = per_dim.sum(-1).mean()
        loss = kl
        if self.cfg.free_bits > 0:  # each dimension's first free_bits nats (batch mean) are free
            mean_kl = per_dim.reshape(-1, per_dim.shape[-1]).mean(0)
            loss = (mean_kl - self.cfg.free_bits).clamp(min=0).sum()
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        stats = {"kl": kl.detach(), "sigma": (0.5 * logvar).exp().detach().mean()}
        return RegularizerOutput(z, self.cfg.beta * loss, stats)


class DiscreteRegularizer(Regularizer):
    """Vector quantisation with a straight-through estimator, commitment loss and a reset of unused
    codes (UniVLA-style; paper App. A). The codebook reset is synchronised across processes."""

    def __init__(self, cfg: RegularizerConfig):
        super().__init__(cfg)
        self.codebook = nn.Parameter(torch.randn(cfg.codebook_size, cfg.latent_dim))
        self.register_buffer("usage", torch.zeros(cfg.codebook_size))  # since the last reset
        self.register_buffer("seen", torch.zeros((), dtype=torch.long))
        self.register_buffer("total_usage", torch.zeros(cfg.codebook_size))  # whole training

    def quantize(self, raw: torch.Tensor) -> torch.Tensor:
        """Indices of the nearest codes: ``(..., D)`` → ``(...)`` long."""
        flat = raw.reshape(-1, raw.shape[-1]).float()
        cb = self.codebook.float()
        dist2 = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ cb.T + cb.pow(2).sum(1)[None]
        return dist2.argmin(1).reshape(raw.shape[:-1])

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Codebook vectors of ``indices``: ``(...)`` → ``(..., D)``."""
        return self.codebook[indices]

    def forward(self, raw: torch.Tensor) -> RegularizerOutput:
        idx = self.quantize(raw)
        q = self.decode_indices(idx).to(raw.dtype)
        codebook_loss = F.mse_loss(q, raw.detach())
        commit_loss = F.mse_loss(raw, q.detach())
        z = raw + (q - raw).detach()  # straight through
        if self.training:
            self._track(idx, raw)
        counts = torch.bincount(idx.flatten(), minlength=self.cfg.codebook_size).float()
        p = counts / counts.sum()
        perplexity = torch.exp(-(p * torch.log(p + 1e-10)).sum())
        stats = {
            "perplexity": perplexity,
            "codes_used": (self.total_usage > 0).float().mean(),
            "indices": idx.detach(),
        }
        return RegularizerOutput(z, codebook_loss + self.cfg.commitment * commit_loss, stats)

    @torch.no_grad()
    def _track(self, idx: torch.Tensor, raw: torch.Tensor) -> None:
        counts = torch.bincount(idx.flatten(), minlength=self.cfg.codebook_size).float()
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(counts)
        self.usage += counts
        self.total_usage += counts
        self.seen += int(counts.sum().item())
        if self.seen >= self.cfg.reset_every:
            self.reset_unused_codes(raw)

    @torch.no_grad()
    def reset_unused_codes(self, raw: torch.Tensor) -> int:
        """Move every code unused since the last reset onto a random recent raw latent.

        Returns:
            the number of codes reset.
        """
        dead = (self.usage == 0).nonzero().flatten()
        if len(dead):
            flat = raw.detach().reshape(-1, raw.shape[-1]).to(self.codebook.dtype)
            pick = torch.randint(len(flat), (len(dead),), device=flat.device)
            new = flat[pick] + 1e-3 * torch.randn_like(flat[pick])
            if dist.is_available() and dist.is_initialized():
                dist.broadcast(new, src=0)
            self.codebook.data[dead] = new
        self.usage.zero_()
        self.seen.zero_()
        return len(dead)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Uniform over the codes used in training (all codes if usage was never recorded)."""
        used = (self.total_usage > 0).nonzero().flatten().cpu()
        if len(used) == 0:
            used = torch.arange(self.cfg.codebook_size)
        pick = used[torch.randint(len(used), (n,), generator=generator)]
        return self.codebook.detach().cpu()[pick]


REGULARIZERS: dict[str, type[Regularizer]] = {
    "sparse": SparseRegularizer,
    "noisy": NoisyRegularizer,
    "discrete": DiscreteRegularizer,
    "none": Regularizer,
}


def build_regularizer(cfg: RegularizerConfig) -> Regularizer:
    if cfg.kind not in REGULARIZERS:
        raise ValueError(
            f"unknown regularizer {cfg.kind!r}; expected one of {sorted(REGULARIZERS)}"
        )
    return REGULARIZERS[cfg.kind](cfg)
