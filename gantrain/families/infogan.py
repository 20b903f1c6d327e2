"""InfoGAN (Chen et al. 2016): a GAN whose latent codes c stay recoverable from G(z, c).

z = [one-hot categorical code (K categories, uniform) | C continuous codes ~ U(−1, 1) | noise ~ U(−1, 1)]; the
uniform prior of the continuous codes is the paper's (§6, and the official code's) — drawing them from a normal
is a known slip of other implementations. The discriminator returns, beside its adversarial logits, a Q head's
estimates of the codes of each sample (``DiscriminatorOutput.codes``, gantrain/models/infogan.py). The
mutual-information lower bound (Eq. 4, Lemma 5.1), on fake samples,

    L_I = H(c) − E[−log Q(c | G(z, c))],

is for the categorical code ln K − CE(logits, c), and for each continuous code, with Q a Gaussian of mean μ and
fixed std 1 (the official code's ``fix_std``), ln 2 − [½(c − μ)² + ½ ln 2π] (H = ln 2 for U(−1, 1)). λ L_I
(λ = ``info_weight`` = 1 on the categorical term, ``continuous_weight`` on the continuous ones) is subtracted
from both losses (Eq. 5): D's, whose phase updates the shared trunk and the Q head, and G's, whose phase updates G
and the Q head together (Eq. 5 minimizes over G and Q: ``Phase("generator", ("generator", "q_head"))``).
``q_with_generator=False`` updates G alone there, as the official code does (its Q head is among D's variables).

Previews: the samples' grid has one column per category; ``continuous_<j>`` shows, for one fixed noise, rows
= categories and columns = code j swept over [−2, 2] (the other codes at 0), as in the paper's Fig. 2.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from gantrain.families.base import Grid, Phase
from gantrain.families.gan import GANFamily

Tensor = torch.Tensor
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def categorical_information(logits: Tensor, codes: Tensor) -> Tensor:
    """H(c) − CE for a uniform categorical code: ln K − E[−log softmax(logits)_c] (mean over the batch)."""
    return math.log(logits.shape[1]) - F.cross_entropy(logits, codes)


def gaussian_nll(codes: Tensor, means: Tensor) -> Tensor:
    """−log N(c; μ, 1) of each entry: ½(c − μ)² + ½ ln 2π."""
    return 0.5 * (codes - means).pow(2) + HALF_LOG_2PI


def uniform_information(codes: Tensor, means: Tensor) -> Tensor:
    """H(c) − CE summed over continuous codes c ~ U(−1, 1) (H = ln 2 each), Q fixed-std Gaussians (batch mean)."""
    return (math.log(2.0) - gaussian_nll(codes, means)).sum(1).mean()


class InfoGAN(GANFamily):
    def __init__(
        self,
        *args,
        categories: int = 10,
        continuous_codes: int = 2,
        info_weight: float = 1.0,
        continuous_weight: float = 1.0,
        latent: str = "uniform",
        q_with_generator: bool = True,
        **kwargs,
    ):
        if latent != "uniform":
            raise ValueError(f"model.latent={latent!r}: InfoGAN's continuous codes and noise are uniform on [-1, 1] (use uniform)")
        if kwargs.get("condition") or kwargs.get("pack", 1) != 1:
            raise ValueError("InfoGAN is unsupervised and judges one sample at a time: set no model.condition and model.pack=1")
        super().__init__(*args, latent=latent, latent_categories=categories, **kwargs)
        if categories < 2 or continuous_codes < 0 or categories + continuous_codes > self.latent_dim:
            raise ValueError(
                f"model.categories={categories} (≥ 2) and model.continuous_codes={continuous_codes} must fit in "
                f"model.latent_dim={self.latent_dim} beside the noise"
            )
        self.categories, self.continuous_codes = categories, continuous_codes
        self.info_weight, self.continuous_weight = float(info_weight), float(continuous_weight)
        self.q_with_generator = bool(q_with_generator)
        self.networks["q_head"] = self.networks["discriminator"].q_head  # the same module, which G's phase may update

    def phases(self, d_steps: int) -> list[Phase]:
        generator = ("generator", "q_head") if self.q_with_generator else ("generator",)
        return [Phase("discriminator", ("discriminator",), d_steps), Phase("generator", generator)]

    def split_codes(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """The category of each latent and its continuous codes."""
        k = self.categories
        return z[:, :k].argmax(1), z[:, k : k + self.continuous_codes]

    def information_loss(self, codes: dict[str, Tensor], z: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        category, continuous = self.split_codes(z)
        categorical = categorical_information(codes["categorical"].float(), category)
        logs = {"info/categorical": categorical.detach()}
        information = self.info_weight * categorical
        if self.continuous_codes:
            uniform = uniform_information(continuous, codes["continuous"].float())
            logs["info/continuous"] = uniform.detach()
            information = information + self.continuous_weight * uniform
        return -information, logs

    def with_codes(self, z: Tensor, categories: Tensor, continuous: Optional[Tensor] = None) -> Tensor:
        """``z`` with its categorical code set to ``categories`` (and its continuous codes to ``continuous``)."""
        k = self.categories
        z = torch.cat([F.one_hot(categories.to(z.device), k).to(z.dtype), z[:, k:]], dim=1)
        if continuous is not None:
            z[:, k : k + self.continuous_codes] = continuous.to(z)
        return z

    def fixed_inputs(self, n: int, generator: torch.Generator, heldout: Optional[dict] = None) -> dict:
        """The prior's latents with balanced categories (sample i shows category i mod K)."""
        return {"z": self.with_codes(self.sample_latent(n, generator), torch.arange(n) % self.categories)}

    def sample_preview(self, samples: Tensor, inputs: dict) -> Grid:
        """One labelled column per value of the categorical code (sample i has code i mod K)."""
        return Grid.of(samples, self.categories, [f"code {c}" for c in range(self.categories)])

    def previews(self, network, inputs: dict, heldout: dict) -> dict[str, Grid]:
        k = self.categories
        sweep = torch.linspace(-2.0, 2.0, k, device=inputs["z"].device)
        base = inputs["z"][:1].expand(k * k, -1)  # one noise for the whole grid
        categories = torch.arange(k).repeat_interleave(k)  # rows: categories; columns: the sweep
        out = {}
        for j in range(self.continuous_codes):
            continuous = torch.zeros(k * k, self.continuous_codes, device=base.device)
            continuous[:, j] = sweep.repeat(k)
            images = network(self.with_codes(base, categories, continuous)).unflatten(0, (k, k))
            out[f"continuous_{j}"] = Grid(images, [f"{v:+.1f}" for v in sweep.tolist()], [f"code {c}" for c in range(k)])
        return out
