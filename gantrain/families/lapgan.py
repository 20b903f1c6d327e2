"""LAPGAN (Denton, Chintala, Szlam & Fergus 2015): a Laplacian pyramid of GANs, trained level by level.

Every level is trained on the real image's pyramid (§3.2): level 0 is an unconditional GAN on the coarsest real
images I_0; level k ≥ 1 is a conditional GAN whose G_k(z_k, u(I_{k−1})) makes a residual from the *real* coarser
image, and whose D_k judges I_k = u(I_{k−1}) + h_k against u(I_{k−1}) + G_k(z_k, u(I_{k−1})), at level k's size.
Sampling runs the cascade coarse to fine from generated images (gantrain/models/lapgan.py, Eq. 4).

Phases: one ``discriminator`` phase updates every D_k on the sum of the levels' D losses, one ``generator`` phase
every G_k on the sum of their G losses. The levels share no parameters and no graph, so each level's gradient is
its own loss's: this is the paper's independent training of the levels, in lockstep, with one optimizer per phase
(Adam and RMSprop are per-parameter). Logged: ``loss/D`` and ``loss/G`` (the sums) and each level's terms. The
loss= group chooses the adversarial loss (the paper: the original minimax GAN's, trained with SGD); regularizers
are not supported (regularizer=none). Samples are clamped to the data range [−1, 1] (residuals are unbounded).
"""

from __future__ import annotations

from typing import Mapping, Optional

import torch
from torch import nn

from gantrain.families.base import Family, Phase, frozen
from gantrain.losses import GANLoss
from gantrain.models.lapgan import gaussian_pyramid

Tensor = torch.Tensor


class LAPGANFamily(Family):
    sample_network = "generator"
    roles = {"generator": ("generator",), "discriminator": ("discriminator",)}

    def __init__(
        self,
        name: str,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: GANLoss,
        latent_dim: int,
        base_size: int,
        regularizers: Optional[Mapping] = None,
    ):
        super().__init__(name)
        if regularizers:
            raise ValueError(f"{name} takes no regularizer (got {', '.join(regularizers)}): use regularizer=none")
        if not generator.sizes[0] == discriminator.sizes[0] == base_size:
            raise ValueError(f"G's levels {generator.sizes} and D's {discriminator.sizes} must start at model.base_size={base_size}")
        if loss.generator_uses_real:
            raise ValueError(
                f"{name} trains each level with a loss of D's outputs on fakes only; use another loss= than a relativistic one"
            )
        self.networks.update({"generator": generator, "discriminator": discriminator})
        self.adversarial_loss, self.latent_dim, self.sizes = loss, latent_dim, list(generator.sizes)

    def phases(self, d_steps: int) -> list[Phase]:
        return [Phase("discriminator", ("discriminator",), d_steps), Phase("generator", ("generator",))]

    def _noise(self, n: int, generator: Optional[torch.Generator] = None) -> tuple[Tensor, list[Tensor]]:
        """z for G_0 and a noise plane z_k per finer level (standard normal), on the family's device unless a
        (CPU) ``generator`` is given."""
        device = "cpu" if generator is not None else self.device
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        return z, [torch.randn(n, 1, s, s, generator=generator, device=device) for s in self.sizes[1:]]

    def level_fakes(self, real: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """The real pyramid [I_0, …, I_K] and each level's generated image, level k ≥ 1 made from the real I_{k−1}."""
        images = gaussian_pyramid(real, len(self.sizes))
        z, noises = self._noise(len(real))
        g = self.networks["generator"]
        fakes = [g.base(z)] + [g.residual(k, images[k - 1], noises[k - 1]) for k in range(1, len(self.sizes))]
        return images, fakes

    def loss(self, phase: str, batch: dict, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        real, d = batch["image"], self.networks["discriminator"]
        if phase == "discriminator":
            with torch.no_grad():
                images, fakes = self.level_fakes(real)
            terms = [self.adversarial_loss.discriminator(d(x, k), d(f, k)) for k, (x, f) in enumerate(zip(images, fakes))]
            key = "D"
        else:
            with frozen(d):
                _, fakes = self.level_fakes(real)
                terms = [self.adversarial_loss.generator(d(f, k), None) for k, f in enumerate(fakes)]
            key = "G"
        total = sum(terms)
        logs = {f"loss/{key}": total.detach(), **{f"level{k}/{key}": t.detach() for k, t in enumerate(terms)}}
        return total, logs

    def fixed_inputs(self, n: int, generator: torch.Generator, heldout: Optional[dict] = None) -> dict:
        z, noises = self._noise(n, generator)
        return {"z": z, **{f"noise{k}": x for k, x in enumerate(noises, start=1)}}

    def generate(self, inputs: dict, network: Optional[nn.Module] = None) -> Tensor:
        noises = [inputs[f"noise{k}"] for k in range(1, len(self.sizes))]
        return self.sampling_network(network)(inputs["z"], noises).clamp(-1, 1)

    def previews(self, network: nn.Module, inputs: dict, heldout: dict) -> dict[str, Tensor]:
        """``levels``: the cascade of K samples for K levels, a K × K grid whose row k is level k (upsampled,
        nearest, to full size)."""
        n = min(len(self.sizes), len(inputs["z"]))
        x, rows = network.base(inputs["z"][:n]), []
        for level in range(len(self.sizes)):
            if level:
                x = network.residual(level, x, inputs[f"noise{level}"][:n])
            rows.append(nn.functional.interpolate(x, size=self.sizes[-1], mode="nearest"))
        return {"levels": torch.cat(rows).clamp(-1, 1)}
