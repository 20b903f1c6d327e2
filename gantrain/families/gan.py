"""The adversarial family: unconditional GANs, conditional GANs (Mirza & Osindero 2014) and AC-GAN.

One discriminator update minimizes ``loss.discriminator(D(x), D(G(z)))`` plus the regularizers'
penalties; one generator update minimizes ``loss.generator(D(G(z)), D(x))``. ``condition`` names the batch
field both networks receive (``label`` for cGAN and AC-GAN; fake samples are drawn for the real batch's
conditions). Previews of a class-conditional model show one column per class; of a model conditioned on
another field, the held-out batch's conditions. D returns its adversarial logits or a DiscriminatorOutput
(gantrain/models/outputs.py): one with ``classes`` is an AC-GAN one (Odena et al. 2017, Eqs. 2–3): D
minimizes the class cross-entropy on real and fake samples, G on fake ones, both weighted by ``aux_weight``.

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
from gantrain.families.base import Family, Phase, frozen, local_rows
from gantrain.losses import GANLoss
from gantrain.models.outputs import DiscriminatorOutput
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
        condition: Optional[str] = None,
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
            raise ValueError(
                f"model.latent_categories={latent_categories} must be 0 (none) or 2 to model.latent_dim={latent_dim} "
                f"(the one-hot code is part of z)"
            )
        if condition == "label" and num_classes < 2:
            raise ValueError(f"{name} is conditional and needs class labels, but this dataset has none")
        if pack < 1:
            raise ValueError(f"model.pack={pack} must be a positive integer (samples per discriminator decision)")
        if pack > 1 and condition:
            raise ValueError(f"model.pack={pack}: PacGAN packing is for unconditional GANs, and {name} is conditional")
        if getattr(discriminator, "pack", 1) != pack:
            raise ValueError(f"pack={pack} but the discriminator is built for pack={discriminator.pack}")
        self.pack = pack
        self.networks.update({"generator": generator, "discriminator": discriminator})
        self.adversarial_loss = loss
        self.latent_dim, self.latent, self.latent_categories = latent_dim, latent, latent_categories
        self.condition, self.num_classes, self.aux_weight = condition, num_classes, aux_weight
        self.regularizers = dict(regularizers or {})
        check_combination(loss, self.regularizers)
        for reg in self.regularizers.values():
            reg.setup(self.role_map())

    roles = {"generator": ("generator",), "discriminator": ("discriminator",)}

    def phases(self, d_steps: int) -> list[Phase]:
        return [Phase("discriminator", ("discriminator",), d_steps), Phase("generator", ("generator",))]

    def _discriminate(self, x: Tensor, condition) -> DiscriminatorOutput:
        return DiscriminatorOutput.of(self.networks["discriminator"](x, condition))

    def _pack(self, x: Tensor) -> Tensor:
        """N samples → N/m rows of m consecutive samples concatenated along dim 1 (features or channels)."""
        if len(x) % self.pack:
            raise ConfigError(
                f"a batch of {len(x)} samples cannot be packed by model.pack={self.pack}: use a trainer.batch_size divisible by {self.pack}"
            )
        return x.reshape(len(x) // self.pack, self.pack * x.shape[1], *x.shape[2:])

    def sample_latent(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
        """n draws of z from the prior, on the family's device unless a (CPU) ``generator`` is given; in training
        (no generator) a distributed run's rows of the global batch's draw (``local_rows``)."""
        if generator is None:
            return local_rows(self._draw_latent, n)
        return self._draw_latent(n, generator)

    def _draw_latent(self, n: int, generator: Optional[torch.Generator] = None) -> Tensor:
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

    def _fake(self, n: int, condition) -> tuple[Tensor, Tensor]:
        """n generated samples and the latents they came from."""
        z = self.sample_latent(n)
        return self.networks["generator"](z, condition), z

    def information_loss(self, codes: dict[str, Tensor], z: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The term a discriminator's ``codes`` (Q's estimates of the latent codes of fake samples drawn from z)
        add to both losses, and its logged parts: InfoGAN's (gantrain/families/infogan.py)."""
        raise ValueError(f"{self.name}'s discriminator predicts latent codes, which only model=infogan uses")

    def loss(self, phase: str, batch: dict, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        real = batch["image"]
        condition = batch[self.condition] if self.condition else None
        if phase == "discriminator":
            return self._discriminator_loss(real, condition, step)
        return self._generator_loss(real, condition, step)

    def _discriminator_loss(self, real, condition, step):
        with torch.no_grad():
            fake, z = self._fake(len(real), condition)
            fake = self._pack(fake)
        real = self._pack(real)
        if any(reg.needs_real_gradients(step) for reg in self.regularizers.values()):
            real = real.detach().requires_grad_(True)  # R1 differentiates this forward pass (no second one)
        on_real, on_fake = self._discriminate(real, condition), self._discriminate(fake, condition)
        d_real, d_fake = on_real.adversarial, on_fake.adversarial
        adversarial = self.adversarial_loss.discriminator(d_real, d_fake)
        logs = {"loss/D": adversarial.detach(), "D/real": d_real.detach().mean(), "D/fake": d_fake.detach().mean()}
        loss = adversarial
        if on_real.classes is not None:
            classification = F.cross_entropy(on_real.classes, condition) + F.cross_entropy(on_fake.classes, condition)
            logs["loss/D_class"] = classification.detach()
            loss = loss + self.aux_weight * classification
        if on_fake.codes is not None:
            information, terms = self.information_loss(on_fake.codes, z)
            logs.update(terms)
            loss = loss + information
        for name, reg in self.regularizers.items():
            penalty = reg.discriminator_penalty(lambda x: self._discriminate(x, condition).adversarial, real, fake, step, d_real)
            if penalty is not None:
                logs[f"penalty/{name}"] = penalty.detach()
                loss = loss + penalty
        return loss, logs

    def _generator_loss(self, real, condition, step):
        # D's weights get no gradient here, except those this phase also updates (InfoGAN's Q head)
        with frozen(self.networks["discriminator"], keep=self.parameters_of(self.phase("generator"))):
            fake, z = self._fake(len(real), condition)
            fake = self._pack(fake)
            on_fake = self._discriminate(fake, condition)
            with torch.no_grad():
                d_real = self._discriminate(self._pack(real), condition).adversarial if self.adversarial_loss.generator_uses_real else None
        loss = self.adversarial_loss.generator(on_fake.adversarial, d_real)
        logs = {"loss/G": loss.detach()}
        if on_fake.classes is not None:
            classification = F.cross_entropy(on_fake.classes, condition)
            logs["loss/G_class"] = classification.detach()
            loss = loss + self.aux_weight * classification
        if on_fake.codes is not None:
            information, _ = self.information_loss(on_fake.codes, z)
            loss = loss + information
        for name, reg in self.regularizers.items():
            penalties = [p for g in self.with_role("generator") if (p := reg.generator_penalty(g, step)) is not None]
            if penalties:
                logs[f"penalty/{name}"] = sum(penalties).detach()
                loss = loss + sum(penalties)
        return loss, logs

    def after_update(self, phase: str, step: int) -> None:
        updated = {role for role, names in self.roles.items() if set(names) & set(self.phase(phase).networks)}
        for reg in self.regularizers.values():
            for role in sorted(updated):
                reg.after_update(role, self.role_map())

    def fixed_inputs(self, n: int, generator: torch.Generator, heldout: Optional[dict] = None) -> dict:
        inputs = {"z": self.sample_latent(n, generator)}
        if self.condition == "label":
            inputs["label"] = torch.arange(n) % self.num_classes
        elif self.condition:
            if heldout is None or self.condition not in heldout:
                raise ValueError(f"{self.name} is conditioned on the {self.condition!r} field: pass a held-out batch that has it")
            inputs[self.condition] = heldout[self.condition]
        return inputs

    def targets(self, inputs: dict, heldout: Optional[dict] = None) -> dict:
        """A class-conditional model's samples should show the class they were drawn for."""
        return {"label": inputs["label"]} if self.condition == "label" else {}

    def generate(self, inputs: dict, network: Optional[nn.Module] = None) -> Tensor:
        return self.sampling_network(network)(inputs["z"], inputs.get(self.condition) if self.condition else None)
