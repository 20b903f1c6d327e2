"""The variational autoencoder (Kingma & Welling 2014), with the β weight of Higgins et al. (2017).

One update maximizes the evidence lower bound per image (Kingma & Welling Eq. 10):
ELBO(x) = E_q(z|x)[log p(x|z)] − KL(q(z|x) ‖ N(0, I)), the expectation estimated with one reparameterized
sample z = μ + σ ⊙ ε (§2.4), the KL in closed form (Appendix B). The loss is the batch mean of
−log p(x|z) + β·KL; β = 1 is the plain VAE.

Likelihoods: ``gaussian`` — p(x|z) = N(x; μ_θ(z), σ²I) with a fixed ``sigma`` on the data's [−1, 1] scale;
``bernoulli`` — pixels mapped to [0, 1] by (x + 1)/2 are the targets of Bernoulli(sigmoid(logits_θ(z))).
For grey levels this is the usual cross-entropy, not a normalized density (see Loaiza-Ganem & Cunningham
2019, "The continuous Bernoulli"); it is exact for binary images.

Logged: ``elbo/reconstruction`` (−log p(x|z), nats per image), ``elbo/kl`` (nats per image) and
``elbo/bits_per_dim``: −ELBO / (D ln 2) over the D = C·H·W dimensions. For the Gaussian the density is
converted to the 8-bit scale of pixel values 0…255 first (+ D·ln 127.5 nats), the convention of image
likelihood papers; for the Bernoulli it is taken as is. Previews add reconstructions (input | reconstruction
from the posterior mean) beside the samples.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from gantrain.families.base import Family, Grid, Phase, local_rows

Tensor = torch.Tensor

LIKELIHOODS = ("gaussian", "bernoulli")


def reparameterize(mean: Tensor, logvar: Tensor) -> Tensor:
    """z = μ + exp(½ log σ²) ⊙ ε, ε ~ N(0, I) (Kingma & Welling §2.4): a sample of q(z|x) differentiable in μ, σ."""
    eps = local_rows(lambda m: torch.randn(m, *mean.shape[1:], device=mean.device, dtype=mean.dtype), len(mean))
    return mean + (0.5 * logvar).exp() * eps


def gaussian_kl(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²) per sample (Kingma & Welling App. B)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).flatten(1).sum(dim=1)


class VAEFamily(Family):
    sample_network = "vae"

    def __init__(self, name: str, vae: nn.Module, beta: float = 1.0, likelihood: str = "bernoulli", sigma: float = 0.1):
        super().__init__(name)
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood={likelihood!r}: choose one of {', '.join(LIKELIHOODS)}")
        if beta < 0:
            raise ValueError(f"beta={beta} weights the KL term and must be ≥ 0")
        if likelihood == "gaussian" and not sigma > 0:
            raise ValueError(f"sigma={sigma} is the Gaussian likelihood's standard deviation and must be > 0")
        self.networks["vae"] = vae
        self.beta, self.likelihood, self.sigma = beta, likelihood, sigma

    def phases(self, d_steps: int) -> list[Phase]:
        return [Phase("vae", ("vae",))]

    def negative_log_likelihood(self, params: Tensor, x: Tensor) -> Tensor:
        """−log p(x|z) per image (nats), from the decoder's output ``params``."""
        if self.likelihood == "gaussian":
            nll = 0.5 * ((x - params) / self.sigma).pow(2) + math.log(self.sigma) + 0.5 * math.log(2 * math.pi)
        else:
            nll = F.binary_cross_entropy_with_logits(params, (x + 1) / 2, reduction="none")
        return nll.flatten(1).sum(dim=1)

    def bits_per_dim(self, nelbo: Tensor, dims: int) -> Tensor:
        """−ELBO in bits per dimension (on the 0…255 scale for the Gaussian, see the module docstring)."""
        if self.likelihood == "gaussian":
            nelbo = nelbo + dims * math.log(127.5)
        return nelbo / (dims * math.log(2))

    def mean_image(self, params: Tensor) -> Tensor:
        """E[x|z] on the data's [−1, 1] scale."""
        return params if self.likelihood == "gaussian" else 2 * torch.sigmoid(params) - 1

    def loss(self, phase: str, batch: dict, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        x = batch["image"]
        vae = self.networks["vae"]
        mean, logvar = vae.encoder(x)
        mean, logvar = mean.float(), logvar.float()
        params = vae.decoder(reparameterize(mean, logvar)).float()
        reconstruction = self.negative_log_likelihood(params, x.float())
        kl = gaussian_kl(mean, logvar)
        loss = (reconstruction + self.beta * kl).mean()
        nelbo = (reconstruction + kl).detach().mean()
        return loss, {
            "loss/vae": loss.detach(),
            "elbo/reconstruction": reconstruction.detach().mean(),
            "elbo/kl": kl.detach().mean(),
            "elbo/bits_per_dim": self.bits_per_dim(nelbo, x[0].numel()),
        }

    def fixed_inputs(self, n: int, generator: torch.Generator, heldout: Optional[dict] = None) -> dict:
        return {"z": torch.randn(n, self.networks["vae"].latent_dim, generator=generator)}

    def generate(self, inputs: dict, network: Optional[nn.Module] = None) -> Tensor:
        """Decoded means E[x|z] for z ~ N(0, I) (the usual VAE samples; pixel noise is not added)."""
        return self.mean_image(self.sampling_network(network).decoder(inputs["z"]))

    def previews(self, network: nn.Module, inputs: dict, heldout: dict) -> dict[str, Grid]:
        """``reconstructions``: each held-out image beside its reconstruction from the posterior mean, a pair."""
        real = heldout["image"]
        mean, _ = network.encoder(real)
        return {"reconstructions": Grid.of_groups([real, self.mean_image(network.decoder(mean)).to(real.dtype)], ["input", "output"])}
