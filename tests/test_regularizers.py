"""Regularizers: each loss equals the paper's formula recomputed by hand (paper §3, App. A)."""

import math

import pytest
import torch

from lam_core.config import RegularizerConfig
from lam_core.models import DiscreteRegularizer, NoisyRegularizer, Regularizer, SparseRegularizer

D = 8


@pytest.fixture
def raw():
    return torch.randn(4, 5, D, generator=torch.Generator().manual_seed(0)) * 1.5


def test_sparse_loss_matches_formula(raw):
    cfg = RegularizerConfig(kind="sparse", latent_dim=D, lambda_l1=0.07)
    out = SparseRegularizer(cfg)(raw)
    z = raw.reshape(-1, D).double()
    n = z.shape[0]
    energy = [
        cfg.lambda_l2 * max(math.sqrt(D) - float((zi**2).sum()), 0.0)
        + cfg.lambda_l1 * float(zi.abs().sum())
        for zi in z
    ]
    var_term = sum(max(1 - math.sqrt(float(z[:, d].var()) + 1e-4), 0.0) for d in range(D)) / D
    mean = z.mean(0)
    cov = sum(torch.outer(zi - mean, zi - mean) for zi in z) / (n - 1)
    cov_term = sum(float(cov[i, j]) ** 2 for i in range(D) for j in range(D) if i != j) / (
        D * (D - 1)
    )
    mean_term = float(mean.abs().mean())
    expected = (
        cfg.lambda_v * var_term
        + cfg.lambda_c * cov_term
        + cfg.lambda_m * mean_term
        + sum(energy) / n
    )
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)
    assert torch.equal(out.latents, raw)


def test_sparse_energy_hinge_and_l1():
    reg = SparseRegularizer(RegularizerConfig(kind="sparse", latent_dim=4, lambda_l1=0.5))
    z = torch.tensor([[0.0, 0.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]])
    # sqrt(4) = 2: hinge 2 - ||z||^2
    assert reg.energy(z).tolist() == pytest.approx([2.0, 0.0 + 1.0, 1.5 + 0.5])


def test_sgld_samples_the_energy_distribution():
    # With λ_l2 = 0, exp(-E) is a Laplace of scale 1/λ_l1 per dimension: E|z_d| = 1/λ_l1.
    cfg = RegularizerConfig(kind="sparse", latent_dim=4, lambda_l1=2.0, lambda_l2=0.0)
    reg = SparseRegularizer(cfg)
    samples = reg.sample(4000, generator=torch.Generator().manual_seed(0), steps=1500, alpha=0.01)
    assert samples.shape == (4000, 4)
    assert samples.abs().mean().item() == pytest.approx(0.5, rel=0.1)
    assert samples.mean().abs().item() < 0.05


def test_noisy_kl_matches_formula_and_is_zero_at_prior():
    cfg = RegularizerConfig(kind="noisy", latent_dim=D, beta=0.01)
    reg = NoisyRegularizer(cfg).eval()
    assert reg.raw_dim == 2 * D
    raw = torch.randn(3, 2 * D, generator=torch.Generator().manual_seed(0))
    out = reg(raw)
    mu, logvar = raw[:, :D].double(), raw[:, D:].double()
    kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(-1).mean()
    assert out.loss.item() == pytest.approx(cfg.beta * float(kl), rel=1e-5)
    assert torch.equal(out.latents, raw[:, :D])  # the mean at inference
    prior = reg(torch.zeros(3, 2 * D))  # mu = 0, log sigma^2 = 0
    assert prior.loss.item() == 0.0


def test_noisy_samples_in_training():
    reg = NoisyRegularizer(RegularizerConfig(kind="noisy", latent_dim=D)).train()
    raw = torch.zeros(2000, 2 * D)
    z = reg(raw).latents
    assert abs(z.std().item() - 1.0) < 0.05 and abs(z.mean().item()) < 0.05


def test_vq_indices_decode_to_quantised_vectors():
    torch.manual_seed(0)
    reg = DiscreteRegularizer(
        RegularizerConfig(kind="discrete", latent_dim=D, codebook_size=16)
    ).eval()
    raw = torch.randn(10, D)
    out = reg(raw)
    idx = out.stats["indices"]
    torch.testing.assert_close(out.latents, reg.decode_indices(idx))
    d = torch.cdist(raw, reg.codebook)
    assert torch.equal(idx, d.argmin(1))
    q = reg.codebook[idx]
    expected = ((q - raw) ** 2).mean() * (1 + 0.25)
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_vq_straight_through_gradients_flow():
    torch.manual_seed(0)
    reg = DiscreteRegularizer(RegularizerConfig(kind="discrete", latent_dim=D, codebook_size=16))
    raw = torch.randn(10, D, requires_grad=True)
    out = reg(raw)
    (out.latents * torch.arange(D)).sum().backward()
    # straight through: d latents / d raw is the identity
    assert torch.equal(raw.grad, torch.arange(D, dtype=torch.float).expand(10, D))
    raw.grad = None
    reg(raw).loss.backward()  # codebook and commitment terms reach both sides
    assert reg.codebook.grad.abs().sum() > 0 and raw.grad.abs().sum() > 0


def test_vq_resets_unused_codes():
    torch.manual_seed(0)
    cfg = RegularizerConfig(kind="discrete", latent_dim=D, codebook_size=8, reset_every=40)
    reg = DiscreteRegularizer(cfg).train()
    with torch.no_grad():
        reg.codebook[3] = 100.0  # far from every input: never used
    raw = torch.randn(20, D)
    reg(raw)
    assert reg.usage[3] == 0 and reg.codebook[3, 0] == 100.0  # 20 seen < 40: no reset yet
    reg(raw)  # 40 seen: reset
    assert reg.codebook[3].abs().max() < 10  # moved onto a recent raw latent
    assert reg.usage.sum() == 0 and reg.seen == 0
    dist_to_raw = torch.cdist(reg.codebook[3:4], raw).min()
    assert dist_to_raw < 0.1


def test_discrete_samples_only_used_codes():
    torch.manual_seed(0)
    reg = DiscreteRegularizer(
        RegularizerConfig(kind="discrete", latent_dim=D, codebook_size=8, reset_every=10**9)
    ).train()
    with torch.no_grad():
        reg.codebook[5:] = 100.0
    reg(torch.randn(50, D))
    s = reg.sample(100, generator=torch.Generator().manual_seed(0))
    assert s.abs().max() < 100.0


def test_none_regularizer_is_identity(raw):
    out = Regularizer(RegularizerConfig(kind="none", latent_dim=D))(raw)
    assert torch.equal(out.latents, raw) and out.loss.item() == 0.0
