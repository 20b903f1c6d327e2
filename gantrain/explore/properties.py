"""Properties of an image one can measure without a trained model (for digits: light strokes on a dark ground,
in [−1, 1]; colour images are averaged over channels). Each maps images (N, C, H, W) to one number per image."""

from __future__ import annotations

import numpy as np
import torch
from skimage.morphology import skeletonize

Tensor = torch.Tensor


def ink(images: Tensor) -> Tensor:
    """Ink in [0, 1] per pixel: (x + 1)/2 averaged over channels, (N, H, W)."""
    return ((images.float().clamp(-1, 1) + 1) / 2).mean(1)


def brightness(images: Tensor) -> Tensor:
    """The mean ink per pixel."""
    return ink(images).flatten(1).mean(1)


def slant(images: Tensor) -> Tensor:
    """The slope of the ink's principal axis from the vertical: Σ(x − x̄)(ȳ − y)·m / Σ(y − ȳ)²·m over ink mass m,
    x to the right and y down the rows, so a stroke leaning right (top to the right) is positive."""
    m = ink(images)
    h, w = m.shape[1:]
    ys = torch.arange(h, dtype=m.dtype).view(1, h, 1)
    xs = torch.arange(w, dtype=m.dtype).view(1, 1, w)
    mass = m.sum((1, 2)).clamp_min(1e-8)
    ym = (m * ys).sum((1, 2)) / mass
    xm = (m * xs).sum((1, 2)) / mass
    dy, dx = ys - ym.view(-1, 1, 1), xs - xm.view(-1, 1, 1)
    return -(m * dx * dy).sum((1, 2)) / (m * dy * dy).sum((1, 2)).clamp_min(1e-8)


def stroke_width(images: Tensor, threshold: float = 0.5) -> Tensor:
    """Pixels of ink (above ``threshold``) per pixel of their skeleton (scikit-image ``skeletonize``): a stroke
    of width k pixels covers about k pixels for each of its skeleton's. 0 for an image without ink."""
    masks = (ink(images) > threshold).cpu().numpy()
    widths = [mask.sum() / max(skeletonize(mask).sum(), 1) for mask in masks]
    return torch.tensor(np.asarray(widths, dtype=np.float32))


PROPERTIES = {"brightness": brightness, "slant": slant, "stroke_width": stroke_width}
