"""Small layers shared by several model families."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def append_onehot(x: torch.Tensor, labels: torch.Tensor | None, num_classes: int) -> torch.Tensor:
    """Concatenate one-hot labels to ``x`` along dim 1: as features for vectors, as constant planes for maps
    (the conditioning of Mirza & Osindero 2014, "Conditional GANs")."""
    if num_classes == 0:
        return x
    if labels is None:
        raise ValueError("this network is conditional: pass class labels")
    onehot = F.one_hot(labels, num_classes).to(x.dtype)
    if x.dim() == 4:
        onehot = onehot[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
    return torch.cat([x, onehot], dim=1)


def pyramid_levels(model: str, channels, image_size) -> int:
    """Number of 2× resolution steps from 4×4 up to a 2^k×2^k image (k ≥ 3); refuses in one sentence what a
    convolutional pyramid cannot make (points, other sizes)."""
    if not channels or not image_size:
        raise ValueError(f"{model} makes images, but this dataset gives points: use model=mlp for 2D data")
    if image_size < 8 or image_size & (image_size - 1):
        raise ValueError(f"{model} makes 2^k×2^k images with k ≥ 3; image_size={image_size} is not one (try 16 or 32)")
    return int(math.log2(image_size)) - 2


def pyramid_widths(image_size: int, width: int, max_width: int) -> list[int]:
    """Channels at 4×4, 8×8, …, ``image_size``: ``width`` at ``image_size``, doubling per halving, capped."""
    top = int(math.log2(image_size)) - 2
    return [min(max_width, width * 2 ** (top - level)) for level in range(top + 1)]


def normal_init(module: nn.Module, std: float = 0.02) -> nn.Module:
    """The initialization of DCGAN (Radford et al. 2016, §4), InfoGAN's and the pix2pix/CycleGAN code's ('normal'):
    conv and linear weights N(0, std), biases 0; batch-norm scales N(1, std), shifts 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module


class Maxout(nn.Module):
    """Maxout unit (Goodfellow et al. 2013): the max over ``pieces`` affine maps, the original GAN's D units."""

    def __init__(self, in_features: int, out_features: int, pieces: int):
        super().__init__()
        self.pieces = pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).unflatten(1, (-1, self.pieces)).amax(dim=2)


def norm_2d(kind: str, channels: int) -> nn.Module:
    """Normalization of a conv discriminator: "batch", "layer" (over C×H×W, for gradient penalties) or "none"."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm={kind!r}: choose batch, layer or none")


class MinibatchStdDev(nn.Module):
    """Minibatch standard deviation (Karras et al. 2018, "Progressive Growing of GANs", §3).

    Samples are split into groups of ``group_size`` (the largest divisor of the batch not above it); within a
    group, the standard deviation of every feature (and pixel) is averaged into one number, appended to each
    of the group's samples as one more channel (maps) or feature (vectors). D can then see a batch's variety.
    """

    def __init__(self, group_size: int = 4):
        super().__init__()
        if not isinstance(group_size, int) or isinstance(group_size, bool) or group_size < 1:
            raise ValueError(f"minibatch_stddev={group_size!r} is a group size: use a positive integer (0 = off)")
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        g = math.gcd(self.group_size, n)
        groups = x.float().view(g, n // g, *x.shape[1:])  # sample i is in group i % (n // g)
        # the biased variance over the group, written out: torch.var's reduction over the outer dimension is
        # several times slower on CPUs, forward and (double) backward, than these elementwise operations
        variance = (groups - groups.mean(dim=0)).square().mean(dim=0)
        std = (variance + 1e-8).sqrt().flatten(1).mean(dim=1)  # one per group
        extra = std.repeat(g).to(x.dtype).view(n, 1, *([1] * (x.dim() - 2))).expand(n, 1, *x.shape[2:])
        return torch.cat([x, extra], dim=1)


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al. 2016, "Improved Techniques for Training GANs", §3.2).

    Features f(x_i) ∈ R^A are projected by a tensor T ∈ R^{A×B×C} to rows M_i ∈ R^{B×C};
    c_b(x_i, x_j) = exp(−‖M_{i,b} − M_{j,b}‖₁) and o(x_i)_b = Σ_j c_b(x_i, x_j) over the whole batch
    (j = i included, as in the paper). The output is [f(x_i), o(x_i)]: A + B features. Identical samples
    give o = n (the batch size) in every coordinate; samples far apart give o → 1.
    """

    def __init__(self, in_features: int, out_features: int, kernel_dim: int = 5):
        super().__init__()
        for key, value in (("minibatch_features", out_features), ("minibatch_kernel_dim", kernel_dim)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{key}={value!r} must be a positive integer")
        self.out_features, self.kernel_dim = out_features, kernel_dim
        self.T = nn.Parameter(torch.randn(in_features, out_features * kernel_dim) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = (x @ self.T).view(-1, self.out_features, self.kernel_dim)  # N×B×C
        l1 = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(dim=3)  # N×N×B
        return torch.cat([x, torch.exp(-l1).sum(dim=1)], dim=1)
