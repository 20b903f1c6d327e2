"""Measurable properties of a handwritten digit: stroke width, slant and size, for images in [-1, 1] (ink bright).

Each takes an N×1×H×W batch and returns N floats, in pixels of the given image (or degrees):

- ``stroke_width``: ink mass / skeleton length (the ink, thresholded at half intensity, thinned to one-pixel
  lines by scikit-image's ``skeletonize``): the mean width of a stroke, in pixels.
- ``slant``: the angle from vertical, in degrees, of the ink's principal shear: atan(cov(x, y) / var(y)) with
  y pointing up, so a digit leaning right (its top right of its bottom) is positive — the second-moment
  measure deskewing uses.
- ``size``: the ink's radius of gyration, sqrt(var(x) + var(y)), in pixels.
"""

from __future__ import annotations

import torch
from skimage.morphology import skeletonize

Tensor = torch.Tensor
PROPERTIES = ("stroke_width", "slant", "size")


def _ink(images: Tensor) -> Tensor:
    """Ink intensity in [0, 1], N×H×W (the first channel)."""
    return ((images[:, 0].detach().float().cpu() + 1) / 2).clamp(0, 1)


def stroke_width(images: Tensor) -> Tensor:
    ink = _ink(images)
    out = []
    for x in ink:
        skeleton = skeletonize((x > 0.5).numpy())
        out.append(float(x.sum()) / max(1, int(skeleton.sum())))
    return torch.tensor(out)


def _moments(images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The ink distribution's var(x), var(y) and cov(x, y) (y pointing up), in pixels²."""
    ink = _ink(images)
    _, h, w = ink.shape
    ys = torch.arange(h, dtype=torch.float32).flip(0)[:, None].expand(h, w)
    xs = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w)
    mass = ink.sum((1, 2)).clamp_min(1e-8)
    my, mx = (ink * ys).sum((1, 2)) / mass, (ink * xs).sum((1, 2)) / mass
    dy, dx = ys - my[:, None, None], xs - mx[:, None, None]
    return (ink * dx * dx).sum((1, 2)) / mass, (ink * dy * dy).sum((1, 2)) / mass, (ink * dx * dy).sum((1, 2)) / mass


def slant(images: Tensor) -> Tensor:
    _, var_y, cov = _moments(images)
    return torch.rad2deg(torch.atan(cov / var_y.clamp_min(1e-8)))


def size(images: Tensor) -> Tensor:
    var_x, var_y, _ = _moments(images)
    return (var_x + var_y).sqrt()


MEASURES = {"stroke_width": stroke_width, "slant": slant, "size": size}


def measure(images: Tensor) -> dict[str, Tensor]:
    """Every property of ``images``, by name."""
    return {name: fn(images) for name, fn in MEASURES.items()}
