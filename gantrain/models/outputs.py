"""What a discriminator returns: one record, so every method reads the same fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

Tensor = torch.Tensor


@dataclass
class DiscriminatorOutput:
    """A discriminator's verdict on a batch: ``adversarial`` logits (one per decision) and, where the network has
    the head, ``classes`` (AC-GAN's class logits, Odena et al. 2017), ``codes`` (InfoGAN's Q-head parameters by
    code name, Chen et al. 2016) and ``features`` (intermediate activations, for feature matching). A network
    that returns a bare tensor returns the adversarial logits."""

    adversarial: Tensor
    classes: Optional[Tensor] = None
    codes: Optional[dict[str, Tensor]] = None
    features: Optional[list[Tensor]] = None

    @classmethod
    def of(cls, out) -> "DiscriminatorOutput":
        return out if isinstance(out, cls) else cls(out)
