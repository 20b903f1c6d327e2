"""BigGAN's networks (Brock et al. 2019, App. B, Fig. 15; the official BigGAN-PyTorch's BigGAN.py), any 2^k size.

G: a shared class embedding e(y); hierarchical z, split into one chunk for the first linear layer (to 4×4) and
one per residual up-block, whose conditional batch norms get cat(e(y), chunk); each up-block is
CBN → ReLU → 2× upsample → 3×3 conv → CBN → ReLU → 3×3 conv, plus an upsampled 1×1-conv shortcut; then BN →
ReLU → 3×3 conv → tanh. D: residual down-blocks (ReLU → 3×3 conv → ReLU → 3×3 conv → 2× average pool, the first
without its leading ReLU; a 1×1-conv shortcut) down to 4×4 and one more block at 4×4, then ReLU, a sum over
space, and the projection output linear(h) + ⟨embed(y), h⟩ (Miyato & Koyama 2018). Both have self-attention
(Zhang et al. 2019, SA-GAN) after the block that makes the ``attention`` resolution (0: none). Spectral norm in
both (D's embed included, G's shared embedding not, as in the official code) comes from regularizer=spectral_norm
with generator=true (model=biggan sets it); weights start orthogonal (the official ``init='ortho'``).

Widths: ``width`` (the official ``ch``) channels at the image size, doubling per halving, up to ``max_width``
(the paper's 128×128 G: ch = 96, 16·ch at 4×4 and 8×8).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gantrain.models.layers import pyramid_levels, pyramid_widths


class ConditionalBatchNorm(nn.Module):
    """Batch norm without its own affine, then x̂ · (1 + gain(c)) + bias(c), gain and bias linear maps of the
    condition c without biases of their own, as in the official code (BigGAN §3; de Vries et al. 2017): with
    both maps zero it is plain batch norm."""

    def __init__(self, channels: int, condition_dim: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Linear(condition_dim, channels, bias=False)  # no biases with a shared embedding (official)
        self.bias = nn.Linear(condition_dim, channels, bias=False)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        gain = 1 + self.gain(condition)[:, :, None, None]
        return self.norm(x) * gain + self.bias(condition)[:, :, None, None]


class SelfAttention(nn.Module):
    """SA-GAN's self-attention (Zhang et al. 2019, Eqs. 1–3, as BigGAN codes it): θ and φ 1×1 convs to C/8
    channels, g to C/2, φ and g max-pooled 2×2; x + γ · o(g · softmax(θᵀφ)), γ learned from 0 (the identity)."""

    def __init__(self, channels: int):
        super().__init__()
        self.theta = nn.Conv2d(channels, max(1, channels // 8), 1, bias=False)
        self.phi = nn.Conv2d(channels, max(1, channels // 8), 1, bias=False)
        self.g = nn.Conv2d(channels, max(1, channels // 2), 1, bias=False)
        self.o = nn.Conv2d(max(1, channels // 2), channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        theta = self.theta(x).flatten(2)
        phi = F.max_pool2d(self.phi(x), 2).flatten(2)
        g = F.max_pool2d(self.g(x), 2).flatten(2)
        attention = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # N × HW × HW/4
        o = self.o((g @ attention.transpose(1, 2)).view(n, -1, h, w))
        return x + self.gamma * o


class UpBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, condition_dim: int):
        super().__init__()
        self.bn1, self.bn2 = ConditionalBatchNorm(c_in, condition_dim), ConditionalBatchNorm(c_out, condition_dim)
        self.conv1, self.conv2 = nn.Conv2d(c_in, c_out, 3, padding=1), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, condition)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), condition)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2))


class DownBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, preactivation: bool, downsample: bool):
        super().__init__()
        self.preactivation, self.downsample = preactivation, downsample
        self.conv1, self.conv2 = nn.Conv2d(c_in, c_out, 3, padding=1), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out or downsample else None

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(F.relu(x) if self.preactivation else x)))
        skip = x
        if self.shortcut is not None:  # the official order: conv then pool after a preactivation, else pool then conv
            skip = self._pool(self.shortcut(x)) if self.preactivation else self.shortcut(self._pool(x))
        return self._pool(h) + skip


def orthogonal_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
            nn.init.orthogonal_(m.weight)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(
        self,
        latent_dim: int,
        channels: int,
        image_size: int,
        num_classes: int,
        width: int = 32,
        max_width: int = 256,
        embed_dim: int = 128,
        attention: int = 8,
    ):
        super().__init__()
        blocks = pyramid_levels("BigGAN", channels, image_size)
        if num_classes < 1:
            raise ValueError("BigGAN's generator is class-conditional: it needs a dataset with class labels")
        if latent_dim % (blocks + 1):
            raise ValueError(
                f"model.latent_dim={latent_dim} must split into {blocks + 1} equal chunks of hierarchical z "
                f"(one for the first layer, one per block): use a multiple of {blocks + 1}"
            )
        self.latent_dim, self.chunk = latent_dim, latent_dim // (blocks + 1)
        ch = pyramid_widths(image_size, width, max_width)  # 4×4 … image_size
        self.ch0 = ch[0]
        self.shared = nn.Embedding(num_classes, embed_dim)
        self.linear = nn.Linear(self.chunk, 16 * ch[0])
        self.blocks = nn.ModuleList(UpBlock(a, b, embed_dim + self.chunk) for a, b in zip(ch[:-1], ch[1:]))
        self.attention = nn.ModuleDict({str(i): SelfAttention(ch[i + 1]) for i in range(blocks) if 4 * 2 ** (i + 1) == attention})
        self.output = nn.Sequential(nn.BatchNorm2d(ch[-1]), nn.ReLU(), nn.Conv2d(ch[-1], channels, 3, padding=1), nn.Tanh())
        orthogonal_init(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        chunks = z.split(self.chunk, dim=1)
        y = self.shared(labels)
        h = self.linear(chunks[0]).view(len(z), self.ch0, 4, 4)
        for i, block in enumerate(self.blocks):
            h = block(h, torch.cat([y, chunks[i + 1]], dim=1))
            if str(i) in self.attention:
                h = self.attention[str(i)](h)
        return self.output(h)


class Discriminator(nn.Module):
    def __init__(self, channels: int, image_size: int, num_classes: int, width: int = 32, max_width: int = 256, attention: int = 8):
        super().__init__()
        levels = pyramid_levels("BigGAN", channels, image_size)
        if num_classes < 1:
            raise ValueError("BigGAN's projection discriminator is class-conditional: it needs a dataset with class labels")
        ch = pyramid_widths(image_size, width, max_width)[::-1]  # width, 2·width, … (official: ch, 2ch, … 16ch)
        out = [*ch[:levels], ch[levels - 1]]  # levels down-blocks, then one block at 4×4
        widths = list(zip([channels, *out[:-1]], out))
        self.blocks = nn.ModuleList(DownBlock(a, b, preactivation=i > 0, downsample=i < levels) for i, (a, b) in enumerate(widths))
        self.attention = nn.ModuleDict(
            {str(i): SelfAttention(widths[i][1]) for i in range(levels) if image_size // 2 ** (i + 1) == attention}
        )
        self.linear = nn.Linear(out[-1], 1)
        # the projection's class embedding as a linear map of one-hot labels, so that spectral norm normalizes it
        # as it does D's other layers (the official SNEmbedding; G's shared embedding stays unnormalized)
        self.embed = nn.Linear(num_classes, out[-1], bias=False)
        orthogonal_init(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """h: the last block's ReLU activations summed over space (N × C)."""
        for i, block in enumerate(self.blocks):
            x = block(x)
            if str(i) in self.attention:
                x = self.attention[str(i)](x)
        return F.relu(x).sum(dim=(2, 3))

    def class_embedding(self, labels: torch.Tensor) -> torch.Tensor:
        """embed(y): the column of the (spectrally normalized) embedding matrix for each label."""
        return self.embed(F.one_hot(labels, self.embed.in_features).to(self.embed.weight.dtype))

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        return self.linear(h).flatten() + (self.class_embedding(labels) * h).sum(1)
