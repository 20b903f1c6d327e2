"""The U-Net denoiser ε_θ(x_t, t) of DDPM (Ho, Jain & Abbeel 2020, Appendix B; after PixelCNN++'s backbone).

A stem convolution, then at each resolution ``blocks`` residual blocks (group norm, SiLU, 3×3 convolutions,
the time embedding added between the two convolutions), self-attention at the resolutions listed in
``attention_resolutions``, and a strided convolution down; a middle of residual block, attention, residual
block at the lowest resolution; the mirror path up (nearest-neighbour upsampling, ``blocks + 1`` residual
blocks per resolution), each block fed the concatenated skip activation of the matching down-path layer.
The timestep enters as a sinusoidal embedding (Vaswani et al. 2017, §3.5) through a two-layer MLP.
Channels are ``width × multipliers[level]``. As in Ho et al.'s code, the last convolution of each residual
block and of the output are zero-initialized, so every block starts as the identity.

``num_classes > 0`` adds a learned class embedding to the time embedding; class index ``num_classes`` is
the "no label" token of classifier-free guidance (Ho & Salimans 2022).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding (N, dim): [sin(t·ω_k), cos(t·ω_k)] with ω_k = max_period^(−k / (dim/2))."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    """Group norm with the largest group count dividing ``channels`` that does not exceed ``groups``."""
    return nn.GroupNorm(math.gcd(groups, channels), channels)


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """GN → SiLU → conv3×3 → + Linear(emb) → GN → SiLU → dropout → conv3×3, plus a (1×1-projected) skip."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float, groups: int):
        super().__init__()
        self.in_layers = nn.Sequential(group_norm(c_in, groups), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, padding=1))
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, c_out))
        self.out_layers = nn.Sequential(
            group_norm(c_out, groups), nn.SiLU(), nn.Dropout(dropout), _zero(nn.Conv2d(c_out, c_out, 3, padding=1))
        )
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x) + self.emb(emb)[:, :, None, None]
        return self.skip(x) + self.out_layers(h)


class Attention(nn.Module):
    """Multi-head self-attention over the H·W positions of a feature map, with a residual connection."""

    def __init__(self, channels: int, groups: int, heads: int):
        super().__init__()
        if channels % heads:
            raise ValueError(f"attention_heads={heads} must divide the {channels} channels where attention is used")
        self.heads = heads
        self.norm = group_norm(channels, groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = _zero(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor, emb: Optional[torch.Tensor] = None) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).view(n, 3, self.heads, c // self.heads, h * w).transpose(-1, -2).unbind(1)
        out = F.scaled_dot_product_attention(q, k, v)  # (n, heads, h·w, c/heads)
        return x + self.proj(out.transpose(-1, -2).reshape(n, c, h, w))


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor, emb: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, emb: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Stage(nn.ModuleList):
    """Layers applied in order, each given the embedding."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for layer in self:
            x = layer(x, emb)
        return x


class UNet(nn.Module):
    def __init__(
        self,
        channels: int,
        image_size: int,
        width: int = 64,
        multipliers: Sequence[int] = (1, 2, 2, 2),
        blocks: int = 2,
        attention_resolutions: Sequence[int] = (16,),
        attention_heads: int = 1,
        dropout: float = 0.1,
        norm_groups: int = 32,
        num_classes: int = 0,
    ):
        super().__init__()
        if not channels or not image_size:
            raise ValueError("the U-Net denoises images, but this dataset gives points")
        levels = len(multipliers)
        if levels < 1 or blocks < 1 or width < 2 or width % 2:
            raise ValueError(
                f"the U-Net needs an even width, blocks ≥ 1 and one multiplier or more "
                f"(got width={width}, blocks={blocks}, multipliers={list(multipliers)})"
            )
        if image_size % 2 ** (levels - 1):
            raise ValueError(
                f"a U-Net with {levels} resolutions halves the image {levels - 1} times: image_size={image_size} "
                f"must be divisible by {2 ** (levels - 1)}"
            )
        self.width, self.num_classes = width, num_classes
        emb_dim = 4 * width
        self.time_mlp = nn.Sequential(nn.Linear(width, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.label_embedding = nn.Embedding(num_classes + 1, emb_dim) if num_classes else None
        attention = set(attention_resolutions)

        def block(c_in: int, c_out: int, resolution: int) -> list[nn.Module]:
            layers = [ResBlock(c_in, c_out, emb_dim, dropout, norm_groups)]
            if resolution in attention:
                layers.append(Attention(c_out, norm_groups, attention_heads))
            return layers

        self.stem = nn.Conv2d(channels, width, 3, padding=1)
        skips, c, res = [width], width, image_size
        self.down = nn.ModuleList()
        for level, mult in enumerate(multipliers):
            for _ in range(blocks):
                self.down.append(Stage(block(c, width * mult, res)))
                c = width * mult
                skips.append(c)
            if level < levels - 1:
                self.down.append(Stage([Downsample(c)]))
                skips.append(c)
                res //= 2
        self.middle = Stage(
            [
                ResBlock(c, c, emb_dim, dropout, norm_groups),
                Attention(c, norm_groups, attention_heads),
                ResBlock(c, c, emb_dim, dropout, norm_groups),
            ]
        )
        self.up = nn.ModuleList()  # Stages that take a skip; Upsample stages between resolutions do not
        for level, mult in reversed(list(enumerate(multipliers))):
            for _ in range(blocks + 1):
                self.up.append(Stage(block(c + skips.pop(), width * mult, res)))
                c = width * mult
            if level > 0:
                self.up.append(Upsample(c))
                res *= 2
        self.out = nn.Sequential(group_norm(c, norm_groups), nn.SiLU(), _zero(nn.Conv2d(c, channels, 3, padding=1)))

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """ε_θ(x_t, t) (or the x_0 / v prediction), same shape as ``x``; ``t`` holds one timestep per sample."""
        emb = self.time_mlp(timestep_embedding(t, self.width)).to(x.dtype)
        if self.label_embedding is not None:
            if labels is None:
                raise ValueError("this U-Net is class-conditional: pass labels (num_classes for 'no label')")
            emb = emb + self.label_embedding(labels).to(emb.dtype)
        h = self.stem(x)
        skips = [h]
        for stage in self.down:
            h = stage(h, emb)
            skips.append(h)
        h = self.middle(h, emb)
        for stage in self.up:
            if isinstance(stage, Stage):
                h = torch.cat([h, skips.pop()], dim=1)
            h = stage(h, emb)
        return self.out(h)
