"""The context encoder's networks (Pathak et al. 2016, and the official train.lua), sized for 8–64 px.

``ContextEncoder``, an encoder–decoder, as the official code (which implements the bottleneck as a plain
4×4 convolution to ``nBottleneck`` channels, not the channel-wise fully connected layer): the encoder is 4×4
stride-2 convolutions (the first without batch norm), LeakyReLU 0.2, down to 4×4, then a 4×4 convolution to a
1×1 bottleneck, batch norm + LeakyReLU; the decoder a 4×4 up-convolution to 4×4 and 4×4 stride-2 up-convolutions
with batch norm + ReLU, tanh at the end. Encoder channels follow the official nef, nef, 2nef, 4nef, 8nef; the
decoder halves its channels at each doubling down to ngf. Convolutions have no bias (the official code zeroes every
bias before each update); weights N(0, 0.02), batch-norm scales N(1, 0.02).

One change: the official decoder outputs the 64×64 centre region of a 128 px image only; this one outputs the
whole image, of which the family uses the hole and its overlap rim, so the same network serves random masks.

``RegionDiscriminator``: DCGAN's discriminator as in the official code (4×4 stride-2 convolutions, no batch norm on
the first, LeakyReLU 0.2, a final convolution to one logit) on the predicted region, of any side: it halves the
side while it is at least 8, then one convolution covers what is left (4×4 for a power of two, as DCGAN).
"""

from __future__ import annotations

from torch import nn

from gantrain.models.layers import normal_init


def _log2_exact(size: int, what: str) -> int:
    if size is None:
        raise ValueError("the context encoder fills holes in images, but this dataset gives points")
    levels = size.bit_length() - 1 if isinstance(size, int) else 0
    if levels < 3 or size != 1 << levels:
        raise ValueError(f"{what}={size}: the context encoder halves the image down to 4×4; use a power of two ≥ 8 (32 or 64)")
    return levels - 2


def _down(c_in: int, c_out: int, norm: bool) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), *([nn.BatchNorm2d(c_out)] if norm else []), nn.LeakyReLU(0.2)]


class ContextEncoder(nn.Module):
    """Holed image (C×S×S, S a power of two ≥ 8) → the whole image predicted (C×S×S, tanh).

    width: nef = ngf, channels of the first encoder and last decoder stage; max_width caps them; bottleneck:
    the code's channels (official: 4000 at 128 px; 512 here suits 32 px)."""

    def __init__(self, channels: int, image_size: int, width: int = 64, max_width: int = 512, bottleneck: int = 512):
        super().__init__()
        levels = _log2_exact(image_size, "dataset.image_size")
        if min(width, max_width, bottleneck) < 1:
            raise ValueError(f"width={width}, max_width={max_width}, bottleneck={bottleneck} must be positive")
        enc = [min(width * (1 << max(i - 1, 0)), max_width) for i in range(levels)]  # nef, nef, 2nef, 4nef, …
        layers = _down(channels, enc[0], norm=False)
        for c_in, c_out in zip(enc, enc[1:]):
            layers += _down(c_in, c_out, norm=True)
        layers += [nn.Conv2d(enc[-1], bottleneck, 4, bias=False), nn.BatchNorm2d(bottleneck), nn.LeakyReLU(0.2)]
        self.encoder = nn.Sequential(*layers)
        dec = [min(width << i, max_width) for i in reversed(range(levels))]  # …, 2ngf, ngf
        layers = [nn.ConvTranspose2d(bottleneck, dec[0], 4, bias=False), nn.BatchNorm2d(dec[0]), nn.ReLU()]
        for c_in, c_out in zip(dec, dec[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        layers += [nn.ConvTranspose2d(dec[-1], channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.decoder = nn.Sequential(*layers)
        normal_init(self, 0.02)

    def forward(self, x):
        return self.decoder(self.encoder(x))


class RegionDiscriminator(nn.Module):
    """A C×size×size region → one logit per sample (the family applies the GAN loss)."""

    def __init__(self, channels: int, size: int, width: int = 64, max_width: int = 512):
        super().__init__()
        if size < 1 or min(width, max_width) < 1:
            raise ValueError(f"size={size}, width={width}, max_width={max_width} must be positive")
        layers, c_in, c_out, norm = [], channels, width, False
        while size >= 8:
            layers += _down(c_in, c_out, norm)
            c_in, c_out, norm, size = c_out, min(2 * c_out, max_width), True, size // 2
        layers += [nn.Conv2d(c_in, 1, size, bias=False), nn.Flatten()]
        self.net = nn.Sequential(*layers)
        normal_init(self, 0.02)

    def forward(self, x):
        return self.net(x)
