"""BigGAN (Brock et al. 2019): a class-conditional GAN (gantrain/models/biggan.py) trained as the GAN family
trains (hinge loss, spectral norm in G and D, orthogonal regularization, two D steps: model=biggan's config),
sampled with the truncation trick (§3.1): z drawn from a truncated normal, every entry outside [−τ, τ]
drawn again until it falls inside (a resampling, not a clamp), τ = ``truncation`` (null: the untruncated prior
the networks were trained on). Samples and metrics use it; the ``truncation`` preview shows a grid over τ.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from gantrain.families.gan import GANFamily

Tensor = torch.Tensor


def truncated_normal(shape: tuple[int, ...], tau: float, generator: Optional[torch.Generator] = None, device=None) -> Tensor:
    """N(0, I) restricted to [−τ, τ]^d: entries outside are redrawn (with ``generator``) until none is."""
    if not tau > 0:
        raise ValueError(f"model.truncation={tau} must be positive (or null for no truncation)")
    z = torch.randn(shape, generator=generator, device=device)
    outside = z.abs() > tau
    while outside.any():
        z[outside] = torch.randn(int(outside.sum()), generator=generator, device=device)
        outside = z.abs() > tau
    return z


class BigGAN(GANFamily):
    def __init__(self, *args, truncation: Optional[float] = None, preview_truncations: Sequence[float] = (2.0, 1.0, 0.5, 0.25), **kwargs):
        super().__init__(*args, **kwargs)
        if self.condition != "label" or self.latent != "normal":
            raise ValueError("BigGAN is class-conditional (model.condition=label) with a normal prior (model.latent=normal)")
        for tau in [truncation] * (truncation is not None) + list(preview_truncations):
            if not tau > 0:
                raise ValueError(f"a truncation threshold of {tau} must be positive")
        self.truncation, self.preview_truncations = truncation, list(preview_truncations)

    def _latents(self, n: int, generator: torch.Generator, tau: Optional[float]) -> Tensor:
        shape = (n, self.latent_dim)
        return torch.randn(shape, generator=generator) if tau is None else truncated_normal(shape, tau, generator)

    def fixed_inputs(self, n: int, generator: torch.Generator, heldout: Optional[dict] = None) -> dict:
        return {**super().fixed_inputs(n, generator, heldout), "z": self._latents(n, generator, self.truncation)}

    def previews(self, network, inputs: dict, heldout: dict) -> dict[str, Tensor]:
        """``truncation``: one row per τ of ``preview_truncations`` (as many columns, the classes in turn, a square
        grid), each row's z drawn from the same seed, so entries inside every threshold are shared."""
        k = len(self.preview_truncations)
        if not k:
            return {}
        labels = (torch.arange(k) % self.num_classes).to(self.device)
        rows = [self._latents(k, torch.Generator().manual_seed(0), tau).to(self.device) for tau in self.preview_truncations]
        return {"truncation": torch.cat([network(z, labels) for z in rows])}
