"""The latent space of each kind of checkpoint, behind one interface: draw latents, decode them to images, and
where the model allows, encode images or invert by gradient descent. Latents are flat rows (N, D) throughout.

- ``GANSpace``: z of any GAN family (``GANFamily.sample_latent``; a class-conditional model's samples all show
  class ``label``); truncated-normal draws for τ truncation (Brock et al. 2019, BigGAN §3.1).
- ``StyleSpace``: StyleGAN's z or w = f(z) (Karras et al. 2019, §2), one w for every layer, the truncation
  w' = w̄ + ψ(w − w̄) (Eq. 3) and fixed noise, so an image is a function of its latent.
- ``VAESpace``: the VAE's z, its decoder's mean image and its encoder's posterior mean.
- ``DDIMSpace``: the deterministic DDIM sampler's x_T (Song et al. 2021, η = 0, §4.3: the sample is a function
  of x_T, and interpolating x_T interpolates samples); decoding runs the whole sampler, so it is not inverted.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from gantrain.errors import ConfigError
from gantrain.families.diffusion import DiffusionFamily
from gantrain.families.gan import GANFamily
from gantrain.families.progressive import StyleGAN
from gantrain.families.vae import VAEFamily

Tensor = torch.Tensor


class LatentSpace:
    """``name`` of the space, ``dim`` of a flat latent; ``decode`` keeps the autograd graph when ``invertible``."""

    name = "z"
    invertible = True  # decode is differentiable and cheap enough to optimize through
    encodes = False
    truncation = None  # "tau" or "psi" where the model has a truncation trick

    def __init__(self, family, network, label: int = 0):
        self.family, self.network = family, network
        self.label = label

    @property
    def device(self) -> torch.device:
        return self.family.device

    def sample(self, n: int, seed: int) -> Tensor:
        raise NotImplementedError

    def decode(self, latents: Tensor) -> Tensor:
        raise NotImplementedError

    def origin(self, n: int) -> Tensor:
        """Where inversion starts: the prior's mean."""
        return torch.zeros(n, self.dim)

    def encode(self, images: Tensor) -> Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def images(self, latents: Tensor, batch_size: int = 250) -> Tensor:
        """Decoded images of ``latents`` in batches, float32 on the CPU."""
        return torch.cat(
            [self.decode(latents[s : s + batch_size].to(self.device)).float().cpu() for s in range(0, len(latents), batch_size)]
        )

    def labels(self, n: int) -> Optional[Tensor]:
        return torch.full((n,), self.label, dtype=torch.long, device=self.device)


class GANSpace(LatentSpace):
    truncation = "tau"

    def __init__(self, family: GANFamily, network, label: int = 0):
        super().__init__(family, network, label)
        if family.condition not in (None, "label"):
            raise ConfigError(
                f"{family.name} is conditioned on images ({family.condition!r}): the latent tools need a generator of z alone"
            )
        self.dim = family.latent_dim

    def sample(self, n: int, seed: int, tau: Optional[float] = None) -> Tensor:
        """n draws of the prior; with ``tau``, each N(0, 1) entry redrawn until |z_i| ≤ τ (a truncated normal)."""
        generator = torch.Generator().manual_seed(seed)
        z = self.family.sample_latent(n, generator)
        if tau is not None:
            if self.family.latent != "normal" or self.family.latent_categories:
                raise ConfigError(
                    f"τ truncation redraws N(0, 1) entries; model.latent={self.family.latent} with {self.family.latent_categories} categories is not that prior"
                )
            while (outside := z.abs() > tau).any():
                z[outside] = torch.randn(int(outside.sum()), generator=generator)
        return z

    def decode(self, latents: Tensor) -> Tensor:
        inputs = {"z": latents}
        if self.family.condition == "label":
            inputs["label"] = self.labels(len(latents))
        return self.family.generate(inputs, self.network)


class StyleSpace(GANSpace):
    truncation = "psi"

    def __init__(self, family: StyleGAN, network, label: int = 0, space: str = "z"):
        super().__init__(family, network, label)
        self.name, self.psi = space, family.truncation_psi
        self.dim = network.w_dim if space == "w" else family.latent_dim

    def to_w(self, z: Tensor) -> Tensor:
        return self.network.mapping(z)

    def sample(self, n: int, seed: int, tau: Optional[float] = None) -> Tensor:
        z = super().sample(n, seed, tau)
        if self.name == "z":
            return z
        with torch.no_grad():
            return self.to_w(z.to(self.device)).cpu()

    def origin(self, n: int) -> Tensor:
        return self.network.w_avg.detach().cpu().expand(n, -1).clone() if self.name == "w" else super().origin(n)

    def decode(self, latents: Tensor, psi: Optional[float] = None) -> Tensor:
        level, alpha = self.family.stage()
        w = self.to_w(latents) if self.name == "z" else latents
        w = self.network.truncate(w, self.psi if psi is None else psi)
        ws = w[:, None].expand(-1, self.network.layers_at(level), -1)
        return self.family._full_size(self.network.synthesize(ws, level, alpha, randomize_noise=False))


class VAESpace(LatentSpace):
    encodes = True

    def __init__(self, family: VAEFamily, network, label: int = 0):
        super().__init__(family, network, label)
        self.dim = network.latent_dim

    def sample(self, n: int, seed: int) -> Tensor:
        return torch.randn(n, self.dim, generator=torch.Generator().manual_seed(seed))

    def decode(self, latents: Tensor) -> Tensor:
        return self.family.mean_image(self.network.decoder(latents))

    def encode(self, images: Tensor) -> Tensor:
        """The posterior mean μ(x) of q(z|x)."""
        return self.network.encoder(images.to(self.device))[0].float().cpu()


class DDIMSpace(LatentSpace):
    name, invertible = "x_T", False

    def __init__(self, family: DiffusionFamily, network, label: int = 0):
        super().__init__(family, network, label)
        self.shape = family.data_shape
        self.dim = math.prod(self.shape)

    def sample(self, n: int, seed: int) -> Tensor:
        return torch.randn(n, self.dim, generator=torch.Generator().manual_seed(seed))

    def decode(self, latents: Tensor) -> Tensor:
        labels = self.labels(len(latents)) if self.family.conditional else None
        return self.family.sample(self.network, latents.view(-1, *self.shape), labels, eta=0.0)


def latent_space(family, network, space: str = "z", label: int = 0) -> LatentSpace:
    """The latent space of ``family`` (with ``network``, e.g. its EMA copy): z, or for StyleGAN ``space=w``;
    one ConfigError for a model without one."""
    if space not in ("z", "w"):
        raise ConfigError(f"explore.space={space!r}: choose z, or w for StyleGAN")
    if space == "w" and not isinstance(family, StyleGAN):
        raise ConfigError(f"explore.space=w is StyleGAN's intermediate latent space; model {family.name} has only z")
    if isinstance(family, StyleGAN):
        return StyleSpace(family, network, label, space)
    if isinstance(family, GANFamily):
        return GANSpace(family, network, label)
    if isinstance(family, VAEFamily):
        return VAESpace(family, network, label)
    if isinstance(family, DiffusionFamily):
        return DDIMSpace(family, network, label)
    raise ConfigError(
        f"model {family.name} maps images to images and has no latent space: gantrain-explore serves the GANs, StyleGAN, the VAE and DDIM"
    )
