"""SPADE (Park et al. 2019, "Semantic Image Synthesis with Spatially-Adaptive Normalization"), as the official
code (NVlabs/SPADE, models/networks/) builds it.

- ``SPADE`` (§3, Eq. 1): a parameter-free normalization of the activation x (batch norm without affine parameters,
  the official ``spadesyncbatch3x3``; or instance norm), and from the label map m, resized to x by nearest
  neighbour, a shared 3×3 conv (128 channels) + ReLU, then 3×3 convs to γ and β:
  out = norm(x) · (1 + γ(m)) + β(m).
- ``SPADEResBlock`` (Fig. 4 right): two (SPADE, LeakyReLU 0.2, 3×3 conv) steps, the first to min(c_in, c_out)
  channels; a learned shortcut (SPADE, 1×1 conv without bias) when c_in ≠ c_out, else the identity; spectral norm on
  the block's convs (the official ``spectral`` in norm_G).
- ``SPADEGenerator`` (Fig. 4 left, ``use_vae=False``: no encoder): a 3×3 conv of the map downsampled (nearest) to the
  lowest resolution, then a ResBlk there, ×2 upsampling (nearest), two ResBlks, and a (×2, ResBlk) per further
  doubling; LeakyReLU 0.2, 3×3 conv to the image, tanh. A block at resolution r has ngf · min(16, S / r) channels:
  with the official 5 upsamplings at 256 px this is its 16, 16, 16, 8, 4, 2, 1 · ngf; ``num_upsamplings`` defaults
  to that 5, fewer where the image is smaller than 4 · 2⁵ (3 at 32 px: blocks at 4, 8, 8, 16, 32 px).
- ``SPADEDiscriminator`` (pix2pixHD's multi-scale D, SPADE's ``n_layers_D=4``, ``norm_D=spectralinstance``): the
  pix2pix PatchGAN (gantrain/models/patchgan.py, ``n_layers=3`` is SPADE's n_layers_D=4: three stride-2 convs and a
  stride-1 one, 64…512 channels) on 2 scales (``MultiScale``) with SPADE's differences: padding 2 instead of 1
  (ceil((4 − 1) / 2)), instance norm, and on the convs between the first and the last spectral norm and no bias.

Initialization as the official ``init_weights('xavier', 0.02)``: every conv weight Xavier-normal with gain 0.02,
biases 0 (so γ, β start near 0 and each SPADE starts near the plain normalization).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gantrain.models.patchgan import MultiScale, PatchGAN

Tensor = torch.Tensor


def xavier(conv: nn.Conv2d, gain: float = 0.02) -> nn.Conv2d:
    """The official SPADE init: Xavier-normal weights with ``gain``, zero bias."""
    nn.init.xavier_normal_(conv.weight, gain)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


def conv(c_in: int, c_out: int, kernel: int, spectral: bool = False, bias: bool = True) -> nn.Module:
    """A ``kernel``×``kernel`` conv keeping the size, Xavier-initialized, optionally spectrally normalized."""
    layer = xavier(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=bias))
    return spectral_norm(layer) if spectral else layer


def parameter_free_norm(norm: str, channels: int) -> nn.Module:
    """``batch`` (BatchNorm2d without affine, with running statistics) or ``instance`` (InstanceNorm2d without affine)."""
    if norm == "batch":
        return nn.BatchNorm2d(channels, affine=False)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    raise ValueError(f"norm={norm!r}: SPADE normalizes by batch or instance statistics")


class SPADE(nn.Module):
    """Spatially-adaptive normalization of ``channels`` activations by a map of ``label_channels`` (Eq. 1)."""

    def __init__(self, channels: int, label_channels: int, hidden: int = 128, kernel: int = 3, norm: str = "batch"):
        super().__init__()
        self.norm = parameter_free_norm(norm, channels)
        self.shared = nn.Sequential(conv(label_channels, hidden, kernel), nn.ReLU())
        self.gamma = conv(hidden, channels, kernel)
        self.beta = conv(hidden, channels, kernel)

    def forward(self, x: Tensor, segmap: Tensor) -> Tensor:
        normalized = self.norm(x)
        actv = self.shared(F.interpolate(segmap, size=x.shape[-2:], mode="nearest"))
        return normalized * (1 + self.gamma(actv)) + self.beta(actv)


class SPADEResBlock(nn.Module):
    """SPADE's residual block (Fig. 4): c_in → c_out channels at the input's resolution."""

    def __init__(self, c_in: int, c_out: int, label_channels: int, hidden: int = 128, norm: str = "batch", spectral: bool = True):
        super().__init__()
        middle = min(c_in, c_out)
        self.norm_0, self.conv_0 = SPADE(c_in, label_channels, hidden, norm=norm), conv(c_in, middle, 3, spectral)
        self.norm_1, self.conv_1 = SPADE(middle, label_channels, hidden, norm=norm), conv(middle, c_out, 3, spectral)
        self.learned_shortcut = c_in != c_out
        if self.learned_shortcut:
            self.norm_s, self.conv_s = SPADE(c_in, label_channels, hidden, norm=norm), conv(c_in, c_out, 1, spectral, bias=False)

    def forward(self, x: Tensor, segmap: Tensor) -> Tensor:
        shortcut = self.conv_s(self.norm_s(x, segmap)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, segmap), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, segmap), 0.2))
        return shortcut + dx


class SPADEGenerator(nn.Module):
    """Label map (N×label_channels×S×S, a one-hot) → image (N×channels×S×S in [-1, 1]), without an encoder."""

    def __init__(
        self,
        label_channels: int,
        channels: int = 3,
        image_size: int = 32,
        width: int = 64,
        num_upsamplings: Optional[int] = None,
        hidden: int = 128,
        norm: str = "batch",
        spectral: bool = True,
    ):
        super().__init__()
        if num_upsamplings is None:
            num_upsamplings = min(5, int(math.log2(image_size // 4))) if image_size >= 8 else 0
        if num_upsamplings < 1 or image_size % 2**num_upsamplings:
            raise ValueError(
                f"image_size={image_size} with {num_upsamplings} upsamplings: SPADE's generator doubles the size from the lowest "
                f"resolution, so the image size must be a multiple of 2^{max(num_upsamplings, 1)} (e.g. 32, 64, 256)"
            )
        self.bottom = image_size // 2**num_upsamplings

        def width_at(size: int) -> int:
            return width * min(16, image_size // size)

        sizes = [self.bottom * 2**k for k in range(num_upsamplings + 1)]
        plan = [sizes[0], sizes[1], *sizes[1:]]  # head at the bottom, two blocks after the first doubling, then one each
        self.head = conv(label_channels, width_at(sizes[0]), 3)
        self.blocks = nn.ModuleList()
        self.upsample_before: list[bool] = []
        c = width_at(sizes[0])
        for i, size in enumerate(plan):
            self.blocks.append(SPADEResBlock(c, width_at(size), label_channels, hidden, norm, spectral))
            self.upsample_before.append(i > 0 and size != plan[i - 1])
            c = width_at(size)
        self.to_image = conv(c, channels, 3)

    def forward(self, segmap: Tensor) -> Tensor:
        x = self.head(F.interpolate(segmap, size=(self.bottom, self.bottom), mode="nearest"))
        for block, up in zip(self.blocks, self.upsample_before):
            if up:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = block(x, segmap)
        return torch.tanh(self.to_image(F.leaky_relu(x, 0.2)))


def spade_patchgan(in_channels: int, width: int = 64, n_layers: int = 3, norm: str = "instance", spectral: bool = True) -> PatchGAN:
    """The pix2pix PatchGAN made SPADE's NLayerDiscriminator: padding 2, Xavier(0.02) init, and the normalized convs
    (all but the first and the last) without bias and, with ``spectral``, spectrally normalized."""
    d = PatchGAN(in_channels, width, n_layers, norm)
    last = len(d.blocks) - 1
    for i, block in enumerate(d.blocks):
        layer = block[0]
        layer.padding = (2, 2)
        xavier(layer)
        if 0 < i < last:
            if norm != "none":
                layer.register_parameter("bias", None)
            if spectral:
                block[0] = spectral_norm(layer)
    return d


class SPADEDiscriminator(MultiScale):
    """``num_scales`` SPADE PatchGANs on cat(one-hot map, image): ``condition_channels`` + ``channels`` inputs."""

    def __init__(
        self,
        condition_channels: int,
        channels: int = 3,
        width: int = 64,
        n_layers: int = 3,
        num_scales: int = 2,
        norm: str = "instance",
        spectral: bool = True,
    ):
        super().__init__(lambda: spade_patchgan(condition_channels + channels, width, n_layers, norm, spectral), num_scales)
