"""The VAE: KL, reparameterization, likelihoods and bits/dim against closed forms; previews; the CLI."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Normal, kl_divergence

import gantrain.cli
from gantrain.errors import ConfigError
from gantrain.families.vae import VAEFamily, gaussian_kl, reparameterize
from gantrain.models.vae import VAE

from conftest import QUICK, grouped

FAST = [*QUICK, "trainer.eval_every=0"]


def vae_family(**kw) -> VAEFamily:
    return VAEFamily("vae", VAE(1, 8, latent_dim=4, width=8), **kw)


def test_kl_term_equals_the_closed_form_for_diagonal_gaussians():
    mean, logvar = torch.randn(50, 6), torch.randn(50, 6)
    q, p = Normal(mean, (0.5 * logvar).exp()), Normal(torch.zeros(6), torch.ones(6))
    assert torch.allclose(gaussian_kl(mean, logvar), kl_divergence(q, p).sum(1), atol=1e-5)
    # and a Monte Carlo estimate of E_q[log q(z) − log p(z)] agrees
    mean, logvar = torch.tensor([[0.7, -1.2, 0.0]]), torch.tensor([[-0.5, 0.3, -2.0]])
    z = reparameterize(mean.expand(400_000, 3), logvar.expand(400_000, 3))
    q = Normal(mean, (0.5 * logvar).exp())
    mc = (q.log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(1).mean()
    assert mc.item() == pytest.approx(gaussian_kl(mean, logvar).item(), abs=0.02)
    assert torch.equal(gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2))


def test_reparameterized_sample_has_the_posterior_moments_and_gradients():
    mean = torch.tensor([1.5, -0.5, 0.0], requires_grad=True)
    logvar = torch.tensor([0.0, math.log(0.25), math.log(4.0)], requires_grad=True)
    z = reparameterize(mean.expand(200_000, 3), logvar.expand(200_000, 3))
    n = len(z)
    std = torch.tensor([1.0, 0.5, 2.0])
    assert torch.allclose(z.mean(0), mean.detach(), atol=5 * (std / math.sqrt(n)).max().item())
    assert torch.allclose(z.std(0), std, rtol=5 * math.sqrt(1 / (2 * n)))
    # dz/dμ = 1 and dz/d(log σ²) = ½ σ ε: the sample is differentiable in both
    z.sum().backward()
    assert torch.allclose(mean.grad, torch.full((3,), float(n)))
    eps = (z.detach() - mean.detach()) / std
    assert torch.allclose(logvar.grad, (0.5 * std * eps).sum(0), rtol=1e-4, atol=1e-2)


def test_likelihoods_and_bits_per_dim_match_their_densities():
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    params = torch.randn(4, 1, 8, 8)
    gaussian = vae_family(likelihood="gaussian", sigma=0.3)
    expected = -Normal(params, 0.3).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(gaussian.negative_log_likelihood(params, x), expected, atol=1e-3)
    # bits/dim on the 0…255 scale: the same Gaussian, stretched by 127.5, evaluated there
    y, mean_y = (x + 1) * 127.5, (params + 1) * 127.5
    bits = -Normal(mean_y, 0.3 * 127.5).log_prob(y).flatten(1).sum(1) / (64 * math.log(2))
    assert torch.allclose(gaussian.bits_per_dim(expected, 64), bits, rtol=1e-5)
    binary = (torch.rand(4, 1, 8, 8) > 0.5).float() * 2 - 1  # {−1, 1} ↔ {0, 1}
    bernoulli = vae_family(likelihood="bernoulli")
    expected = -Bernoulli(logits=params).log_prob((binary + 1) / 2).flatten(1).sum(1)
    assert torch.allclose(bernoulli.negative_log_likelihood(params, binary), expected, atol=1e-4)
    assert torch.allclose(bernoulli.bits_per_dim(expected, 64), expected / (64 * math.log(2)))
    assert torch.allclose(bernoulli.mean_image(params), 2 * torch.sigmoid(params) - 1)


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_loss_is_reconstruction_plus_beta_kl_and_logs_the_elbo(likelihood):
    fam = vae_family(likelihood=likelihood, beta=4.0)
    x = torch.rand(16, 1, 8, 8) * 2 - 1
    loss, logs = fam.loss("vae", {"image": x}, 0)
    assert loss.requires_grad
    assert loss.item() == pytest.approx((logs["elbo/reconstruction"] + 4.0 * logs["elbo/kl"]).item(), rel=1e-5)
    nelbo = logs["elbo/reconstruction"] + logs["elbo/kl"]
    assert logs["elbo/bits_per_dim"].item() == pytest.approx(fam.bits_per_dim(nelbo, 64).item(), rel=1e-5)
    assert logs["elbo/kl"] >= 0


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_loss_decodes_a_reparameterized_sample_not_the_posterior_mean(likelihood):
    """The loss recomputed by hand from the same ε: z = μ + σ ε, −log p(x|z) + β KL (Kingma & Welling §2.4)."""
    fam = vae_family(likelihood=likelihood, beta=4.0, sigma=0.3)
    vae = fam.networks["vae"]
    x = torch.rand(16, 1, 8, 8) * 2 - 1
    torch.manual_seed(5)
    loss, logs = fam.loss("vae", {"image": x}, 0)
    torch.manual_seed(5)
    with torch.no_grad():
        mean, logvar = vae.encoder(x)
        z = mean + (0.5 * logvar).exp() * torch.randn(mean.shape)
        out = vae.decoder(z)
        if likelihood == "gaussian":
            nll = (0.5 * ((x - out) / 0.3) ** 2 + math.log(0.3 * math.sqrt(2 * math.pi))).sum((1, 2, 3))
        else:  # −[y log s + (1 − y) log(1 − s)], s = sigmoid(out), y = (x + 1)/2
            y = (x + 1) / 2
            nll = (F.softplus(out) - y * out).sum((1, 2, 3))
        kl = 0.5 * (mean**2 + logvar.exp() - 1 - logvar).sum(1)
        at_mean = fam.negative_log_likelihood(vae.decoder(mean), x).mean()
    assert logs["elbo/reconstruction"].item() == pytest.approx(nll.mean().item(), rel=1e-5)
    assert logs["elbo/kl"].item() == pytest.approx(kl.mean().item(), rel=1e-5)
    assert loss.item() == pytest.approx((nll + 4.0 * kl).mean().item(), rel=1e-5)
    assert logs["elbo/reconstruction"].item() != pytest.approx(at_mean.item(), rel=1e-3)  # the sample is not μ


def test_samples_and_reconstruction_previews():
    fam = vae_family(likelihood="bernoulli").eval()
    inputs = fam.fixed_inputs(6, torch.Generator().manual_seed(0))
    samples = fam.generate(inputs)
    assert samples.shape == (6, 1, 8, 8) and samples.abs().max() <= 1
    real = torch.rand(5, 1, 8, 8) * 2 - 1
    with torch.no_grad():
        side = fam.previews(fam.networks["vae"], inputs, {"image": real})["reconstructions"]
        mean, _ = fam.networks["vae"].encoder(real)
        recon = fam.mean_image(fam.networks["vae"].decoder(mean))
    pairs = grouped(side)  # sample × (input, output), pairs set apart by a wider gap
    assert pairs.shape == (5, 2, 1, 8, 8) and list(side.column_labels[:2]) == ["input", "output"] and side.breaks[0] == 2
    assert torch.equal(pairs[:, 0], real) and torch.allclose(pairs[:, 1], recon)


def test_bad_settings_are_refused():
    for kw, match in [
        ({"likelihood": "laplace"}, "likelihood"),
        ({"beta": -1.0}, "beta"),
        ({"likelihood": "gaussian", "sigma": 0.0}, "sigma"),
    ]:
        with pytest.raises(ValueError, match=match):
            vae_family(**kw)
    with pytest.raises(ValueError, match="2\\^k"):
        VAE(1, 12)


def _files(run):
    return {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_cli_trains_the_vae_and_writes_samples_reconstructions_and_a_checkpoint(compose, tmp_path, likelihood):
    logs = gantrain.cli.train(compose(["model=vae", *FAST, f"model.likelihood={likelihood}"]), tmp_path / "run")
    files = _files(tmp_path / "run")
    assert {"samples/step_0000002.png", "samples/reconstructions_step_0000002.png", "checkpoints/last.pt"} <= files
    assert all(math.isfinite(logs[k]) for k in ("loss/vae", "elbo/reconstruction", "elbo/kl", "elbo/bits_per_dim"))


def test_cli_refuses_the_vae_on_points(compose, tmp_path):
    with pytest.raises(ConfigError, match="model=vae with dataset=ring8.*points"):
        gantrain.cli.train(compose(["model=vae", "dataset=ring8", *FAST]), tmp_path / "run")


@pytest.mark.slow
def test_gantrain_command_runs_the_vae(tmp_path):
    """The command, end to end, in its own process (slow: starting Python and torch takes seconds)."""
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "gantrain.cli", "model=vae", *FAST, f"hydra.run.dir={run}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert {"samples/step_0000002.png", "checkpoints/last.pt", ".hydra/config.yaml"} <= _files(run)


@pytest.mark.slow
def test_vae_training_raises_the_elbo(compose, tmp_path):
    """400 steps on digits lower −ELBO (bits/dim) by more than 30 % from the first step's."""

    def run(steps):
        return gantrain.cli.train(
            compose(
                [
                    "model=vae",
                    f"trainer.steps={steps}",
                    f"trainer.log_every={steps}",
                    "trainer.sample_every=400",
                    "trainer.checkpoint_every=400",
                    "trainer.eval_every=0",
                    "trainer.num_samples=16",
                ]
            ),
            tmp_path / str(steps),
        )

    first, last = run(1), run(400)
    assert last["elbo/bits_per_dim"] < 0.7 * first["elbo/bits_per_dim"]
