"""pix2pix's U-Net generator (Isola et al. 2017, §3.2.1 and the official ``UnetGenerator``).

An encoder–decoder of ``num_downs`` 4×4 stride-2 convs down to 1×1 and as many 4×4 stride-2 transposed convs
back up, where every decoder stage takes the concatenation of the stage below's output with the encoder's
activation of the same size (the skips). Built as the official ``UnetSkipConnectionBlock`` recursion, block i
(from the outside) mapping ``outer`` channels to ``inner`` ones and back:

- down: LeakyReLU(0.2) → conv → norm; up: ReLU → transposed conv (of the 2·inner concatenated channels) → norm;
  each block's output is cat(h, up(sub-block(down(h)))) with h = LeakyReLU(input): the skip carries the
  activated input, as the official code's in-place LeakyReLU makes it do.
- outermost: no LeakyReLU or norm on the way down, Tanh instead of a norm on the way up, no concatenation.
- innermost (1×1): no norm on the way down and no sub-block, so its transposed conv takes ``inner`` channels.
- Widths ngf, 2ngf, 4ngf, then 8ngf for every further block; dropout 0.5 after the up path of each 8ngf → 8ngf
  block except the innermost: the ``num_downs − 5`` blocks the official code puts it on (three for
  ``unet_256``, num_downs 8). At 32 px (num_downs 5) there is no such block, so the generator has no dropout and
  is deterministic; at 64 px one block has it.
- Convs and transposed convs followed by batch norm have no bias, as in the official code — which also leaves
  the outermost down conv without one: ``unet_256`` (3 → 3, ngf 64, batch norm) has 54,413,955 parameters.

Dropout is the generator's only noise: the paper keeps it active at test time (§3.1), ``dropout_at_test=True``
(default); ``False`` makes eval-mode outputs deterministic.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from gantrain.models.layers import normal_init
from gantrain.models.patchgan import PatchGAN, norm_layer

Tensor = torch.Tensor


class Dropout(nn.Module):
    """Dropout with rate ``p`` in training mode and, with ``at_test``, in eval mode too."""

    def __init__(self, p: float, at_test: bool):
        super().__init__()
        self.p, self.at_test = p, at_test

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, training=self.training or self.at_test)


class SkipBlock(nn.Module):
    """One level of the U-Net: ``down`` → ``sub`` → ``up``, its output concatenated with its input unless outermost."""

    def __init__(self, outer: int, inner: int, sub: Optional[nn.Module], norm: str, dropout: Optional[Dropout], in_channels: int = 0):
        super().__init__()
        bias = norm != "batch"
        self.outermost, innermost = in_channels > 0, sub is None
        down_conv = nn.Conv2d(in_channels or outer, inner, 4, 2, 1, bias=bias)
        up_in = inner if innermost else 2 * inner
        if self.outermost:
            down = [down_conv]
            up = [nn.ReLU(), nn.ConvTranspose2d(up_in, outer, 4, 2, 1), nn.Tanh()]
        else:
            down = [down_conv] + ([] if innermost else [norm_layer(norm, inner)])
            up = [nn.ReLU(), nn.ConvTranspose2d(up_in, outer, 4, 2, 1, bias=bias), norm_layer(norm, outer)]
        self.act = nn.Identity() if self.outermost else nn.LeakyReLU(0.2)
        self.model = nn.Sequential(*down, *([] if innermost else [sub]), *up, *([dropout] if dropout is not None else []))

    def forward(self, x: Tensor) -> Tensor:
        h = self.act(x)
        return self.model(h) if self.outermost else torch.cat([h, self.model(h)], 1)


class UNetGenerator(nn.Module):
    """G(x): ``in_channels`` → ``out_channels`` at ``image_size`` (a multiple of 2^num_downs); ``num_downs``
    defaults to log2(image_size) (down to 1×1, the paper's choice) and must be at least 5."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        image_size: int,
        num_downs: Optional[int] = None,
        width: int = 64,
        norm: str = "batch",
        dropout: float = 0.5,
        dropout_at_test: bool = True,
    ):
        super().__init__()
        if num_downs is None:
            num_downs = image_size.bit_length() - 1
        if num_downs < 5:
            raise ValueError(
                f"the U-Net halves the image at least 5 times (to 1×1 at 32 px), but dataset.image_size={image_size} allows "
                f"{max(num_downs, 0)}: use 32, 64, 128, 256 … px"
            )
        if image_size % 2**num_downs:
            raise ValueError(
                f"dataset.image_size={image_size} is no multiple of 2^{num_downs} (the U-Net's num_downs={num_downs} halvings): "
                f"use a power of two of at least 32 px"
            )
        self.image_size, self.num_downs = image_size, num_downs
        block = SkipBlock(width * 8, width * 8, None, norm, None)
        for _ in range(num_downs - 5):
            block = SkipBlock(width * 8, width * 8, block, norm, Dropout(dropout, dropout_at_test) if dropout else None)
        for mult in (4, 2, 1):
            block = SkipBlock(width * mult, width * mult * 2, block, norm, None)
        self.model = SkipBlock(out_channels, width, block, norm, None, in_channels=in_channels)
        normal_init(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def conditional_patchgan(condition_channels: int, channels: int, width: int = 64, n_layers: int = 3, norm: str = "batch") -> PatchGAN:
    """pix2pix's conditional D (§3.2.2): a PatchGAN on cat(condition, image), condition_channels + channels in."""
    return PatchGAN(condition_channels + channels, width, n_layers, norm)
