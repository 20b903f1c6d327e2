"""2D Gaussian mixtures of the mode-collapse benchmarks (Metz et al. 2017; Lin et al., PacGAN, 2018)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from gantrain.data import DataBundle, DataSpec, InMemory


@dataclass(frozen=True)
class GaussianMixture:
    """Equal-weight isotropic Gaussians: ``means`` (M×2) with a common ``std``."""

    means: torch.Tensor
    std: float

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        which = torch.randint(len(self.means), (n,), generator=generator)
        return self.means[which] + self.std * torch.randn(n, self.means.shape[1], generator=generator)


def ring_means(modes: int = 8, radius: float = 1.0) -> torch.Tensor:
    """``modes`` means on a circle at angles 2πi/modes, i = 0..modes-1."""
    angles = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


def grid_means(side: int = 5, spacing: float = 2.0) -> torch.Tensor:
    """A side×side grid of means centred on the origin, ``spacing`` apart ({-4,-2,0,2,4}² by default)."""
    ticks = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    return torch.cartesian_prod(ticks, ticks)


def _bundle(mixture: GaussianMixture, n: int, heldout: int, seed: int) -> DataBundle:
    g = torch.Generator().manual_seed(seed)
    return DataBundle(
        train=InMemory({"image": mixture.sample(n, g)}),
        heldout=InMemory({"image": mixture.sample(heldout, g)}),
        spec=DataSpec(kind="points", shape=(mixture.means.shape[1],)),
        mixture=mixture,
    )


def ring8(n: int = 100_000, heldout: int = 2_500, std: float = 0.01, radius: float = 1.0, seed: int = 0):
    """8 Gaussians on the unit circle, std 0.01 (PacGAN's ring); ``n`` training points drawn once per seed."""
    return _bundle(GaussianMixture(ring_means(8, radius), std), n, heldout, seed)


def grid25(n: int = 100_000, heldout: int = 2_500, std: float = 0.05, spacing: float = 2.0, seed: int = 0):
    """25 Gaussians at {-4, -2, 0, 2, 4}², std 0.05 (PacGAN's grid)."""
    return _bundle(GaussianMixture(grid_means(5, spacing), std), n, heldout, seed)
