"""Fully connected generator and discriminator of the original GAN (Goodfellow et al. 2014).

They work on any data shape (2D points or flattened images). The discriminator uses maxout units as in the
paper (``pieces=1`` gives LeakyReLU units); ``num_classes > 0`` conditions both networks on one-hot labels
as in Mirza & Osindero (2014).

Mode-collapse options of the discriminator (all off by default): ``pack=m`` takes m samples concatenated
per decision (PacGAN, Lin et al. 2018); ``minibatch_features=B`` adds minibatch discrimination at the
penultimate layer (Salimans et al. 2016, §3.2); ``minibatch_stddev=g`` appends the minibatch standard
deviation over groups of g before the last hidden layer (Karras et al. 2018, §3).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from gantrain.models.layers import Maxout, MinibatchDiscrimination, MinibatchStdDev, append_onehot


def _shape(data_shape) -> tuple[int, ...]:
    if not data_shape:
        raise ValueError("the MLP networks need the data shape (dataset.shape)")
    return tuple(int(s) for s in data_shape)


class Generator(nn.Module):
    """z (and a label) → hidden ReLU layers (optionally batch-normalized) → a sample of ``data_shape``."""

    def __init__(
        self,
        latent_dim: int,
        data_shape: Sequence[int],
        hidden: Sequence[int] = (256, 256),
        batch_norm: bool = True,
        bounded: bool = True,
        num_classes: int = 0,
    ):
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.data_shape = _shape(data_shape)
        layers, width = [], latent_dim + num_classes
        for h in hidden:
            layers += [nn.Linear(width, h), nn.BatchNorm1d(h) if batch_norm else nn.Identity(), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, math.prod(self.data_shape)))
        if bounded:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(append_onehot(z, labels, self.num_classes)).view(-1, *self.data_shape)


class Discriminator(nn.Module):
    """A sample (or ``pack`` samples concatenated), and a label → maxout or LeakyReLU layers → one logit."""

    def __init__(
        self,
        data_shape: Sequence[int],
        hidden: Sequence[int] = (256, 256),
        pieces: int = 5,
        dropout: float = 0.0,
        num_classes: int = 0,
        pack: int = 1,
        minibatch_features: int = 0,
        minibatch_kernel_dim: int = 5,
        minibatch_stddev: int = 0,
    ):
        super().__init__()
        if minibatch_stddev and not hidden:
            raise ValueError("minibatch_stddev is appended before the last hidden layer: give the discriminator one")
        self.num_classes, self.pack = num_classes, pack
        width = math.prod(_shape(data_shape)) * pack + num_classes
        layers = []
        for i, h in enumerate(hidden):
            if minibatch_stddev and i == len(hidden) - 1:
                layers.append(MinibatchStdDev(minibatch_stddev))
                width += 1
            layers.append(Maxout(width, h, pieces) if pieces > 1 else nn.Sequential(nn.Linear(width, h), nn.LeakyReLU(0.2)))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        if minibatch_features:
            layers.append(MinibatchDiscrimination(width, minibatch_features, minibatch_kernel_dim))
            width += minibatch_features
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(append_onehot(x.flatten(1), labels, self.num_classes)).squeeze(1)
