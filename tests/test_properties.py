"""The digit property measures (gantrain/metrics/properties.py) on shapes whose width, slant and size are known."""

import math

import pytest
import torch

from gantrain.metrics.properties import measure, size, slant, stroke_width


def bar(width: int, shear: float = 0.0, length: int = 20, side: int = 32) -> torch.Tensor:
    """A vertical bar ``width`` px wide and ``length`` tall, sheared so its top is ``shear`` px right per row up."""
    img = -torch.ones(1, 1, side, side)
    top = (side - length) // 2
    for r in range(top, top + length):
        shift = round(shear * (top + length - 1 - r))  # rows above the bottom move right
        c = side // 2 - width // 2 + shift
        img[0, 0, r, c : c + width] = 1.0
    return img


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_stroke_width_of_a_bar_is_its_width(width):
    assert stroke_width(bar(width)).item() == pytest.approx(width, rel=0.15)


def test_slant_is_zero_upright_positive_leaning_right_and_the_shear():
    assert slant(bar(2)).item() == pytest.approx(0.0, abs=1e-4)
    right, left = slant(bar(2, shear=0.25)).item(), slant(bar(2, shear=-0.25)).item()
    assert right == pytest.approx(0.25, abs=0.03) and left == pytest.approx(-right, abs=1e-3)


def test_size_grows_with_the_shape_and_is_the_radius_of_gyration():
    assert size(bar(2, length=20)).item() > 1.4 * size(bar(2, length=12)).item()
    # a bar of n rows has var(y) = (n² − 1) / 12
    assert size(bar(1, length=12)).item() == pytest.approx(math.sqrt((12**2 - 1) / 12), abs=1e-4)
    assert measure(torch.cat([bar(1), bar(3)]))["size"].shape == (2,)
