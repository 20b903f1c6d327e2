"""Context-encoder inpainting (Pathak et al. 2016) on a masked dataset (gantrain/data/masks.py).

The encoder sees the image with its hole filled (``fill_hole``: each image's mean colour over its visible
pixels) and predicts the image; the output (``composite``) is the input outside the hole, exactly, and the
prediction inside it. The generator minimizes the joint loss (the paper's Eq. 4) λ_rec·L_rec + λ_adv·L_adv with
λ_rec = 0.999 and λ_adv = 0.001, where L_rec (Eq. 1) is the squared error over the predicted region — the hole and
an ``overlap``-pixel rim of context around it, which the official code also predicts (``overlapPred=4``) — weighted
10× on the rim (``overlapL2Weight``) and averaged over the region's pixels, as the official weighted MSE. For a
centre hole the region is its square grown by the rim; for random masks, each hole's square dilation.

The discriminator judges the predicted region (official ``conditionAdv=0``): for centre holes the centred square
of hole + rim, cropped from the prediction (fake) and from the image (real); for random holes, whose region can
lie anywhere, the whole image with the prediction pasted into hole and rim. The adversarial loss is the
``loss=`` group's (nonsaturating = the official BCE), and G's learning rate is 10× D's (official: 10× whenever
0 < λ_rec < 1), set in configs/model/context_encoder.yaml.
"""

from __future__ import annotations

from typing import Callable, Mapping, Optional

import torch
from torch import nn

from gantrain.data.masks import MaskSpec, centre_box, fill_hole, rim
from gantrain.errors import ConfigError
from gantrain.families.base import Family, Grid, Phase, frozen
from gantrain.losses import GANLoss

Tensor = torch.Tensor


class InpaintingFamily(Family):
    """``generator``: holed image → image; ``discriminator``: built here by ``discriminator(size=…)`` for the
    side of the region it judges. ``mask``: the dataset's ``{kind, size, seed}`` (None: no holes to fill)."""

    sample_network = "generator"
    roles = {"generator": ("generator",), "discriminator": ("discriminator",)}

    def __init__(
        self,
        name: str,
        generator: nn.Module,
        discriminator: Callable[..., nn.Module],
        loss: GANLoss,
        mask: Optional[Mapping],
        image_size: int,
        overlap: int = 4,
        rim_weight: float = 10.0,
        reconstruction_weight: float = 0.999,
    ):
        super().__init__(name)
        if mask is None:
            raise ValueError(
                f"{name} fills holes, but this dataset has no masks: use dataset=inpaint_digits, inpaint_folder, or mask "
                "another with configs/dataset/base/inpaint.yaml"
            )
        if loss.lipschitz:
            raise ConfigError(f"model={name} takes no regularizer, so its loss cannot be a Wasserstein one: use loss=nonsaturating")
        if not isinstance(overlap, int) or overlap < 0:
            raise ConfigError(f"model.overlap={overlap!r} must be a whole number of pixels ≥ 0 (the paper: 4)")
        if not 0 < reconstruction_weight <= 1 or rim_weight <= 0:
            raise ConfigError(
                f"model.reconstruction_weight={reconstruction_weight} must be in (0, 1] and model.rim_weight={rim_weight} positive"
            )
        self.mask = MaskSpec.of(mask)
        self.overlap, self.rim_weight, self.reconstruction_weight = overlap, rim_weight, reconstruction_weight
        self.adversarial_loss = loss
        if self.mask.kind == "centre":
            self.region = centre_box(min(self.mask.side(image_size) + 2 * overlap, image_size), image_size)
        else:
            self.region = slice(0, image_size)
        side = self.region.stop - self.region.start
        self.networks.update({"generator": generator, "discriminator": discriminator(size=side)})

    def phases(self, d_steps: int) -> list[Phase]:
        return [Phase("discriminator", ("discriminator",), d_steps), Phase("generator", ("generator",))]

    # ------------------------------------------------------------------ the pieces of Eq. 4
    def predict(self, image: Tensor, mask: Tensor, network: Optional[nn.Module] = None) -> Tensor:
        """The network's whole-image prediction from the holed input."""
        return self.sampling_network(network)(fill_hole(image, mask))

    @staticmethod
    def composite(image: Tensor, mask: Tensor, prediction: Tensor) -> Tensor:
        """The image outside the hole, the prediction inside it."""
        return torch.where(mask, prediction, image)

    def weights(self, mask: Tensor) -> Tensor:
        """L_rec's per-pixel weights: 1 in the hole, ``rim_weight`` on the rim, 0 elsewhere."""
        return mask.float() + self.rim_weight * rim(mask, self.overlap).float()

    def reconstruction(self, prediction: Tensor, image: Tensor, mask: Tensor) -> Tensor:
        """Weighted squared error averaged over the predicted region's pixels (hole + rim) and channels."""
        weights = self.weights(mask)
        region = (weights > 0).float().sum() * prediction.shape[1]
        return (weights * (prediction - image).pow(2)).sum() / region.clamp(min=1)

    def judged(self, prediction: Tensor, image: Tensor, mask: Tensor) -> Tensor:
        """What D sees of a prediction: the region, with the prediction pasted into hole and rim."""
        pasted = torch.where(self.weights(mask) > 0, prediction, image)
        return pasted[..., self.region, self.region]

    def loss(self, phase: str, batch: dict, step: int) -> tuple[Tensor, dict[str, Tensor]]:
        image, mask = batch["image"], batch["mask"]
        d = self.networks["discriminator"]
        if phase == "discriminator":
            with torch.no_grad():
                fake = self.judged(self.predict(image, mask), image, mask)
            d_real, d_fake = d(image[..., self.region, self.region]), d(fake)
            loss = self.adversarial_loss.discriminator(d_real, d_fake)
            return loss, {"loss/D": loss.detach(), "D/real": d_real.detach().mean(), "D/fake": d_fake.detach().mean()}
        prediction = self.predict(image, mask)
        rec = self.reconstruction(prediction, image, mask)
        with frozen(d):
            d_fake = d(self.judged(prediction, image, mask))
            with torch.no_grad():
                d_real = d(image[..., self.region, self.region]) if self.adversarial_loss.generator_uses_real else None
            adversarial = self.adversarial_loss.generator(d_fake, d_real)
        loss = self.reconstruction_weight * rec + (1 - self.reconstruction_weight) * adversarial
        return loss, {"loss/G": loss.detach(), "loss/G_rec": rec.detach(), "loss/G_adv": adversarial.detach()}

    # ------------------------------------------------------------------ sampling, scoring, inference
    def fixed_inputs(self, n: int, generator: torch.Generator, heldout: Optional[dict] = None) -> dict:
        return {"image": heldout["image"], "mask": heldout["mask"]}

    def generate(self, inputs: dict, network: Optional[nn.Module] = None) -> Tensor:
        image, mask = inputs["image"], inputs["mask"]
        return self.composite(image, mask, self.predict(image, mask, network))

    def targets(self, inputs: dict, heldout: Optional[dict] = None) -> dict:
        out = {"image": heldout["image"], "mask": heldout["mask"]}
        return {**out, "label": heldout["label"]} if "label" in heldout else out

    def previews(self, network: nn.Module, inputs: dict, heldout: dict) -> dict[str, Grid]:
        """Groups of input (the hole filled as the network sees it) | output | target."""
        image, mask = inputs["image"], inputs["mask"]
        panels = [fill_hole(image, mask), self.generate(inputs, network), image]
        return {"translation": Grid.of_groups(panels, ["input", "output", "target"])}

    def translate(self, source: Tensor, network: Optional[nn.Module] = None, mask: Optional[Tensor] = None) -> Tensor:
        """``source`` (N×C×H×W in [-1, 1]) inpainted inside ``mask`` (bool N×1×H×W, true = missing; by default the
        dataset's centre hole, which random masks do not have)."""
        if mask is None:
            if self.mask.kind != "centre":
                raise ValueError("translate needs mask= for a model trained on random holes")
            mask = self.mask.masks(range(len(source)), *source.shape[-2:], split=0).to(source.device)
        return self.generate({"image": source, "mask": mask.bool()}, network)
