"""Convolutional encoder q(z|x) and decoder p(x|z) of a VAE (Kingma & Welling 2014), in DCGAN-style blocks.

The encoder halves the resolution with strided 4×4 convolutions (batch norm, LeakyReLU 0.2) down to 4×4 and
maps the features linearly to the mean and log-variance of a diagonal Gaussian over ``latent_dim`` latents.
The decoder mirrors it: a linear map to a 4×4 feature map, fractionally-strided 4×4 convolutions (batch norm,
ReLU) up to the image, and a last layer with no activation: it outputs the likelihood's parameters (the
Gaussian mean, or Bernoulli logits). Widths double as the resolution halves, from ``width`` up to
``max_width``. Images are 2^k × 2^k with k ≥ 3.
"""

from __future__ import annotations

import torch
from torch import nn

from gantrain.models.layers import pyramid_levels, pyramid_widths


class Encoder(nn.Module):
    def __init__(self, channels: int, image_size: int, latent_dim: int, width: int = 32, max_width: int = 256):
        super().__init__()
        pyramid_levels("the VAE", channels, image_size)
        ch = pyramid_widths(image_size // 2, width, max_width)[::-1]  # image_size/2 … 4×4
        layers = [nn.Conv2d(channels, ch[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for c_in, c_out in zip(ch[:-1], ch[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(ch[-1] * 16, 2 * latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x), each (N, latent_dim)."""
        mean, logvar = self.head(self.features(x).flatten(1)).chunk(2, dim=1)
        return mean, logvar


class Decoder(nn.Module):
    def __init__(self, channels: int, image_size: int, latent_dim: int, width: int = 32, max_width: int = 256):
        super().__init__()
        pyramid_levels("the VAE", channels, image_size)
        ch = pyramid_widths(image_size // 2, width, max_width)  # 4×4 … image_size/2
        self.latent_dim = latent_dim
        self.project = nn.Sequential(
            nn.Linear(latent_dim, ch[0] * 16), nn.Unflatten(1, (ch[0], 4, 4)), nn.BatchNorm2d(ch[0]), nn.ReLU(True)
        )
        layers = []
        for c_in, c_out in zip(ch[:-1], ch[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers.append(nn.ConvTranspose2d(ch[-1], channels, 4, 2, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """The likelihood's parameters per pixel (Gaussian mean or Bernoulli logits), (N, C, H, W)."""
        return self.net(self.project(z))


class VAE(nn.Module):
    """The encoder and decoder as one network (one optimizer, one EMA copy)."""

    def __init__(self, channels: int, image_size: int, latent_dim: int = 16, width: int = 32, max_width: int = 256):
        super().__init__()
        if latent_dim < 1:
            raise ValueError(f"latent_dim={latent_dim} must be a positive integer")
        self.latent_dim = latent_dim
        self.encoder = Encoder(channels, image_size, latent_dim, width, max_width)
        self.decoder = Decoder(channels, image_size, latent_dim, width, max_width)
