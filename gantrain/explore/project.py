"""Inversion of a generator: the latent whose image reproduces a target, by gradient descent on a pixel plus
feature-space loss (Zhu et al. 2016, "Generative Visual Manipulation on the Natural Image Manifold", Eq. 1;
Abdal et al. 2019, "Image2StyleGAN", §4, for StyleGAN's w)."""

from __future__ import annotations

from typing import Callable, Optional

import torch

Tensor = torch.Tensor


def project(
    decode: Callable[[Tensor], Tensor],
    targets: Tensor,
    init: Tensor,
    steps: int = 200,
    lr: float = 0.05,
    features: Optional[Callable[[Tensor], Tensor]] = None,
    feature_weight: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """Adam from ``init`` (N, …) on mean ‖G(z) − x‖² + ``feature_weight`` · mean ‖φ(G(z)) − φ(x)‖² per image;
    returns the latents and each image's final pixel mean squared error (N,). The generator's weights are not
    changed (their gradients are left as they were)."""
    if steps < 1:
        raise ValueError(f"steps={steps} must be ≥ 1")
    latent = init.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([latent], lr=lr)
    with torch.no_grad():
        wanted = features(targets) if features is not None else None
    for _ in range(steps):
        images = decode(latent)
        loss = (images - targets).pow(2).flatten(1).mean(1).sum()
        if wanted is not None:
            loss = loss + feature_weight * (features(images) - wanted).pow(2).flatten(1).mean(1).sum()
        (grad,) = torch.autograd.grad(loss, latent)
        latent.grad = grad
        optimizer.step()
    with torch.no_grad():
        error = (decode(latent) - targets).pow(2).flatten(1).mean(1)
    return latent.detach(), error
