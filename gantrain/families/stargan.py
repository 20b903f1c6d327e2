"""StarGAN (Choi et al. 2018): one generator G(x, c) translating an image into any target domain c, one
discriminator with a source head D_src and a domain-classification head D_cls (gantrain/models/stargan.py).

With c' the image's own domain and c the target, drawn by permuting the batch's domains (the official
``randperm``), the losses of the paper's Eqs. 1–7 with WGAN-GP as its adversarial term (§4):

- D: E[D_src(G(x, c))] − E[D_src(x)] + λ_gp E[(‖∇D_src(x̂)‖₂ − 1)²] + λ_cls L_cls^r, with
  L_cls^r = −log D_cls(c'|x) on real images;
- G: −E[D_src(G(x, c))] + λ_cls L_cls^f + λ_rec E‖x − G(G(x, c), c')‖₁, L_cls^f = −log D_cls(c|G(x, c)).

Single-label domains (a batch's ``label``) use the cross-entropy; attributes (a float ``attributes`` vector,
several on at once, CelebA's mode) the binary cross-entropy with logits, summed over the attributes and averaged
over the batch, as the official code. Defaults from the paper and its code: λ_cls 1, λ_rec 10, λ_gp 10, five
critic updates per G update, Adam 1e-4 with β (0.5, 0.999) (configs/model/stargan.yaml). The gradient penalty
is gantrain.regularizers.GradientPenalty's, on interpolates of real and translated images.

Held-out batches: the translation's input is ``source`` where the task knows the truth (the built-in
``digit_styles``: ``image`` is then the true translation into the domain ``label``), else the image itself,
sent to a seeded other domain (or one attribute flipped).
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from gantrain.families.base import Family, Grid, Phase, frozen
from gantrain.losses import wgan_discriminator, wgan_generator
from gantrain.regularizers import GradientPenalty

Tensor = torch.Tensor


def domain_loss(logits: Tensor, domains: Tensor) -> Tensor:
    """D_cls's loss for ``domains``: cross-entropy for single-label domains (int64 indices), binary
    cross-entropy with logits summed over attributes and averaged over the batch for attribute vectors."""
    if domains.dtype == torch.long:
        return F.cross_entropy(logits, domains)
    return F.binary_cross_entropy_with_logits(logits, domains, reduction="sum") / len(logits)


class StarGANFamily(Family):
    sample_network = "generator"
    round_trips = True
    roles = {"generator": ("generator",), "discriminator": ("discriminator",)}

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        num_domains: int,
        lambda_cls: float = 1.0,
        lambda_rec: float = 10.0,
        lambda_gp: float = 10.0,
        name: str = "stargan",
        regularizers: Optional[Mapping] = None,
    ):
        super().__init__(name)
        if regularizers:
            raise ValueError(
                f"{name} has its own gradient penalty (model.lambda_gp) and takes no regularizer: "
                f"leave out regularizer={','.join(regularizers)}"
            )
        if num_domains < 1:
            raise ValueError(f"{name} translates between domains, but this dataset has {num_domains}: give it domain labels or attributes")
        sizes = {"generator": generator.num_domains, "discriminator": discriminator.num_domains}
        if set(sizes.values()) != {num_domains}:
            raise ValueError(f"the dataset has {num_domains} domains, but the networks are built for {sizes}")
        for key, value in (("lambda_cls", lambda_cls), ("lambda_rec", lambda_rec)):
            if not value >= 0:
                raise ValueError(f"model.{key}={value} is a loss weight: use 0 or more")
        if not lambda_gp > 0:
            raise ValueError(f"model.lambda_gp={lambda_gp}: the Wasserstein critic needs its gradient penalty, use a positive weight (10)")
        self.networks.update({"generator": generator, "discriminator": discriminator})
        self.num_domains, self.lambda_cls, self.lambda_rec = num_domains, float(lambda_cls), float(lambda_rec)
        self.gradient_penalty = GradientPenalty(lambda_gp)

    def phases(self, d_steps: int) -> list[Phase]:
        return [Phase("discriminator", ("discriminator",), d_steps), Phase("generator", ("generator",))]

    # ------------------------------------------------------------------ domains
    def condition(self, domains: Tensor) -> Tensor:
        """The vector c that G takes: one-hot of single-label domains, the attribute vector itself."""
        return F.one_hot(domains, self.num_domains).float() if domains.dtype == torch.long else domains.float()

    @staticmethod
    def batch_domains(batch: dict) -> Tensor:
        """Each image's own domains: ``attributes`` when the data has them, else ``label``."""
        return batch["attributes"] if "attributes" in batch else batch["label"]

    @staticmethod
    def target_domains(domains: Tensor) -> Tensor:
        """Target domains for a batch: its own domains in a random order (the official ``randperm``)."""
        return domains[torch.randperm(len(domains), device=domains.device)]

    # ------------------------------------------------------------------ losses
    def loss(self, phase: str, batch: dict, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        x, original = batch["image"], self.batch_domains(batch)
        target = self.target_domains(original)
        if phase == "discriminator":
            return self._discriminator_loss(x, original, target, step)
        return self._generator_loss(x, original, target)

    def _discriminator_loss(self, x, original, target, step):
        d = self.networks["discriminator"]
        with torch.no_grad():
            fake = self.networks["generator"](x, self.condition(target))
        on_real, on_fake = d(x), d(fake)
        adversarial = wgan_discriminator(on_real.adversarial, on_fake.adversarial)
        classification = domain_loss(on_real.classes, original)
        penalty = self.gradient_penalty.discriminator_penalty(lambda v: d(v).adversarial, x, fake, step)
        logs = {
            "loss/D": adversarial.detach(),
            "loss/D_cls": classification.detach(),
            "penalty/gradient_penalty": penalty.detach(),
            "D/real": on_real.adversarial.detach().mean(),
            "D/fake": on_fake.adversarial.detach().mean(),
        }
        return adversarial + self.lambda_cls * classification + penalty, logs

    def reconstruction(self, x: Tensor, original: Tensor, target: Tensor, network: Optional[nn.Module] = None) -> tuple[Tensor, Tensor]:
        """G(x, c) and the cycle term E‖x − G(G(x, c), c')‖₁ (the paper's Eq. 4); with ``network`` (e.g. the EMA
        copy, in eval mode) in place of G, the held-out reconstruction L1 of a trained model."""
        g = self.sampling_network(network)
        fake = g(x, self.condition(target))
        return fake, (x - g(fake, self.condition(original))).abs().mean()

    def _generator_loss(self, x, original, target):
        with frozen(self.networks["discriminator"]):
            fake, reconstruction = self.reconstruction(x, original, target)
            on_fake = self.networks["discriminator"](fake)
        adversarial = wgan_generator(on_fake.adversarial)
        classification = domain_loss(on_fake.classes, target)
        logs = {"loss/G": adversarial.detach(), "loss/G_cls": classification.detach(), "loss/G_rec": reconstruction.detach()}
        return adversarial + self.lambda_cls * classification + self.lambda_rec * reconstruction, logs

    # ------------------------------------------------------------------ held-out inputs, samples, previews
    def fixed_inputs(self, n: int, generator: torch.Generator, heldout: Optional[dict] = None) -> dict:
        """Held-out inputs, their target domains and their own (``origin``): the task's target where it pairs
        ``source`` with its true translation, else a seeded other domain (attributes: one seeded attribute flipped)."""
        if heldout is None:
            raise ValueError(f"{self.name} translates held-out images: pass a held-out batch")
        if "source" in heldout:
            return {
                "source": heldout["source"],
                "domain": self.condition(heldout["label"]),
                "origin": self.condition(heldout["source_label"]),
            }
        own = self.batch_domains(heldout)
        k = self.num_domains
        if own.dtype == torch.long:
            other = (own + 1 + torch.randint(max(k - 1, 1), (len(own),), generator=generator)) % k
            return {"source": heldout["image"], "domain": self.condition(other), "origin": self.condition(own)}
        flip = F.one_hot(torch.randint(k, (len(own),), generator=generator), k).bool()
        return {"source": heldout["image"], "domain": torch.where(flip, 1 - own, own).float(), "origin": own.float()}

    def targets(self, inputs: dict, heldout: Optional[dict] = None) -> dict:
        """The true translation (where known) and the target domain (single-label domains)."""
        out = {"image": heldout["image"]} if heldout is not None and "source" in heldout else {}
        if heldout is not None and "attributes" not in heldout:
            out["label"] = inputs["domain"].argmax(1)
        return out

    def generate(self, inputs: dict, network: Optional[nn.Module] = None) -> Tensor:
        return self.sampling_network(network)(inputs["source"], inputs["domain"])

    def round_trip(self, inputs: dict, network: Optional[nn.Module] = None) -> tuple[Tensor, Tensor]:
        """Held-out x and G(G(x, c_trg), c_org): the reconstruction of Eq. 4 on held-out data."""
        g = self.sampling_network(network)
        return inputs["source"], g(g(inputs["source"], inputs["domain"]), inputs["origin"])

    def translate(self, source: Tensor, network: Optional[nn.Module] = None, domain: Union[int, Sequence[float]] = 0) -> Tensor:
        """``source`` (N×C×H×W in [-1, 1]) translated into ``domain``: a domain's index (its one-hot vector), or
        for attribute data a vector of num_domains 0/1 values."""
        if isinstance(domain, str) or isinstance(domain, bool):
            raise ValueError(f"domain={domain!r}: give the target domain's index, 0 to {self.num_domains - 1}")
        if isinstance(domain, int):
            if not 0 <= domain < self.num_domains:
                raise ValueError(f"domain={domain}: this model knows domains 0 to {self.num_domains - 1}")
            c = F.one_hot(torch.tensor(domain), self.num_domains).float()
        else:
            c = torch.as_tensor(domain, dtype=torch.float32)
            if c.shape != (self.num_domains,):
                raise ValueError(f"domain={list(domain)}: give a domain index or {self.num_domains} attribute values")
        return self.sampling_network(network)(source, c.to(source.device).expand(len(source), -1))

    def previews(self, network: nn.Module, inputs: dict, heldout: dict) -> dict[str, Grid]:
        """Groups of input | its translation into every domain, one column each (attributes: the input's own with
        attribute k flipped, the official rule for binary attributes)."""
        source = inputs["source"]
        if "attributes" in heldout:
            own = heldout["attributes"].float()
            conditions = [torch.cat([own[:, :k], 1 - own[:, k : k + 1], own[:, k + 1 :]], 1) for k in range(self.num_domains)]
        else:
            conditions = [
                F.one_hot(torch.full((len(source),), k, device=source.device), self.num_domains).float() for k in range(self.num_domains)
            ]
        flipped = "attributes" in heldout
        labels = ["input", *(f"flip {k}" if flipped else f"domain {k}" for k in range(self.num_domains))]
        return {"translation": Grid.of_groups([source, *(network(source, c) for c in conditions)], labels)}
