"""LAPGAN's networks (Denton, Chintala, Szlam & Fergus 2015): a Laplacian pyramid of generators and discriminators.

The pyramid (§3.1): ``d`` halves an image (2×2 average pooling), ``u`` doubles it (bilinear); the level-k image is
I_k = d(I_{k+1}) (coarse to fine: I_0 smallest) and its band-pass residual h_k = I_k − u(I_{k−1}), so
I_k = u(I_{k−1}) + h_k rebuilds the image from the coarsest one and the residuals (Eq. 3), whatever d and u are.

``LaplacianGenerator`` is the sampling cascade (Eq. 4): the coarsest level G_0 maps z to an I_0 (fully connected,
as the paper's 8×8 CIFAR level); each finer level G_k(z_k, u(Ĩ_{k−1})) is a convolutional net that takes the
upsampled coarser image with a noise plane z_k as one more channel and returns the residual h̃_k, added to it.
``LaplacianDiscriminators`` holds one D_k per level; D_k judges an image at its own size (the residual added to
the upsampled coarse image, as the paper adds l_k to h_k before D's first layer).
Widths: the paper's CIFAR networks (official code) use 1200-unit G_0 / 600-unit D_0 layers and 128 feature maps of
5×5 convolutions at the finer levels; the configs are CPU-sized (configs/model/lapgan.yaml says how to get these).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gantrain.models.mlp import Discriminator as MLPDiscriminator
from gantrain.models.mlp import Generator as MLPGenerator

Tensor = torch.Tensor


def downsample(x: Tensor) -> Tensor:
    """d: 2×2 average pooling."""
    return F.avg_pool2d(x, 2)


def upsample(x: Tensor) -> Tensor:
    """u: 2× bilinear upsampling."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def gaussian_pyramid(x: Tensor, levels: int) -> list[Tensor]:
    """[I_0, …, I_{levels−1}]: ``x`` (= I_{levels−1}) and its successive halvings, coarsest first."""
    images = [x]
    for _ in range(levels - 1):
        images.insert(0, downsample(images[0]))
    return images


def laplacian_pyramid(x: Tensor, levels: int) -> tuple[Tensor, list[Tensor]]:
    """(I_0, [h_1, …, h_{levels−1}]): the coarsest image and the band-pass residuals h_k = I_k − u(I_{k−1})."""
    images = gaussian_pyramid(x, levels)
    return images[0], [fine - upsample(coarse) for coarse, fine in zip(images[:-1], images[1:])]


def reconstruct(base: Tensor, residuals: Sequence[Tensor]) -> Tensor:
    """I_k = u(I_{k−1}) + h_k from I_0 up (Eq. 3)."""
    x = base
    for h in residuals:
        x = upsample(x) + h
    return x


def level_sizes(image_size: int, base_size: int) -> list[int]:
    """The pyramid's image sizes, coarsest first: base_size, 2·base_size, …, image_size."""
    if not image_size:
        raise ValueError("LAPGAN makes images, but this dataset gives points: use model=mlp for 2D data")
    steps = math.log2(image_size / base_size) if image_size >= base_size else -1
    if base_size < 2 or steps < 1 or steps != int(steps):
        raise ValueError(
            f"LAPGAN doubles from model.base_size={base_size} up to the image size {image_size}: "
            f"use an image size of base_size × 2^k with k ≥ 1 (e.g. base_size=4 for 16 px, 8 for 32 px)"
        )
    return [base_size * 2**k for k in range(int(steps) + 1)]


class ResidualGenerator(nn.Module):
    """G_k (k ≥ 1): [u(I_{k−1}), z_k] → ``layers`` 5×5 convolutions (ReLU between, batch norm on hidden ones) →
    the residual h̃_k, linear (residuals are signed)."""

    def __init__(self, channels: int, width: int = 128, layers: int = 3, noise_planes: int = 1):
        super().__init__()
        self.noise_planes = noise_planes
        blocks, c_in = [], channels + noise_planes
        for _ in range(layers - 1):
            blocks += [nn.Conv2d(c_in, width, 5, padding=2, bias=False), nn.BatchNorm2d(width), nn.ReLU(True)]
            c_in = width
        blocks.append(nn.Conv2d(c_in, channels, 5, padding=2))
        self.net = nn.Sequential(*blocks)

    def forward(self, coarse_up: Tensor, noise: Tensor) -> Tensor:
        return self.net(torch.cat([coarse_up, noise], dim=1))


class ImageDiscriminator(nn.Module):
    """D_k (k ≥ 1): an image at the level's size → two 5×5 convolutions (the second strided), ReLU, dropout →
    one logit."""

    def __init__(self, channels: int, size: int, width: int = 128, dropout: float = 0.5):
        super().__init__()
        self.size = size
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 5, padding=2),
            nn.ReLU(True),
            nn.Conv2d(width, width, 5, stride=2, padding=2),
            nn.ReLU(True),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(width * (size // 2) ** 2, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)


class LaplacianGenerator(nn.Module):
    """The cascade G_0, G_1, …: ``forward(z, noises)`` samples coarse to fine (Eq. 4); ``noises[k − 1]`` is z_k,
    a noise plane at level k's size."""

    def __init__(
        self,
        latent_dim: int,
        channels: int,
        image_size: int,
        base_size: int = 8,
        base_hidden: Sequence[int] = (1200, 1200),
        width: int = 128,
        layers: int = 3,
    ):
        super().__init__()
        self.latent_dim, self.channels = latent_dim, channels
        self.sizes = level_sizes(image_size, base_size)
        self.base = MLPGenerator(latent_dim, (channels, base_size, base_size), hidden=base_hidden, bounded=True)
        self.residuals = nn.ModuleList(ResidualGenerator(channels, width, layers) for _ in self.sizes[1:])

    def residual(self, level: int, coarse: Tensor, noise: Tensor) -> Tensor:
        """u(coarse) + G_level(z_level, u(coarse)): level ``level``'s image from the coarser one."""
        up = upsample(coarse)
        return up + self.residuals[level - 1](up, noise)

    def forward(self, z: Tensor, noises: Sequence[Tensor]) -> Tensor:
        x = self.base(z)
        for level, noise in enumerate(noises, start=1):
            x = self.residual(level, x, noise)
        return x


class LaplacianDiscriminators(nn.Module):
    """One discriminator per level: D_0 fully connected (LeakyReLU units, dropout),
    D_k convolutional; ``forward(x, level)`` judges ``x`` at that level's size."""

    def __init__(
        self,
        channels: int,
        image_size: int,
        base_size: int = 8,
        base_hidden: Sequence[int] = (600, 600),
        width: int = 128,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.sizes = level_sizes(image_size, base_size)
        base = MLPDiscriminator((channels, base_size, base_size), hidden=base_hidden, pieces=1, dropout=dropout)
        self.levels = nn.ModuleList([base, *(ImageDiscriminator(channels, s, width, dropout) for s in self.sizes[1:])])

    def forward(self, x: Tensor, level: int) -> Tensor:
        if x.shape[-1] != self.sizes[level]:
            raise ValueError(f"D_{level} judges {self.sizes[level]}×{self.sizes[level]} images, not {x.shape[-1]}×{x.shape[-1]}")
        return self.levels[level](x)
