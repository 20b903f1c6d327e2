"""InfoGAN's MNIST networks (Chen et al. 2016, App. C.1, Table 1), for any image size divisible by 4.

G: FC 1024 → BN → ReLU → FC (s/4)²·128 → BN → ReLU → 4×4 up-conv 64, stride 2 → BN → ReLU → 4×4 up-conv to the
image, stride 2, tanh (images in [−1, 1]). D's trunk: 4×4 conv 64, stride 2 → LeakyReLU → 4×4 conv 128,
stride 2 → BN → LeakyReLU → FC 1024 → BN → LeakyReLU; the adversarial head is one linear unit on it, and the
Q head, which shares the trunk, is FC 128 → BN → LeakyReLU → FC to the codes' parameters: the logits of the
categorical code and the means of the continuous codes (their std is fixed to 1, as in the official code).
``width`` scales every hidden width (1.0: the paper's); ``slope`` is the LeakyReLUs' (0.01 in the official code's
``leaky_rectify``; the paper's text says 0.1). Weights are initialized as in the official code (custom_ops.py):
N(0, 0.02) (its convolutions truncate the normal at 2σ), biases 0, batch-norm scales N(1, 0.02).
"""

from __future__ import annotations

import torch
from torch import nn

from gantrain.models.layers import normal_init
from gantrain.models.outputs import DiscriminatorOutput


def _scaled(n: int, width: float) -> int:
    return max(1, round(n * width))


def _check_size(image_size: int, channels: int) -> None:
    if not channels or not image_size:
        raise ValueError("InfoGAN makes images, but this dataset gives points: use model=mlp for 2D data")
    if image_size % 4:
        raise ValueError(f"InfoGAN's networks halve the image twice: image_size={image_size} must be divisible by 4")


class Generator(nn.Module):
    def __init__(self, latent_dim: int, channels: int, image_size: int, width: float = 1.0):
        super().__init__()
        _check_size(image_size, channels)
        self.latent_dim, self.base = latent_dim, image_size // 4
        hidden, c1, c2 = _scaled(1024, width), _scaled(128, width), _scaled(64, width)
        self.fc = nn.Sequential(
            nn.Linear(latent_dim, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(True),
            nn.Linear(hidden, c1 * self.base**2),
            nn.BatchNorm1d(c1 * self.base**2),
            nn.ReLU(True),
        )
        self.conv = nn.Sequential(
            nn.ConvTranspose2d(c1, c2, 4, 2, 1),
            nn.BatchNorm2d(c2),
            nn.ReLU(True),
            nn.ConvTranspose2d(c2, channels, 4, 2, 1),
            nn.Tanh(),
        )
        normal_init(self)

    def forward(self, z: torch.Tensor, labels=None) -> torch.Tensor:
        h = self.fc(z)
        return self.conv(h.view(len(z), -1, self.base, self.base))


class Discriminator(nn.Module):
    """Returns a DiscriminatorOutput with ``codes = {"categorical": logits (N × K), "continuous": means (N × C)}``."""

    def __init__(
        self,
        channels: int,
        image_size: int,
        categories: int,
        continuous_codes: int,
        width: float = 1.0,
        q_hidden: int = 128,
        slope: float = 0.01,
    ):
        super().__init__()
        _check_size(image_size, channels)
        c1, c2, hidden = _scaled(64, width), _scaled(128, width), _scaled(1024, width)
        self.categories = categories
        self.trunk = nn.Sequential(
            nn.Conv2d(channels, c1, 4, 2, 1),
            nn.LeakyReLU(slope, True),
            nn.Conv2d(c1, c2, 4, 2, 1),
            nn.BatchNorm2d(c2),
            nn.LeakyReLU(slope, True),
            nn.Flatten(),
            nn.Linear(c2 * (image_size // 4) ** 2, hidden),
            nn.BatchNorm1d(hidden),
            nn.LeakyReLU(slope, True),
        )
        self.adversarial = nn.Linear(hidden, 1)
        self.q_head = nn.Sequential(
            nn.Linear(hidden, q_hidden),
            nn.BatchNorm1d(q_hidden),
            nn.LeakyReLU(slope, True),
            nn.Linear(q_hidden, categories + continuous_codes),
        )
        normal_init(self)

    def forward(self, x: torch.Tensor, labels=None) -> DiscriminatorOutput:
        h = self.trunk(x)
        q = self.q_head(h)
        codes = {"categorical": q[:, : self.categories], "continuous": q[:, self.categories :]}
        return DiscriminatorOutput(self.adversarial(h).flatten(), codes=codes)
