"""The adversarial family: unconditional GANs, conditional GANs (Mirza & Osindero 2014) and AC-GAN.

One discriminator update minimizes ``loss.discriminator(D(x), D(G(z)))`` plus the regularizers'
penalties; one generator update minimizes ``loss.generator(D(G(z)), D(x))``. With ``conditional=True``
both networks receive the batch's labels (fake samples are drawn for the same labels as the real batch).
A discriminator that returns ``(logits, class_logits)`` is an AC-GAN one (Odena et al. 2017, Eqs. 2–3):
D minimizes the class cross-entropy on real and fake samples, G on fake ones, both weighted by
``aux_weight``.

``pack=m`` is PacGAN (Lin et al. 2018, §3): D judges m samples at a time, concatenated along dim 1 — m real
ones, or m generated ones — so a batch of N samples gives N/m decisions (the discriminator must be built
for m-fold input: ``pack: ${..pack}`` in the model config). Regularizers see the packed batches, D's actual
inputs. Packing is for unconditional GANs; conditional ones are refused.

``latent`` is the prior p(z): ``normal`` (N(0, I), DCGAN onwards) or ``uniform`` (U[−1, 1]^d, the original GAN's
and DCGAN's noise). ``latent_categories=K`` makes the first K of the ``latent_dim`` entries a one-hot code of a
uniform category (InfoGAN's categorical code c, Chen et al. 2016, §5, here without the information term): G can
send each category to its own region, with no latent mass between them, which suits data of separated modes.
"""

from __future__ import annotations

from typing import Mapping, Optional

import torch
import torch.nn.functional as F
from torch import nn

from gantrain.errors import ConfigError
from gantrain.families.base import Family, frozen
from gantrain.losses import GANLoss
from gantrain.regularizers import Regularizer, check_combination

Tensor = torch.Tensor


class GANFamily(Family):
    sample_network = "generator"

    def __init__(
        self,
        name: str,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: GANLoss,
        latent_dim: int,
        regularizers: Optional[Mapping[str, Regularizer]] = None,
        conditional: bool = False,
        num_classes: int = 0,
        aux_weight: float = 1.0,
        pack: int = 1,
        latent: str = "normal",
        latent_categories: int = 0,
    ):
        super().__init__(name)
        if latent not in ("normal", "uniform"):
            raise ValueError(f"model.latent={latent!r} must be normal or uniform")
        if not 0 <= latent_categories <= latent_dim or latent_categories == 1:
            raise ValueError(f"model.latent_categories={latent_categories} must be 0 (none) or 2 to model.latent_dim={latent_dim} "
                             f"(the one-hot code is part of z)")
        if conditional and num_classes < 2:
            raise ValueError(f"{name} is conditional and needs class labels, but this dataset has none")
        if pack < 1:
            raise ValueError(f"model.pack={pack} must be a positive integer (samples per discriminator decision)")
        if pack > 1 and conditional:
            raise ValueError(f"model.pack={pack}: PacGAN packing is for unconditional GANs, and {name} is conditional")
        if getattr(discriminator, "pack", 1) != pack:
            raise ValueError(f"pack={pack} but the discriminator is built for pack={discriminator.pack}")
        self.pack = pack
        self.networks.update({"generator": generator, "discriminator": discriminator})
        self.adversarial_loss = loss
        self.latent_dim, self.latent, self.latent_categories = latent_dim, latent, latent_categories
        self.conditional, self.num_classes, self.aux_weight = conditional, num_classes, aux_weight
        self.regularizers = dict(regularizers or {})
        check_combination(loss, self.regularizers)
        for reg in self.regularizers.values():
            reg.setup(self.networks)

    def phases(self, d_steps: int) -> list[tuple[str, int]]:
        return [("discriminator", d_steps), ("generator", 1)]

    def _discriminate(self, x: Tensor, labels: Optional[Tensor]) -> tuple[Tensor, Optional[Tensor]]:
        out = self.networks["discriminator"](x, labels)
        return out if isinstance(out, tuple) else (out, None)

    def _pack(self, x: Tensor) -> Tensor:
        """N samples → N/m rows of m consecutive samples concatenated along dim 1 (features or channels)."""
        if len(x) % self.pack:
            raise ConfigError(f"a batch of {len(x)} samples cannot be packed by model.pack={self.pack}: "
                              f"use a trainer.batch_size divisible by {self.pack}")
        return x.reshape(len(x) // self.pack, self.pack * x.shape[1], *x.shape[2:])

    def sample_latent(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """n draws of z from the prior, on the family's device unless a (CPU) ``generator`` is given."""
        device = "cpu" if generator is not None else self.device
        k = self.latent_categories
        shape = (n, self.latent_dim - k)
        if self.latent == "uniform":
            z = torch.rand(shape, generator=generator, device=device) * 2 - 1
        else:
            z = torch.randn(shape, generator=generator, device=device)
        if k:
            code = torch.randint(k, (n,), generator=generator, device=device)
            z = torch.cat([F.one_hot(code, k).to(z.dtype), z], dim=1)
        return z

    def _fake(self, n: int, labels: Optional[Tensor]) -> Tensor:
        return self.networks["generator"](self.sample_latent(n), labels)

    def loss(self, phase: str, batch: dict, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        real = batch["image"]
        labels = batch["label"] if self.conditional else None
        if phase == "discriminator":
            return self._discriminator_loss(real, labels, step)
        return self._generator_loss(real, labels, step)

    def _discriminator_loss(self, real, labels, step):
        with torch.no_grad():
            fake = self._pack(self._fake(len(real), labels))
        real = self._pack(real)
        if any(reg.needs_real_gradients(step) for reg in self.regularizers.values()):
            real = real.detach().requires_grad_(True)  # R1 differentiates this forward pass (no second one)
        d_real, c_real = self._discriminate(real, labels)
        d_fake, c_fake = self._discriminate(fake, labels)
        adversarial = self.adversarial_loss.discriminator(d_real, d_fake)
        logs = {"loss/D": adversarial.detach(), "D/real": d_real.detach().mean(), "D/fake": d_fake.detach().mean()}
        loss = adversarial
        if c_real is not None:
            classification = F.cross_entropy(c_real, labels) + F.cross_entropy(c_fake, labels)
            logs["loss/D_class"] = classification.detach()
            loss = loss + self.aux_weight * classification
        for name, reg in self.regularizers.items():
            penalty = reg.discriminator_penalty(lambda x: self._discriminate(x, labels)[0], real, fake, step, d_real)
            if penalty is not None:
                logs[f"penalty/{name}"] = penalty.detach()
                loss = loss + penalty
        return loss, logs

    def _generator_loss(self, real, labels, step):
        discriminator = self.networks["discriminator"]
        with frozen(discriminator):
            fake = self._pack(self._fake(len(real), labels))
            d_fake, c_fake = self._discriminate(fake, labels)
            with torch.no_grad():
                d_real = self._discriminate(self._pack(real), labels)[0] if self.adversarial_loss.generator_uses_real else None
        loss = self.adversarial_loss.generator(d_fake, d_real)
        logs = {"loss/G": loss.detach()}
        if c_fake is not None:
            classification = F.cross_entropy(c_fake, labels)
            logs["loss/G_class"] = classification.detach()
            loss = loss + self.aux_weight * classification
        for name, reg in self.regularizers.items():
            penalty = reg.generator_penalty(self.networks["generator"], step)
            if penalty is not None:
                logs[f"penalty/{name}"] = penalty.detach()
                loss = loss + penalty
        return loss, logs

    def after_update(self, phase: str, step: int) -> None:
        for reg in self.regularizers.values():
            reg.after_update(phase, self.networks)

    def fixed_inputs(self, n: int, generator: torch.Generator) -> dict[str, Tensor]:
        inputs = {"z": self.sample_latent(n, generator)}
        if self.conditional:
            inputs["label"] = torch.arange(n) % self.num_classes
        return inputs

    def generate(self, inputs: dict[str, Tensor], network: Optional[nn.Module] = None) -> Tensor:
        generator = network if network is not None else self.networks["generator"]
        return generator(inputs["z"], inputs.get("label"))
