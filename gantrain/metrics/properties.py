"""Measurable properties of glyph images (dark background, bright ink, values in [−1, 1]), and the agreement of
an unsupervised code with classes: what InfoGAN's codes are checked against (scripts/bench_infogan.py).

Ink is the image mapped to [0, 1]. ``slant``: the horizontal shift of the ink per row going up, from its
second moments, μ₁₁ / μ₀₂ with y pointing up (0 for an upright stroke, 1 for a stroke leaning 45° to the
right). ``stroke_width``: the inked area (pixels above half intensity) divided by the length of its
skeleton (scikit-image's ``skeletonize``), the mean thickness of the strokes. ``height``: the fraction of
rows holding ink (the glyph's size). ``matched_accuracy``: the share of samples whose code equals their class
under the best one-to-one assignment of codes to classes (the Hungarian algorithm, scipy).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from skimage.morphology import skeletonize

Tensor = torch.Tensor


def _ink(images: Tensor) -> Tensor:
    """N × H × W ink in [0, 1] of N × 1 × H × W (or N × H × W) images in [−1, 1]."""
    images = images.detach().float().cpu()
    if images.dim() == 4:
        images = images.mean(1)
    return ((images + 1) / 2).clamp(0, 1)


def slant(images: Tensor) -> Tensor:
    """μ₁₁ / μ₀₂ of each image's ink, y pointing up: the rightward shift of the ink per row upwards."""
    ink = _ink(images)
    h, w = ink.shape[1:]
    y = -torch.arange(h, dtype=ink.dtype)[:, None].expand(h, w)  # up
    x = torch.arange(w, dtype=ink.dtype)[None, :].expand(h, w)
    mass = ink.sum((1, 2)).clamp_min(1e-8)
    mx, my = (ink * x).sum((1, 2)) / mass, (ink * y).sum((1, 2)) / mass
    dx, dy = x - mx[:, None, None], y - my[:, None, None]
    return (ink * dx * dy).sum((1, 2)) / (ink * dy * dy).sum((1, 2)).clamp_min(1e-8)


def stroke_width(images: Tensor, threshold: float = 0.5) -> Tensor:
    """Inked pixels (ink > ``threshold``) per skeleton pixel of each image (0 for an empty one)."""
    binary = (_ink(images) > threshold).numpy()
    widths = [b.sum() / max(1, skeletonize(b).sum()) if b.any() else 0.0 for b in binary]
    return torch.tensor(np.array(widths, dtype=np.float64), dtype=torch.float32)


def height(images: Tensor, threshold: float = 0.5) -> Tensor:
    """The fraction of each image's rows that hold ink above ``threshold``."""
    rows = (_ink(images) > threshold).any(2).float()
    return rows.mean(1)


def matched_accuracy(codes: Tensor, classes: Tensor) -> float:
    """Agreement of ``codes`` with ``classes`` (integer tensors, any label sets) under the one-to-one assignment
    of codes to classes that maximizes it."""
    codes, classes = np.asarray(codes.cpu()), np.asarray(classes.cpu())
    code_ids, code_index = np.unique(codes, return_inverse=True)
    class_ids, class_index = np.unique(classes, return_inverse=True)
    counts = np.zeros((len(code_ids), len(class_ids)), dtype=np.int64)
    np.add.at(counts, (code_index, class_index), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(codes))
