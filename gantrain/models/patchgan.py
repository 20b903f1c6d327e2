"""PatchGAN discriminators (Isola et al. 2017, §3.2.2), shared by the image-to-image methods.

``PatchGAN`` is the official pix2pix/CycleGAN ``NLayerDiscriminator``: a 4×4 stride-2 conv with LeakyReLU 0.2 and
no normalization, ``n_layers − 1`` more stride-2 convs doubling the width (at most 8×), one stride-1 conv, and a
stride-1 conv to one logit per patch; every conv 4×4 with padding 1. Each logit sees a patch of
``receptive_field`` pixels: 16 for ``n_layers=1``, 34 for 2, 70 for 3 (the paper's 70×70 PatchGAN, 30×30 logits at
256 px). Convs before a batch norm have no bias (the norm's shift replaces it), as in the official code.

``MultiScale`` is pix2pixHD's / SPADE's multi-scale discriminator (Wang et al. 2018, §3.2): the same architecture
applied to the image and to copies average-pooled by 2, 4, …; ``features`` gives every block's output at every
scale, for the feature-matching loss.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from gantrain.models.layers import normal_init

Tensor = torch.Tensor


def norm_layer(norm: str, channels: int) -> nn.Module:
    """``batch`` (BatchNorm2d), ``instance`` (InstanceNorm2d without affine parameters or running statistics, the
    official code's choice) or ``none``."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"norm={norm!r}: use batch, instance or none")


def receptive_field(module: nn.Module) -> int:
    """The receptive field in pixels of one output of a chain of convolutions (every Conv2d of ``module``, in
    order): 1 + Σ (kernel − 1) · (product of the earlier strides)."""
    field, jump = 1, 1
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            field += (m.kernel_size[0] - 1) * jump
            jump *= m.stride[0]
    return field


class PatchGAN(nn.Module):
    """One logit per overlapping patch of the input (N×C×H×W → N×1×h×w); ``in_channels`` counts every channel D
    sees (a conditional D gets the input and the output concatenated: 6 for RGB → RGB)."""

    def __init__(self, in_channels: int, width: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers={n_layers} must be at least 1")
        bias = norm != "batch"

        def block(c_in: int, c_out: int, stride: int, normed: bool = True) -> nn.Sequential:
            layers = [nn.Conv2d(c_in, c_out, 4, stride, 1, bias=bias or not normed)]
            if normed:
                layers.append(norm_layer(norm, c_out))
            return nn.Sequential(*layers, nn.LeakyReLU(0.2, inplace=True))

        blocks = [block(in_channels, width, 2, normed=False)]
        c = width
        for n in range(1, n_layers):
            blocks.append(block(c, width * min(2**n, 8), 2))
            c = width * min(2**n, 8)
        blocks.append(block(c, width * min(2**n_layers, 8), 1))
        c = width * min(2**n_layers, 8)
        blocks.append(nn.Sequential(nn.Conv2d(c, 1, 4, 1, 1)))
        self.blocks = nn.ModuleList(blocks)
        normal_init(self)

    def features(self, x: Tensor) -> list[Tensor]:
        """Every block's output, the last one being the patch logits."""
        out = []
        for block in self.blocks:
            x = block(x)
            out.append(x)
        return out

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)[-1]


class MultiScale(nn.Module):
    """``num_scales`` discriminators made by ``make()``, the k-th judging the input average-pooled k times by 2
    (3×3 window, stride 2, padding not counted)."""

    def __init__(self, make: Callable[[], nn.Module], num_scales: int = 2):
        super().__init__()
        if num_scales < 1:
            raise ValueError(f"num_scales={num_scales} must be at least 1")
        self.scales = nn.ModuleList(make() for _ in range(num_scales))
        self.down = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def features(self, x: Tensor) -> list[list[Tensor]]:
        out = []
        for i, d in enumerate(self.scales):
            if i:
                x = self.down(x)
            out.append(d.features(x))
        return out

    def forward(self, x: Tensor) -> list[Tensor]:
        """The patch logits at each scale."""
        return [f[-1] for f in self.features(x)]
