"""SPADE's VGG perceptual loss (Park et al. 2019, §3 "we use … the perceptual loss", λ_VGG = 10; from pix2pixHD):
Σ_i w_i · mean |φ_i(x) − φ_i(y)| over torchvision VGG-19's relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 with the
official weights w = 1/32, 1/16, 1/8, 1/4, 1, the target's features detached. As in the official code, images
enter the network in the model's [-1, 1] range, without ImageNet normalization.

The network needs ImageNet weights, which gantrain never downloads: ``weights`` is a local file holding
torchvision's vgg19 state dict (``vgg19-dcbb9e9d.pth``; only its ``features.*`` convolutions are used); a path
that does not exist is one ConfigError.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

from gantrain import checkpoint
from gantrain.errors import ConfigError

Tensor = torch.Tensor
# torchvision's vgg19().features indices that end at relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (exclusive)
SLICES = (2, 7, 12, 21, 30)
WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


class VGGLoss(nn.Module):
    """The weighted L1 distance of VGG-19 features; frozen, always in eval mode."""

    def __init__(self, weights: str):
        super().__init__()
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"model.vgg_weights={weights!r} does not exist: the VGG loss needs torchvision's ImageNet vgg19 weights "
                "(vgg19-dcbb9e9d.pth) as a local file, or leave model.vgg_weights unset (no VGG loss)"
            )
        net = make_layers(cfgs["E"])  # torchvision's vgg19().features
        state = {k.removeprefix("features."): v for k, v in checkpoint.load(path).items() if k.startswith("features.")}
        checkpoint.restore(net, state, str(path))
        layers = list(net.children())
        self.slices = nn.ModuleList(nn.Sequential(*layers[a:b]) for a, b in zip((0, *SLICES[:-1]), SLICES))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGLoss:
        return super().train(False)

    def features(self, x: Tensor) -> list[Tensor]:
        out = []
        for block in self.slices:
            x = block(x)
            out.append(x)
        return out

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        fx = self.features(x)
        with torch.no_grad():
            fy = self.features(y)
        return sum(w * (a - b).abs().mean() for w, a, b in zip(WEIGHTS, fx, fy))
