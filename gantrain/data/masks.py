"""Inpainting holes over any image dataset, and the classical fills scored beside a learned inpainter.

``masked(base, mask, **options)`` builds the data source ``base`` (a dotted path, given ``options``) and adds to
each split a ``mask`` field: bool 1×H×W, true where pixels are missing. ``image`` stays the full original (the
target); the inpainting family makes the holed input. ``mask`` is ``{kind, size, seed}``:

- ``centre``: the square of side ``round(size · S)`` at the centre (Pathak et al. 2016's "central region":
  half the side by default, ``size=0.5``).
- ``random``: axis-aligned rectangles, each side drawn from [size·S/4, size·S], placed uniformly and added until
  they cover size² of the image (the area of the centre hole; the paper's random blocks cover up to ¼ of it).
  Stand-in for the paper's random-region masks, which are PASCAL VOC segment shapes we do not ship.

Each sample's mask is a fixed function of (seed, split, index) (a NumPy ``SeedSequence``), so held-out holes are
the same at every evaluation and a resumed run sees the same holes. ``fill_hole`` (the holed input the paper's
encoder sees) and ``biharmonic_fill`` (scikit-image's ``inpaint_biharmonic``) are the baselines beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import get_method
from torch.utils.data import Dataset

from gantrain.data import DataBundle, DataSpec, InMemory
from gantrain.errors import ConfigError

Tensor = torch.Tensor
KINDS = ("centre", "random")
MAX_RECTANGLES = 32


@dataclass(frozen=True)
class MaskSpec:
    """The holes of a dataset (``dataset.mask``): ``kind`` centre | random, ``size`` the hole's side as a
    fraction of the image's (random masks: the same area), ``seed`` of the random ones."""

    kind: str = "centre"
    size: float = 0.5
    seed: int = 0

    @classmethod
    def of(cls, mask: Mapping) -> "MaskSpec":
        """The spec of a ``dataset.mask`` mapping, each key checked (one-line ConfigError naming it)."""
        unknown = sorted(set(mask) - {"kind", "size", "seed"})
        if unknown:
            raise ConfigError(f"dataset.mask.{unknown[0]} is not a mask setting: use kind, size, seed")
        spec = cls(**mask)
        if spec.kind not in KINDS:
            raise ConfigError(f"dataset.mask.kind={spec.kind!r} is not a mask kind: choose {' or '.join(KINDS)}")
        if isinstance(spec.size, bool) or not isinstance(spec.size, (int, float)) or not 0 < spec.size < 1:
            raise ConfigError(f"dataset.mask.size={spec.size!r} must be a fraction in (0, 1): the hole's side over the image's (0.5: half)")
        if isinstance(spec.seed, bool) or not isinstance(spec.seed, int) or spec.seed < 0:
            raise ConfigError(f"dataset.mask.seed={spec.seed!r} must be a non-negative integer")
        return spec

    def side(self, image_size: int) -> int:
        """The centre hole's side in pixels at ``image_size``, refused where it is under one pixel."""
        side = round(self.size * image_size)
        if side < 1:
            raise ConfigError(f"dataset.mask.size={self.size} is under one pixel at {image_size} px: use a larger size")
        return side

    def masks(self, indices, height: int, width: int, split: int) -> Tensor:
        """Bool N×1×H×W holes of the samples at ``indices`` of split ``split`` (0 train, 1 held out)."""
        out = torch.zeros(len(indices), 1, height, width, dtype=torch.bool)
        if self.kind == "centre":
            out[..., centre_box(self.side(height), height), centre_box(self.side(width), width)] = True
            return out
        side_h, side_w = self.side(height), self.side(width)
        target = self.size**2 * height * width
        for row, index in enumerate(indices):
            rng = np.random.default_rng([self.seed, split, int(index)])
            hole = out[row, 0]
            for _ in range(MAX_RECTANGLES):
                h = int(rng.integers(math.ceil(side_h / 4), side_h + 1))
                w = int(rng.integers(math.ceil(side_w / 4), side_w + 1))
                top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
                hole[top : top + h, left : left + w] = True
                if hole.sum() >= target:
                    break
        return out


def centre_box(side: int, size: int) -> slice:
    """The centred run of ``side`` of ``size`` pixels."""
    start = (size - side) // 2
    return slice(start, start + side)


class MaskedDataset(Dataset):
    """A dataset of dict samples with each sample's ``mask`` added (for sources not held in memory)."""

    def __init__(self, base: Dataset, spec: MaskSpec, height: int, width: int, split: int):
        self.base, self.spec, self.shape, self.split = base, spec, (height, width), split

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict:
        return {**self.base[i], "mask": self.spec.masks([i], *self.shape, self.split)[0]}


def _with_masks(dataset: Dataset, spec: MaskSpec, height: int, width: int, split: int) -> Dataset:
    if isinstance(dataset, InMemory):  # whole batches per fetch: the masks are stored beside the images
        return InMemory({**dataset.fields, "mask": spec.masks(range(len(dataset)), height, width, split)})
    return MaskedDataset(dataset, spec, height, width, split)


def masked(base: str, mask: Mapping, **options) -> DataBundle:
    """The data source ``base`` (a dotted path, called with ``options``) with a ``mask`` field in each split."""
    spec = MaskSpec.of(mask)
    bundle = get_method(base)(**options)
    if bundle.spec.kind != "image":
        raise ConfigError(f"dataset.source.base={base} gives {bundle.spec.kind}, but masks need images")
    height, width = bundle.spec.shape[-2:]
    spec.side(min(height, width))
    fields = {**bundle.spec.fields, "mask": (1, height, width)}
    return DataBundle(
        train=_with_masks(bundle.train, spec, height, width, split=0),
        heldout=_with_masks(bundle.heldout, spec, height, width, split=1),
        spec=DataSpec(bundle.spec.kind, bundle.spec.shape, bundle.spec.num_classes, fields),
        mixture=bundle.mixture,
    )


# ------------------------------------------------------------------------------------------ fills
def fill_hole(image: Tensor, mask: Tensor) -> Tensor:
    """``image`` (N×C×H×W) with its hole set to each image's mean colour (per channel) over its visible pixels.
    The official code fills with a constant, its training set's mean colour; each image's own mean needs no
    dataset statistics and serves any image at inference. Pixels outside the hole are returned unchanged."""
    visible = (~mask).to(image.dtype)
    mean = (image * visible).sum((2, 3), keepdim=True) / visible.sum((2, 3), keepdim=True).clamp(min=1)
    return torch.where(mask, mean.expand_as(image), image)


def biharmonic_fill(image: Tensor, mask: Tensor) -> Tensor:
    """The hole filled by scikit-image's ``inpaint_biharmonic`` (a smooth biharmonic interpolation of the hole's
    border, each channel alike); pixels outside the hole unchanged. ``image`` N×C×H×W in [-1, 1]."""
    from skimage.restoration import inpaint_biharmonic

    out = []
    for x, m in zip(image.detach().cpu().double(), mask.cpu()):
        filled = inpaint_biharmonic(x.permute(1, 2, 0).numpy(), m[0].numpy(), channel_axis=-1)
        out.append(torch.from_numpy(filled).permute(2, 0, 1))
    return torch.where(mask.cpu(), torch.stack(out).to(image.dtype), image.cpu()).to(image.device)


def rim(mask: Tensor, width: int) -> Tensor:
    """The ``width``-pixel band just outside the hole (its square dilation minus the hole): the overlap the
    context encoder also predicts (the official code's ``overlapPred``)."""
    if width == 0:
        return torch.zeros_like(mask)
    grown = F.max_pool2d(mask.float(), 2 * width + 1, stride=1, padding=width) > 0
    return grown & ~mask
