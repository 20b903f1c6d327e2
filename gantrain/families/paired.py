"""Conditional GANs on paired data: pix2pix (Isola et al. 2017) and, with its own networks, SPADE (Park et al. 2019).

G maps a condition x to an image; D judges cat(x, y) (a conditional D, pix2pix Eq. 1), so it sees whether the
image fits its condition. The condition is the batch's ``condition`` field: an image (``source``, pix2pix) or an
int64 N×H×W class map (``segmentation``, SPADE), which both networks receive as a one-hot of
``condition_classes`` channels (pixels of class ``ignore_index`` all zeros).

- D minimizes ``d_loss_factor`` · loss.discriminator(D(x, y), D(x, G(x))) — 0.5 in pix2pix's official code,
  "we divide the objective by 2 while optimizing D" (§3.3) — plus any regularizer's penalty.
- G minimizes loss.generator(D(x, G(x))) + λ_L1 · ‖y − G(x)‖₁ (pix2pix Eq. 4, λ = 100; the mean over pixels)
  + λ_FM · FM (pix2pixHD Eq. 4, SPADE λ = 10): Σ over D's intermediate outputs (``D.features``, all but the
  final logits) of the mean |D_k(x, y) − D_k(x, G(x))|, real features detached; + λ_VGG · the VGG perceptual loss
  (SPADE §3, λ = 10; gantrain/models/vgg_loss.py) when ``vgg_weights`` names a local vgg19 file.
- ``loss`` is any ``gantrain.losses`` loss: nonsaturating is pix2pix's "vanilla" BCE (D: real → 1, fake → 0;
  G: fake → 1), hinge is SPADE's.
- D may return a tensor of patch logits or a list of them (``MultiScale``); over scales the adversarial and
  feature-matching losses are averaged, as SPADE's official code does (its GANLoss divides by the number of
  discriminators, its feature loss weighs each by 1/num_D); with one scale this is the plain loss.

Each phase draws its own batch, so the fake images D judges are G's output on the D phase's batch (made without
gradients), and G's update runs G again on its own batch (as GANFamily does).
"""

from __future__ import annotations

from typing import Mapping, Optional

import torch
import torch.nn.functional as F
from torch import nn

from gantrain.errors import ConfigError
from gantrain.families.base import Family, Grid, Phase, frozen
from gantrain.losses import GANLoss
from gantrain.models.outputs import DiscriminatorOutput
from gantrain.models.vgg_loss import VGGLoss
from gantrain.regularizers import Regularizer, check_combination

Tensor = torch.Tensor
CONDITIONS = ("source", "segmentation")


def one_hot_map(labels: Tensor, classes: int, ignore_index: Optional[int] = None) -> Tensor:
    """An N×H×W int64 class map as an N×classes×H×W float one-hot; pixels of ``ignore_index`` are all zeros.
    A class outside [0, classes) (other than the ignored one) is refused."""
    valid = labels != ignore_index if ignore_index is not None else torch.ones_like(labels, dtype=torch.bool)
    kept = labels[valid]
    if kept.numel() and (int(kept.min()) < 0 or int(kept.max()) >= classes):
        raise ConfigError(
            f"a segmentation map holds class {int(kept.min()) if int(kept.min()) < 0 else int(kept.max())} but "
            f"model.condition_classes={classes}: set it to the number of classes (or dataset.ignore_index for a void class)"
        )
    codes = F.one_hot(torch.where(valid, labels, 0), classes).permute(0, 3, 1, 2)
    return codes.float() * valid.unsqueeze(1)


def palette(classes: int) -> Tensor:
    """A fixed colour in [-1, 1] per class (3×classes), for previews of class maps."""
    return torch.rand(3, classes, generator=torch.Generator().manual_seed(0)) * 2 - 1


class PairedTranslationFamily(Family):
    sample_network = "generator"
    roles = {"generator": ("generator",), "discriminator": ("discriminator",)}

    def __init__(
        self,
        name: str,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: GANLoss,
        condition: str = "source",
        condition_classes: int = 0,
        ignore_index: Optional[int] = None,
        l1_weight: float = 100.0,
        feature_matching_weight: float = 0.0,
        d_loss_factor: float = 0.5,
        regularizers: Optional[Mapping[str, Regularizer]] = None,
        vgg_weights: Optional[str] = None,
        vgg_weight: float = 10.0,
    ):
        super().__init__(name)
        if condition not in CONDITIONS:
            raise ValueError(f"model.condition={condition!r}: choose {' or '.join(CONDITIONS)}")
        if condition == "segmentation" and condition_classes < 2:
            raise ValueError(
                f"model.condition_classes={condition_classes}: a segmentation condition needs its number of classes (2 or more)"
            )
        for key, value in (
            ("l1_weight", l1_weight),
            ("feature_matching_weight", feature_matching_weight),
            ("d_loss_factor", d_loss_factor),
            ("vgg_weight", vgg_weight),
        ):
            if value < 0:
                raise ValueError(f"model.{key}={value} must be at least 0")
        if feature_matching_weight > 0 and not hasattr(discriminator, "features"):
            raise ValueError(
                f"model.feature_matching_weight={feature_matching_weight} needs a discriminator with .features (PatchGAN, MultiScale)"
            )
        self.networks.update({"generator": generator, "discriminator": discriminator})
        self.adversarial_loss = loss
        self.condition, self.condition_classes, self.ignore_index = condition, condition_classes, ignore_index
        self.l1_weight, self.feature_matching_weight, self.d_loss_factor = l1_weight, feature_matching_weight, d_loss_factor
        # SPADE's perceptual loss: frozen ImageNet weights from a local file, moved to the data's device, never
        # checkpointed (kept out of the module tree)
        self._perceptual = [VGGLoss(vgg_weights)] if vgg_weights else []
        self.vgg_weight = vgg_weight
        self.regularizers = dict(regularizers or {})
        check_combination(loss, self.regularizers)
        for reg in self.regularizers.values():
            reg.setup(self.role_map())

    def phases(self, d_steps: int) -> list[Phase]:
        return [Phase("discriminator", ("discriminator",), d_steps), Phase("generator", ("generator",))]

    # ------------------------------------------------------------------ networks' inputs and outputs
    def encode(self, condition: Tensor) -> Tensor:
        """The condition as the networks take it: an image as it is, a class map as its one-hot."""
        if self.condition == "segmentation":
            if condition.dtype != torch.long or condition.dim() != 3:
                raise ValueError(f"{self.name} translates N×H×W int64 class maps; got {condition.dtype} of shape {tuple(condition.shape)}")
            return one_hot_map(condition, self.condition_classes, self.ignore_index)
        if condition.dim() != 4:
            raise ValueError(f"{self.name} translates N×C×H×W images; got shape {tuple(condition.shape)}")
        return condition

    def judge(self, x: Tensor, features: bool = False) -> list[list[Tensor]]:
        """D on ``x`` = cat(condition, image), per scale: its intermediate outputs (with ``features``) and last its
        logits."""
        d = self.networks["discriminator"]
        if features:
            out = d.features(x)
            return out if isinstance(out[0], (list, tuple)) else [out]
        out = d(x)
        out = out.adversarial if isinstance(out, DiscriminatorOutput) else out
        return [[o] for o in out] if isinstance(out, (list, tuple)) else [[out]]

    def _adversarial(self, fn, first: list[list[Tensor]], second: Optional[list[list[Tensor]]]) -> Tensor:
        """``fn`` of the two verdicts' logits, averaged over D's scales."""
        seconds = second if second is not None else [None] * len(first)
        return sum(fn(a[-1], None if b is None else b[-1]) for a, b in zip(first, seconds)) / len(first)

    # ------------------------------------------------------------------ losses
    def loss(self, phase: str, batch: dict, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        condition, target = self.encode(batch[self.condition]), batch["image"]
        if phase == "discriminator":
            return self._discriminator_loss(condition, target, step)
        return self._generator_loss(condition, target, step)

    def _discriminator_loss(self, condition: Tensor, target: Tensor, step: int):
        with torch.no_grad():
            fake = self.networks["generator"](condition)
        real, fake = torch.cat([condition, target], 1), torch.cat([condition, fake], 1)
        on_real, on_fake = self.judge(real), self.judge(fake)
        adversarial = self._adversarial(self.adversarial_loss.discriminator, on_real, on_fake)
        loss = self.d_loss_factor * adversarial
        logs = {
            "loss/D": adversarial.detach(),
            "D/real": torch.stack([s[-1].detach().mean() for s in on_real]).mean(),
            "D/fake": torch.stack([s[-1].detach().mean() for s in on_fake]).mean(),
        }

        def critic(x: Tensor) -> Tensor:  # every scale's logits as one row per sample
            return torch.cat([s[-1].flatten(1) for s in self.judge(x)], 1)

        for name, reg in self.regularizers.items():
            penalty = reg.discriminator_penalty(critic, real, fake, step, None)
            if penalty is not None:
                logs[f"penalty/{name}"] = penalty.detach()
                loss = loss + penalty
        return loss, logs

    def _generator_loss(self, condition: Tensor, target: Tensor, step: int):
        fm = self.feature_matching_weight > 0
        fake = self.networks["generator"](condition)
        with frozen(self.networks["discriminator"]):
            on_fake = self.judge(torch.cat([condition, fake], 1), features=fm)
            with torch.no_grad():
                needs_real = fm or self.adversarial_loss.generator_uses_real
                on_real = self.judge(torch.cat([condition, target], 1), features=fm) if needs_real else None
        adversarial = self._adversarial(self.adversarial_loss.generator, on_fake, on_real)
        l1 = (fake - target).abs().mean()
        loss = adversarial + self.l1_weight * l1
        logs = {"loss/G": adversarial.detach(), "loss/L1": l1.detach()}
        if fm:
            matching = sum(sum((f - r).abs().mean() for f, r in zip(fs[:-1], rs[:-1])) for fs, rs in zip(on_fake, on_real)) / len(on_fake)
            logs["loss/feature_matching"] = matching.detach()
            loss = loss + self.feature_matching_weight * matching
        if self._perceptual:
            self._perceptual[0] = vgg = self._perceptual[0].to(fake.device)
            perceptual = vgg(fake, target)
            logs["loss/vgg"] = perceptual.detach()
            loss = loss + self.vgg_weight * perceptual
        for name, reg in self.regularizers.items():
            penalty = reg.generator_penalty(self.networks["generator"], step)
            if penalty is not None:
                logs[f"penalty/{name}"] = penalty.detach()
                loss = loss + penalty
        return loss, logs

    def after_update(self, phase: str, step: int) -> None:
        for reg in self.regularizers.values():  # each phase is named after the role it updates
            reg.after_update(phase, self.role_map())

    # ------------------------------------------------------------------ sampling
    def fixed_inputs(self, n: int, generator: torch.Generator, heldout: Optional[dict] = None) -> dict:
        if heldout is None or self.condition not in heldout:
            raise ValueError(f"{self.name} translates the {self.condition!r} field: pass a held-out batch that has it")
        return {self.condition: heldout[self.condition]}

    def targets(self, inputs: dict, heldout: Optional[dict] = None) -> dict:
        """Each translation should be its held-out target and, where the data has them, keep its class (``label``)
        and show its class map (``segmentation``, what SPADE's segmenter score compares with)."""
        return {k: heldout[k] for k in ("image", "label", "segmentation") if heldout is not None and k in heldout}

    def translate(self, source: Tensor, network: Optional[nn.Module] = None, **options) -> Tensor:
        """G's outputs for a batch of conditions: images in [-1, 1] or int64 N×H×W class maps."""
        if options:
            raise ValueError(f"{self.name} takes no translation options; got {', '.join(options)}")
        return self.sampling_network(network)(self.encode(source.to(self.device)))

    def generate(self, inputs: dict, network: Optional[nn.Module] = None) -> Tensor:
        return self.translate(inputs[self.condition], network)

    def shown(self, condition: Tensor, channels: int) -> Tensor:
        """A condition as an image of ``channels`` channels: grey repeated, colour averaged, a class map in colour."""
        if self.condition == "segmentation":
            colours = torch.cat([palette(self.condition_classes), torch.full((3, 1), -1.0)], 1).to(condition.device)
            valid = condition != self.ignore_index if self.ignore_index is not None else torch.ones_like(condition, dtype=torch.bool)
            index = torch.where(valid & (condition >= 0) & (condition < self.condition_classes), condition, self.condition_classes)
            image = colours[:, index].permute(1, 0, 2, 3)
        else:
            image = condition
        if image.shape[1] == channels:
            return image
        return image.mean(1, keepdim=True).expand(-1, channels, -1, -1) if channels in (1, 3) else image[:, :channels]

    def previews(self, network: nn.Module, inputs: dict, heldout: dict) -> dict[str, Grid]:
        """Groups of input | output | target."""
        output = self.generate(inputs, network)
        panels = [self.shown(inputs[self.condition], output.shape[1]), output, heldout["image"]]
        return {"translation": Grid.of_groups(panels, ["input", "output", "target"])}
