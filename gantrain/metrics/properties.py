"""Properties of glyph images one can measure without a trained model (light strokes on a dark ground, values in
[−1, 1]; colour images are averaged over channels), and the agreement of an unsupervised code with classes.

Each measure maps N × C × H × W images to N numbers. Ink is the image mapped to [0, 1].

- ``brightness``: the mean ink per pixel.
- ``stroke_width``: inked pixels (ink above half intensity) per pixel of their skeleton (scikit-image's
  ``skeletonize``): a stroke k pixels wide covers about k pixels for each of its skeleton's. 0 without ink.
- ``slant``: the ink's shear from its second moments, μ₁₁ / μ₀₂ with y pointing up: the rightward shift of the
  ink per row upwards (0 upright, 1 for a stroke leaning 45° to the right) — the measure deskewing uses.
- ``size``: the ink's radius of gyration √(var x + var y), in pixels; ``height``: the share of rows with ink.

Users: InfoGAN's codes (scripts/bench_infogan.py), the captions of ``captioned_digits`` (gantrain/data/captions.py)
and the attributes of ``gantrain-explore`` (gantrain/explore/measures.py).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from skimage.morphology import skeletonize

Tensor = torch.Tensor


def ink(images: Tensor) -> Tensor:
    """N × H × W ink in [0, 1] of N × C × H × W (or N × H × W) images in [−1, 1], averaged over channels."""
    images = images.detach().float().cpu()
    if images.dim() == 4:
        images = images.mean(1)
    return ((images + 1) / 2).clamp(0, 1)


def brightness(images: Tensor) -> Tensor:
    return ink(images).flatten(1).mean(1)


def stroke_width(images: Tensor, threshold: float = 0.5) -> Tensor:
    masks = (ink(images) > threshold).numpy()
    widths = [mask.sum() / max(int(skeletonize(mask).sum()), 1) for mask in masks]
    return torch.tensor(np.asarray(widths, dtype=np.float32))


def _moments(images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """var(x), var(y) and cov(x, y) of each image's ink (y pointing up), in pixels²."""
    m = ink(images)
    h, w = m.shape[1:]
    ys = torch.arange(h, dtype=m.dtype).flip(0)[:, None].expand(h, w)
    xs = torch.arange(w, dtype=m.dtype)[None, :].expand(h, w)
    mass = m.sum((1, 2)).clamp_min(1e-8)
    my, mx = (m * ys).sum((1, 2)) / mass, (m * xs).sum((1, 2)) / mass
    dy, dx = ys - my[:, None, None], xs - mx[:, None, None]
    return (m * dx * dx).sum((1, 2)) / mass, (m * dy * dy).sum((1, 2)) / mass, (m * dx * dy).sum((1, 2)) / mass


def slant(images: Tensor) -> Tensor:
    _, var_y, cov = _moments(images)
    return cov / var_y.clamp_min(1e-8)


def size(images: Tensor) -> Tensor:
    var_x, var_y, _ = _moments(images)
    return (var_x + var_y).sqrt()


def height(images: Tensor, threshold: float = 0.5) -> Tensor:
    return (ink(images) > threshold).any(2).float().mean(1)


MEASURES = {"brightness": brightness, "stroke_width": stroke_width, "slant": slant, "size": size, "height": height}
# what captions describe (gantrain/data/captions.py)
PROPERTIES = ("stroke_width", "slant", "size")


def measure(images: Tensor, names=PROPERTIES) -> dict[str, Tensor]:
    """The named measures of ``images``, by name."""
    return {name: MEASURES[name](images) for name in names}


def matched_accuracy(codes: Tensor, classes: Tensor) -> float:
    """Agreement of ``codes`` with ``classes`` (integer tensors, any label sets) under the one-to-one assignment
    of codes to classes that maximizes it (the Hungarian algorithm, scipy)."""
    codes, classes = np.asarray(codes.cpu()), np.asarray(classes.cpu())
    code_ids, code_index = np.unique(codes, return_inverse=True)
    class_ids, class_index = np.unique(classes, return_inverse=True)
    counts = np.zeros((len(code_ids), len(class_ids)), dtype=np.int64)
    np.add.at(counts, (code_index, class_index), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(codes))
