"""DCGAN (Radford et al. 2016): the paper's guidelines (§3) and its initialization (§4: "All weights were
initialized from a zero-centered Normal distribution with standard deviation 0.02")."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gantrain.models import dcgan

NETWORKS = {
    "generator": lambda: dcgan.Generator(latent_dim=100, channels=3, image_size=32, width=64),
    "discriminator": lambda: dcgan.Discriminator(channels=3, image_size=32, width=64),
    "acgan_discriminator": lambda: dcgan.Discriminator(channels=1, image_size=16, width=64, aux_classes=10),
}


@pytest.mark.parametrize("network", NETWORKS)
def test_dcgan_weights_start_as_radford_et_al_s_normal_0_002(network):
    torch.manual_seed(0)
    for name, m in NETWORKS[network]().named_modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.weight.numel() >= 10_000:
            assert m.weight.std().item() == pytest.approx(0.02, rel=0.05), name
            assert m.weight.mean().abs().item() < 0.002, name
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.bias is not None:
            assert not m.bias.any(), name
        if isinstance(m, nn.BatchNorm2d):  # scales N(1, 0.02), as the paper's code (and pytorch/examples) draw them
            assert 0 < (m.weight - 1).abs().max().item() < 0.1 and not m.bias.any(), name


def test_dcgan_follows_the_papers_guidelines():
    """Strided convolutions only (no pooling, no hidden fully connected layers); batch norm everywhere but G's
    output and D's input layers; ReLU and tanh in G, LeakyReLU(0.2) in D."""
    g = dcgan.Generator(latent_dim=100, channels=3, image_size=32, width=64).net
    d = dcgan.Discriminator(channels=3, image_size=32, width=64)
    kinds = {type(m) for m in [*g.modules(), *d.modules()]}
    assert not kinds & {nn.Linear, nn.MaxPool2d, nn.AvgPool2d}
    convs = [m for m in g if isinstance(m, nn.ConvTranspose2d)]
    assert [c.out_channels for c in convs] == [256, 128, 64, 3] and [c.stride[0] for c in convs] == [1, 2, 2, 2]
    assert isinstance(g[-1], nn.Tanh) and isinstance(g[-2], nn.ConvTranspose2d)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in g) == 3 and sum(isinstance(m, nn.ReLU) for m in g) == 3
    layers = list(d.features)
    assert isinstance(layers[0], nn.Conv2d) and isinstance(layers[1], nn.LeakyReLU)  # no batch norm on D's input
    assert sum(isinstance(m, nn.BatchNorm2d) for m in layers) == 2
    assert all(m.negative_slope == 0.2 for m in layers if isinstance(m, nn.LeakyReLU))
    assert d(torch.randn(5, 3, 32, 32)).shape == (5,)
