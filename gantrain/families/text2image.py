"""GAN-INT-CLS (Reed et al. 2016): a GAN conditioned on captions, with the matching-aware discriminator and
interpolated text embeddings.

Captions come from the batch's ``text`` field (a list of str), are turned into character indices
(gantrain/models/text2image.py, ``encode_text``) and embedded by the ``text_encoder`` φ.

GAN-CLS (Alg. 1): D scores three pairs — s_r = D(x, φ(t)) (real image, matching text), s_w = D(x, φ(t̂)) (real
image, mismatched text) and s_f = D(G(z, φ(t)), φ(t)) (generated image, matching text) — and minimizes
½ L_D(s_r, s_w) + ½ L_D(s_r, s_f), which for the losses that add a real and a fake term (minimax, hinge, LSGAN…)
is the paper's real + ½ wrong + ½ fake. The mismatched caption t̂ of a sample is the next sample's caption in the
batch (the batch rolled by one), so a real image is paired with a caption of another image (the paper's code
draws a random other image; rolling is deterministic and costs nothing; it can describe the same class and
properties, as in the paper's own sampling).

GAN-INT (§4.3): G also trains on interpolated embeddings β·φ(t₁) + (1 − β)·φ(t₂) (β = 0.5, t₂ the rolled
caption): L_G is taken over D's scores of G(z, φ(t)) and of G(z', interpolation), with the interpolation as D's
text; D never sees interpolated embeddings in its own update (there is no real image to match them).

Phases: ``discriminator`` updates D and the text encoder (φ is learned through D's matching-aware loss — the
paper pre-trains φ instead), ``generator`` updates G, which reads φ(t) without gradients. Regularizers are not
supported (regularizer=none).
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import torch
from torch import nn

from gantrain.families.base import Family, Phase, frozen
from gantrain.losses import GANLoss
from gantrain.models.text2image import encode_text

Tensor = torch.Tensor


class TextToImageGAN(Family):
    sample_network = "generator"
    roles = {"generator": ("generator",), "discriminator": ("discriminator",)}

    def __init__(
        self,
        name: str,
        generator: nn.Module,
        discriminator: nn.Module,
        text_encoder: nn.Module,
        loss: GANLoss,
        latent_dim: int,
        text_field: str = "text",
        text_length: int = 64,
        matching_aware: bool = True,
        interpolate: bool = True,
        beta: float = 0.5,
        regularizers: Optional[Mapping] = None,
    ):
        super().__init__(name)
        if regularizers:
            raise ValueError(f"{name} takes no regularizer (got {', '.join(regularizers)}): use regularizer=none")
        if loss.generator_uses_real:
            raise ValueError(f"{name}'s generator loss reads D's scores of fakes only; use another loss= than a relativistic one")
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"model.beta={beta} is the interpolation weight β of GAN-INT: use a value in [0, 1]")
        if text_length < 1:
            raise ValueError(f"model.text_length={text_length} must be a positive number of characters")
        self.networks.update({"generator": generator, "discriminator": discriminator, "text_encoder": text_encoder})
        self.adversarial_loss, self.latent_dim = loss, latent_dim
        self.text_field, self.text_length = text_field, text_length
        self.matching_aware, self.interpolate, self.beta = matching_aware, interpolate, beta

    def phases(self, d_steps: int) -> list[Phase]:
        return [Phase("discriminator", ("discriminator", "text_encoder"), d_steps), Phase("generator", ("generator",))]

    def tokens(self, texts: Sequence[str]) -> Tensor:
        return encode_text(texts, self.text_length).to(self.device)

    def embed(self, tokens: Tensor) -> Tensor:
        return self.networks["text_encoder"](tokens)

    def interpolation(self, t1: Tensor, t2: Tensor) -> Tensor:
        """β·t₁ + (1 − β)·t₂ (GAN-INT, §4.3)."""
        return self.beta * t1 + (1 - self.beta) * t2

    def loss(self, phase: str, batch: dict, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        real, tokens = batch["image"], self.tokens(batch[self.text_field])
        g, d, n = self.networks["generator"], self.networks["discriminator"], len(real)
        if phase == "discriminator":
            text = self.embed(tokens)
            with torch.no_grad():
                fake = g(torch.randn(n, self.latent_dim, device=real.device), text)
            s_real, s_fake = d(real, text), d(fake, text)
            loss = self.adversarial_loss.discriminator(s_real, s_fake)
            logs = {"D/real": s_real.detach().mean(), "D/fake": s_fake.detach().mean()}
            if self.matching_aware:
                s_wrong = d(real, text.roll(1, 0))
                loss = 0.5 * self.adversarial_loss.discriminator(s_real, s_wrong) + 0.5 * loss
                logs["D/wrong"] = s_wrong.detach().mean()
            return loss, {"loss/D": loss.detach(), **logs}
        with torch.no_grad():
            text = self.embed(tokens)
        with frozen(d):
            scores = [d(g(torch.randn(n, self.latent_dim, device=real.device), text), text)]
            if self.interpolate:
                mixed = self.interpolation(text, text.roll(1, 0))
                scores.append(d(g(torch.randn(n, self.latent_dim, device=real.device), mixed), mixed))
            loss = self.adversarial_loss.generator(torch.cat(scores), None)
        return loss, {"loss/G": loss.detach()}

    def fixed_inputs(self, n: int, generator: torch.Generator, heldout: Optional[dict] = None) -> dict:
        """Latents for the held-out batch's captions (and their classes, where the data has them)."""
        if heldout is None or self.text_field not in heldout:
            raise ValueError(f"{self.name} samples for captions: pass a held-out batch with a {self.text_field!r} field")
        inputs = {
            "z": torch.randn(n, self.latent_dim, generator=generator),
            "tokens": encode_text(heldout[self.text_field][:n], self.text_length),
        }
        if isinstance(heldout.get("label"), Tensor):
            inputs["label"] = heldout["label"][:n]
        return inputs

    def prompt_inputs(self, prompts: Sequence[str], n: int, generator: torch.Generator) -> dict:
        """n latents for each of ``prompts``, prompt by prompt (what ``gantrain-generate prompt=…`` samples)."""
        texts = [p for p in prompts for _ in range(n)]
        return {"z": torch.randn(len(texts), self.latent_dim, generator=generator), "tokens": encode_text(texts, self.text_length)}

    def targets(self, inputs: dict, heldout: Optional[dict] = None) -> dict:
        """The class each caption names, where the data has classes (scored as ``class_accuracy``)."""
        return {"label": inputs["label"]} if "label" in inputs else {}

    def sample_preview(self, samples: Tensor, inputs: dict) -> Tensor:
        """A square grid: the held-out captions' classes come in no column order."""
        return samples

    def generate(self, inputs: dict, network: Optional[nn.Module] = None) -> Tensor:
        return self.sampling_network(network)(inputs["z"], self.embed(inputs["tokens"]))
