"""StarGAN's networks (Choi et al. 2018, Tables 4–5 of the appendix; the official PyTorch code's ``model.py``).

Generator G(x, c): the target domain c (a one-hot domain or an attribute vector) tiled spatially and
concatenated to the image, a 7×7 conv (``width``), two 4×4 stride-2 downsampling convs (doubling the width),
``res_blocks`` residual blocks (two 3×3 convs), two 4×4 stride-2 transposed convs back, a 7×7 conv to the
image's channels and Tanh; every conv without bias, each followed by instance norm with affine parameters and
running statistics (``affine=True, track_running_stats=True``, as the official code, whose checkpoints thus
load here) and ReLU. At 128 px with 5 domains and the official widths it has 8,430,528 parameters.

Discriminator D(x): ``repeat_num`` 4×4 stride-2 convs with LeakyReLU(0.01), the first ``width`` wide, each next
one twice as wide; then two bias-free heads on the last features: a 3×3 conv to one channel (the PatchGAN
source map D_src) and a conv whose kernel covers the whole final map (``image_size / 2^repeat_num``) to the
domain logits D_cls. At 128 px, ``repeat_num`` 6, 5 domains: 44,762,048 parameters (the official counts).
``repeat_num=None`` halves the image down to a 2×2 map, as the official 6 does at 128 px (4 at 32 px).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gantrain.models.outputs import DiscriminatorOutput

Tensor = torch.Tensor


class InstanceNorm(nn.InstanceNorm2d):
    """Instance norm that keeps running statistics (so its state matches the official checkpoints) but, in eval
    mode too, normalizes each image by its own statistics: the official code samples and tests with G in train
    mode, so its running averages are never used. ``eval_running_stats=True`` uses them in eval mode instead."""

    def __init__(self, channels: int, eval_running_stats: bool = False):
        super().__init__(channels, affine=True, track_running_stats=True)
        self.eval_running_stats = eval_running_stats

    def forward(self, x: Tensor) -> Tensor:
        if self.training or self.eval_running_stats:
            return super().forward(x)
        return F.instance_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


def _conv_block(conv: nn.Module, channels: int, eval_running_stats: bool) -> list[nn.Module]:
    return [conv, InstanceNorm(channels, eval_running_stats), nn.ReLU(inplace=True)]


class ResidualBlock(nn.Module):
    """x + IN(conv3×3(ReLU(IN(conv3×3(x))))), the official bottleneck block."""

    def __init__(self, channels: int, eval_running_stats: bool = False):
        super().__init__()
        self.main = nn.Sequential(
            *_conv_block(nn.Conv2d(channels, channels, 3, 1, 1, bias=False), channels, eval_running_stats),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            InstanceNorm(channels, eval_running_stats),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.main(x)


class Generator(nn.Module):
    """G(x, c) of the module docstring; ``image_size`` (optional) is checked to survive the two halvings."""

    def __init__(
        self,
        channels: int = 3,
        num_domains: int = 5,
        width: int = 64,
        res_blocks: int = 6,
        image_size: int | None = None,
        eval_running_stats: bool = False,
    ):
        super().__init__()
        _check_images(channels, num_domains)
        if width < 1 or res_blocks < 0:
            raise ValueError(
                f"StarGAN's generator needs num_domains ≥ 1, width ≥ 1, res_blocks ≥ 0 (got {num_domains}, {width}, {res_blocks})"
            )
        if image_size is not None and image_size % 4:
            raise ValueError(f"image_size={image_size}: StarGAN's generator halves the image twice and needs a size divisible by 4")
        self.num_domains = num_domains
        layers = _conv_block(nn.Conv2d(channels + num_domains, width, 7, 1, 3, bias=False), width, eval_running_stats)
        for _ in range(2):
            layers += _conv_block(nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False), 2 * width, eval_running_stats)
            width *= 2
        layers += [ResidualBlock(width, eval_running_stats) for _ in range(res_blocks)]
        for _ in range(2):
            layers += _conv_block(nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), width // 2, eval_running_stats)
            width //= 2
        self.main = nn.Sequential(*layers, nn.Conv2d(width, channels, 7, 1, 3, bias=False), nn.Tanh())

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        tiled = c.to(x.dtype)[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        return self.main(torch.cat([x, tiled], dim=1))


class Discriminator(nn.Module):
    """D(x) of the module docstring: a DiscriminatorOutput with ``adversarial`` = D_src (N×1×s×s, s =
    image_size / 2^repeat_num) and ``classes`` = D_cls (N×num_domains)."""

    def __init__(self, channels: int = 3, image_size: int = 128, num_domains: int = 5, width: int = 64, repeat_num: int | None = 6):
        super().__init__()
        _check_images(channels, num_domains)
        if repeat_num is None:
            repeat_num = max(1, _halvings(image_size) - 1)
        if repeat_num < 1 or image_size % 2**repeat_num:
            raise ValueError(
                f"repeat_num={repeat_num}: StarGAN's discriminator halves the image repeat_num times and "
                f"image_size={image_size} is not divisible by 2^{repeat_num}; use a repeat_num of 1 to {_halvings(image_size)}"
            )
        layers = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.01)]
        for _ in range(1, repeat_num):
            layers += [nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.01)]
            width *= 2
        self.main = nn.Sequential(*layers)
        self.source = nn.Conv2d(width, 1, 3, 1, 1, bias=False)
        self.classify = nn.Conv2d(width, num_domains, image_size // 2**repeat_num, bias=False)
        self.num_domains = num_domains

    def forward(self, x: Tensor) -> DiscriminatorOutput:
        h = self.main(x)
        return DiscriminatorOutput(self.source(h), self.classify(h).flatten(1))


def _check_images(channels, num_domains) -> None:
    if not channels:
        raise ValueError("StarGAN translates images, but this dataset gives points")
    if num_domains < 1:
        raise ValueError(f"StarGAN translates between domains, but num_domains={num_domains}: the data needs domain labels or attributes")


def _halvings(n: int) -> int:
    """How many times ``n`` can be halved exactly."""
    k = 0
    while n > 1 and n % 2 == 0:
        n, k = n // 2, k + 1
    return k
