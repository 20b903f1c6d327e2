"""Adversarial losses as small pure functions of discriminator outputs.

A ``GANLoss`` pairs ``discriminator(real, fake)`` and ``generator(fake, real)``: each maps the raw outputs
(logits or critic values) of D on a real and a generated batch to the scalar that network minimizes.
With D(x) = σ(l(x)), log D = −softplus(−l) and log(1 − D) = −softplus(l), which keeps them stable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


@dataclass(frozen=True)
class GANLoss:
    """``generator_uses_real``: G's loss reads D's outputs on real data (relativistic losses)."""

    discriminator: Callable[[Tensor, Tensor], Tensor]
    generator: Callable[[Tensor, Tensor], Tensor]
    generator_uses_real: bool = False


def minimax_discriminator(real: Tensor, fake: Tensor) -> Tensor:
    """−E[log D(x)] − E[log(1 − D(G(z)))]: D ascends V(D, G) of Goodfellow et al. (2014), Eq. 1."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def minimax_generator(fake: Tensor, real: Tensor | None = None) -> Tensor:
    """E[log(1 − D(G(z)))]: G descends Eq. 1 itself; its gradient vanishes when D rejects G's samples."""
    return -F.softplus(fake).mean()


def nonsaturating_generator(fake: Tensor, real: Tensor | None = None) -> Tensor:
    """−E[log D(G(z))]: the heuristic of Goodfellow et al. (2014), §3, with strong gradients early on."""
    return F.softplus(-fake).mean()


def minimax() -> GANLoss:
    return GANLoss(minimax_discriminator, minimax_generator)


def nonsaturating() -> GANLoss:
    return GANLoss(minimax_discriminator, nonsaturating_generator)
