"""DCGAN (Radford, Metz & Chintala 2016): all-convolutional G and D following the paper's guidelines.

Strided convolutions in D and fractionally-strided ones in G (no pooling), batch norm in both (not on D's
input layer nor G's output layer), ReLU in G with a tanh output, LeakyReLU(0.2) in D, no hidden fully
connected layers; weights drawn from N(0, 0.02) (§4), batch-norm scales from N(1, 0.02). Widths double each
time the resolution halves: ``width`` channels next to the image, capped at ``max_width``. Images are 2^k × 2^k
with k ≥ 3.

``num_classes > 0`` conditions the network on one-hot labels (G: appended to z; D: appended as constant
planes). ``aux_classes > 0`` adds AC-GAN's class head to D (Odena et al. 2017).

Mode-collapse options of D (all off by default): ``pack=m`` takes m images stacked along channels per
decision (PacGAN, Lin et al. 2018); ``minibatch_stddev=g`` appends the minibatch standard deviation over
groups of g as one more 4×4 feature map (Karras et al. 2018, §3); ``minibatch_features=B`` adds minibatch
discrimination on the flattened 4×4 features (Salimans et al. 2016, §3.2), the adversarial head then
being a linear layer on them (what the 4×4 convolution computes) plus the B minibatch features.
"""

from __future__ import annotations

import torch
from torch import nn

from gantrain.models.layers import (
    MinibatchDiscrimination,
    MinibatchStdDev,
    append_onehot,
    norm_2d,
    normal_init,
    pyramid_levels,
    pyramid_widths,
)
from gantrain.models.outputs import DiscriminatorOutput


class Generator(nn.Module):
    def __init__(
        self,
        latent_dim: int,
        channels: int,
        image_size: int,
        width: int = 64,
        max_width: int = 512,
        num_classes: int = 0,
        norm: str = "batch",
    ):
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        pyramid_levels("DCGAN", channels, image_size)
        ch = pyramid_widths(image_size // 2, width, max_width)  # 4×4 … image_size/2
        bias = norm == "none"
        layers = [nn.ConvTranspose2d(latent_dim + num_classes, ch[0], 4, 1, 0, bias=bias), norm_2d(norm, ch[0]), nn.ReLU(True)]
        for c_in, c_out in zip(ch[:-1], ch[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias), norm_2d(norm, c_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(ch[-1], channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        normal_init(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(append_onehot(z, labels, self.num_classes)[:, :, None, None])


class Discriminator(nn.Module):
    def __init__(
        self,
        channels: int,
        image_size: int,
        width: int = 64,
        max_width: int = 512,
        norm: str = "batch",
        num_classes: int = 0,
        aux_classes: int = 0,
        pack: int = 1,
        minibatch_features: int = 0,
        minibatch_kernel_dim: int = 5,
        minibatch_stddev: int = 0,
    ):
        super().__init__()
        self.num_classes, self.aux_classes, self.pack = num_classes, aux_classes, pack
        pyramid_levels("DCGAN", channels, image_size)
        ch = pyramid_widths(image_size // 2, width, max_width)[::-1]  # image_size/2 … 4×4
        layers = [nn.Conv2d(channels * pack + num_classes, ch[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for c_in, c_out in zip(ch[:-1], ch[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=norm == "none"), norm_2d(norm, c_out), nn.LeakyReLU(0.2, True)]
        if minibatch_stddev:
            layers.append(MinibatchStdDev(minibatch_stddev))
        self.features = nn.Sequential(*layers)
        top = ch[-1] + (1 if minibatch_stddev else 0)
        if minibatch_features:
            self.adversarial = nn.Sequential(
                nn.Flatten(),
                MinibatchDiscrimination(top * 16, minibatch_features, minibatch_kernel_dim),
                nn.Linear(top * 16 + minibatch_features, 1),
            )
        else:
            self.adversarial = nn.Conv2d(top, 1, 4, 1, 0)
        self.classifier = nn.Conv2d(top, aux_classes, 4, 1, 0) if aux_classes else None
        normal_init(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None):
        h = self.features(append_onehot(x, labels, self.num_classes))
        logits = self.adversarial(h).flatten()
        if self.classifier is None:
            return logits
        return DiscriminatorOutput(logits, classes=self.classifier(h).flatten(1))
