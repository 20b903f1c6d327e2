"""Regularizers of the discriminator (and generator): penalties, constraints and parametrizations.

A regularizer implements any of these hooks; the GAN family calls each one at its point of the step:

- ``setup(networks)``: once, before the optimizers exist (e.g. to add a parametrization);
- ``discriminator_penalty(critic, real, fake, step)``: a term added to D's loss, where ``critic`` maps a
  batch of samples to D's adversarial outputs (labels already bound);
- ``generator_penalty(generator, step)``: a term added to G's loss;
- ``after_update(phase, networks)``: after the optimizer step of ``phase`` (e.g. to clip weights).
"""

from __future__ import annotations

from typing import Callable, Mapping, Optional

import torch
from torch import nn

Tensor = torch.Tensor


class Regularizer:
    """Base class: every hook does nothing until a subclass overrides it."""

    def setup(self, networks: Mapping[str, nn.Module]) -> None:
        pass

    def discriminator_penalty(self, critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, step: int) -> Optional[Tensor]:
        return None

    def generator_penalty(self, generator: nn.Module, step: int) -> Optional[Tensor]:
        return None

    def after_update(self, phase: str, networks: Mapping[str, nn.Module]) -> None:
        pass
