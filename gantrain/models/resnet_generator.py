"""CycleGAN's ResNet generator (Zhu et al. 2017, Appendix 7.2; Johnson et al. 2016's transformer network), as the
official ``ResnetGenerator``.

c7s1-ngf (reflection pad 3, 7×7 conv, norm, ReLU), d-2ngf and d-4ngf (3×3 stride-2 convs, norm, ReLU),
``blocks`` residual blocks R-4ngf (x + [reflection pad 1, 3×3 conv, norm, ReLU, reflection pad 1, 3×3 conv,
norm](x)), u-2ngf and u-ngf (3×3 stride-2 transposed convs with output padding 1, norm, ReLU), then reflection pad
3, a 7×7 conv to the output channels and Tanh. Instance norm by default (no affine parameters, as the official
code); convs followed by batch norm have no bias, every other conv has one. ``resnet_9blocks`` (the paper's 256 px
network: 3 → 3, ngf 64, 9 blocks, instance norm) has 11,378,179 parameters; the paper uses 6 blocks at 128 px.
"""

from __future__ import annotations

import torch
from torch import nn

from gantrain.models.layers import normal_init
from gantrain.models.patchgan import norm_layer

Tensor = torch.Tensor
DOWNSAMPLINGS = 2


class ResnetBlock(nn.Module):
    """x + conv-norm-ReLU-conv-norm(x), each 3×3 conv after a reflection pad of 1."""

    def __init__(self, channels: int, norm: str):
        super().__init__()
        bias = norm != "batch"
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            norm_layer(norm, channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            norm_layer(norm, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Image (``in_channels``) → image (``out_channels``) of the same size, in [-1, 1]; initialized N(0, 0.02)."""

    def __init__(self, in_channels: int, out_channels: int, width: int = 64, blocks: int = 9, norm: str = "instance"):
        super().__init__()
        if width < 1 or blocks < 0:
            raise ValueError(f"width={width} and blocks={blocks}: use a width of 1 or more and 0 or more residual blocks")
        bias = norm != "batch"
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7, bias=bias), norm_layer(norm, width), nn.ReLU(True)]
        for i in range(DOWNSAMPLINGS):
            c = width * 2**i
            layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=bias), norm_layer(norm, 2 * c), nn.ReLU(True)]
        layers += [ResnetBlock(width * 2**DOWNSAMPLINGS, norm) for _ in range(blocks)]
        for i in reversed(range(DOWNSAMPLINGS)):
            c = width * 2 ** (i + 1)
            layers += [
                nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                norm_layer(norm, c // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.in_channels, self.out_channels = in_channels, out_channels
        normal_init(self)

    @staticmethod
    def check_size(image_size: int) -> None:
        """Refuse a size the network cannot map to itself: the two stride-2 stages need a multiple of 4, and the
        residual blocks' reflection padding a bottleneck of at least 2×2."""
        step = 2**DOWNSAMPLINGS
        if image_size % step or image_size < 2 * step:
            raise ValueError(
                f"image_size={image_size}: the ResNet generator halves the image twice and back, so it takes multiples "
                f"of {step} from {2 * step} px (e.g. {max(2 * step, image_size // step * step)})"
            )

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)
