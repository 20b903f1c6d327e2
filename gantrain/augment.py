"""Differentiable augmentation of the discriminator's inputs: DiffAugment (Zhao et al. 2020).

D judges T(x) and T(G(z)), in its own update and in G's, where T is a random transformation differentiable in
its input, so that G learns through T (the paper's Eqs. 2–3, its Fig. 4c); augmenting the real samples alone
would teach G the augmented distribution. With a few thousand training images D otherwise memorizes them and
wins (the paper's §4.1). Each transformation is drawn anew for every sample and every call (§3):

- ``color``: brightness x + b, b ~ U[−½, ½); saturation m + s(x − m), m the channel mean of each pixel,
  s ~ U[0, 2); contrast m + c(x − m), m the image mean, c ~ U[½, 3/2) (for images in [−1, 1]);
- ``translation``: a shift by a whole number of pixels up to ``translation`` × the size each way, the pixels
  shifted in being 0;
- ``cutout``: a square of ``cutout`` × the size a side, its centre uniform over the image, set to 0.

The paper's default policy is all three, ratios 1/8 and 1/2.
"""

from __future__ import annotations

from functools import partial
from typing import Mapping, Sequence

import torch
from torch import nn

from gantrain.regularizers import Regularizer, networks_of

Tensor = torch.Tensor


def _uniform(x: Tensor, low: float, high: float) -> Tensor:
    """One draw of U[low, high) per sample, shaped to broadcast over the sample's other dimensions."""
    return low + (high - low) * torch.rand(len(x), *([1] * (x.dim() - 1)), device=x.device, dtype=x.dtype)


def color(x: Tensor) -> Tensor:
    x = x + _uniform(x, -0.5, 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = mean + _uniform(x, 0.0, 2.0) * (x - mean)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return mean + _uniform(x, 0.5, 1.5) * (x - mean)


def _draw(x: Tensor, low: int, high: int) -> Tensor:
    """One whole number of [low, high] per sample, shaped N × 1 × 1 (to broadcast over rows and columns)."""
    return torch.randint(low, high + 1, (len(x), 1, 1), device=x.device)


def _grid(x: Tensor) -> tuple[Tensor, Tensor]:
    """The row and column index of every pixel, shaped 1 × H × 1 and 1 × 1 × W."""
    h, w = x.shape[-2:]
    return torch.arange(h, device=x.device).view(1, h, 1), torch.arange(w, device=x.device).view(1, 1, w)


def translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    h, w = x.shape[-2:]
    reach_y, reach_x = round(h * ratio), round(w * ratio)
    rows, cols = _grid(x)
    rows, cols = rows - _draw(x, -reach_y, reach_y), cols - _draw(x, -reach_x, reach_x)  # where each pixel comes from
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    batch = torch.arange(len(x), device=x.device).view(-1, 1, 1)
    shifted = x[batch, :, rows.clamp(0, h - 1), cols.clamp(0, w - 1)]  # N × H × W × C
    return shifted.permute(0, 3, 1, 2) * inside.unsqueeze(1).to(x.dtype)


def cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    h, w = x.shape[-2:]
    side_y, side_x = round(h * ratio), round(w * ratio)
    rows, cols = _grid(x)
    top, left = _draw(x, 0, h - 1) - side_y // 2, _draw(x, 0, w - 1) - side_x // 2
    hole = (rows >= top) & (rows < top + side_y) & (cols >= left) & (cols < left + side_x)
    return x * (~hole).unsqueeze(1).to(x.dtype)


class DiffAugment(Regularizer):
    """DiffAugment as a regularizer of the discriminator: every forward pass of a discriminator in training mode
    sees its (first) input augmented by ``policy``, applied in order; eval mode sees it unchanged. A
    discriminator judging pairs (pix2pix: condition and output stacked as channels) has both moved alike."""

    def __init__(self, policy: Sequence[str] = ("color", "translation", "cutout"), translation: float = 0.125, cutout: float = 0.5):
        if not policy or set(policy) - {"color", *TRANSFORMS}:
            raise ValueError(f"regularizer.diffaugment.policy={list(policy)} must list some of color, translation, cutout")
        for name, ratio in (("translation", translation), ("cutout", cutout)):
            if not 0 < ratio <= 1:
                raise ValueError(f"regularizer.diffaugment.{name}={ratio} must be in (0, 1]")
        ratios = {"translation": float(translation), "cutout": float(cutout)}
        self.transforms = [color if name == "color" else partial(TRANSFORMS[name], ratio=ratios[name]) for name in policy]

    def __call__(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"DiffAugment transforms images (N × C × H × W), not inputs of shape {tuple(x.shape)}")
        for transform in self.transforms:
            x = transform(x)
        return x

    def setup(self, networks: Mapping[str, nn.Module]) -> None:
        for d in networks_of(networks, "discriminator"):
            d.register_forward_pre_hook(self._augment_input)

    def _augment_input(self, module: nn.Module, args: tuple):
        return (self(args[0]), *args[1:]) if module.training else None


TRANSFORMS = {"translation": translation, "cutout": cutout}
