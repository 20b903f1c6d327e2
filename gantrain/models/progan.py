"""Progressive GAN (Karras, Aila, Laine & Lehtinen 2018, "Progressive Growing of GANs").

Both networks hold one block per resolution 4·2^level (level 0 = 4×4 up to the image size). At ``level`` the
generator runs blocks 0…level and its toRGB layer of that level; the discriminator reads the image with
fromRGB of that level and runs blocks level…0. While a new level fades in (α < 1) the outputs are blended
with the previous level's path (§3, Fig. 2): G returns (1 − α)·upsample(toRGB_{l−1}(h_{l−1})) + α·toRGB_l(h_l),
and D's features entering level l − 1 are (1 − α)·fromRGB_{l−1}(avgpool(x)) + α·block_l(fromRGB_l(x)).

Every convolution and linear layer uses the equalized learning rate (§4.1), G normalizes every pixel's
feature vector after each convolution (§4.2), and D ends with the minibatch standard deviation (§3).
Widths: ``width`` channels at the image resolution, doubling each time the resolution halves, capped at
``max_width`` (the paper: 512 up to 32×32, then halving to 16 at 1024²).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from gantrain.models.layers import MinibatchStdDev, pyramid_levels, pyramid_widths

Tensor = torch.Tensor


# ------------------------------------------------------------------------------------------ layers
class _Scale(nn.Module):
    """Parametrization ``w ↦ c·w``: the stored tensor is the raw parameter, the layer uses the product."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, w: Tensor) -> Tensor:
        return w * self.scale

    def extra_repr(self) -> str:
        return f"scale={self.scale:.4g}"


def he_constant(layer: nn.Module, gain: float = math.sqrt(2)) -> float:
    """c = gain / √fan_in, the per-layer constant of He et al.'s initializer."""
    return gain / math.sqrt(layer.weight[0].numel())


def equalized(layer: nn.Module, gain: float = math.sqrt(2), lr_mul: float = 1.0) -> nn.Module:
    """Equalized learning rate (Karras et al. 2018, §4.1): ŵ_i = w_i·c with w_i ~ N(0, 1) stored and the He
    constant c applied at run time, so Adam's scale-invariant steps change every layer at the same speed.

    ``lr_mul`` (StyleGAN's mapping network: 0.01) stores w ~ N(0, 1/lr_mul) and uses c·lr_mul·w and
    lr_mul·b, which divides that layer's effective learning rate by 1/lr_mul. The scaling is a
    ``torch.nn.utils.parametrize`` parametrization, so the layer stays an ``nn.Conv2d``/``nn.Linear``
    (spectral norm and other parametrizations stack on it).
    """
    c = he_constant(layer, gain)
    with torch.no_grad():
        layer.weight.normal_(0.0, 1.0 / lr_mul)
        if layer.bias is not None:
            layer.bias.zero_()
    parametrize.register_parametrization(layer, "weight", _Scale(c * lr_mul))
    if layer.bias is not None and lr_mul != 1.0:
        parametrize.register_parametrization(layer, "bias", _Scale(lr_mul))
    return layer


def conv3x3(c_in: int, c_out: int, bias: bool = True) -> nn.Conv2d:
    return equalized(nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias))


class PixelNorm(nn.Module):
    """Pixelwise feature vector normalization (§4.2): b_xy = a_xy / √(mean_j (a^j_xy)² + 1e-8), over channels."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


def lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.2)


class Blur(nn.Module):
    """Depthwise [1 2 1]ᵀ[1 2 1]/16 low-pass filter (zero padding): StyleGAN's filtering after upsampling and
    before downsampling (Karras et al. 2019, §2, after Zhang 2019), which ProGAN does not use. Written as
    B_H·x·B_W with B_n the n×n band matrix of [1 2 1]/4 (its cut-off corners are the zero padding), not as a
    grouped convolution: the same filter, about twice as fast on CPUs forward and in (double) backward."""

    @staticmethod
    def band(n: int, like: Tensor) -> Tensor:
        side = torch.full((n - 1,), 0.25, dtype=like.dtype, device=like.device)
        return torch.diag(torch.full((n,), 0.5, dtype=like.dtype, device=like.device)) + torch.diag(side, 1) + torch.diag(side, -1)

    def forward(self, x: Tensor) -> Tensor:
        return self.band(x.shape[-2], x) @ x @ self.band(x.shape[-1], x)


class DownConv2d(nn.Conv2d):
    """A 3×3 convolution (padding 1) followed by 2×2 average pooling, computed as one 4×4 convolution of stride 2
    whose kernel is the 3×3 kernel box-filtered: w₄(t) = ¼ Σ_{a ∈ {0,1}²} w₃(t − a) (the fused conv2d_downscale2d
    of Karras et al.'s code). Exactly the same map with 4/9 of the multiply-adds; the stored weight stays 3×3."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(c_in, c_out, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        w = F.pad(self.weight, (1, 1, 1, 1))
        w = (w[..., 1:, 1:] + w[..., 1:, :-1] + w[..., :-1, 1:] + w[..., :-1, :-1]) * 0.25
        return F.conv2d(x, w, self.bias, stride=2, padding=1)


# ------------------------------------------------------------------------------------------ growth
def check_level(level: int | None, top: int) -> int:
    if level is None:
        return top
    if not 0 <= level <= top:
        raise ValueError(f"level={level} is outside this network's levels 0…{top}")
    return level


def faded_output(to_rgb: nn.ModuleList, level: int, alpha: float, previous: Tensor | None, h: Tensor) -> Tensor:
    """G's image at ``level``: toRGB_l(h), blended during a fade-in with the upsampled image of level l − 1."""
    new = to_rgb[level](h)
    if level == 0 or alpha >= 1.0:
        return new
    old = F.interpolate(to_rgb[level - 1](previous), scale_factor=2, mode="nearest")
    return torch.lerp(old, new, alpha)


# ------------------------------------------------------------------------------------------ networks
class Generator(nn.Module):
    """z → (pixel norm) → 4×4 block → [upsample, 2 × (conv 3×3, LReLU, pixel norm)] per level → toRGB (1×1)."""

    def __init__(self, latent_dim: int, channels: int, image_size: int, width: int = 64, max_width: int = 512):
        super().__init__()
        self.latent_dim = latent_dim
        self.max_level = pyramid_levels("ProGAN", channels, image_size)
        ch = pyramid_widths(image_size, width, max_width)
        first = nn.Sequential(
            PixelNorm(),
            # the paper's 4×4 transposed convolution of a 1×1 input is this dense layer (gain √2/4 as in its code)
            equalized(nn.Linear(latent_dim, ch[0] * 16), gain=math.sqrt(2) / 4),
            nn.Unflatten(1, (ch[0], 4, 4)),
            lrelu(),
            PixelNorm(),
            conv3x3(ch[0], ch[0]),
            lrelu(),
            PixelNorm(),
        )
        grow = [
            nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"),
                conv3x3(c_in, c_out),
                lrelu(),
                PixelNorm(),
                conv3x3(c_out, c_out),
                lrelu(),
                PixelNorm(),
            )
            for c_in, c_out in zip(ch[:-1], ch[1:])
        ]
        self.blocks = nn.ModuleList([first, *grow])
        self.to_rgb = nn.ModuleList(equalized(nn.Conv2d(c, channels, 1), gain=1.0) for c in ch)

    def forward(self, z: Tensor, level: int | None = None, alpha: float = 1.0) -> Tensor:
        """Images of resolution 4·2^level (the full size when ``level`` is None), α blending a fade-in."""
        level = check_level(level, self.max_level)
        previous, h = None, z
        for block in self.blocks[: level + 1]:
            previous, h = h, block(h)
        return faded_output(self.to_rgb, level, alpha, previous, h)


class Discriminator(nn.Module):
    """fromRGB (1×1) → [conv 3×3, LReLU, conv 3×3 + avgpool, LReLU] per level → minibatch stddev, conv 3×3,
    conv 4×4, linear.

    Each level pools before its second activation, as both papers' code does, so that the convolution and the
    pooling fuse into one stride-2 convolution (``DownConv2d``). The level is read from the input's size
    (4·2^level); ``alpha`` blends a fade-in. Returns a logit per sample. ``blur=True`` low-pass filters before
    each downsampling convolution, as StyleGAN's discriminator does.
    """

    def __init__(self, channels: int, image_size: int, width: int = 64, max_width: int = 512, group_size: int = 4, blur: bool = False):
        super().__init__()
        self.max_level = pyramid_levels("ProGAN", channels, image_size)
        ch = pyramid_widths(image_size, width, max_width)
        last = nn.Sequential(
            MinibatchStdDev(group_size),
            conv3x3(ch[0] + 1, ch[0]),
            lrelu(),
            nn.Flatten(),
            equalized(nn.Linear(ch[0] * 16, ch[0])),
            lrelu(),  # the paper's 4×4 valid convolution
            equalized(nn.Linear(ch[0], 1), gain=1.0),
        )
        shrink = [
            nn.Sequential(conv3x3(c_in, c_in), lrelu(), Blur() if blur else nn.Identity(), equalized(DownConv2d(c_in, c_out)), lrelu())
            for c_out, c_in in zip(ch[:-1], ch[1:])
        ]
        self.blocks = nn.ModuleList([last, *shrink])
        self.from_rgb = nn.ModuleList(nn.Sequential(equalized(nn.Conv2d(channels, c, 1)), lrelu()) for c in ch)

    def forward(self, x: Tensor, alpha: float = 1.0) -> Tensor:
        size = x.shape[-1]
        level = int(math.log2(size)) - 2 if size >= 4 else -1
        if 4 * 2**level != size or level > self.max_level:
            raise ValueError(f"this discriminator reads 4·2^k px images up to {4 * 2**self.max_level} px, not {size} px")
        h = self.blocks[level](self.from_rgb[level](x))
        if level > 0 and alpha < 1.0:
            h = torch.lerp(self.from_rgb[level - 1](F.avg_pool2d(x, 2)), h, alpha)
        for block in reversed(self.blocks[:level]):
            h = block(h)
        return h.squeeze(1)
